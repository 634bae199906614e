"""Single-object encoding checked against a reference written from the Avro specification."""

from __future__ import annotations

from pathlib import Path

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas.codec import MAGIC, SCHEMA_DIR, CodecError, codec

EMPTY = 0xC15D213AA4D7A795  # the spec's CRC-64-AVRO initial value


def _crc64_avro(data: bytes) -> int:
    """Straight from the Avro spec's Java listing of the 64-bit Rabin fingerprint."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize("name", sorted(p.stem for p in Path(SCHEMA_DIR).glob("*.avsc")))
def test_header_is_magic_and_little_endian_fingerprint(name: str) -> None:
    c = codec(name)
    canonical = to_parsing_canonical_form(c.schema).encode()
    assert c.header == MAGIC + _crc64_avro(canonical).to_bytes(8, "little")


def test_spec_example_fingerprint() -> None:
    # The Avro spec's reference fingerprint of the schema "null" (CRC-64-AVRO): 0x63dd24e7cc258f8a
    assert _crc64_avro(b'"null"') == 0x63DD24E7CC258F8A


def test_reply_round_trips_to_identical_bytes() -> None:
    c = codec("reply")
    record = {
        "request_id": "r-1", "tenant": "acme", "pcs_id": "ab" * 32, "http_status": 202,
        "status": "escalated", "accepted": True, "escalated": True, "reason": "regime_mismatch",
        "detail": None, "recomputed_D_hat": 1.234567891, "recomputed_budget": 0.5,
        "regime": "mixed", "dedup_hit": False, "conflict": False, "policy_version": "p1",
    }  # fmt: skip
    data = c.encode(record)
    assert data == c.encode(dict(record))
    assert c.decode(data) == record
    # Standard Avro tooling reads the body with the schema alone.
    import io

    assert fastavro.schemaless_reader(io.BytesIO(data[10:]), c.schema, None) == record


def test_foreign_bytes_are_refused() -> None:
    with pytest.raises(CodecError, match="not a single-object 'reply' record"):
        codec("reply").decode(b"\x00" * 20)
