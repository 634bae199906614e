"""Runs one gateway process (uvicorn with uvloop and httptools). Its presence makes `flk up`
start the gateways (infra/apps.py)."""

from __future__ import annotations

import logging
import logging.handlers

import uvicorn

from flk import gctune
from gateway.app import create_app
from gateway.settings import Settings


def _logging(settings: Settings) -> None:
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter(
        f"%(asctime)s %(levelname)s %(name)s [{settings.region.name}/{settings.index}] "
        "%(message)s"))
    # Info lines are buffered; warnings and errors flush at once, and the app flushes the
    # buffer every second. Access lines have a file of their own (gateway/accesslog.py).
    buffered = logging.handlers.MemoryHandler(256, logging.WARNING, stream, flushOnClose=True)
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    root.addHandler(buffered)


def serve(settings: Settings) -> None:
    _logging(settings)
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
        http="httptools", lifespan="on", access_log=False, log_level="warning",
        # No logging config of uvicorn's own: applying one (dictConfig) closes the handlers
        # already installed, and a closed MemoryHandler keeps every later record in memory
        # and writes none of them (the access log and every warning were lost that way).
        log_config=None,
        server_header=False, timeout_graceful_shutdown=5, backlog=2048,
        # Clients connect directly; no proxy's X-Forwarded-* headers to trust (and no
        # middleware pass per request).
        proxy_headers=False,
    )  # fmt: skip
    gctune.tune()
    uvicorn.Server(config).run()
