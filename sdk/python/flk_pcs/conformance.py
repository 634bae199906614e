"""The SDK conformance command (issue 3): JSON lines in, JSON lines out.

Input, one object per line:  {"pcs": {...}, "hmac_key": "...", "ed25519_seed_b64": "..."}
Output, one object per line: {"payload": "<canonical string>", "sha256": "<hex>",
                              "hmac_sig": "...", "ed25519_sig": "..."}
A key that is absent gives null for its signature. A line that cannot be processed gives
{"error": code, "detail": text} and the command exits 1 at the end (after every line).

    .venv/bin/python -m flk_pcs.conformance < lines.jsonl
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import IO, Any

from .canonical import payload_of
from .errors import MalformedError
from .signing import digest, ed25519_sign, hmac_sign


def conform(line: dict[str, Any]) -> dict[str, Any]:
    pcs = line.get("pcs")
    if not isinstance(pcs, dict):
        raise MalformedError("not_an_object", "pcs must be an object", "pcs")
    payload = payload_of(pcs)
    dig = digest(payload)
    out: dict[str, Any] = {"payload": payload.decode("ascii"), "sha256": dig.hex(),
                           "hmac_sig": None, "ed25519_sig": None}
    key = line.get("hmac_key")
    if key is not None:
        if type(key) is not str:
            raise MalformedError("wrong_type", "hmac_key must be a string", "hmac_key")
        out["hmac_sig"] = hmac_sign(key, dig)
    seed_b64 = line.get("ed25519_seed_b64")
    if seed_b64 is not None:
        try:
            seed = base64.b64decode(seed_b64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            seed = b""
        if len(seed) != 32:
            raise MalformedError("wrong_type", "ed25519_seed_b64 must be base64 of 32 bytes",
                                 "ed25519_seed_b64")
        out["ed25519_sig"] = ed25519_sign(seed, dig)
    return out


def run(stdin: IO[str], stdout: IO[str]) -> int:
    status = 0
    for raw in stdin:
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            if not isinstance(line, dict):
                raise MalformedError("not_an_object", "each line must be a JSON object")
            result = conform(line)
        except MalformedError as exc:
            result, status = {"error": exc.code, "detail": exc.detail}, 1
        except ValueError as exc:
            result, status = {"error": "malformed_json", "detail": str(exc)}, 1
        stdout.write(json.dumps(result, ensure_ascii=True, separators=(",", ":")) + "\n")
        stdout.flush()
    return status


def main() -> None:
    try:
        sys.exit(run(sys.stdin, sys.stdout))
    except BrokenPipeError:  # the reader went away: exit quietly, like any filter
        sys.exit(1)


if __name__ == "__main__":
    main()
