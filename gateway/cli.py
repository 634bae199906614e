"""`flk gateway --region R --index k`: one gateway process on port region.port(80 + k)."""

from __future__ import annotations

import click

from flk.config import ConfigError
from flk.errors import FlkError, UsageError


@click.command()
@click.option("--region", required=True, help="Region name, e.g. eu-west.")
@click.option("--index", default=0, show_default=True, type=int,
              help="Process index k: port region.port(80 + k), flk.replies partition k.")
def gateway(region: str, index: int) -> None:
    """Run one HTTP ingest gateway process (SPEC §4) in the foreground."""
    from gateway.settings import load_settings
    from gateway.tenants import TenantsFileError, read_tenants

    try:
        settings = load_settings(region, index)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    try:  # fail at start-up naming the field, rather than from inside the server
        read_tenants(settings.tenants_file)
    except TenantsFileError as exc:
        raise FlkError(str(exc), hint="fix the tenants file (format: docs/gateway.md); "
                       "`flk up` generates a development one when it is missing") from None
    from gateway.server import serve

    serve(settings)


COMMANDS = [gateway]
