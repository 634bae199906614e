"""Unit tests without the platform: HLC stamps, tenants-file validation and reload, settings."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from flk_pcs import HmacSigner, sign_pcs
from flk_pcs.signing import digest

from flk import registry
from flk.config import Config, ConfigError
from gateway.devkeys import ensure_dev_tenants, load_signing_keys, signing_keys_path
from gateway.hlc import HybridClock
from gateway.settings import load_settings
from gateway.tenants import TenantsFileError, TenantsStore, parse_tenants, write_tenants
from tests.gateway.helpers import new_pcs
from topics.wal import Stamp


def _doc(**tenant: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"read_token": "r" * 20, "rate_per_s": 10, "burst": 20,
                            "daily_quota": 0, "keys": []}
    base.update(tenant)
    return {"tenants_format": 1, "tenants": {"t1": base}}


# --- HLC ------------------------------------------------------------------------------------


def test_hlc_is_monotonic_when_the_wall_clock_stalls_or_goes_back() -> None:
    wall = [1000]
    clock = HybridClock(wall_ms=lambda: wall[0])
    a, b = clock.now(), clock.now()
    assert (a, b) == (Stamp(1000, 0), Stamp(1000, 1))
    wall[0] = 900  # the wall clock steps back: stamps keep increasing
    assert clock.now() == Stamp(1000, 2)
    wall[0] = 1001
    assert clock.now() == Stamp(1001, 0)


def test_hlc_counts_a_wall_clock_step_back_beyond_the_bound() -> None:
    wall = [50_000]
    seen: list[int] = []
    clock = HybridClock(max_future_skew_ms=1000, wall_ms=lambda: wall[0], on_skew=seen.append)
    clock.now()
    wall[0] = 49_500  # within the bound: not counted
    clock.now()
    wall[0] = 45_000
    assert clock.now() == Stamp(50_000, 2) and seen == [5000]


def test_hlc_offset_moves_stamps() -> None:
    clock = HybridClock(offset_ms=5000, wall_ms=lambda: 1000)
    assert clock.now() == Stamp(6000, 0)


def test_hlc_future_skew_is_bounded_and_counted() -> None:
    seen: list[int] = []
    clock = HybridClock(max_future_skew_ms=1000, wall_ms=lambda: 10_000, on_skew=seen.append)
    assert clock.observe(Stamp(10_900, 3))  # within the bound: adopted
    assert clock.now() == Stamp(10_900, 4)
    assert not clock.observe(Stamp(12_000, 0))  # 2 s ahead: refused and counted
    assert clock.skew_rejections == 1 and seen == [2000]
    assert clock.now() == Stamp(10_900, 5)


# --- tenants file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"read_token": "short"}, "tenants.t1.read_token"),
        ({"rate_per_s": 0}, "tenants.t1.rate_per_s"),
        ({"burst": 1.5}, "tenants.t1.burst"),
        ({"daily_quota": -1}, "tenants.t1.daily_quota"),
        ({"keys": "none"}, "tenants.t1.keys"),
        ({"colour": "red"}, "tenants.t1.colour"),
        ({"keys": [{"key_id": "k", "alg": "hmac"}]}, "tenants.t1.keys[0].secret"),
        ({"keys": [{"key_id": "k", "alg": "rsa", "secret": "x"}]}, "tenants.t1.keys[0].alg"),
        ({"keys": [{"key_id": "k", "alg": "ed25519", "public_key": "AAAA"}]},
         "tenants.t1.keys[0].public_key"),
    ],
)
def test_tenants_file_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(TenantsFileError) as err:
        parse_tenants(_doc(**change))
    assert err.value.field == field
    assert field in str(err.value)


def test_tenant_id_and_format_are_checked() -> None:
    doc = _doc()
    doc["tenants"]["bad/id"] = doc["tenants"].pop("t1")
    with pytest.raises(TenantsFileError, match="tenants.bad/id"):
        parse_tenants(doc)
    with pytest.raises(TenantsFileError, match="tenants_format"):
        parse_tenants({"tenants_format": 2, "tenants": _doc()["tenants"]})
    with pytest.raises(TenantsFileError, match="'tenants'"):
        parse_tenants({"tenants_format": 1, "tenants": {}})


def test_dev_tenants_are_generated_once_with_private_files(tmp_path: Path) -> None:
    path = ensure_dev_tenants(tmp_path)
    first = path.read_bytes()
    assert ensure_dev_tenants(tmp_path) == path and path.read_bytes() == first
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(signing_keys_path(tmp_path)).st_mode & 0o777 == 0o600
    parsed = parse_tenants(yaml.safe_load(first))
    assert set(parsed.tenants) >= {"default", "acme"}
    keys = parsed.keyset_document["tenants"]
    assert keys["default"]["keys"][0]["alg"] == "hmac"
    assert keys["acme"]["keys"][0]["alg"] == "ed25519"
    # The stored seed is the private half of the published public key.
    from nacl.signing import SigningKey

    seed = base64.b64decode(load_signing_keys(tmp_path)["acme"]["seed"])
    public = base64.b64encode(bytes(SigningKey(seed).verify_key)).decode()
    assert keys["acme"]["keys"][0]["public_key"] == public


def test_reload_rotates_and_removes_keys(tmp_path: Path) -> None:
    tenants_file = tmp_path / "tenants.yaml"
    old = {"key_id": "k1", "alg": "hmac", "secret": "old-secret", "valid_from_ms": 0}
    new = {"key_id": "k2", "alg": "hmac", "secret": "new-secret", "valid_from_ms": 0}
    write_tenants(tenants_file, _doc(keys=[old]))
    store = TenantsStore(tmp_path, tenants_file, tmp_path / "policy.yaml")
    first = store.load()
    assert not store.maybe_reload()  # unchanged
    pcs = new_pcs()
    sig_old = sign_pcs(pcs, HmacSigner("old-secret"))["sig"]
    sig_new = sign_pcs(pcs, HmacSigner("new-secret"))["sig"]
    from flk_pcs import payload_of

    dig = digest(payload_of(pcs))
    now = int(time.time() * 1000)
    assert first.keyset.check("t1", now, dig, base64.b64decode(sig_old)).ok

    time.sleep(0.01)
    write_tenants(tenants_file, _doc(keys=[new]))  # rotation: k1 removed, k2 added
    assert store.maybe_reload()
    second = store.snapshot
    assert second is not None and second.keyset.version != first.keyset.version
    assert second.keyset.check("t1", now, dig, base64.b64decode(sig_new)).ok
    assert second.keyset.check("t1", now, dig, base64.b64decode(sig_old)).reason == \
        "bad_signature"
    # Both versions are in the archive: records stamped with the old one still verify there.
    assert registry.keyset(tmp_path, first.keyset.version).version == first.keyset.version
    assert registry.keyset(tmp_path, second.keyset.version).version == second.keyset.version


def test_a_bad_reload_keeps_the_last_good_file(tmp_path: Path) -> None:
    tenants_file = tmp_path / "tenants.yaml"
    write_tenants(tenants_file, _doc())
    store = TenantsStore(tmp_path, tenants_file, tmp_path / "policy.yaml")
    good = store.load()
    time.sleep(0.01)
    tenants_file.write_text("tenants_format: 1\ntenants: {t1: {rate_per_s: -1}}\n")
    with pytest.raises(TenantsFileError):
        store.maybe_reload()
    assert store.snapshot is good and store.last_error is not None
    assert not store.maybe_reload()  # the same bad file is not retried every second


def test_policy_file_is_published_and_stamped(tmp_path: Path) -> None:
    tenants_file = tmp_path / "tenants.yaml"
    write_tenants(tenants_file, _doc())
    policy_file = tmp_path / "policy.yaml"
    store = TenantsStore(tmp_path, tenants_file, policy_file)
    default_version = store.load().policy.version
    policy_file.write_text("policy_format: 1\nverification: {tol_D: 0.2}\n")
    assert store.maybe_reload()
    snap = store.snapshot
    assert snap is not None and snap.policy.version != default_version
    assert registry.policy(tmp_path, snap.policy.version).params("t1").tol_D == 0.2


# --- settings -------------------------------------------------------------------------------


def test_settings_defaults_and_budget_check(tmp_path: Path) -> None:
    env = {"FLK_HOME": str(tmp_path)}
    s = load_settings("eu-west", 1, Config(None, environ=env))
    assert s.port == 20081 and s.reply_partition == 1
    assert s.max_body_bytes == 1024 * 1024 and s.tenants_file == tmp_path / "tenants.yaml"
    assert s.wal_timeout_ms / 1000 + s.reply_wait_s <= s.request_budget_s
    with pytest.raises(ConfigError, match="FLK_GATEWAY_REQUEST_BUDGET_S"):
        load_settings("eu-west", 0, Config(None, environ={**env, "FLK_GATEWAY_REPLY_WAIT_S": "9"}))
    off = load_settings("us-east", 0, Config(None, environ={
        **env, "FLK_CLOCK_OFFSET_MS": "5", "FLK_CLOCK_OFFSET_MS_US_EAST": "-700"}))
    assert off.clock_offset_ms == -700
    with pytest.raises(ConfigError, match="FLK_GATEWAY_METRICS_PASSWORD"):
        load_settings("eu-west", 0, Config(None, environ={**env, "FLK_GATEWAY_METRICS_USER": "m"}))
    secret = load_settings("eu-west", 0, Config(None, environ={
        **env, "FLK_GATEWAY_METRICS_USER": "m", "FLK_GATEWAY_METRICS_PASSWORD": "pw-123"}))
    assert "pw-123" not in repr(secret)
    assert s.max_in_flight == 2000
    with pytest.raises(ConfigError, match="FLK_GATEWAY_MAX_IN_FLIGHT"):
        load_settings("eu-west", 0, Config(None, environ={**env, "FLK_GATEWAY_MAX_IN_FLIGHT": "0"}))
    assert s.access_log_file == tmp_path / "eu-west" / "logs" / "gateway-1-access.log"
    assert (s.access_log_max_bytes, s.access_log_backups) == (64 * 1024 * 1024, 4)
    with pytest.raises(ConfigError, match="FLK_GATEWAY_ACCESS_LOG_MAX_MB"):
        load_settings("eu-west", 0, Config(None, environ={
            **env, "FLK_GATEWAY_ACCESS_LOG_MAX_MB": "0"}))
    with pytest.raises(ConfigError, match="FLK_GATEWAY_ACCESS_LOG_BACKUPS"):
        load_settings("eu-west", 0, Config(None, environ={
            **env, "FLK_GATEWAY_ACCESS_LOG_BACKUPS": "-1"}))


def test_a_request_waiting_on_a_limiter_call_outlives_the_request_that_started_it() -> None:
    """Requests of one tenant share the limiter call in flight; when the request whose arrival
    started it is cancelled (its client went away), the call goes on, and its token goes to
    the request still waiting, not to the one that left."""
    import asyncio

    from flk.config import Secret
    from gateway.limits import Limiter
    from gateway.tenants import Tenant

    class _Script:
        sha = "0" * 40

    class _Redis:
        def register_script(self, _text: str) -> _Script:
            return _Script()

    class _Batch:
        redis = _Redis()

        def __init__(self) -> None:
            self.calls: list[asyncio.Future[Any]] = []

        def execute(self, *_args: Any, urgent: bool = True) -> asyncio.Future[Any]:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.calls.append(future)
            return future

    async def run() -> None:
        batch = _Batch()
        limiter = Limiter(batch, "test")  # type: ignore[arg-type]
        tenant = Tenant("t", Secret("x" * 20), 1000.0, 1000, 0)
        first = asyncio.ensure_future(limiter.take(tenant))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(limiter.take(tenant))
        await asyncio.sleep(0)
        assert len(batch.calls) == 1  # the second waits on the same call
        first.cancel()
        for _ in range(10):
            await asyncio.sleep(0)
        assert first.cancelled()
        assert len(batch.calls) == 1 and not second.done()  # the call is still in flight
        batch.calls[0].set_result([1, 0, 0, 1])  # one token: the waiter's, not the gone one's
        assert (await asyncio.wait_for(second, 5)).allowed

    asyncio.run(run())
