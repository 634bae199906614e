"""Typed configuration, Starlette-style: environment, then `.env`, then the default.

Every process reads its settings through one `Config`; nothing else reads the environment.
A missing key without a default fails naming the key; a value that does not cast fails naming
the key and quoting the value; secrets mask their repr.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, overload

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the key and the value."""


class Secret:
    """A string that does not show itself in logs, reprs or tracebacks."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}('**********')"

    def __str__(self) -> str:
        return self._value


class _Undefined:
    pass


_UNDEFINED: Any = _Undefined()


def _cast_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true/false)")


class Config:
    """Reads `PREFIX + key` from the environment, then from an env file, then the default."""

    def __init__(
        self,
        env_file: str | Path | None = ".env",
        environ: Mapping[str, str] | None = None,
        prefix: str = "FLK_",
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._prefix = prefix
        self._file_values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            self._file_values = _read_env_file(Path(env_file))

    @overload
    def __call__(self, key: str, *, default: str = ...) -> str: ...

    @overload
    def __call__(self, key: str, cast: Callable[[str], T], default: T | str = ...) -> T: ...

    def __call__(
        self, key: str, cast: Callable[[str], Any] | None = None, default: Any = _UNDEFINED
    ) -> Any:
        name = self._prefix + key
        if name in self._environ:
            return self._cast(name, self._environ[name], cast)
        if name in self._file_values:
            return self._cast(name, self._file_values[name], cast)
        if default is not _UNDEFINED:
            if isinstance(default, str) and cast is not None and cast is not str:
                return self._cast(name, default, cast)
            return default
        raise ConfigError(f"Setting {name!r} is missing; set it in the environment or .env")

    def _cast(self, name: str, value: str, cast: Callable[[str], Any] | None) -> Any:
        if cast is None or cast is str:
            return value
        caster: Callable[[str], Any] = _cast_bool if cast is bool else cast
        try:
            return caster(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"Setting {name!r} has invalid value {value!r}: {exc}") from None


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("\"'")
    return values
