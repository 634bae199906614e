"""Content-addressed archive of every key set and policy version ever put in force.

The gateway stamps each WAL record with the key-set and policy versions it received the record
under (SPEC §3); any worker in any region verifies that record with exactly those versions, so
it must be able to load an old version by name. The gateway publishes each version here before
stamping it. On the local platform the archive is a directory under `$FLK_HOME` shared by both
regions; a deployment would put it in a store both regions read (e.g. replicated object storage).
Key-set documents hold secrets: files are written 0600 in a 0700 directory.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import yaml
from flk_pcs import KeySet, Policy, keyset_from_mapping, policy_from_mapping

from flk.errors import FlkError


class UnknownVersionError(FlkError):
    """A record names a key-set or policy version that was never published here."""


def _dir(home: Path, kind: str) -> Path:
    path = home / "versions" / kind
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _write_once(path: Path, text: str) -> None:
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)  # atomic: a reader never sees half a document
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish_keyset(home: Path, document: dict[str, object]) -> KeySet:
    """Validate a key-set document, archive it under its version, return the key set."""
    keyset = keyset_from_mapping(document)
    _write_once(_dir(home, "keyset") / f"{keyset.version}.yaml", yaml.safe_dump(document))
    return keyset


def publish_policy(home: Path, document: dict[str, object]) -> Policy:
    policy = policy_from_mapping(document)
    _write_once(_dir(home, "policy") / f"{policy.version}.yaml", yaml.safe_dump(document))
    return policy


def _load(home: Path, kind: str, version: str) -> dict[str, object]:
    path = home / "versions" / kind / f"{version}.yaml"
    if not path.exists():
        raise UnknownVersionError(f"{kind} version {version!r} is not in {path.parent}")
    doc: dict[str, object] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def _same(kind: str, wanted: str, loaded: str) -> None:
    if loaded != wanted:  # a tampered or misnamed archive file
        raise UnknownVersionError(f"the archived {kind} {wanted} holds version {loaded}")


@lru_cache(maxsize=64)
def keyset(home: Path, version: str) -> KeySet:
    loaded = keyset_from_mapping(_load(home, "keyset", version))
    _same("keyset", version, loaded.version)
    return loaded


@lru_cache(maxsize=64)
def policy(home: Path, version: str) -> Policy:
    loaded = policy_from_mapping(_load(home, "policy", version))
    _same("policy", version, loaded.version)
    return loaded
