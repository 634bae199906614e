"""Runs one stream worker in the foreground (Faust's worker: signals, logging, event loop)."""

from __future__ import annotations

import asyncio
import logging

import faust
import uvloop

from flk import gctune
from streams.settings import Settings


def serve(settings: Settings) -> None:
    # uvloop for the worker's loop and the consumer thread's (mode's ServiceThread asks the
    # policy for a new loop): the stage's per-record path is mostly event-loop work — futures,
    # callbacks, cross-thread wake-ups — and the selector loop was a quarter of its samples.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
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
