"""Generate the benchmark tables of docs/performance.md from bench/results/*.json.

    .venv/bin/python -m bench.report          # rewrite the generated sections
    .venv/bin/python -m bench.report --check  # exit 1 if the docs do not match the results

One section per benchmark kind (gateway, streams_worker, replay, e2e, scale), each between its
own markers `<!-- generated:<kind>:start -->` / `<!-- generated:<kind>:end -->`; everything
between a pair is generated and must not be edited by hand, everything outside is prose. Only
result documents in the common envelope (bench/harness.py, "schema": 1) are tabulated; a kind
without one renders "not measured yet". Every table names the command, machine and commit of
its run. A marker pair missing from the doc is appended at its end (so `--check` fails until
the doc is regenerated).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, SCHEMA
from infra.layout import REPO_ROOT

DOC = REPO_ROOT / "docs" / "performance.md"

Doc = dict[str, Any]


def markers(kind: str) -> tuple[str, str]:
    return f"<!-- generated:{kind}:start -->", f"<!-- generated:{kind}:end -->"


def _get(d: Any, *path: str | int) -> Any:
    """d[path[0]][path[1]]…, or None where anything is missing or of the wrong type."""
    for key in path:
        if isinstance(d, dict):
            d = d.get(key)
        elif isinstance(d, list) and isinstance(key, int) and -len(d) <= key < len(d):
            d = d[key]
        else:
            return None
    return d


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _share(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "–"


def _ms(*values: Any) -> str:
    if all(v is None for v in values):
        return "–"
    return " / ".join(_fmt(float(v)) if isinstance(v, int | float) else "–" for v in values)


def _machine(r: Doc) -> str:
    m = r.get("machine") or {}
    out = f"{m.get('cpu_model', '?')}, {m.get('cpu_count', '?')} cores"
    if m.get("memory_gib") is not None:
        out += f", {m['memory_gib']} GiB"
    load = m.get("load_average")
    if isinstance(load, list) and load:
        out += f" (load average {load[0]:.1f} at the start)"
    return out


def _run_line(r: Doc) -> str:
    commit = str(r.get("git_commit") or "unknown")[:8]
    return (
        f"Command: `{r.get('command', '?')}`; machine: {_machine(r)}; commit `{commit}`; "
        f"started {r.get('started_at', '?')}."
    )


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


# --- one renderer per kind: list of envelope documents → lines ---------------------------


def _gateway(docs: list[Doc]) -> list[str]:
    lines: list[str] = []
    for r in docs:
        lines += [_run_line(r), ""]
        rows = []
        for row in _get(r, "results", "rows") or []:
            kind = row.get("kind")
            offered = (
                f"closed loop, {_fmt(row.get('connections'))} conn."
                if kind == "saturation"
                else _fmt(row.get("offered_rate"))
            )
            rows.append(
                [
                    str(row.get("mode", "?")),
                    str(kind or "?"),
                    _fmt(row.get("gateways")),
                    offered,
                    _fmt(row.get("achieved_rate", row.get("requests_per_second"))),
                    _fmt(row.get("requests_per_gateway_cpu_second")),
                    _ms(row.get("p50_ms"), row.get("p95_ms"), row.get("p99_ms")),
                    _share(row.get("pending_share")),
                    _share(row.get("error_share")),
                ]
            )
        lines += _table(
            [
                "mode",
                "run",
                "gateway processes",
                "offered req/s",
                "achieved req/s",
                "req / gateway CPU-s",
                "p50 / p95 / p99 ms",
                "pending",
                "errors",
            ],
            rows,
        )
        aims = _get(r, "results", "aims")
        if isinstance(aims, dict) and aims:
            lines += ["", "Aims: " + ", ".join(f"{k} {_fmt(v)}" for k, v in aims.items()) + "."]
        lines.append("")
    return lines


def _streams_worker(docs: list[Doc]) -> list[str]:
    lines: list[str] = []
    for r in docs:
        lines += [_run_line(r), ""]
        res = r.get("results") or {}
        target = res.get("target_hmac_records_per_cpu_second")
        rows = []
        for alg in ("hmac", "ed25519"):
            x = res.get(alg)
            if not isinstance(x, dict):
                continue
            rows.append(
                [
                    alg,
                    _fmt(x.get("measured_records")),
                    _fmt(x.get("cpu_seconds"), 2),
                    f"**{_fmt(x.get('records_per_cpu_second'))}**",
                    _fmt(x.get("wall_seconds"), 2),
                    _fmt(x.get("records_per_second")),
                ]
            )
        lines += _table(
            ["signature", "records", "CPU s", "records / CPU-s", "wall s", "records / s"], rows
        )
        hmac = _get(res, "hmac", "records_per_cpu_second")
        if isinstance(target, int | float) and isinstance(hmac, int | float):
            met = "met" if hmac >= target else "not met"
            lines += ["", f"Target: ≥ {_fmt(target)} HMAC records per worker CPU-second — {met}."]
        lines.append("")
    return lines


def _replay(docs: list[Doc]) -> list[str]:
    rows = []
    for r in docs:
        res = r.get("results") or {}
        target = res.get("target_records_per_s")
        rate = res.get("records_per_s")
        met = "–"
        if isinstance(target, int | float) and isinstance(rate, int | float):
            met = "met" if rate >= target else "not met"
        rows.append(
            [
                str(_get(r, "params", "region") or r.get("profile", "?")),
                _fmt(res.get("records")),
                _fmt(res.get("seconds"), 2),
                f"**{_fmt(rate)}**",
                f"{_fmt(target)} ({met})" if target is not None else "–",
                _fmt(res.get("replay_cpu_s"), 2),
                _fmt(res.get("records_per_cpu_s")),
                _machine(r),
                f"`{str(r.get('git_commit') or 'unknown')[:8]}`",
                f"`{r.get('command', '?')}`",
            ]
        )
    header = ["region", "records", "seconds", "records / s", "target", "CPU-s", "records / CPU-s"]
    return [*_table([*header, "machine", "commit", "command"], rows), ""]


def _by_profile_and_rate(r: Doc) -> tuple[str, float]:
    rate = r.get("offered_rate")
    return str(r.get("profile")), float(rate) if isinstance(rate, (int, float)) else 0.0


def _e2e(docs: list[Doc]) -> list[str]:
    rows = []
    for r in sorted(docs, key=_by_profile_and_rate):
        lat = r.get("latency_ms") or {}

        def pair(name: str, lat: dict[str, Any] = lat) -> str:
            x = lat.get(name) or {}
            return _ms(x.get("p50"), x.get("p99")) if x.get("count") else "–"

        rows.append(
            [
                str(r.get("profile", "?")),
                _fmt(r.get("offered_rate")),
                _fmt(r.get("achieved_rate")),
                _share(r.get("final_share")),
                _fmt(_get(r, "params", "gateways")),
                pair("origin_answer"),
                pair("mirror_outcome"),
                _fmt(_get(r, "results", "gateway_cpu_s")),
                _fmt(_get(r, "results", "worker_cpu_s")),
                _fmt(_get(r, "cpu_seconds", "load-generator"), 2),
                _machine(r),
                f"`{str(r.get('git_commit') or 'unknown')[:8]}`",
                f"`{r.get('command', '?')}`",
            ]
        )
    header = [
        "profile",
        "offered/s",
        "achieved/s",
        "final",
        "gateway processes",
        "origin p50 / p99 ms",
        "mirror p50 / p99 ms",
        "gateway CPU-s",
        "worker CPU-s",
        "load generator CPU-s",
        "machine",
        "commit",
        "command",
    ]
    return [*_table(header, rows), "", *_cpu_per_submission(docs)]


# Process keys (`<region>-<component>-<k>`, `load-generator`) → the columns of the CPU table.
_COMPONENTS = ("gateway", "worker", "kafka", "mirror", "postgres", "redis", "s3")


def _component(process: str) -> str:
    for c in _COMPONENTS:
        if f"-{c}" in process:
            return c
    return "load generator" if process == "load-generator" else "other"


def _cpu_per_submission(docs: list[Doc]) -> list[str]:
    """Where the machine's CPU went: CPU-milliseconds per answered submission, by component
    (both regions together), from each run's per-process CPU-seconds."""
    rows = []
    columns = [*_COMPONENTS, "load generator"]
    for r in sorted(docs, key=_by_profile_and_rate):
        answered = sum(int(_get(r, "answers", k) or 0) for k in ("final", "pending"))
        cpu = r.get("cpu_seconds") or {}
        if not answered or not isinstance(cpu, dict):
            continue
        by: dict[str, float] = {}
        for process, seconds in cpu.items():
            if isinstance(seconds, int | float):
                key = _component(str(process))
                by[key] = by.get(key, 0.0) + float(seconds)
        total = sum(by.values())
        rows.append([str(r.get("profile", "?")), _fmt(r.get("achieved_rate")),
                     *(_fmt(1000 * by.get(c, 0.0) / answered, 2) for c in columns),
                     f"**{_fmt(1000 * total / answered, 2)}**"])  # fmt: skip
    if not rows:
        return []
    return [
        "CPU-milliseconds per answered submission, by component (both regions' processes "
        "together, user + system from /proc over the run):",
        "",
        *_table(["profile", "achieved/s", *columns, "total"], rows),
        "",
    ]


def _scale(docs: list[Doc]) -> list[str]:
    lines: list[str] = []
    for r in docs:
        lines += [_run_line(r), ""]
        rows = []
        for c in _get(r, "results", "checkpoints") or []:
            fill = c.get("fill") if isinstance(c, dict) else None
            probe = c.get("probe") if isinstance(c, dict) else None
            meas = c.get("measure") if isinstance(c, dict) else None
            rows.append(
                [
                    _fmt(_get(c, "keys")),
                    f"**{_fmt(_get(probe, 'records_per_s'))}**",
                    _fmt(_get(probe, "records_per_worker_cpu_s")),
                    _fmt(_get(fill, "records")),
                    _fmt(_get(fill, "records_per_s")),
                    _fmt(_get(fill, "records_per_worker_cpu_s")),
                    _fmt(_get(meas, "offered_rate")),
                    _fmt(_get(meas, "achieved_rate")),
                    _share(_get(meas, "final_share")),
                    _ms(_get(meas, "latency_ms", "p50"), _get(meas, "latency_ms", "p99")),
                ]
            )
        lines += _table(
            [
                "keys",
                "probe records / s",
                "probe records / worker CPU-s",
                "fill records",
                "fill records / s",
                "fill records / worker CPU-s",
                "offered req/s",
                "achieved req/s",
                "final",
                "p50 / p99 ms",
            ],
            rows,
        )
        flat = _get(r, "results", "flatness")
        if isinstance(flat, dict) and flat:
            lines += ["", "Flatness: " + ", ".join(f"{k} {_fmt(v, 3)}" for k, v in flat.items())]
        lines.append("")
    return lines


Renderer = Callable[[list[Doc]], list[str]]

# kind → (heading used only when the doc lacks the section, renderer, how to measure it)
SECTIONS: dict[str, tuple[str, Renderer, str]] = {
    "gateway": ("Gateway", _gateway, ".venv/bin/python bench/gateway.py"),
    "streams_worker": (
        "Stream workers",
        _streams_worker,
        ".venv/bin/python bench/streams_worker.py --records 50000",
    ),
    "replay": ("Replay", _replay, ".venv/bin/python -m bench.replay"),
    "e2e": ("End-to-end", _e2e, ".venv/bin/python -m bench.e2e --profile steady"),
    "scale": ("Scale", _scale, ".venv/bin/python -m bench.scale"),
}


def load(results: Path = RESULTS) -> tuple[dict[str, list[Doc]], dict[str, list[str]]]:
    """Envelope documents by kind (in file order), and the other result files by the kind
    their name starts with (results that predate the envelope)."""
    docs: dict[str, list[Doc]] = {k: [] for k in SECTIONS}
    legacy: dict[str, list[str]] = {k: [] for k in SECTIONS}
    for path in sorted(results.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA and doc.get("benchmark"):
            if doc["benchmark"] in docs:
                docs[doc["benchmark"]].append(doc)
            continue
        kind = next((k for k in SECTIONS if path.stem.startswith(k)), None)
        if kind is not None:
            legacy[kind].append(path.name)
    return docs, legacy


def render(kind: str, docs: list[Doc], legacy: Sequence[str] = ()) -> str:
    """The generated block of one kind, markers included."""
    start, end = markers(kind)
    _, renderer, command = SECTIONS[kind]
    lines = [start, f"_Generated by `python -m bench.report` from bench/results/ ({kind})._", ""]
    if docs:
        lines += renderer(docs)
    else:
        lines += [f"Not measured yet: no {kind} result in the common envelope (`{command}`)."]
        if legacy:
            names = ", ".join(f"`bench/results/{n}`" for n in legacy)
            lines += [f"{names} predates the envelope and is not tabulated; re-run to replace it."]
        lines.append("")
    while lines[-1] == "":
        lines.pop()
    lines.append(end)
    return "\n".join(lines)


def expected_doc(current: str, results: Path = RESULTS) -> str:
    docs, legacy = load(results)
    text = current
    for kind, (title, _, _) in SECTIONS.items():
        block = render(kind, docs[kind], legacy[kind])
        start, end = markers(kind)
        if start in text and end in text and text.index(start) < text.index(end):
            head, rest = text.split(start, 1)
            text = head + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + f"\n\n## {title}\n\n" + block + "\n"
    return text


def write_doc() -> bool:
    """Regenerate docs/performance.md from bench/results/; whether it changed."""
    current = DOC.read_text() if DOC.exists() else "# Performance\n"
    wanted = expected_doc(current)
    if wanted != current:
        DOC.write_text(wanted)
    return wanted != current


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.check:
        current = DOC.read_text() if DOC.exists() else "# Performance\n"
        if current != expected_doc(current):
            print(
                f"{DOC} does not match bench/results/: run python -m bench.report", file=sys.stderr
            )
            sys.exit(1)
        return
    print(f"{'rewrote' if write_doc() else 'unchanged:'} {DOC}")


if __name__ == "__main__":
    main()
