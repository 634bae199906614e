"""Interoperability acceptance: every SDK against the running gateways of both regions.

Each SDK is driven by a small program that uses only its public client API
(tests/sdk/interop/go, tests/sdk/interop/ts/interop.mjs, tests/sdk/interop/python/interop.py):
it builds and signs a fresh record (a random merkle root per run, so a fresh pcs_id), submits it
(final 200 accepted or 202 escalated; a 202 pending is polled through the SDK's GET
/v1/requests/{id}), submits the same body again with a new request id (`dedup_hit: true`),
submits another fresh record with `Prefer: respond-async` (202 pending, then polled), submits a
record signed with a wrong key (the SDK's typed 401 error with the API's code `bad_signature`)
and asks what became of that request (the SDK's typed rejection, status 401), and reads the
stored outcome (GET /v1/pcs/{pcs_id} with the tenant's Bearer read token).

The matrix is SDK × region × tenant (`default` signs with HMAC, `acme` with Ed25519). The
failover tests give each SDK [eu-west gateway-0, us-east gateway-0], stop eu-west gateway-0
and expect the submission to go through us-east; the gateway is started again afterwards
(`infra.platform.up`, which starts only what is missing).

Needs the platform (session fixture `platform`); run with FLK_KEEP_PLATFORM=1 to leave it up.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.devkeys import load_signing_keys
from infra import platform as plat
from infra.layout import Layout, load_layout
from infra.procs import Supervisor

pytestmark = pytest.mark.platform

ROOT = Path(__file__).resolve().parents[2]
INTEROP = Path(__file__).resolve().parent / "interop"
SDKS = ("go", "ts", "python")
TENANTS = {"default": "hmac", "acme": "ed25519"}
REGIONS = tuple(r.name for r in load_layout().regions)
WAIT_S = 120  # per step: a slow worker may leave a request pending for a while
RUN_TIMEOUT_S = 560

Runner = Callable[[dict[str, Any]], dict[str, Any]]


# --- the three programs ---------------------------------------------------------------------


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.skip("no Go toolchain (PATH or /usr/local/go/bin)")
    return go


@pytest.fixture(scope="module")
def go_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("interop-go") / "interop"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    subprocess.run([_go(), "build", "-o", str(exe), "."], cwd=INTEROP / "go", env=env,
                   check=True, capture_output=True, timeout=300)
    return exe


@pytest.fixture(scope="module")
def ts_program() -> Path:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on PATH")
    dist = ROOT / "sdk" / "ts" / "dist" / "index.js"
    newest_src = max(p.stat().st_mtime for p in (ROOT / "sdk" / "ts" / "src").glob("*.ts"))
    if not dist.exists() or dist.stat().st_mtime < newest_src:  # build what the program imports
        subprocess.run(["bash", str(ROOT / "sdk" / "build.sh")], check=True,
                       capture_output=True, timeout=300)
    return INTEROP / "ts" / "interop.mjs"


def _run_program(argv: list[str], cfg: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(argv, input=json.dumps(cfg), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"{argv[0]} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def _python_runner() -> Runner:
    spec = importlib.util.spec_from_file_location("flk_interop_python",
                                                  INTEROP / "python" / "interop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run: Runner = module.run
    return run


@pytest.fixture(scope="module")
def runners(request: pytest.FixtureRequest) -> dict[str, Runner]:
    """sdk → a function from config to results (built lazily: only the SDKs in use)."""

    def get(sdk: str) -> Runner:
        if sdk == "go":
            exe = request.getfixturevalue("go_program")
            return lambda cfg: _run_program([str(exe)], cfg)
        if sdk == "ts":
            script = request.getfixturevalue("ts_program")
            return lambda cfg: _run_program([shutil.which("node") or "node", str(script)], cfg)
        return _python_runner()  # the Python SDK, in-process

    class Lazy(dict[str, Runner]):
        def __missing__(self, sdk: str) -> Runner:
            self[sdk] = get(sdk)
            return self[sdk]

    return Lazy()


# --- configuration --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def credentials(platform: Layout) -> dict[str, dict[str, Any]]:
    """tenant → signing material (gateway.devkeys) and read token (tenants.yaml)."""
    keys = load_signing_keys(platform.home)
    doc = yaml.safe_load((platform.home / "tenants.yaml").read_text())
    return {t: {**keys[t], "read_token": doc["tenants"][t]["read_token"]} for t in TENANTS}


def make_config(creds: dict[str, dict[str, Any]], tenant: str, endpoints: list[str], label: str,
                steps: list[str] | None = None) -> dict[str, Any]:
    c = creds[tenant]
    assert c["alg"] == TENANTS[tenant], c["alg"]
    cfg: dict[str, Any] = {
        "endpoints": endpoints, "tenant": tenant, "alg": c["alg"],
        "secret": c.get("secret"), "seed": c.get("seed"),
        # same algorithm, other key material: the gateway must answer 401
        "wrong_secret": "not-the-secret-" + secrets.token_hex(8),
        "wrong_seed": base64.b64encode(secrets.token_bytes(32)).decode(),
        "read_token": c["read_token"],
        "merkle_root": secrets.token_hex(32),  # a fresh pcs_id on every run
        "shard_id": f"interop-{label}", "epoch": 1, "wait_timeout_s": WAIT_S,
    }
    if steps is not None:
        cfg["steps"] = steps
    return cfg


# --- assertions -----------------------------------------------------------------------------

_HTTP = {"accepted": 200, "escalated": 202}


def check_verdict(r: dict[str, Any], sdk: str, *, tenant: str, region: str, pcs_id: str,
                  dedup_hit: bool) -> None:
    dump = json.dumps(r, indent=1)
    assert r["ok"], dump
    assert r["status"] in _HTTP, dump
    assert r["accepted"] is True, dump  # a well-formed, correctly built record
    assert r["dedup_hit"] is dedup_hit, dump
    assert r["pcs_id"] == pcs_id, dump
    assert r["tenant"] == tenant, dump
    assert r["region"] == region, dump
    assert r["request_id"], dump
    if sdk != "python":  # the Go and TypeScript outcomes carry the HTTP status
        assert r["http_status"] == _HTTP[r["status"]], dump
        if r.get("first_status") in _HTTP:
            assert r["first_http_status"] == _HTTP[r["first_status"]], dump
        elif r.get("first_status") == "pending":
            assert r["first_http_status"] == 202, dump
    if "first_request_id" in r:  # polling keeps the request id
        assert r["first_request_id"] == r["request_id"], dump


def check_full(res: dict[str, Any], sdk: str, tenant: str, region: str) -> None:
    dump = json.dumps(res, indent=1)
    assert "fatal" not in res, dump
    assert res["sdk"] == sdk
    pcs_id = res["pcs_id"]
    first, dup, asyn, wrong, stored = (res[k] for k in
                                       ("submit", "duplicate", "async", "wrong_key", "outcome"))
    check_verdict(first, sdk, tenant=tenant, region=region, pcs_id=pcs_id, dedup_hit=False)

    # the same body again, a new request id: the first write's outcome with dedup_hit
    check_verdict(dup, sdk, tenant=tenant, region=region, pcs_id=pcs_id, dedup_hit=True)
    assert dup["request_id"] != first["request_id"], dump
    assert dup["status"] == first["status"], dump
    assert dup["conflict"] is False, dump

    # respond-async: 202 pending at once, then the outcome through GET /v1/requests/{id}
    check_verdict(asyn, sdk, tenant=tenant, region=region, pcs_id=asyn["submitted_pcs_id"],
                  dedup_hit=False)
    assert asyn["first_status"] == "pending", dump
    assert asyn["submitted_pcs_id"] != pcs_id, dump

    # a wrong key: the SDK's typed 401 error with the API's stable code
    assert wrong["ok"] is False, dump
    assert wrong["typed_unauthorized"] is True, dump
    assert wrong["http_status"] == 401, dump
    assert wrong["code"] == "bad_signature", dump
    assert wrong["request_id"], dump

    # what became of that request (GET /v1/requests/{id}): the SDK's typed rejection, 401
    rejected = res["rejected_request"]
    assert rejected["ok"] is False and rejected["typed_rejected"] is True, dump
    assert rejected["polled_request_id"] == wrong["request_id"], dump
    assert rejected["http_status"] == 401, dump
    assert rejected["code"] == "bad_signature", dump
    if sdk != "python":  # Go and TypeScript wrap the status's typed error; Python has one type
        assert rejected["typed_unauthorized"] is True, dump

    # the stored outcome: the first write (its request id), not a duplicate
    check_verdict(stored, sdk, tenant=tenant, region=region, pcs_id=pcs_id, dedup_hit=False)
    assert stored["request_id"] == first["request_id"], dump
    assert stored["status"] == first["status"], dump


# --- the matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", list(TENANTS), ids=[f"{t}-{a}" for t, a in TENANTS.items()])
@pytest.mark.parametrize("region_index", range(len(REGIONS)), ids=list(REGIONS))
@pytest.mark.parametrize("sdk", SDKS)
def test_sdk_against_region(sdk: str, region_index: int, tenant: str, platform: Layout,
                            credentials: dict[str, dict[str, Any]],
                            runners: dict[str, Runner]) -> None:
    region = platform.regions[region_index]
    cfg = make_config(credentials, tenant, [region.gateway_url(0), region.gateway_url(1)],
                      f"{sdk}-{region.name}-{tenant}")
    res = runners[sdk](cfg)
    check_full(res, sdk, tenant, region.name)


# --- failover -------------------------------------------------------------------------------

STOPPED = "gateway-0"


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="class")
def first_region_down(platform: Layout) -> Iterator[tuple[Layout, str, str]]:
    """[eu-west gateway-0, us-east gateway-0] with the first one stopped; started again after."""
    if len(platform.regions) < 2:
        pytest.skip("failover needs two regions")
    first, second = platform.regions[0], platform.regions[1]
    down_url, up_url = first.gateway_url(0), second.gateway_url(0)
    assert _ready(down_url) and _ready(up_url), "both gateways must be up before the test"
    key = f"{first.name}-{STOPPED}"
    try:
        assert Supervisor(platform.run_dir).stop(key), f"{key} was not running"
        assert not _ready(down_url), f"{key} still answers after it was stopped"
        yield platform, down_url, up_url
    finally:
        plat.up(platform)  # idempotent: starts only what is missing
        assert _ready(down_url), f"{key} did not come back"


@pytest.mark.usefixtures("first_region_down")
class TestFailover:
    @pytest.mark.parametrize("sdk", SDKS)
    def test_submit_fails_over_to_the_other_region(
            self, sdk: str, first_region_down: tuple[Layout, str, str],
            credentials: dict[str, dict[str, Any]], runners: dict[str, Runner]) -> None:
        layout, down_url, up_url = first_region_down
        other = layout.regions[1].name
        for tenant in TENANTS:
            cfg = make_config(credentials, tenant, [down_url, up_url],
                              f"failover-{sdk}-{tenant}", ["submit", "duplicate", "outcome"])
            res = runners[sdk](cfg)
            dump = json.dumps(res, indent=1)
            assert "fatal" not in res, dump
            pcs_id = res["pcs_id"]
            check_verdict(res["submit"], sdk, tenant=tenant, region=other, pcs_id=pcs_id,
                          dedup_hit=False)
            check_verdict(res["duplicate"], sdk, tenant=tenant, region=other, pcs_id=pcs_id,
                          dedup_hit=True)
            check_verdict(res["outcome"], sdk, tenant=tenant, region=other, pcs_id=pcs_id,
                          dedup_hit=False)
            assert res["outcome"]["request_id"] == res["submit"]["request_id"], dump
            if sdk != "python":
                assert res["submit"]["endpoint"] == up_url, dump
