"""Avro single-object encoding (Avro spec "Single object encoding"): `C3 01`, the schema's
8-byte CRC-64-AVRO fingerprint (little-endian), then the binary body. Unlike the object
container format (random sync marker) the bytes are a pure function of the record, so an
outcome encodes to the same bytes in every region and on every replay (SPEC §5 determinism).

A record written with an earlier, frozen version of its schema (schemas/history, kept
compatible by schemas/compat.py) is recognised by its fingerprint and resolved to the current
schema, so readers keep working through a rolling upgrade.
"""

from __future__ import annotations

import io
import json
import struct
from functools import cache
from pathlib import Path
from typing import Any, Final

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from schemas.binary import compile_record
from schemas.compat import history

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
        # The hot path (schemas/binary.py); fastavro for shapes it does not compile.
        self._compiled = compile_record(self.schema)
        self._older: dict[bytes, Any] = {}
        for path in history(name):
            old = parse_schema(json.loads(path.read_text()))
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(old), "CRC-64-AVRO"))
            if fp != self.fingerprint:
                self._older[fp] = old

    def encode(self, record: dict[str, Any]) -> bytes:
        if self._compiled is not None:
            parts = [self.header]
            self._compiled.encode(record, parts)
            return b"".join(parts)
        out = io.BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, self.schema, record)
        return out.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        if data[:10] != self.header:
            writer = self._older.get(data[2:10]) if data[:2] == MAGIC else None
            if writer is not None:
                return self._resolve(data, writer)
            got = data[:10].hex()
            raise CodecError(f"not a single-object {self.name!r} record (header {got})")
        if self._compiled is not None:
            try:
                return self._compiled.decode(data, 10)
            except (IndexError, ValueError, UnicodeDecodeError, struct.error) as exc:
                raise CodecError(f"truncated or corrupt {self.name!r} record: {exc}") from None
        result: dict[str, Any] = fastavro.schemaless_reader(  # type: ignore[assignment]
            io.BytesIO(data[10:]), self.schema, None
        )
        return result


    def _resolve(self, data: bytes, writer: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = fastavro.schemaless_reader(  # type: ignore[assignment]
                io.BytesIO(data[10:]), writer, self.schema
            )
        except (EOFError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise CodecError(f"truncated or corrupt {self.name!r} record: {exc}") from None
        return result


@cache
def codec(name: str) -> Codec:
    """The codec for `schemas/<name>.avsc` (e.g. "reply", "outcome")."""
    return Codec(name)
