"""The `flk` command line. Errors are printed once, here, with a hint; `--debug` shows
tracebacks."""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

from flk.config import ConfigError
from flk.errors import FlkError, UsageError
from infra.layout import Layout, load_layout


def _layout() -> Layout:
    try:
        return load_layout()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _say(message: str) -> None:
    click.echo(f"  {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Multi-region ingest and verification pipeline for signed PCS records."""
    ctx.obj = {"debug": debug}


@cli.command()
def up() -> None:
    """Start both regions (Kafka, MirrorMaker 2, Redis, PostgreSQL, S3) and wait until healthy."""
    from infra import platform

    layout = _layout()
    t0 = time.monotonic()
    click.echo(f"Starting the platform in {layout.home} ...", err=True)
    started = platform.up(layout, progress=_say)
    verb = "Started" if started else "Already running:"
    click.echo(f"{verb} {len(started) or 'all'} processes in {time.monotonic() - t0:.1f} s\n")
    _print_endpoints(platform.status(layout))


def _print_endpoints(st: dict[str, Any]) -> None:
    for name, reg in st["regions"].items():
        click.echo(f"{name}:")
        kafka = reg["kafka"]
        click.echo(f"  kafka     {kafka['bootstrap']}  (cluster {kafka['cluster_id']})")
        click.echo(f"  redis     {reg['redis']['url']}")
        click.echo(f"  postgres  {reg['postgres']['dsn']}")
        click.echo(f"  s3        {reg['s3']['endpoint']}  bucket {reg['s3']['bucket']}")
        if "mirror" in reg:
            lags = ", ".join(
                f"{flow} {'-' if ms is None else f'{ms} ms'}"
                for flow, ms in reg["mirror"]["lag_ms"].items()
            )
            click.echo(f"  mirror    lag {lags}")
        click.echo(f"  logs      {reg['kafka']['log'].rsplit('/', 1)[0]}/")
    click.echo(f"S3 development credentials: {st['s3_credentials_file']}")


@cli.command()
def down() -> None:
    """Stop every process of the platform (data is kept)."""
    from infra import platform

    layout = _layout()
    stopped = platform.down(layout, progress=_say)
    click.echo(f"Stopped {len(stopped)} processes." if stopped else "Nothing was running.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON.")
def status(as_json: bool) -> None:
    """Health of each component, endpoints, and MirrorMaker lag per direction."""
    from infra import platform

    st = platform.status(_layout())
    if as_json:
        click.echo(json.dumps(st, indent=2, sort_keys=True))
    else:
        for name, reg in st["regions"].items():
            click.echo(f"{name}:")
            for comp, facts in reg.items():
                mark = "ok  " if facts.get("healthy") else "DOWN"
                extra = ""
                if comp == "mirror":
                    extra = "  lag " + ", ".join(
                        f"{k} {'-' if v is None else f'{v} ms'}" for k, v in facts["lag_ms"].items()
                    )
                elif facts.get("error"):
                    extra = f"  ({facts['error'][:80]})"
                click.echo(f"  {mark} {comp:<9}{extra}")
        click.echo("healthy" if st["healthy"] else "NOT healthy")
    if not st["healthy"]:
        sys.exit(1)


@cli.command()
@click.option("--records", default=3000, show_default=True, help="Submissions to send.")
@click.option("--rate", default=300.0, show_default=True, help="Submissions per second.")
@click.option("--seed", default=1, show_default=True, help="Workload seed (repeatable runs).")
@click.option("--duplicates", default=0.10, show_default=True, help="Share of exact duplicates.")
@click.option("--conflicts", default=0.03, show_default=True, help="Share of same-key conflicts.")
@click.option("--bad-signatures", default=0.03, show_default=True, help="Share of bad signatures.")
@click.option("--malformed", default=0.02, show_default=True, help="Share of malformed bodies.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the log of acknowledged requests.")  # fmt: skip
def demo(records: int, rate: float, seed: int, duplicates: float, conflicts: float,
         bad_signatures: float, malformed: float, log_path: Path | None) -> None:  # fmt: skip
    """Start everything, send realistic signed traffic through both regions, then check
    independently that every acknowledged request is accounted for in every region."""
    from bench.workload import Mix
    from flk import demo as demo_mod
    from infra import platform

    if records < 1 or rate <= 0:
        raise UsageError(f"--records must be ≥ 1 and --rate > 0 (got {records}, {rate})")
    try:
        mix = Mix(duplicates, conflicts, bad_signatures, malformed)
    except ValueError as exc:
        raise UsageError(f"Invalid traffic mix: {exc}") from None
    layout = _layout()
    platform.up(layout, progress=_say)
    log_path = log_path or layout.home / "demo" / f"acks-{int(time.time())}.jsonl"
    result = demo_mod.run(layout, records=records, rate=rate, seed=seed, mix=mix,
                          log_path=log_path)  # fmt: skip
    _report_check(result)


@cli.command("check")
@click.argument("log_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for convergence.")
def check_cmd(log_path: Path, timeout: float) -> None:
    """Check a demo log of acknowledged requests against both regions' outcomes."""
    from flk.check import check_until, read_acks

    _report_check(check_until(_layout(), read_acks(log_path), timeout))


def _report_check(result: Any) -> None:
    if result.ok:
        click.echo(f"CHECK PASSED: all {result.acks} acknowledged requests are accounted for in "
                   "every region, and the latest outcome per key is identical everywhere.")
        return
    for line in result.problems[:50]:
        click.echo(f"  {line}", err=True)
    more = len(result.problems) - 50
    if more > 0:
        click.echo(f"  ... and {more} more", err=True)
    raise FlkError(f"CHECK FAILED: {len(result.problems)} problems in {result.acks} "
                   "acknowledged requests")


@cli.group()
def platform() -> None:
    """Maintenance of the local platform."""


@platform.command("lock-jars")
def lock_jars() -> None:
    """Resolve infra/kafka/pom.xml afresh and rewrite infra/kafka/jars.sha256."""
    from infra import jvm

    click.echo(f"Wrote {jvm.write_lock(_layout())}")


def _register_components() -> None:
    """Subcommands owned by the components: `gateway` (gateway/cli.py) and `worker`, `replay`,
    `tail` (streams/cli.py)."""
    import importlib

    for module in ("gateway.cli", "streams.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name not in (module, module.split(".")[0]):
                raise
            continue
        for command in getattr(mod, "COMMANDS", []):
            cli.add_command(command)


_register_components()


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FlkError as exc:
        if debug:
            traceback.print_exc()
        click.echo(exc.format(), err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
