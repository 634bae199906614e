from __future__ import annotations

from pathlib import Path

import pytest

from streams import walgen


@pytest.fixture(scope="session")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, walgen.Versions]:
    """A version archive (own home) holding the test key set and policy."""
    home = tmp_path_factory.mktemp("flk-home")
    return home, walgen.publish(home)
