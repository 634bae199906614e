"""Runs one gateway process (uvicorn with uvloop and httptools). Its presence makes `flk up`
start the gateways (infra/apps.py)."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from gateway.settings import Settings


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s [{settings.region.name}/{settings.index}] "
               "%(message)s",
    )
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
        http="httptools", lifespan="on", access_log=False, log_level="warning",
        server_header=False, timeout_graceful_shutdown=5, backlog=2048,
    )  # fmt: skip
    uvicorn.Server(config).run()
