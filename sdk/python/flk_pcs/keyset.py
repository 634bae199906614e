"""Versioned key sets: tenants, each with several signing keys and validity windows (SPEC §2.6).

Document (YAML or JSON):

    keyset_format: 1
    tenants:
      acme:
        keys:
          - {key_id: k1, alg: hmac, secret: "...", valid_from_ms: 0, valid_until_ms: 1700000000000}
          - {key_id: k2, alg: ed25519, public_key: "<base64, 32 bytes>",
             valid_from_ms: 1690000000000}

A key is usable for a record when `valid_from_ms <= receive stamp < valid_until_ms`
(`valid_until_ms` absent or null = open). The version hashes a canonical serialisation in
which each secret appears only as its SHA-256, so the version can travel in WAL headers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import yaml
from nacl.signing import VerifyKey

from ._doc import canonical_json, load_yaml, read_document, sha256_hex
from .errors import KeySetError
from .signing import ED25519_SIG_LEN, HMAC_SIG_LEN, Alg, ed25519_verify

KEYSET_FORMAT: Final = 1

# HMAC-SHA256 with each secret's key schedule done once (the padded key's two hash blocks):
# `.copy()` of a keyed object costs about half of a one-shot hmac.digest(). Keyed by the
# secret's bytes, so it holds only secrets a live Key holds too; bounded, cleared when full.
_HMAC_KEYED: dict[bytes, hmac.HMAC] = {}
_HMAC_KEYED_MAX: Final = 1024


def _hmac_keyed(secret: bytes) -> hmac.HMAC:
    mac = _HMAC_KEYED.get(secret)
    if mac is None:
        mac = hmac.new(secret, digestmod="sha256")
        if len(_HMAC_KEYED) >= _HMAC_KEYED_MAX:
            _HMAC_KEYED.clear()
        _HMAC_KEYED[secret] = mac
    return mac


@dataclass(frozen=True)
class Key:
    key_id: str
    alg: Alg
    valid_from_ms: int
    valid_until_ms: int | None
    # UTF-8 bytes of the HMAC secret; never printed (repr=False).
    secret: bytes | None = field(default=None, repr=False)
    public_key: bytes | None = None
    _verify_key: VerifyKey | None = field(default=None, repr=False, compare=False)

    def usable_at(self, stamp_ms: int) -> bool:
        return self.valid_from_ms <= stamp_ms and (
            self.valid_until_ms is None or stamp_ms < self.valid_until_ms
        )

    def verify(self, dig: bytes, sig: bytes) -> bool:
        if self.alg == "hmac":
            assert self.secret is not None
            if len(sig) != HMAC_SIG_LEN:
                return False
            mac = _hmac_keyed(self.secret).copy()  # the template itself is never updated
            mac.update(dig)
            return hmac.compare_digest(mac.digest(), sig)  # constant-time
        assert self._verify_key is not None
        return len(sig) == ED25519_SIG_LEN and ed25519_verify(self._verify_key, dig, sig)

    def _canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key_id": self.key_id,
            "alg": self.alg,
            "valid_from_ms": self.valid_from_ms,
            "valid_until_ms": self.valid_until_ms,
        }
        if self.secret is not None:
            out["secret_sha256"] = hashlib.sha256(self.secret).hexdigest()
        if self.public_key is not None:
            out["public_key"] = base64.b64encode(self.public_key).decode("ascii")
        return out


class SignatureCheck(NamedTuple):
    ok: bool
    reason: str | None  # None | unknown_tenant | missing_signature | no_valid_key | bad_signature
    key_id: str | None


@dataclass(frozen=True)
class KeySet:
    tenants: Mapping[str, tuple[Key, ...]]
    digest: str
    version: str

    def has_tenant(self, tenant: str) -> bool:
        return tenant in self.tenants

    def keys_at(self, tenant: str, stamp_ms: int) -> tuple[Key, ...]:
        return tuple(k for k in self.tenants.get(tenant, ()) if k.usable_at(stamp_ms))

    def check(self, tenant: str, stamp_ms: int, dig: bytes, sig: bytes | None) -> SignatureCheck:
        """SPEC §3.2: is `sig` over `dig` made by a key of `tenant` usable at `stamp_ms`?

        Keys are tried in document order; the first that verifies is named in the result.
        """
        keys = self.tenants.get(tenant)
        if keys is None:
            return SignatureCheck(False, "unknown_tenant", None)
        if sig is None:
            return SignatureCheck(False, "missing_signature", None)
        usable = False
        for key in keys:
            until = key.valid_until_ms
            if key.valid_from_ms <= stamp_ms and (until is None or stamp_ms < until):
                usable = True
                if key.verify(dig, sig):
                    return SignatureCheck(True, None, key.key_id)
        return SignatureCheck(False, "bad_signature" if usable else "no_valid_key", None)

    def canonical_bytes(self) -> bytes:
        return canonical_json(_canonical(self.tenants))


def _canonical(tenants: Mapping[str, tuple[Key, ...]]) -> dict[str, Any]:
    return {
        "keyset_format": KEYSET_FORMAT,
        "tenants": {t: {"keys": [k._canonical() for k in keys]} for t, keys in tenants.items()},
    }


def _int(value: Any, where: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        raise KeySetError(where, f"{value!r} must be a non-negative integer (milliseconds)")
    return value


def _key(raw: Any, where: str) -> Key:
    if not isinstance(raw, Mapping):
        raise KeySetError(where, "must be a mapping")
    allowed = {"key_id", "alg", "secret", "public_key", "valid_from_ms", "valid_until_ms"}
    for name in raw:
        if name not in allowed:
            raise KeySetError(f"{where}.{name}",
                              f"unknown field; expected one of {sorted(allowed)}")
    key_id = raw.get("key_id")
    if type(key_id) is not str or not key_id:
        raise KeySetError(f"{where}.key_id", "must be a non-empty string")
    valid_from = _int(raw.get("valid_from_ms", 0), f"{where}.valid_from_ms")
    valid_until = _int(raw.get("valid_until_ms"), f"{where}.valid_until_ms", optional=True)
    assert valid_from is not None
    if valid_until is not None and valid_until <= valid_from:
        raise KeySetError(f"{where}.valid_until_ms", "must be greater than valid_from_ms")
    alg = raw.get("alg")
    if alg == "hmac":
        secret = raw.get("secret")
        if type(secret) is not str or not secret or "public_key" in raw:
            raise KeySetError(f"{where}.secret", "an hmac key needs a non-empty string secret "
                                                 "and no public_key")
        return Key(key_id, "hmac", valid_from, valid_until, secret=secret.encode("utf-8"))
    if alg == "ed25519":
        text = raw.get("public_key")
        try:
            pub = base64.b64decode(text, validate=True) if type(text) is str else b""
        except (binascii.Error, ValueError):
            pub = b""
        if len(pub) != 32 or "secret" in raw:
            raise KeySetError(f"{where}.public_key", "an ed25519 key needs public_key: base64 of "
                                                     "32 bytes, and no secret")
        return Key(key_id, "ed25519", valid_from, valid_until, public_key=pub,
                   _verify_key=VerifyKey(pub))
    raise KeySetError(f"{where}.alg", f"{alg!r} is not 'hmac' or 'ed25519'")


def keyset_from_mapping(doc: Any) -> KeySet:
    """Validate a parsed key-set document; raises KeySetError naming the field."""
    if not isinstance(doc, Mapping):
        raise KeySetError("keyset", "must be a mapping")
    for name in doc:
        if name not in ("keyset_format", "tenants"):
            raise KeySetError(str(name), "unknown field; expected keyset_format or tenants")
    fmt = doc.get("keyset_format", KEYSET_FORMAT)
    if type(fmt) is not int or fmt != KEYSET_FORMAT:
        raise KeySetError("keyset_format", f"{fmt!r} is not supported; this library reads 1")
    raw_tenants = doc.get("tenants") or {}
    if not isinstance(raw_tenants, Mapping):
        raise KeySetError("tenants", "must be a mapping of tenant name to {keys: [...]}")
    tenants: dict[str, tuple[Key, ...]] = {}
    for tenant, body in raw_tenants.items():
        where = f"tenants.{tenant}"
        if type(tenant) is not str or not tenant:
            raise KeySetError(where, "a tenant name must be a non-empty string")
        if not isinstance(body, Mapping) or set(body) - {"keys"}:
            raise KeySetError(where, "must be a mapping with one member, keys")
        raw_keys = body.get("keys") or []
        if not isinstance(raw_keys, list):
            raise KeySetError(f"{where}.keys", "must be a list")
        keys = tuple(_key(k, f"{where}.keys[{i}]") for i, k in enumerate(raw_keys))
        ids = [k.key_id for k in keys]
        if len(set(ids)) != len(ids):
            raise KeySetError(f"{where}.keys", "key_id values must be unique within a tenant")
        tenants[tenant] = keys
    digest = sha256_hex(canonical_json(_canonical(tenants)))
    return KeySet(tenants, digest, digest[:16])


def keyset_from_text(text: str) -> KeySet:
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise KeySetError("keyset", f"not valid YAML: {exc}") from None
    return keyset_from_mapping(doc)


def load_keyset(path: str | Path) -> KeySet:
    try:
        doc = read_document(path)
    except yaml.YAMLError as exc:
        raise KeySetError("keyset", f"{path} is not valid YAML: {exc}") from None
    return keyset_from_mapping(doc)
