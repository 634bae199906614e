"""Schema evolution: each current schema stays FULL-compatible with its frozen versions, and
the checker refuses the changes that would break a reader (schemas/compat.py)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import parse_schema

from schemas.codec import MAGIC, SCHEMA_DIR, Codec, codec
from schemas.compat import full_problems, history, load, read_problems

NAMES = sorted(p.stem for p in Path(SCHEMA_DIR).glob("*.avsc"))


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_has_a_frozen_version(name: str) -> None:
    assert history(name), f"freeze schemas/{name}.avsc as schemas/history/{name}/v1.avsc"


@pytest.mark.parametrize("name", NAMES)
def test_current_schema_is_fully_compatible_with_every_frozen_version(name: str) -> None:
    current = load(SCHEMA_DIR / f"{name}.avsc")
    for old in history(name):
        assert full_problems(current, load(old)) == [], f"{name}.avsc vs {old.name}"


def _outcome() -> dict[str, Any]:
    return copy.deepcopy(load(SCHEMA_DIR / "outcome.avsc"))


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _mutations() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    s = _outcome()
    s["fields"] = [f for f in s["fields"] if f["name"] != "body_sha256"]
    out["remove a field without default"] = s
    s = _outcome()
    s["fields"].append({"name": "region", "type": "string"})
    out["add a field without default"] = s
    s = _outcome()
    _field(s, "http_status")["type"] = "string"
    out["change a field's type"] = s
    s = _outcome()
    _field(s, "winner_stamp_ms")["type"] = "int"
    out["narrow long to int"] = s
    s = _outcome()
    _field(s, "status")["type"]["symbols"] = ["accepted"]
    out["remove an enum symbol"] = s
    s = _outcome()
    _field(s, "status")["type"]["symbols"].append("pending")
    out["add an enum symbol"] = s  # old readers could not read it: not forward-compatible
    s = _outcome()
    _field(s, "reason")["type"] = "string"
    out["make a nullable field required"] = s
    s = _outcome()
    s["name"] = "OutcomeV2"
    out["rename the record"] = s
    return out


@pytest.mark.parametrize("mutation", sorted(_mutations()))
def test_incompatible_changes_are_refused(mutation: str) -> None:
    changed = _mutations()[mutation]
    assert full_problems(changed, _outcome()) != []


def test_compatible_changes_pass() -> None:
    s = _outcome()
    s["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    assert full_problems(s, _outcome()) == []
    s = _outcome()
    s["doc"] = "reworded"
    _field(s, "pcs_id")["doc"] = "reworded"
    assert full_problems(s, _outcome()) == []


def test_promotions_follow_the_spec() -> None:
    assert read_problems("long", "int") == []
    assert read_problems("double", "long") == []
    assert read_problems("int", "long") != []
    assert read_problems(["null", "long"], "int") == []


def test_a_record_written_with_an_older_version_is_read_with_the_current_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # An older outcome schema lacked key_id; a record written with it still decodes, with the
    # default filled in.
    old = _outcome()
    old["fields"] = [f for f in old["fields"] if f["name"] != "key_id"]
    parsed = parse_schema(copy.deepcopy(old))
    record = {f["name"]: v for f, v in zip(old["fields"], [
        "t", "p", "eu-west", 1, 0, "r", "s", 200, "accepted", True, False, None, 1.5, 0.4,
        "mixed", "pv", "kv"], strict=True)}  # fmt: skip
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, record)
    monkeypatch.setattr("schemas.codec.history",
                        lambda name: [*history(name), _write(tmp_path, old)])  # fmt: skip
    fresh = Codec("outcome")
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    decoded = fresh.decode(MAGIC + fp + body.getvalue())
    assert decoded["key_id"] is None and decoded["pcs_id"] == "p"
    assert codec("outcome").header != MAGIC + fp


def _write(folder: Path, schema: dict[str, Any]) -> Path:
    import json

    path = folder / "v99.avsc"
    path.write_text(json.dumps(schema))
    return path
