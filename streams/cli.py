"""`flk worker`, `flk replay` and `flk tail`: the stream processors' commands."""

from __future__ import annotations

import click

from flk.config import ConfigError
from flk.errors import UsageError


@click.command()
@click.option("--region", required=True, help="Region name, e.g. eu-west.")
@click.option("--index", default=0, show_default=True, type=int,
              help="Worker index k: web port region.port(60 + k) (/readyz, /metrics, /status).")
def worker(region: str, index: int) -> None:
    """Run one dedup-stage worker of REGION in the foreground."""
    from streams.settings import load_settings

    try:
        settings = load_settings(region, index)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    from streams.runner import serve

    serve(settings)


COMMANDS = [worker]
