from __future__ import annotations

import pytest

from flk.config import Config, ConfigError
from infra.layout import KAFKA, load_layout


def test_regions_get_disjoint_port_blocks() -> None:
    layout = load_layout(Config(None, environ={"FLK_PORT_BASE": "25000"}))
    assert [r.name for r in layout.regions] == ["eu-west", "us-east"]
    assert layout.regions[0].port(KAFKA) == 25092
    assert layout.regions[1].port(KAFKA) == 26092
    assert layout.regions[1].kafka_bootstrap == "127.0.0.1:26092"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLK_REGIONS": "eu-west,eu-west"}, "repeats a region"),
        ({"FLK_REGIONS": "EU West"}, "invalid region name 'EU West'"),
        ({"FLK_PORT_BASE": "80"}, "'FLK_PORT_BASE' has invalid value 80"),
        ({"FLK_PORT_BASE": "x"}, "'FLK_PORT_BASE' has invalid value 'x'"),
        ({"FLK_PORT_BASE": "40000"}, "inside the kernel's ephemeral port range"),
    ],
)
def test_bad_layout_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_layout(Config(None, environ=env))
