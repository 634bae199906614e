from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final, Literal

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

Alg = Literal["hmac", "ed25519"]

HMAC_SIG_LEN: Final = 32  # raw bytes; 44 base64 characters
ED25519_SIG_LEN: Final = 64  # raw bytes; 88 base64 characters


def digest(payload: bytes) -> bytes:
    """SPEC §2.4: SHA-256 of the canonical payload; both algorithms sign this digest."""
    return hashlib.sha256(payload).digest()


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode_strict(text: str) -> bytes | None:
    """Standard alphabet, padded (SPEC §1 `sig`); None if `text` is not exactly that."""
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        return None
    # strict_mode still accepts non-zero trailing bits ("QR==" decodes like "QQ=="); re-encoding
    # pins the one spelling, so a signature has exactly one accepted text form.
    if binascii.b2a_base64(raw, newline=False) != text.encode("ascii"):
        return None
    return raw


def hmac_sign(secret: str, dig: bytes) -> str:
    """SPEC §2.5: HMAC-SHA256 with the UTF-8 secret over the digest, base64 (44 chars)."""
    return b64encode(hmac.digest(secret.encode("utf-8"), dig, "sha256"))


def hmac_verify(secret: bytes, dig: bytes, sig: bytes) -> bool:
    """Constant-time (SPEC §2.6). `secret` is the UTF-8 encoded secret, `sig` the raw 32 bytes."""
    # hmac.digest is the one-shot C implementation: several times faster than hmac.new().
    return hmac.compare_digest(hmac.digest(secret, dig, "sha256"), sig)


def ed25519_public_key(seed: bytes) -> bytes:
    return bytes(SigningKey(seed).verify_key)


def ed25519_sign(seed: bytes, dig: bytes) -> str:
    """SPEC §2.5: pure Ed25519 over the digest (not the payload), base64 (88 chars)."""
    return b64encode(SigningKey(seed).sign(dig).signature)


def ed25519_verify(key: VerifyKey, dig: bytes, sig: bytes) -> bool:
    # libsodium's verification does not branch on secret data; there is no secret here anyway.
    try:
        key.verify(dig, sig)
    except BadSignatureError:
        return False
    return True
