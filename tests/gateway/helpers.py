"""Shared helpers of the gateway tests: signed bodies with the development keys, tenants-file
edits that the running gateways pick up, WAL reads and metric scrapes."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from flk_pcs import Ed25519Signer, HmacSigner, Signer, build_pcs, encode_body, sign_pcs
from prometheus_client.parser import text_string_to_metric_families

from gateway.devkeys import load_signing_keys, tenants_path
from gateway.tenants import write_tenants
from infra.layout import Layout, Region


def signer_for(home: Path, tenant: str) -> Signer:
    key = load_signing_keys(home)[tenant]
    if key["alg"] == "hmac":
        return HmacSigner(key["secret"])
    return Ed25519Signer(base64.b64decode(key["seed"]))


def new_pcs(**overrides: Any) -> dict[str, Any]:
    """An unsigned PCS that verifies as accepted under the default policy (unique pcs_id)."""
    args: dict[str, Any] = {
        "merkle_root": secrets.token_hex(32), "epoch": 1, "shard_id": "shard-gw",
        "scales": [2, 4, 8, 16], "N_j": {"2": 3, "4": 9, "8": 27, "16": 81},
        "coh_star": 0.8, "r": 0.5,
    }  # fmt: skip
    args.update(overrides)
    pcs: dict[str, Any] = build_pcs(**args)
    return pcs


def signed_body(home: Path, tenant: str, **overrides: Any) -> tuple[dict[str, Any], bytes]:
    pcs = sign_pcs(new_pcs(**overrides), signer_for(home, tenant))
    return pcs, encode_body(pcs)


def tenants_doc(home: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(tenants_path(home).read_text())
    return doc


def read_token(home: Path, tenant: str) -> str:
    return str(tenants_doc(home)["tenants"][tenant]["read_token"])


def ready_facts(region: Region, k: int) -> dict[str, Any]:
    facts: dict[str, Any] = httpx.get(region.gateway_url(k) + "/readyz", timeout=2).json()
    return facts


def wait_keyset(layout: Layout, version: str, n_gateways: int = 2, timeout: float = 15) -> None:
    """Until every gateway process of every region has the key set `version` in force."""
    deadline = time.monotonic() + timeout
    for region in layout.regions:
        for k in range(n_gateways):
            while ready_facts(region, k)["keyset_version"] != version:
                assert time.monotonic() < deadline, f"{region.name}/{k} did not reload"
                time.sleep(0.2)


@contextlib.contextmanager
def extra_tenants(layout: Layout, tenants: dict[str, Any]) -> Iterator[str]:
    """Add tenants to the running platform's tenants file; restored afterwards. Yields the
    key-set version with them in force (every gateway has reloaded)."""
    from flk_pcs import keyset_from_mapping

    from gateway.tenants import parse_tenants

    path = tenants_path(layout.home)
    original = path.read_bytes()
    doc = yaml.safe_load(original)
    doc["tenants"].update(tenants)
    write_tenants(path, doc)
    version = keyset_from_mapping(parse_tenants(doc).keyset_document).version
    try:
        wait_keyset(layout, version)
        yield version
    finally:
        tmp = path.with_name(".restore.tmp")
        tmp.write_bytes(original)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        restored = keyset_from_mapping(
            parse_tenants(yaml.safe_load(original)).keyset_document).version
        wait_keyset(layout, restored)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, keyed by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    text = httpx.get(url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wal_ends(region: Region, topic: str = "flk.wal") -> dict[int, int]:
    """High watermark of every partition of `topic` now."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "flk-test-unused",
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=5).topics[topic]
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                for p in md.partitions}
    finally:
        c.close()


def wal_records(region: Region, since: dict[int, int], request_ids: set[str],
                topic: str = "flk.wal", timeout: float = 10) -> dict[str, Any]:
    """The WAL messages written after `since` whose flk-request-id is in `request_ids`."""
    from confluent_kafka import Consumer, TopicPartition

    from topics.wal import WalHeaders

    c = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "flk-test-unused",
                  "enable.auto.commit": False})
    found: dict[str, Any] = {}
    try:
        c.assign([TopicPartition(topic, p, off) for p, off in since.items()])
        deadline = time.monotonic() + timeout
        while len(found) < len(request_ids) and time.monotonic() < deadline:
            for msg in c.consume(500, timeout=0.5):
                if msg.error() is not None:
                    continue
                h = WalHeaders.decode(msg.headers())  # type: ignore[arg-type]
                if h.request_id in request_ids:
                    found[h.request_id] = msg
    finally:
        c.close()
    return found
