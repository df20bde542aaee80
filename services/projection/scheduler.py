"""The lane scheduler: the batches being stored, in order, at most `batches_in_flight` at a time.

Each batch has a part per lane; a lane's part waits for the lane's part of the batch before
(stored first, on the same connection), not for the other lanes. When a part fails, the later
parts of its lane are not stored (`EarlierBatchFailed`), and `settle` names the partitions of
every failed part, so that the caller reads their positions again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


class EarlierBatchFailed(Exception):
    """A lane's part of a batch was not stored because the lane's part of the batch before failed."""


@dataclass
class LaneTask:
    lane: int
    task: asyncio.Task
    partitions: Sequence[Hashable]  # what this part advances


@dataclass
class InFlightBatch:
    parts: list[LaneTask] = field(default_factory=list)


@dataclass
class Settled:
    error: BaseException | None = None  # the first failure, if any
    failed_partitions: list[Hashable] = field(default_factory=list)


class LaneScheduler:
    def __init__(self, lanes: int, batches_in_flight: int) -> None:
        self.lanes = lanes
        self.batches_in_flight = batches_in_flight
        self._inflight: deque[InFlightBatch] = deque()
        self._tail: list[asyncio.Task | None] = [None] * lanes

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def __len__(self) -> int:
        return len(self._inflight)

    def submit(self, parts: dict[int, tuple[Sequence[Hashable], Callable[[], Awaitable[Any]]]],
               skipped: Callable[[int], None] = lambda lane: None) -> None:
        """Starts a batch: per lane, the partitions its part advances and the work that stores it.
        `skipped(lane)` is called at once when a part is not stored because the lane's part before
        failed."""
        batch = InFlightBatch()
        for lane, (partitions, store) in sorted(parts.items()):
            task = asyncio.create_task(self._after(self._tail[lane], store, lambda lane=lane: skipped(lane)))
            self._tail[lane] = task
            batch.parts.append(LaneTask(lane, task, partitions))
        self._inflight.append(batch)

    async def settle(self, keep: int = 0) -> Settled:
        """Waits for the oldest batches until `keep` remain; reports the failures."""
        settled = Settled()
        while len(self._inflight) > keep:
            for part in self._inflight.popleft().parts:
                try:
                    await part.task
                except Exception as exc:  # noqa: BLE001 - returned to the caller
                    settled.failed_partitions.extend(part.partitions)
                    if settled.error is None:
                        settled.error = exc
        if not self._inflight:
            self._tail = [None] * self.lanes
        return settled

    async def room(self) -> Settled:
        """Waits until another batch may start (fewer than `batches_in_flight` in flight)."""
        return await self.settle(keep=self.batches_in_flight - 1)

    @staticmethod
    async def _after(before: asyncio.Task | None, store: Callable[[], Awaitable[Any]],
                     skipped: Callable[[], None]) -> Any:
        if before is not None:
            try:
                await before
            except Exception:  # noqa: BLE001 - reported by that part
                skipped()
                raise EarlierBatchFailed() from None
        return await store()
