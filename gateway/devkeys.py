"""Development tenants, generated at set-up (`flk up`) and never committed.

Tenant `default` signs with an HMAC key, tenant `acme` with an Ed25519 key. The tenants file
holds what the gateway needs (HMAC secret, Ed25519 public key); the signing material a client
needs (HMAC secret, Ed25519 private seed) is kept for demos and tests in
`$FLK_HOME/secrets/dev-signing-keys.json`, mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from gateway.tenants import write_tenants

DEV_TENANTS = ("default", "acme")


def tenants_path(home: Path) -> Path:
    return home / "tenants.yaml"


def signing_keys_path(home: Path) -> Path:
    return home / "secrets" / "dev-signing-keys.json"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_dev_tenants(home: Path) -> Path:
    """Create the development tenants file unless it exists; return its path."""
    path = tenants_path(home)
    if path.exists():
        return path
    hmac_secret = secrets.token_urlsafe(32)
    seed = secrets.token_bytes(32)
    public = bytes(SigningKey(seed).verify_key)
    limits: dict[str, Any] = {"rate_per_s": 2000, "burst": 4000, "daily_quota": 0}
    doc = {
        "tenants_format": 1,
        "tenants": {
            "default": {
                "read_token": secrets.token_urlsafe(24), **limits,
                "keys": [{"key_id": "dev-hmac-1", "alg": "hmac", "secret": hmac_secret,
                          "valid_from_ms": 0, "valid_until_ms": None}],
            },
            "acme": {
                "read_token": secrets.token_urlsafe(24), **limits,
                "keys": [{"key_id": "dev-ed25519-1", "alg": "ed25519",
                          "public_key": base64.b64encode(public).decode("ascii"),
                          "valid_from_ms": 0, "valid_until_ms": None}],
            },
        },
    }
    signing = {
        "default": {"key_id": "dev-hmac-1", "alg": "hmac", "secret": hmac_secret},
        "acme": {"key_id": "dev-ed25519-1", "alg": "ed25519",
                 "seed": base64.b64encode(seed).decode("ascii")},
    }
    home.mkdir(parents=True, exist_ok=True)
    # Signing keys first: a tenants file never exists without the matching private material.
    _write_private(signing_keys_path(home), json.dumps(signing, indent=2) + "\n")
    write_tenants(path, doc)
    return path


def load_signing_keys(home: Path) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(signing_keys_path(home).read_text())
    return data
