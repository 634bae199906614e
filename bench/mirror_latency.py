"""MirrorMaker 2 replication latency, per direction: produce stamped records to
`flk.wal` of one region and time their arrival in the other region's mirror.

    .venv/bin/python bench/mirror_latency.py [--records 200] [--rate 50]

Records carry WAL headers of the reserved tenant `~bench` (unknown to every key set, so the
dedup stage rejects them without touching its tables). Writes bench/results/mirror_latency.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from infra.layout import Region, load_layout
from topics.catalogue import WAL, WAL_PARTITIONS, mirrored_wal
from topics.wal import PARTITIONER, Stamp, WalHeaders


def _consume(dst: Region, topic: str, want: set[bytes], arrivals: dict[bytes, float],
             ready: threading.Event, deadline: float) -> None:  # fmt: skip
    consumer = Consumer({"bootstrap.servers": dst.kafka_bootstrap, "group.id": "bench-mirror",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 200})  # fmt: skip
    parts = []
    for p in range(WAL_PARTITIONS):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        parts.append(TopicPartition(topic, p, high))
    consumer.assign(parts)
    ready.set()
    while len(arrivals) < len(want) and time.monotonic() < deadline:
        msg = consumer.poll(0.05)
        key = msg.key() if msg is not None and not msg.error() else None
        if key is not None and key in want:
            arrivals[key] = time.time()
    consumer.close()


def run(src: Region, dst: Region, records: int, rate: float) -> dict[str, object]:
    keys = [f"~bench/{uuid.uuid4().hex}".encode() for _ in range(records)]
    arrivals: dict[bytes, float] = {}
    sent: dict[bytes, float] = {}
    ready = threading.Event()
    t = threading.Thread(target=_consume, args=(dst, mirrored_wal(src.name), set(keys), arrivals,
                                                ready, time.monotonic() + 60 + records / rate))
    t.start()
    ready.wait(30)
    producer = Producer({"bootstrap.servers": src.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 0,
                         "partitioner": PARTITIONER})  # fmt: skip
    for key in keys:
        now = time.time()
        headers = WalHeaders("~bench", src.name, key.decode(), Stamp(int(now * 1000)),
                             "0" * 64, "bench", "bench", None)  # fmt: skip
        producer.produce(WAL, key=key, value=b"{}", headers=list(headers.encode()))
        sent[key] = now
        producer.poll(0)
        time.sleep(1 / rate)
    producer.flush(10)
    t.join()
    lat = sorted((arrivals[k] - sent[k]) * 1000 for k in keys if k in arrivals)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    return {"direction": f"{src.name}->{dst.name}", "records": records, "arrived": len(lat),
            "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1), "max_ms": round(lat[-1], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--rate", type=float, default=50.0, help="records per second")
    args = ap.parse_args()
    layout = load_layout()
    a, b = layout.regions[0], layout.regions[1]
    results = [run(a, b, args.records, args.rate), run(b, a, args.records, args.rate)]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())  # fmt: skip
    out = {"benchmark": "mirror_latency", "cpu": cpu, "cores": __import__("os").cpu_count(),
           "command": f"bench/mirror_latency.py --records {args.records} --rate {args.rate}",
           "results": results}  # fmt: skip
    path = Path(__file__).parent / "results" / "mirror_latency.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
