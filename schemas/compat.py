"""Schema evolution rules (Avro specification, "Schema Resolution"), as a checker.

Every released version of a record schema is frozen in `schemas/history/<name>/v<N>.avsc`.
The current `schemas/<name>.avsc` must stay FULL-compatible with each of them: a reader with
the new schema reads records written with an old one (backward: consumers upgrade first) and a
reader with an old schema reads records written with the new one (forward: producers upgrade
first). Both regions and every worker of a rolling upgrade then agree on every record. An
incompatible change needs a new record name (a new topic or a new version namespace), never an
edit in place; tests/schemas/test_compat.py refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

SCHEMA_DIR: Final = Path(__file__).parent
HISTORY_DIR: Final = SCHEMA_DIR / "history"

# Writer type → reader types that can read it (the spec's promotions).
_PROMOTIONS: Final = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
    "boolean": {"boolean"},
    "null": {"null"},
}


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        return kind if isinstance(kind, str) else _kind(kind)
    return str(schema)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def read_problems(reader: Any, writer: Any, where: str = "") -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty if it can)."""
    rk, wk = _kind(reader), _kind(writer)
    if wk == "union":
        out: list[str] = []
        for i, branch in enumerate(writer):
            out += read_problems(reader, branch, f"{where}[branch {i}]")
        return out
    if rk == "union":
        if any(not read_problems(branch, writer, where) for branch in reader):
            return []
        return [f"{where or 'record'}: no branch of the reader's union reads the writer's {wk}"]
    if rk in _PROMOTIONS or wk in _PROMOTIONS:
        if rk in _PROMOTIONS.get(wk, set()):
            return []
        return [f"{where or 'record'}: the writer's {wk} cannot be read as {rk}"]
    if rk != wk:
        return [f"{where or 'record'}: the writer's {wk} cannot be read as {rk}"]
    if _short(reader["name"]) != _short(writer["name"]):
        return [f"{where or 'record'}: named {writer['name']!r} by the writer, "
                f"{reader['name']!r} by the reader"]  # fmt: skip
    if rk == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            return [f"{where}: enum symbols {missing} are unknown to the reader"]
        return []
    if rk == "fixed":
        return [] if reader["size"] == writer["size"] else [f"{where}: fixed sizes differ"]
    if rk == "array":
        return read_problems(reader["items"], writer["items"], f"{where}[]")
    if rk == "map":
        return read_problems(reader["values"], writer["values"], f"{where}{{}}")
    if rk == "record":
        return _record_problems(reader, writer, where)
    return []


def _record_problems(reader: dict[str, Any], writer: dict[str, Any], where: str) -> list[str]:
    out: list[str] = []
    written = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        match = next((written[n] for n in names if n in written), None)
        path = f"{where}.{field['name']}" if where else field["name"]
        if match is None:
            if "default" not in field:
                out.append(f"{path}: the reader needs it, the writer does not write it, "
                           "and it has no default")  # fmt: skip
            continue
        out += read_problems(field["type"], match["type"], path)
    return out


def full_problems(new: Any, old: Any) -> list[str]:
    """Backward (new reads old) and forward (old reads new) problems."""
    return ([f"backward: {p}" for p in read_problems(new, old)]
            + [f"forward: {p}" for p in read_problems(old, new)])  # fmt: skip


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def history(name: str) -> list[Path]:
    """The frozen versions of schema `name`, oldest first."""
    folder = HISTORY_DIR / name
    if not folder.is_dir():
        return []
    return sorted(folder.glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
