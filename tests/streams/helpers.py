"""Pieces shared by the streams tests."""

from __future__ import annotations

from streams.dedup import BatchResult, DedupStage
from streams.verify import WalMessage


class MemoryTable:
    """A table that applies a batch's writes the way the worker commits them."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, bytes], bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get((partition, key))

    def run(self, stage: DedupStage, batch: list[WalMessage]) -> BatchResult:
        res = stage.process(batch, self)
        self.data.update(res.writes)
        return res


class BatchedMemoryTable(MemoryTable):
    """A MemoryTable that also offers `get_many`, as the worker's RocksDB view does."""

    def __init__(self) -> None:
        super().__init__()
        self.many_calls = 0

    def get_many(self, partition: int, keys: list[bytes]) -> list[bytes | None]:
        self.many_calls += 1
        return [self.data.get((partition, k)) for k in keys]
