"""Helpers for the streams tests against the running platform: watch topics from the moment a
test starts, submit WAL records the way a gateway does, read the outcome store, drive workers.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.layout import WORKER_WEB, Layout, Region
from schemas.codec import codec
from streams import store, walgen
from streams.settings import dedup_group
from topics.catalogue import REPLIES, WAL
from topics.wal import ReplyTo, Stamp

REPLY_PARTITION = 7  # no gateway process reads it with the default FLK_GATEWAYS=2
REPLY_TO = ReplyTo(REPLIES, REPLY_PARTITION)
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0,
             every: float = 0.2) -> T:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def changelog(region: Region) -> str:
    return f"{dedup_group(region.name)}-dedup-changelog"


def store_mismatches(region: Region, k: int, since: dict[int, int]) -> dict[int, list[int]]:
    """For a stopped worker `k`: per table partition, the changelog offsets (at or after
    `since`, up to the offset its store says it holds) whose key the store does not hold
    with that record's value (the latest up to that offset). A store that skipped changelog
    records (a standby that lost a stretch: streams/faustfix.py) shows them here."""
    import rocksdict

    from streams.app import OFFSET_KEY
    from streams.settings import load_settings

    tables = load_settings(region.name, k).data_dir / "v1" / "tables"
    consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "flk-test-store",
                         "enable.auto.commit": False})  # fmt: skip
    topic = changelog(region)
    out: dict[int, list[int]] = {}
    try:
        for p, start in sorted(since.items()):
            path = tables / f"dedup-{p}.db"
            if not path.exists():
                continue
            db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                                 access_type=rocksdict.AccessType.read_only())  # fmt: skip
            try:
                raw = db.get(OFFSET_KEY)
                held = -1 if raw is None else int(raw)
                if held < start:
                    continue
                latest: dict[bytes, tuple[int, bytes | None]] = {}
                consumer.assign([TopicPartition(topic, p, start)])
                read = start - 1
                while read < held:
                    msgs = consumer.consume(num_messages=5000, timeout=5.0)
                    if not msgs:
                        break
                    for m in msgs:
                        if m.error() is not None:
                            continue
                        offset = m.offset() or 0
                        read = max(read, offset)
                        if offset <= held:
                            latest[m.key() or b""] = (offset, m.value())
                wrong = sorted(o for key, (o, v) in latest.items() if db.get(key) != v)
                if wrong:
                    out[p] = wrong
            finally:
                db.close()
    finally:
        consumer.close()
    return out


@dataclass
class Seen:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


class Watch:
    """Everything appended to `topic` in `region` after the watch was created."""

    def __init__(self, region: Region, topic: str, partitions: Iterable[int] | None = None
                 ) -> None:  # fmt: skip
        self.topic = topic
        self.consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap,
                                  "group.id": f"test-watch-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False})  # fmt: skip
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        parts = sorted(meta.partitions) if partitions is None else list(partitions)
        start = []
        for p in parts:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            start.append(TopicPartition(topic, p, high))
        self.consumer.assign(start)
        self.seen: list[Seen] = []

    def poll(self, seconds: float = 0.3) -> list[Seen]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for m in self.consumer.consume(num_messages=5000, timeout=0.1):
                if m.error() is None:
                    raw: Any = m.headers() or []
                    self.seen.append(Seen(m.key(), m.value(), {k: v or b"" for k, v in raw},
                                          m.partition() or 0, m.offset() or 0))  # fmt: skip
        return self.seen

    def by_key(self) -> dict[bytes, list[Seen]]:
        out: dict[bytes, list[Seen]] = defaultdict(list)
        for s in self.seen:
            out[s.key or b""].append(s)
        return out

    def close(self) -> None:
        self.consumer.close()


class Replies(Watch):
    def __init__(self, region: Region) -> None:
        super().__init__(region, REPLIES, [REPLY_PARTITION])

    def of(self, request_ids: Iterable[str]) -> dict[str, list[bytes]]:
        wanted = set(request_ids)
        out: dict[str, list[bytes]] = defaultdict(list)
        for s in self.seen:
            rid = (s.key or b"").decode()
            if rid in wanted and s.value is not None:
                out[rid].append(s.value)
        return out

    def wait(self, request_ids: Iterable[str], timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        """The first reply of each request id (waits for all)."""
        wanted = set(request_ids)

        def all_there() -> dict[str, list[bytes]] | None:
            self.poll(0.2)
            got = self.of(wanted)
            return got if set(got) >= wanted else None

        got = wait_for(f"replies to {len(wanted)} requests", all_there, timeout, every=0)
        return {rid: codec("reply").decode(values[0]) for rid, values in got.items()}


def latest_outcomes(watch: Watch, keys: Iterable[bytes]) -> dict[bytes, bytes]:
    by_key = watch.by_key()
    return {k: by_key[k][-1].value for k in keys if k in by_key and by_key[k][-1].value}  # type: ignore[misc]


class Submitter:
    """Appends WAL records as a gateway of `region` does (acks=all, idempotent)."""

    def __init__(self, layout: Layout, region: Region, versions: walgen.Versions) -> None:
        self.region = region
        self.versions = versions
        self.producer: Producer = walgen.producer(region.kafka_bootstrap)
        self.clock = walgen.Clock()
        self.acked: list[str] = []
        self._lock = threading.Lock()

    def record(self, data: bytes, *, tenant: str = "st-a", rid: str | None = None,
               ms: int | None = None, reply: bool = True) -> walgen.WalRecord:  # fmt: skip
        stamp = self.clock.now() if ms is None else Stamp(ms, 0)
        return walgen.wal_record(data, tenant=tenant, origin=self.region.name,
                                 request_id=rid or f"t-{uuid.uuid4().hex[:12]}", stamp=stamp,
                                 versions=self.versions, reply_to=REPLY_TO if reply else None)

    def send(self, records: Iterable[walgen.WalRecord], wait: bool = True) -> list[str]:
        """Append; the request ids acknowledged by the broker are added to `acked`."""
        sent = []
        for r in records:
            def delivered(err: Any, msg: Any, rid: str = r.request_id) -> None:
                if err is None:
                    with self._lock:
                        self.acked.append(rid)

            while True:
                try:
                    self.producer.produce(WAL, r.value, r.key, headers=r.headers,  # type: ignore[arg-type]
                                          on_delivery=delivered)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            sent.append(r.request_id)
        self.producer.poll(0)
        if wait:
            assert self.producer.flush(30) == 0
        return sent


def new_root(rng: random.Random | None = None) -> str:
    return f"{(rng or random).getrandbits(256):064x}"


def key_of(tenant: str, data: bytes) -> bytes:
    return f"{tenant}/{walgen.pcs_id_of(data)}".encode()


def outcome(value: bytes | None) -> dict[str, Any]:
    assert value is not None
    return codec("outcome").decode(value)


def status(region: Region, index: int = 0) -> dict[str, Any]:
    try:
        data: dict[str, Any] = httpx.get(
            f"http://127.0.0.1:{region.port(WORKER_WEB + index)}/status", timeout=3).json()
        return data
    except (httpx.HTTPError, ValueError):
        return {}


def metric(region: Region, name: str, index: int = 0) -> float:
    text = httpx.get(f"http://127.0.0.1:{region.port(WORKER_WEB + index)}/metrics",
                     timeout=3).text  # fmt: skip
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def db_outcome(region: Region, tenant: str, pcs_id: str) -> dict[str, Any] | None:
    with psycopg.connect(region.postgres_dsn) as conn:
        return store.get_outcome(conn, tenant, pcs_id)


def db_request(region: Region, tenant: str, request_id: str) -> dict[str, Any] | None:
    with psycopg.connect(region.postgres_dsn) as conn:
        return store.get_request(conn, tenant, request_id)


@dataclass
class Load:
    """Steady WAL traffic in a thread: new keys, plus duplicates of earlier ones."""

    sub: Submitter
    rate: float = 300.0
    dup_share: float = 0.2
    rng: random.Random = field(default_factory=random.Random)  # fresh keys every run
    keys: dict[bytes, list[str]] = field(default_factory=lambda: defaultdict(list))
    bodies: list[tuple[bytes, bytes]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        step = 0.05
        per_step = max(1, int(self.rate * step))
        while not self._stop.is_set():
            t0 = time.monotonic()
            batch = []
            for _ in range(per_step):
                if self.bodies and self.rng.random() < self.dup_share:
                    key, data = self.rng.choice(self.bodies)
                else:
                    data = walgen.body("st-a", self.rng)
                    key = key_of("st-a", data)
                    self.bodies.append((key, data))
                r = self.sub.record(data)
                self.keys[key].append(r.request_id)
                batch.append(r)
            self.sub.send(batch, wait=False)
            time.sleep(max(0.0, step - (time.monotonic() - t0)))
        assert self.sub.producer.flush(60) == 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(90)
