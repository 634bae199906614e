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
