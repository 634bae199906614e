from __future__ import annotations

import base64

import pytest
from flk_pcs import KeySetError, keyset_from_mapping, keyset_from_text, load_keyset
from flk_pcs.signing import digest, ed25519_public_key, ed25519_sign, hmac_sign

SEED = bytes(range(32))
PUB = base64.b64encode(ed25519_public_key(SEED)).decode()
DIG = digest(b"payload")


def _ks() -> dict[str, object]:
    return {
        "tenants": {
            "t": {"keys": [
                {"key_id": "old", "alg": "hmac", "secret": "s-old", "valid_from_ms": 0,
                 "valid_until_ms": 1000},
                {"key_id": "new", "alg": "hmac", "secret": "s-new", "valid_from_ms": 1000},
                {"key_id": "ed", "alg": "ed25519", "public_key": PUB, "valid_from_ms": 500,
                 "valid_until_ms": 2000},
            ]},
            "empty": {"keys": []},
        }
    }


def _sig(text: str) -> bytes:
    return base64.b64decode(text)


def test_selection_by_receive_stamp() -> None:
    ks = keyset_from_mapping(_ks())
    old = _sig(hmac_sign("s-old", DIG))
    new = _sig(hmac_sign("s-new", DIG))
    ed = _sig(ed25519_sign(SEED, DIG))
    assert ks.check("t", 999, DIG, old) == (True, None, "old")
    assert ks.check("t", 1000, DIG, old) == (False, "bad_signature", None)  # until is exclusive
    assert ks.check("t", 1000, DIG, new) == (True, None, "new")
    assert ks.check("t", 999, DIG, new) == (False, "bad_signature", None)
    assert ks.check("t", 499, DIG, ed) == (False, "bad_signature", None)
    assert ks.check("t", 1500, DIG, ed) == (True, None, "ed")
    assert ks.check("t", 2000, DIG, ed) == (False, "bad_signature", None)
    assert ks.check("nobody", 1500, DIG, ed) == (False, "unknown_tenant", None)
    assert ks.check("t", 1500, DIG, None) == (False, "missing_signature", None)
    assert ks.check("empty", 1500, DIG, new) == (False, "no_valid_key", None)
    assert [k.key_id for k in ks.keys_at("t", 1500)] == ["new", "ed"]


def test_tampered_digest_fails() -> None:
    ks = keyset_from_mapping(_ks())
    assert not ks.check("t", 1500, digest(b"other"), _sig(hmac_sign("s-new", DIG))).ok
    assert not ks.check("t", 1500, digest(b"other"), _sig(ed25519_sign(SEED, DIG))).ok


def test_version_is_stable_and_secret_free() -> None:
    a = keyset_from_mapping(_ks())
    b = keyset_from_text(
        "tenants:\n  t:\n    keys:\n"
        "      - {alg: hmac, key_id: old, secret: s-old, valid_until_ms: 1000}\n"
        "      - {key_id: new, alg: hmac, secret: s-new, valid_from_ms: 1000,"
        " valid_until_ms: null}\n"
        f"      - {{key_id: ed, alg: ed25519, public_key: '{PUB}', valid_from_ms: 500,"
        " valid_until_ms: 2000}\n"
        "  empty: {keys: []}\n"
    )
    assert a.version == b.version
    assert b"s-old" not in a.canonical_bytes() and b"s-new" not in a.canonical_bytes()
    changed = _ks()
    changed["tenants"]["t"]["keys"][0]["secret"] = "s-other"  # type: ignore[index]  # noqa: S105
    assert keyset_from_mapping(changed).version != a.version


def test_secrets_are_masked_in_repr() -> None:
    ks = keyset_from_mapping(_ks())
    assert "s-old" not in repr(ks) and "s-new" not in repr(ks)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "rsa"}]}}}, "tenants.t.keys[0].alg"),
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "hmac"}]}}},
         "tenants.t.keys[0].secret"),
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "ed25519", "public_key": "QQ=="}]}}},
         "tenants.t.keys[0].public_key"),
        ({"tenants": {"t": {"keys": [{"alg": "hmac", "secret": "x"}]}}},
         "tenants.t.keys[0].key_id"),
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "hmac", "secret": "x",
                                      "valid_from_ms": 5, "valid_until_ms": 5}]}}},
         "tenants.t.keys[0].valid_until_ms"),
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "hmac", "secret": "x",
                                      "valid_from_ms": 1.5}]}}},
         "tenants.t.keys[0].valid_from_ms"),
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "hmac", "secret": "x"},
                                     {"key_id": "k", "alg": "hmac", "secret": "y"}]}}},
         "tenants.t.keys"),
        ({"tenants": {"t": {"keys": [{"key_id": "k", "alg": "hmac", "secret": "x",
                                      "colour": 1}]}}}, "tenants.t.keys[0].colour"),
        ({"tenants": {"t": {"kees": []}}}, "tenants.t"),
        ({"keyset_format": 2}, "keyset_format"),
        ({"tenant": {}}, "tenant"),
    ],
)
def test_invalid_key_sets_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(KeySetError) as info:
        keyset_from_mapping(doc)
    assert info.value.field == field


def test_load_keyset_from_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "keys.yaml"  # type: ignore[operator]
    path.write_text("tenants: {a: {keys: [{key_id: k, alg: hmac, secret: x}]}}\n", "utf-8")
    assert load_keyset(path).has_tenant("a")
