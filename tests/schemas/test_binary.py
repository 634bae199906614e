"""The compiled Avro codec (schemas/binary.py) against fastavro, the reference, both ways."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import SCHEMA_DIR, CodecError, codec

NAMES = sorted(p.stem for p in Path(SCHEMA_DIR).glob("*.avsc"))


def _value(schema: Any) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of(*(_value(s) for s in schema))
    if isinstance(schema, dict):
        if schema["type"] == "enum":
            return st.sampled_from(schema["symbols"])
        return _value(schema["type"])
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "double": st.floats(allow_nan=False),
        "string": st.text(),
    }[schema]


def _record(name: str) -> st.SearchStrategy[dict[str, Any]]:
    schema: Any = codec(name).schema
    return st.fixed_dictionaries({f["name"]: _value(f["type"]) for f in schema["fields"]})


def _reference(name: str, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, codec(name).schema, record)
    return codec(name).header + out.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_compiles(name: str) -> None:
    assert codec(name)._compiled is not None


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_same_bytes_as_fastavro_and_back(name: str, data: st.DataObject) -> None:
    record = data.draw(_record(name))
    encoded = codec(name).encode(record)
    assert encoded == _reference(name, record)
    decoded = codec(name).decode(encoded)
    back = fastavro.schemaless_reader(io.BytesIO(encoded[10:]), codec(name).schema, None)
    assert decoded == back
    for key, value in record.items():
        assert decoded[key] == value or (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_truncated_or_extended_bytes_are_refused(name: str, data: st.DataObject) -> None:
    encoded = codec(name).encode(data.draw(_record(name)))
    cut = data.draw(st.integers(10, len(encoded) - 1))
    with pytest.raises(CodecError):
        codec(name).decode(encoded[:cut])
    with pytest.raises(CodecError):
        codec(name).decode(encoded + b"\x00")


def test_a_default_fills_a_missing_field_and_a_missing_required_field_fails() -> None:
    reply = codec("reply")
    record = {"request_id": "r", "tenant": "t", "http_status": 200, "status": "accepted",
              "accepted": True, "escalated": False, "dedup_hit": False, "policy_version": "p"}
    assert reply.decode(reply.encode(record))["conflict"] is False
    del record["tenant"]
    with pytest.raises(ValueError, match="tenant"):
        reply.encode(record)


@pytest.mark.parametrize(("field", "value"), [
    ("status", "maybe"), ("http_status", "200"), ("http_status", 2**31), ("accepted", 1),
    ("winner_stamp_ms", 1.5), ("reason", 3),
])  # fmt: skip
def test_wrong_types_are_refused(field: str, value: Any) -> None:
    outcome = codec("outcome")
    record = {"tenant": "t", "pcs_id": "p", "winner_origin": "o", "winner_stamp_ms": 1,
              "winner_stamp_counter": 0, "winner_request_id": "r", "body_sha256": "s",
              "http_status": 200, "status": "accepted", "accepted": True, "escalated": False,
              "policy_version": "p", "keyset_version": "k"}  # fmt: skip
    outcome.encode(record)
    with pytest.raises((TypeError, KeyError, AttributeError)):
        outcome.encode({**record, field: value})
