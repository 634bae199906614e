"""`flk worker`, `flk replay` and `flk tail`: the stream processors' commands."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import click

from flk.config import ConfigError
from flk.errors import FlkError, UsageError

if TYPE_CHECKING:
    from infra.layout import Layout, Region


class ReplayDiffers(FlkError):
    """`flk replay --diff` found differences (exit 1)."""


def _region(name: str) -> tuple[Layout, Region]:
    from infra.layout import load_layout

    try:
        layout = load_layout()
        return layout, layout.region(name)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


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


def _parse_time(text: str | None) -> int | None:
    """Milliseconds since the epoch from `1735689600000` or an ISO 8601 time."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither milliseconds since the epoch nor an ISO 8601 time "
            "(e.g. 2026-01-31T12:00:00Z)", param_hint="'--from-time'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


@click.command()
@click.option("--region", required=True, help="Region whose WAL (local and mirrored) to replay.")
@click.option("--from-time", "from_time", default=None, metavar="T",
              help="Start at this WAL record time (ms since the epoch or ISO 8601) instead of "
                   "the beginning.")
@click.option("--diff", "do_diff", is_flag=True,
              help="Compare the replayed outcomes with the live compacted flk.outcomes; exit 1 "
                   "if any differ.")
@click.option("--tenant", default=None, help="Compare only this tenant's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay(region: str, from_time: str | None, do_diff: bool, tenant: str | None,
           as_json: bool) -> None:  # fmt: skip
    """Re-process REGION's WAL into empty state under a fresh application id, writing the
    outcomes to a side topic of the run (never to flk.outcomes)."""
    from streams import replay as rp

    from_ms = _parse_time(from_time)
    layout, reg = _region(region)
    say = (lambda _: None) if as_json else (lambda m: click.echo(f"  {m}", err=True))
    report = rp.replay(layout, reg, from_ms=from_ms, say=say)
    differences = 0
    if do_diff:
        prefix = f"{tenant}/".encode() if tenant else b""
        d = rp.diff(reg, report.side_topic, report.group, lambda k: k.startswith(prefix))
        differences = d.differences
        report.diff = {
            "compared": d.compared, "differences": differences, "differing": len(d.differing),
            "only_live": len(d.only_live), "only_replay": len(d.only_replay),
            "examples": d.examples, "differing_keys": d.differing[:20],
            "only_live_keys": d.only_live[:20], "only_replay_keys": d.only_replay[:20],
        }  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2, sort_keys=True))
    else:
        click.echo(f"replayed {report.records} WAL records of {reg.name} in {report.seconds} s "
                   f"(group {report.group})")  # fmt: skip
        click.echo(f"wrote {report.outcomes} outcome records to {report.side_topic}")
        if report.diff is not None:
            x = report.diff
            click.echo(f"diff against flk.outcomes: {x['compared']} keys compared, "
                       f"{x['differing']} differ, {x['only_replay']} missing from flk.outcomes "
                       f"→ {x['differences']} differences ({x['only_live']} keys only live: "
                       "written after the replay started, or before the WAL's retention)")
            for key, fields in x["examples"].items():
                click.echo(f"  {key}: {json.dumps(fields, sort_keys=True)}")
    if differences:
        raise ReplayDiffers(f"the replay of {reg.name} differs from flk.outcomes in "
                            f"{differences} keys",
                            hint=f"inspect them with: flk tail {report.side_topic} --region "
                                 f"{reg.name}")  # fmt: skip


@click.command()
@click.argument("topic")
@click.option("--region", default=None, help="Region whose cluster to read (default: first).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records.")
@click.option("--from-end", is_flag=True, help="Only records written from now on (implies -f).")
@click.option("-n", "--limit", type=int, default=None, help="Stop after N records.")
@click.option("--partition", type=int, default=None, help="Only this partition.")
@click.option("--body", is_flag=True, help="Print WAL bodies too (they are payloads: careful).")
def tail(topic: str, region: str | None, follow: bool, from_end: bool, limit: int | None,
         partition: int | None, body: bool) -> None:
    """Decode and print TOPIC's records as JSON, one per line (from the beginning)."""
    from infra.layout import load_layout
    from streams.tail import records, render

    layout = load_layout()
    try:
        reg = layout.region(region) if region else layout.regions[0]
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        for msg in records(reg, topic, from_end=from_end, follow=follow or from_end,
                           limit=limit, partition=partition):  # fmt: skip
            click.echo(render(msg, body))
    except LookupError as exc:
        raise UsageError(str(exc.args[0]), hint="list topics with the Kafka tools, or see "
                                                "topics/catalogue.py") from None


COMMANDS = [worker, replay, tail]
