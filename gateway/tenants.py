"""The tenants file: who may submit, with which keys, at what rate, and who may read.

Format (YAML; documented in docs/gateway.md):

    tenants_format: 1
    tenants:
      acme:
        read_token: "<random>"          # GET /v1/pcs/…, /v1/requests/… (Bearer)
        rate_per_s: 500                 # token bucket refill, requests per second
        burst: 1000                     # bucket size
        daily_quota: 10000000           # submissions per UTC day; 0 = unlimited
        keys:                           # SPEC §2.6; the key-set document's entries
          - {key_id: k1, alg: hmac, secret: "...", valid_from_ms: 0, valid_until_ms: null}
          - {key_id: k2, alg: ed25519, public_key: "<base64 of 32 bytes>", valid_from_ms: 0}

The keys of all tenants form the key set, published to the versions archive (flk.registry)
so that every worker verifies a record with exactly the key set its WAL headers name. The file
is polled and reloaded without a restart; a file that does not validate is refused and the last
good one stays in force.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from flk_pcs import KeySet, KeySetError, Policy, PolicyError, keyset_from_mapping

from flk import registry
from flk.config import Secret

TENANTS_FORMAT: Final = 1
# Tenant ids become part of WAL keys (`tenant/pcs_id`), Redis keys and metric labels.
TENANT_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_TENANT_FIELDS: Final = ("read_token", "rate_per_s", "burst", "daily_quota", "keys")

log = logging.getLogger("flk.gateway.tenants")


class TenantsFileError(ValueError):
    """The tenants file does not validate; the message names the field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"tenants file field {field!r}: {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class Tenant:
    id: str
    read_token: Secret
    rate_per_s: float
    burst: int
    daily_quota: int

    def token_matches(self, presented: str) -> bool:
        return hmac.compare_digest(str(self.read_token).encode(), presented.encode())


@dataclass(frozen=True)
class TenantsFile:
    tenants: Mapping[str, Tenant]
    keyset_document: dict[str, Any]


def _number(raw: Mapping[str, Any], name: str, where: str, *, minimum: float,
            integer: bool) -> Any:  # fmt: skip
    value = raw.get(name)
    ok_type = type(value) is int or (not integer and type(value) is float)
    if not ok_type or value is None or value < minimum:
        kind = "an integer" if integer else "a number"
        raise TenantsFileError(f"{where}.{name}", f"{value!r} must be {kind} ≥ {minimum}")
    return value


def parse_tenants(doc: Any) -> TenantsFile:
    """Validate a parsed tenants document (errors name the field)."""
    if not isinstance(doc, Mapping):
        raise TenantsFileError("tenants_file", "must be a mapping with tenants_format and tenants")
    for name in doc:
        if name not in ("tenants_format", "tenants"):
            raise TenantsFileError(str(name), "unknown field; expected tenants_format or tenants")
    fmt = doc.get("tenants_format", TENANTS_FORMAT)
    if fmt != TENANTS_FORMAT or type(fmt) is not int:
        raise TenantsFileError("tenants_format", f"{fmt!r} is not supported; this gateway reads 1")
    raw_tenants = doc.get("tenants")
    if not isinstance(raw_tenants, Mapping) or not raw_tenants:
        raise TenantsFileError("tenants", "must be a non-empty mapping of tenant id to settings")
    tenants: dict[str, Tenant] = {}
    keyset_tenants: dict[str, Any] = {}
    for tid, raw in raw_tenants.items():
        where = f"tenants.{tid}"
        if type(tid) is not str or not TENANT_RE.fullmatch(tid):
            raise TenantsFileError(where, "a tenant id is 1-64 of A-Z a-z 0-9 . _ - "
                                          "(starting with a letter or digit)")
        if not isinstance(raw, Mapping):
            raise TenantsFileError(where, "must be a mapping")
        for name in raw:
            if name not in _TENANT_FIELDS:
                raise TenantsFileError(f"{where}.{name}",
                                       f"unknown field; expected one of {list(_TENANT_FIELDS)}")
        token = raw.get("read_token")
        if type(token) is not str or len(token) < 16:
            raise TenantsFileError(f"{where}.read_token", "must be a string of ≥ 16 characters")
        rate = _number(raw, "rate_per_s", where, minimum=0.001, integer=False)
        burst = _number(raw, "burst", where, minimum=1, integer=True)
        quota = _number(raw, "daily_quota", where, minimum=0, integer=True)
        keys = raw.get("keys")
        if not isinstance(keys, list):
            raise TenantsFileError(f"{where}.keys", "must be a list (may be empty)")
        tenants[tid] = Tenant(tid, Secret(token), float(rate), burst, quota)
        keyset_tenants[tid] = {"keys": keys}
    keyset_doc: dict[str, Any] = {"keyset_format": 1, "tenants": keyset_tenants}
    try:  # validates the keys; KeySetError names e.g. tenants.acme.keys[0].secret
        keyset_from_mapping(keyset_doc)
    except KeySetError as exc:
        raise TenantsFileError(exc.field, exc.detail) from None
    return TenantsFile(tenants, keyset_doc)


def read_tenants(path: Path) -> TenantsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TenantsFileError("tenants_file", f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TenantsFileError("tenants_file", f"{path} is not valid YAML: {exc}") from None
    return parse_tenants(doc)


def write_tenants(path: Path, doc: Mapping[str, Any]) -> None:
    """Atomically (re)write a tenants file, 0600 (it holds HMAC secrets)."""
    parse_tenants(doc)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(dict(doc), fh, sort_keys=False)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Snapshot:
    """What is in force for new requests: tenants, key set and policy, with their versions."""

    tenants: Mapping[str, Tenant]
    keyset: KeySet
    policy: Policy

    def tenant_for_token(self, token: str) -> Tenant | None:
        found = None
        for tenant in self.tenants.values():  # no early exit: same work whichever matches
            if tenant.token_matches(token):
                found = tenant
        return found


def _file_id(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class TenantsStore:
    """Holds the current Snapshot; `maybe_reload` re-reads the files when they changed."""

    def __init__(self, home: Path, tenants_file: Path, policy_file: Path) -> None:
        self.home = home
        self.tenants_file = tenants_file
        self.policy_file = policy_file
        self._seen: tuple[object, object] | None = None
        self.snapshot: Snapshot | None = None
        self.last_error: str | None = None

    def load(self) -> Snapshot:
        """Read both files now; raises TenantsFileError / PolicyError on a bad file."""
        seen = (_file_id(self.tenants_file), _file_id(self.policy_file))
        parsed = read_tenants(self.tenants_file)
        if self.policy_file.exists():
            try:
                policy_doc = yaml.safe_load(self.policy_file.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise PolicyError("policy", f"{self.policy_file} is not valid YAML: {exc}"
                                  ) from None  # fmt: skip
        else:
            policy_doc = {}
        # Publish before use: a WAL record must never name a version workers cannot load.
        keyset = registry.publish_keyset(self.home, parsed.keyset_document)
        policy = registry.publish_policy(self.home, policy_doc)
        self.snapshot = Snapshot(parsed.tenants, keyset, policy)
        self._seen = seen
        self.last_error = None
        return self.snapshot

    def maybe_reload(self) -> bool:
        """Reload if either file changed since the last load; True if a new snapshot is in
        force. A file that does not validate is logged and the previous snapshot kept."""
        seen = (_file_id(self.tenants_file), _file_id(self.policy_file))
        if seen == self._seen:
            return False
        try:
            self.load()
        except (TenantsFileError, PolicyError, KeySetError) as exc:
            self._seen = seen  # do not retry the same bad file every second
            self.last_error = str(exc)
            log.error("refusing the changed tenants/policy file, keeping the previous one: %s", exc)
            raise
        return True
