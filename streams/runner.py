"""Runs one stream worker in the foreground (Faust's worker: signals, logging, event loop)."""

from __future__ import annotations

import logging

import faust

from flk import gctune
from streams.settings import Settings


def serve(settings: Settings) -> None:
    from streams.app import DedupWorker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = DedupWorker(settings)
    runner = faust.Worker(
        worker.app, loglevel=settings.log_level.replace("warning", "warn"), quiet=True,
        redirect_stdouts=False, workdir=str(settings.data_dir),
    )  # fmt: skip
    logging.getLogger("flk").setLevel(settings.log_level.upper())
    gctune.tune()
    runner.execute_from_commandline()
