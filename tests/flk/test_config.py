from __future__ import annotations

from pathlib import Path

import pytest

from flk.config import Config, ConfigError, Secret


def test_environment_wins_over_env_file_and_default(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("FLK_A=from-file\nFLK_B=file-only\n# FLK_C=comment\n")
    config = Config(env_file, environ={"FLK_A": "from-env"})
    assert config("A") == "from-env"
    assert config("B") == "file-only"
    assert config("C", default="fallback") == "fallback"


def test_missing_key_names_the_key() -> None:
    with pytest.raises(ConfigError, match="'FLK_NOPE' is missing"):
        Config(None, environ={})("NOPE")


def test_bad_cast_names_key_and_quotes_value() -> None:
    config = Config(None, environ={"FLK_PORT": "eighty", "FLK_ON": "maybe"})
    with pytest.raises(ConfigError, match="'FLK_PORT' has invalid value 'eighty'"):
        config("PORT", cast=int)
    with pytest.raises(ConfigError, match="'FLK_ON' has invalid value 'maybe'"):
        config("ON", cast=bool)


def test_bool_and_default_casting() -> None:
    config = Config(None, environ={"FLK_ON": "yes"})
    assert config("ON", cast=bool) is True
    assert config("OFF", cast=bool, default="false") is False
    assert config("N", cast=int, default=5) == 5


def test_secret_masks_repr() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert str(secret) == "hunter2"
