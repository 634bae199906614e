"""The whole tree stays lint- and type-clean: `ruff check .` and `mypy` (configured in
pyproject.toml: plain `mypy` from the repository root checks everything), run with this
interpreter's own tools. No platform needed; mypy takes ~10 s without its cache (a fresh CI
checkout), under a second with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.layout import REPO_ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [["ruff", "check", "."], ["mypy"]], ids=["ruff", "mypy"])
def test_tree_is_clean(command: list[str]) -> None:
    tool = BIN / command[0]
    assert tool.exists(), f"{tool} is missing: install the dev extra (pip install -e '.[dev]')"
    run = subprocess.run([str(tool), *command[1:]], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, f"{' '.join(command)} failed:\n{run.stdout}{run.stderr}"
