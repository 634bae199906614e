"""Start a server detached from the caller: `python -m infra.spawn SPEC_JSON`.

The server becomes a child of this short-lived launcher, which exits at once, so the server is
re-parented to init: a long-lived caller (a test session, `flk demo`) never accumulates zombie
children or "subprocess still running" warnings. Prints the server's pid on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> None:
    spec = json.loads(sys.argv[1])
    with open(spec["log"], "ab") as log:
        proc = subprocess.Popen(
            spec["argv"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.get("cwd"),
            env=spec["env"],
            start_new_session=True,
            user=spec.get("user"),
        )
    print(proc.pid, flush=True)
    # Leave without waiting: the server is adopted by init.
    proc.returncode = 0  # silence Popen's "still running" ResourceWarning on the way out


if __name__ == "__main__":
    main()
