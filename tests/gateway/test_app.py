"""In-process checks of the application (real broker and Redis underneath): /metrics behind
Basic Auth when configured, health and readiness answers."""

from __future__ import annotations

import base64
import os

import pytest

from flk.config import Config
from gateway.app import create_app
from gateway.settings import load_settings
from infra.layout import Layout

pytestmark = [pytest.mark.platform,
              pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning")]


def test_metrics_basic_auth(platform: Layout) -> None:
    from starlette.testclient import TestClient

    own = {k: v for k, v in os.environ.items() if k.startswith("FLK_")}  # this platform's layout
    settings = load_settings(platform.regions[1].name, 7, Config(None, environ={
        **own, "FLK_HOME": str(platform.home), "FLK_GATEWAY_METRICS_USER": "prom",
        "FLK_GATEWAY_METRICS_PASSWORD": "s3cret-pw"}))
    with TestClient(create_app(settings)) as client:
        r = client.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        bad = base64.b64encode(b"prom:wrong").decode()
        assert client.get("/metrics", headers={"Authorization": f"Basic {bad}"}
                          ).status_code == 401
        good = base64.b64encode(b"prom:s3cret-pw").decode()
        ok = client.get("/metrics", headers={"Authorization": f"Basic {good}"})
        assert ok.status_code == 200 and "flk_gateway_requests_total" in ok.text
        assert client.get("/healthz").json() == {"status": "ok"}
        facts = client.get("/readyz").json()
        assert facts["tenants_loaded"] is True and facts["index"] == 7
        unknown = client.get("/v2/nothing")
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        wrong_method = client.put("/v1/pcs/submit")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "method_not_allowed"
