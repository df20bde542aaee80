"""`dphp publish`, the batched path: validation in worker processes, records appended straight to
the producer's per-partition batches (one idempotent producer, acks=all).

    result = await publish_batched(settings, [Path("jateng.jsonl")])

The files are cut into chunks of whole lines (`publish_chunks`); up to two chunks per worker are
being validated at a time (memory stays bounded); results are taken in file order, so each
partition receives its records in file order, as with the per-event path. A chunk's valid lines
are appended to the open batch of their topic and partition, and a full batch is handed to the
producer (`send_batch`): no future per event, no partitioner call in this process.

A worker that dies (killed, out of memory) takes no record with it: workers only validate, and this
process alone sends. The pool is started again and every chunk without a result is validated
again; a chunk that has broken the pool twice is validated here. So each valid line is published
exactly once and each rejected one is reported, whatever happens to the workers.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import Settings
from services.operations.publish_chunks import CHUNK_BYTES, Chunk, ChunkResult, csv_chunks, jsonl_chunks, validate_chunk
from services.operations.publishing import PublishResult

log = logging.getLogger("dphp.publish")
#: Attempts of a chunk in the pool before it is validated in this process.
POOL_ATTEMPTS = 2


def worker_count(settings: Settings) -> int:
    return settings.publish_workers or os.cpu_count() or 1


def chunks_of(files: list[Path], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    seq = 0
    for path in files:
        source = csv_chunks(path, seq) if path.suffix.lower() == ".csv" else jsonl_chunks(path, seq, chunk_bytes)
        for chunk in source:
            seq = chunk.seq + 1
            yield chunk


class Validators:
    """Validates chunks in a process pool (or here, with one worker), results in submission order."""

    def __init__(self, workers: int, partitions: dict[str, int]) -> None:
        self.workers = workers
        self.partitions = partitions
        self.pool: ProcessPoolExecutor | None = None
        self.chunks: dict[int, Chunk] = {}
        self.futures: dict[int, Future] = {}
        self.attempts: dict[int, int] = {}
        self.failures = 0  # times the pool broke

    def _start_pool(self) -> None:
        if self.workers > 1:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["services.operations.publish_chunks", "schemas.parsing"])
            self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx)

    @property
    def window(self) -> int:
        return 2 * self.workers if self.workers > 1 else 1

    def submit(self, chunk: Chunk) -> None:
        self.chunks[chunk.seq] = chunk
        self.attempts[chunk.seq] = 0
        if self.workers > 1:
            if self.pool is None:
                self._start_pool()
            self.futures[chunk.seq] = self._submit(chunk.seq)

    def _submit(self, seq: int) -> Future:
        """The chunk's validation in the pool; a pool already broken (a worker died since the last
        look) gives a future failed with BrokenProcessPool, which `result` handles as any other."""
        try:
            return self.pool.submit(validate_chunk, self.chunks[seq], self.partitions)  # type: ignore[union-attr]
        except BrokenProcessPool as exc:
            failed: Future = Future()
            failed.set_exception(exc)
            return failed

    async def result(self, seq: int) -> ChunkResult:
        try:
            while seq in self.futures and self.attempts[seq] < POOL_ATTEMPTS:
                try:
                    return await asyncio.wrap_future(self.futures[seq])
                except BrokenProcessPool:
                    self._restart(seq)
            return validate_chunk(self.chunks[seq], self.partitions)
        finally:
            self.chunks.pop(seq, None)
            self.futures.pop(seq, None)
            self.attempts.pop(seq, None)

    def _restart(self, seq: int) -> None:
        """A worker died: a new pool, and every chunk without a result submitted again. The awaited
        chunk `seq` counts an attempt (it may be the one that kills workers); past `POOL_ATTEMPTS`
        a chunk is validated in this process instead."""
        self.failures += 1
        self.attempts[seq] += 1
        log.warning("a validating worker process died; validating its chunks again (%d)", self.failures)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self._start_pool()
        assert self.pool is not None
        for s, fut in list(self.futures.items()):
            if s != seq and fut.done() and not fut.cancelled() and fut.exception() is None:
                continue  # its result came before the pool broke
            if self.attempts[s] >= POOL_ATTEMPTS:
                del self.futures[s]
                continue
            self.futures[s] = self._submit(s)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Acks:
    result: PublishResult
    progress: Callable[[int], None] | None
    pending: list[tuple[asyncio.Future, int]]

    async def settle(self, keep: int) -> None:
        """Waits for the oldest batches until at most `keep` are unacknowledged."""
        while len(self.pending) > keep:
            fut, n = self.pending.pop(0)
            await fut
            self.result.accepted += n
            if self.progress:
                self.progress(n)


async def publish_batched(settings: Settings, files: list[Path], progress: Callable[[int], None] | None = None,
                          workers: int | None = None, chunk_bytes: int = CHUNK_BYTES) -> PublishResult:
    """Validates every line of the files and publishes the valid events (the result and the
    rejected lines as `publishing.publish` gives them); `progress(n)` after each n acknowledged."""
    from schemas.events import CONTENT_TYPE
    from services.common.kafka import kafka_producer
    from services.common.topics import INPUT_MAX_MESSAGE_BYTES

    topics = {"registered": settings.topic_registered, "moved": settings.topic_moved,
              "meetings": settings.topic_meetings}
    headers = [("content-type", CONTENT_TYPE.encode())]
    result = PublishResult()
    producer = kafka_producer(settings, linger_ms=settings.publish_linger_ms,
                              max_batch_size=settings.publish_batch_bytes, request_timeout_ms=30000,
                              max_request_size=INPUT_MAX_MESSAGE_BYTES,
                              compression_type=settings.publish_compression)
    try:
        await asyncio.wait_for(producer.start(), 20)
    except BaseException:
        await producer.stop()
        raise
    started = time.monotonic()
    acks = _Acks(result, progress, [])
    validators: Validators | None = None
    try:
        partitions = {}
        for kind, topic in topics.items():
            found = await asyncio.wait_for(producer.partitions_for(topic), 30)
            partitions[kind] = len(found)
        validators = Validators(workers or worker_count(settings), partitions)
        open_batches: dict[tuple[str, int], object] = {}

        async def send(kind: str, part: int) -> None:
            batch = open_batches.pop((kind, part))
            fut = await producer.send_batch(batch, topics[kind], partition=part)
            acks.pending.append((fut, batch.record_count()))  # type: ignore[attr-defined]
            await acks.settle(keep=64)

        async def take(seq: int) -> None:
            res = await validators.result(seq)  # type: ignore[union-attr]
            chunk_file = files_by_seq.pop(seq)
            result.rejected.extend({"file": chunk_file, "line": line, "reason": reason}
                                   for line, reason in res.rejected)
            data = datas.pop(seq)
            for kind, part, key, start, end in res.valid:
                value = res.values[start] if res.values is not None else data[start:end]
                batch = open_batches.get((kind, part))
                if batch is None:
                    batch = open_batches[(kind, part)] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # type: ignore[attr-defined]
                    await send(kind, part)
                    batch = open_batches[(kind, part)] = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=headers)  # type: ignore[attr-defined]

        files_by_seq: dict[int, str] = {}
        datas: dict[int, bytes] = {}
        queued: list[int] = []
        for chunk in chunks_of(files, chunk_bytes):
            files_by_seq[chunk.seq] = chunk.file
            datas[chunk.seq] = chunk.data
            validators.submit(chunk)
            queued.append(chunk.seq)
            while len(queued) >= validators.window:
                await take(queued.pop(0))
        while queued:
            await take(queued.pop(0))
        for kind, part in list(open_batches):
            await send(kind, part)
        await acks.settle(keep=0)
        await producer.flush()
    finally:
        if validators is not None:
            validators.close()
            result.worker_failures = validators.failures
        await producer.stop()
    result.seconds = time.monotonic() - started
    return result
