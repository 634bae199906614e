"""Avro single-object encoding (Avro spec "Single object encoding"): `C3 01`, the schema's
8-byte CRC-64-AVRO fingerprint (little-endian), then the binary body. Unlike the object
container format (random sync marker) the bytes are a pure function of the record, so an
outcome encodes to the same bytes in every region and on every replay (SPEC §5 determinism).
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any, Final

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

MAGIC: Final = b"\xc3\x01"
SCHEMA_DIR: Final = Path(__file__).parent


class CodecError(ValueError):
    """Bytes that are not a single-object encoding of a known schema."""


class Codec:
    def __init__(self, name: str) -> None:
        raw = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
        self.name = name
        self.schema = parse_schema(raw)
        canonical = to_parsing_canonical_form(self.schema)
        # fastavro's hex is already the spec's little-endian byte order (checked against a
        # reference in tests/schemas/test_codec.py).
        self.fingerprint = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        self.header = MAGIC + self.fingerprint

    def encode(self, record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, self.schema, record)
        return out.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        if data[:10] != self.header:
            got = data[:10].hex()
            raise CodecError(f"not a single-object {self.name!r} record (header {got})")
        result: dict[str, Any] = fastavro.schemaless_reader(  # type: ignore[assignment]
            io.BytesIO(data[10:]), self.schema, None
        )
        return result


@cache
def codec(name: str) -> Codec:
    """The codec for `schemas/<name>.avsc` (e.g. "reply", "outcome")."""
    return Codec(name)
