"""Shows that each SPEC §5 invariant test of the streams fails when its invariant is broken on
purpose (issue 5 acceptance). Not a test itself: a tool, run by hand.

    .venv/bin/python tests/streams/mutants.py [--keep] [MUTATION ...]

It exports the committed tree twice into a temporary directory — as is, and with one named
mutation applied (a textual edit asserted to apply exactly once) — starts a scratch two-region
platform from it (own home, port blocks 30000/31000, no gateways, the Kafka jars of the main
home), runs the guarding test against workers running the intact code (it must pass) and then
against workers running the mutated code (it must fail), and prints one line per mutation.
The shared platform and the working tree are never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = str(Path(sys.executable))
PORT_BASE = "30000"


@dataclass(frozen=True)
class Mutation:
    path: str
    old: str
    new: str
    test: str
    breaks: str


MUTATIONS = {
    "signature-not-checked": Mutation(
        "streams/verify.py", "    if not check.ok:\n", "    if False:\n",
        "tests/streams/test_invariants.py::"
        "test_an_unauthenticated_record_never_creates_or_alters_an_entry",
        "signature before dedup: a record that fails verification enters dedup"),
    "duplicate-decided-on-its-own": Mutation(
        "streams/dedup.py", "            winner = current\n",
        "            winner = records.outcome_of(v) if kind is Kind.DUPLICATE else current\n",
        "tests/streams/test_invariants.py::test_duplicates_get_the_winners_outcome",
        "idempotency: a duplicate gets its own verdict instead of the winner's"),
    "tenant-not-in-the-key": Mutation(
        "streams/verify.py", '    return f"{tenant}/{pcs_id}".encode()\n',
        "    return pcs_id.encode()\n",
        "tests/streams/test_invariants.py::"
        "test_the_same_pcs_id_under_two_tenants_stays_independent",
        "tenant isolation: the dedup entry is keyed by pcs_id alone"),
    "first-arrival-wins": Mutation(
        "streams/merge.py", "    if candidate < current:\n        return Kind.SUPERSEDE\n", "",
        "tests/streams/test_invariants.py::"
        "test_both_regions_compacted_outcomes_are_byte_identical",
        "determinism across regions: the first record to arrive wins, not the smallest "
        "(stamp, origin, request id)"),
    "window-in-processing-time": Mutation(
        "streams/merge.py", "    if candidate.stamp_ms - current.stamp_ms > window_ms:\n",
        "    if __import__('time').time() * 1000 - current.stamp_ms > window_ms:\n",
        "tests/streams/test_invariants.py::"
        "test_replay_into_empty_state_reproduces_the_live_outcomes",
        "replay determinism: the dedup window is measured on the processing clock"),
}


def export(target: Path, mutation: Mutation | None) -> Path:
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    if mutation is not None:
        path = target / mutation.path
        text = path.read_text()
        assert text.count(mutation.old) == 1, f"mutation does not apply to {mutation.path}"
        path.write_text(text.replace(mutation.old, mutation.new))
    return target


def env_for(home: Path, src: Path) -> dict[str, str]:
    return {**os.environ, "FLK_HOME": str(home), "FLK_PORT_BASE": PORT_BASE,
            "FLK_REGIONS": "eu-west,us-east", "FLK_GATEWAYS": "0", "FLK_WORKERS": "1",
            "FLK_KEEP_PLATFORM": "1", "PYTHONPATH": str(src)}  # fmt: skip


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)


def restart_workers(home: Path, src: Path) -> None:
    env = env_for(home, src)
    stop = ("from infra.procs import Supervisor; from infra.layout import load_layout; "
            "s = Supervisor(load_layout().run_dir); "
            "s.stop_many([k for k in s.recorded() if '-worker-' in k])")  # fmt: skip
    run([PY, "-c", stop], env, src)
    up = run([PY, "-m", "flk.cli", "up"], env, src)
    if up.returncode != 0:
        raise SystemExit(f"scratch platform did not start:\n{up.stdout}\n{up.stderr}")


def pytest(home: Path, src: Path, test: str) -> tuple[bool, str]:
    res = run([PY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
              env_for(home, src), src)  # fmt: skip
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(("E ", "FAILED", "ERROR"))]
    return res.returncode == 0, (lines[0] if lines else res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", default=sorted(MUTATIONS), metavar="MUTATION")
    ap.add_argument("--keep", action="store_true", help="leave the scratch platform running")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="flk-mutants-"))
    home = base / "home"
    home.mkdir()
    (home / "lib").symlink_to(ROOT / ".flk" / "lib")  # the verified Kafka jars
    os.chmod(base, 0o755)  # noqa: S103 - PostgreSQL runs as its own user and must reach its data
    intact = export(base / "intact", None)
    results = []
    try:
        for name in args.names:
            m = MUTATIONS[name]
            restart_workers(home, intact)
            ok, why = pytest(home, intact, m.test)
            if not ok:
                results.append(f"{name}: CONTROL FAILED (intact code): {why}")
                continue
            mutated = export(base / name, m)
            restart_workers(home, mutated)
            ok, why = pytest(home, mutated, m.test)
            verdict = "caught" if not ok else "NOT CAUGHT"
            results.append(f"{name} — {m.breaks}\n    {m.test.split('::')[1]}: passes on the "
                           f"intact code; on the mutant: {verdict}: {why}")  # fmt: skip
            print(results[-1], flush=True)
    finally:
        if not args.keep:
            run([PY, "-m", "flk.cli", "down"], env_for(home, intact), intact)
            shutil.rmtree(base, ignore_errors=True)
    print("\n".join(["", "Mutations:", *results]))
    if any("NOT CAUGHT" in r or "CONTROL FAILED" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
