"""Avro binary encoding (Avro specification, "Binary Encoding") compiled per schema, for the
flat records this project writes on its hot path.

fastavro's schemaless writer and reader cost 66 µs and 37 µs per outcome record on the
reference machine — more than verifying the record's signature — because every call walks the
schema generically. A record whose fields are primitives, enums and `["null", T]` unions is
compiled here into one straight-line Python function per direction (generated source, no
per-field calls). `compile_record` returns None for any other shape and the codec then uses
fastavro. tests/schemas/test_binary.py checks byte-for-byte equality with fastavro, both ways,
on random records of every schema.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

_NO_DEFAULT: Any = object()


def varint(n: int) -> bytes:
    """Zig-zag, then base-128 little-endian groups (the spec's `long` and `int`)."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    z = 0
    while True:
        b = buf[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
    return (z >> 1) ^ -(z & 1), pos


def _bad(value: Any, kind: str) -> Any:
    raise TypeError(f"{value!r} is not a valid Avro {kind}")


_LEN = tuple(varint(n) for n in range(64))  # length prefixes that fit in one byte

_ENV: dict[str, Any] = {
    "V": varint, "RV": read_varint, "BAD": _bad, "LEN": _LEN, "NODEF": _NO_DEFAULT,
    "PD": struct.Struct("<d").pack, "UD": struct.Struct("<d").unpack_from,
    "PF": struct.Struct("<f").pack, "UF": struct.Struct("<f").unpack_from,
    "TRUE": b"\x01", "FALSE": b"\x00", "TAG0": b"\x00", "TAG1": b"\x02",
}  # fmt: skip

_PRIMITIVE = ("string", "bytes", "long", "int", "boolean", "double", "float")


def _describe(schema: Any) -> tuple[Any, ...] | None:
    """A field type as ("prim", name) | ("enum", symbols) | ("null", null_first, inner)."""
    if isinstance(schema, str):
        return ("prim", schema) if schema in _PRIMITIVE else None
    if isinstance(schema, list):
        if len(schema) != 2 or "null" not in schema or schema[0] == schema[1]:
            return None
        other = schema[1] if schema[0] == "null" else schema[0]
        inner = _describe(other)
        if inner is None or inner[0] == "null":
            return None
        return ("null", schema[0] == "null", inner)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "enum":
            return ("enum", tuple(schema["symbols"]))
        if kind in _PRIMITIVE and "logicalType" not in schema:
            return ("prim", kind)
    return None


def _enc_lines(t: tuple[Any, ...], v: str, i: int, env: dict[str, Any], ind: str) -> list[str]:
    if t[0] == "null":
        null_tag, value_tag = ("TAG0", "TAG1") if t[1] else ("TAG1", "TAG0")
        return [f"{ind}if {v} is None:", f"{ind}    a({null_tag})", f"{ind}else:",
                f"{ind}    a({value_tag})", *_enc_lines(t[2], v, i, env, ind + "    ")]  # fmt: skip
    if t[0] == "enum":
        env[f"E{i}"] = {s: varint(k) for k, s in enumerate(t[1])}
        return [f"{ind}a(E{i}[{v}])"]  # KeyError for an unknown symbol
    kind = t[1]
    if kind == "string":
        return [f"{ind}b = {v}.encode('utf-8')", f"{ind}n = len(b)",
                f"{ind}a(LEN[n] if n < 64 else V(n))", f"{ind}a(b)"]  # fmt: skip
    if kind == "bytes":
        return [f"{ind}n = len({v})", f"{ind}a(LEN[n] if n < 64 else V(n))",
                f"{ind}a(bytes({v}))"]  # fmt: skip
    if kind == "long":
        return [f"{ind}a(V({v}) if type({v}) is int else BAD({v}, 'long'))"]
    if kind == "int":
        return [f"{ind}a(V({v}) if type({v}) is int and -2147483648 <= {v} < 2147483648 "
                f"else BAD({v}, 'int'))"]  # fmt: skip
    if kind == "boolean":
        return [f"{ind}a(TRUE if {v} is True else FALSE if {v} is False else BAD({v}, 'boolean'))"]
    if kind == "double":
        return [f"{ind}a(PD({v}))"]
    return [f"{ind}a(PF({v}))"]  # float


def _dec_varint(target: str, ind: str) -> list[str]:
    return [f"{ind}z = d[p]", f"{ind}if z < 128:", f"{ind}    {target} = (z >> 1) ^ -(z & 1)",
            f"{ind}    p += 1", f"{ind}else:", f"{ind}    {target}, p = RV(d, p)"]  # fmt: skip


def _dec_lines(t: tuple[Any, ...], x: str, i: int, env: dict[str, Any], ind: str) -> list[str]:
    if t[0] == "null":
        null_tag = 0 if t[1] else 2
        return [f"{ind}if d[p] == {null_tag}:", f"{ind}    p += 1", f"{ind}    {x} = None",
                f"{ind}else:", f"{ind}    if d[p] != {2 - null_tag}:",
                f"{ind}        raise ValueError('bad union branch')", f"{ind}    p += 1",
                *_dec_lines(t[2], x, i, env, ind + "    ")]  # fmt: skip
    if t[0] == "enum":
        env[f"S{i}"] = t[1]
        return [*_dec_varint("k", ind), f"{ind}{x} = S{i}[k]"]
    kind = t[1]
    if kind in ("string", "bytes"):
        value = "str(d[p:q], 'utf-8')" if kind == "string" else "d[p:q]"
        return [*_dec_varint("n", ind), f"{ind}q = p + n",
                f"{ind}if n < 0 or q > size:", f"{ind}    raise ValueError('truncated')",
                f"{ind}{x} = {value}", f"{ind}p = q"]  # fmt: skip
    if kind in ("long", "int"):
        return _dec_varint(x, ind)
    if kind == "boolean":
        return [f"{ind}z = d[p]", f"{ind}if z > 1:", f"{ind}    raise ValueError('bad boolean')",
                f"{ind}{x} = z == 1", f"{ind}p += 1"]  # fmt: skip
    if kind == "double":
        return [f"{ind}{x} = UD(d, p)[0]", f"{ind}p += 8"]
    return [f"{ind}{x} = UF(d, p)[0]", f"{ind}p += 4"]


class CompiledRecord:
    def __init__(self, names: tuple[str, ...], encode: Callable[[dict[str, Any], list[bytes]],
                 None], decode: Callable[[bytes, int], dict[str, Any]]) -> None:  # fmt: skip
        self.names = names
        self.encode = encode  # (record, parts) -> None: appends the body's bytes to parts
        self.decode = decode  # (data, start) -> record; ValueError/IndexError if corrupt


def compile_record(schema: Any) -> CompiledRecord | None:
    """A compiled codec for a flat record schema (as parsed by fastavro), or None."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    types = [_describe(f["type"]) for f in schema["fields"]]
    if any(t is None for t in types):
        return None
    names = tuple(f["name"] for f in schema["fields"])
    env = dict(_ENV)
    enc = ["def encode(r, out):", "    a = out.append", "    g = r.get"]
    dec = ["def decode(d, p):", "    size = len(d)"]
    for i, (f, t) in enumerate(zip(schema["fields"], types, strict=True)):
        assert t is not None
        env[f"N{i}"] = f["name"]
        env[f"D{i}"] = f.get("default", _NO_DEFAULT)
        enc += [f"    v = g(N{i}, D{i})", "    if v is NODEF:",
                f"        raise ValueError('no value and no default for field ' + repr(N{i}))",
                *_enc_lines(t, "v", i, env, "    ")]  # fmt: skip
        dec += _dec_lines(t, f"x{i}", i, env, "    ")
    dec += ["    if p != size:", "        raise ValueError(f'{size - p} trailing bytes')",
            "    return {" + ", ".join(f"N{i}: x{i}" for i in range(len(names))) + "}"]
    exec(compile("\n".join([*enc, "", *dec]), f"<avro {schema.get('name')}>", "exec"), env)  # noqa: S102 - source generated above from the schema's types only
    return CompiledRecord(names, env["encode"], env["decode"])
