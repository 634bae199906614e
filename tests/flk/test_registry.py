from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from flk import registry

DOC = {"keyset_format": 1, "tenants": {"t": {"keys": [
    {"key_id": "k1", "alg": "hmac", "secret": "dev-secret", "valid_from_ms": 0}]}}}  # fmt: skip


def test_published_versions_load_by_name(tmp_path: Path) -> None:
    ks = registry.publish_keyset(tmp_path, DOC)
    assert registry.keyset(tmp_path, ks.version).version == ks.version
    pol = registry.publish_policy(tmp_path, {"verification": {"tol_D": 0.2}})
    assert registry.policy(tmp_path, pol.version).params("t").tol_D == 0.2


def test_key_material_is_private(tmp_path: Path) -> None:
    ks = registry.publish_keyset(tmp_path, DOC)
    path = tmp_path / "versions" / "keyset" / f"{ks.version}.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_unknown_and_tampered_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(registry.UnknownVersionError, match="keyset version 'nope' is not in"):
        registry.keyset(tmp_path, "nope")
    ks = registry.publish_keyset(tmp_path, DOC)
    path = tmp_path / "versions" / "keyset" / f"{ks.version}.yaml"
    tampered = yaml.safe_load(path.read_text())
    tampered["tenants"]["t"]["keys"][0]["secret"] = "other"  # noqa: S105 (a test value)
    path.write_text(yaml.safe_dump(tampered))
    registry.keyset.cache_clear()
    with pytest.raises(registry.UnknownVersionError, match=f"archived keyset {ks.version} holds"):
        registry.keyset(tmp_path, ks.version)
