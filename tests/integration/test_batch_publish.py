"""The batched publisher against the real broker: each valid line exactly once, each rejected
line reported, also when validating worker processes are killed mid-run."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
from pathlib import Path

import orjson
import psutil
import pytest

from schemas.events import CONTENT_TYPE
from services.common.topics import ensure_topics
from services.operations.batch_publishing import publish_batched
from services.operations.publish_chunks import partition_of
from services.sample.generator import write_sample
from tests.conftest import unique_settings
from tests.integration.test_publish import KIND_OF_TYPE, key_of, read_all_topics

pytestmark = pytest.mark.integration


def _mixed_file(tmp_path: Path) -> tuple[Path, list[bytes], list[int]]:
    """A sample with an invalid line every 997 lines; (file, valid lines, rejected line numbers)."""
    sample = tmp_path / "sample.jsonl"
    write_sample("33.16", 30_000, 21, sample)
    valid, rejected, out = [], [], []
    for i, line in enumerate(sample.read_bytes().splitlines(keepends=True), start=1):
        if i % 997 == 0:
            out.append(b'{"specversion":"1.0","id":"bad-%d","type":"id.go.kpu.dphp.voter-moved.v1"}\n' % i)
            rejected.append(len(out))
        out.append(line)
        valid.append(line.rstrip(b"\n"))
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(out))
    return path, valid, rejected


def _workers_of_this_process() -> list[psutil.Process]:
    """The pool's workers: forked by the forkserver, a child of this process."""
    me = os.getpid()
    return [p for p in psutil.Process(me).children(recursive=True)
            if p.ppid() != me and "multiprocessing.forkserver" in " ".join(p.cmdline())]


async def _check_topics(settings, valid: list[bytes]) -> None:
    by_topic = await read_all_topics(settings)
    published = []
    for kind, records in by_topic.items():
        for r in records:
            doc = orjson.loads(r.value)
            assert KIND_OF_TYPE[doc["type"]] == kind and r.key == key_of(doc)
            assert r.partition == partition_of(r.key, 1 if kind == "meetings" else 6)
            assert dict(r.headers) == {"content-type": CONTENT_TYPE.encode()}
            published.append(r.value)
    assert collections.Counter(published) == collections.Counter(valid)  # each exactly once


@pytest.mark.timeout(600)
@pytest.mark.parametrize("workers", [1, 2])
async def test_each_valid_line_once_and_rejected_ones_reported(stack, tmp_path, workers):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    path, valid, rejected = _mixed_file(tmp_path)
    result = await publish_batched(settings, [path], workers=workers, chunk_bytes=256 * 1024)
    assert result.accepted == len(valid)
    assert [(r["file"], r["line"]) for r in result.rejected] == [(str(path), n) for n in rejected]
    assert all(r["reason"] for r in result.rejected)
    assert result.worker_failures == 0
    await _check_topics(settings, valid)


@pytest.mark.timeout(600)
async def test_killed_workers_lose_and_duplicate_nothing(stack, tmp_path):
    settings = unique_settings(stack)
    await ensure_topics(settings)
    path, valid, rejected = _mixed_file(tmp_path)
    killed: list[int] = []

    async def kill_workers() -> None:  # twice, while chunks are being validated
        while len(killed) < 4:
            await asyncio.sleep(0.05)
            workers = _workers_of_this_process()
            if len(workers) == 2:
                await asyncio.sleep(0.3)
                for p in workers:
                    p.send_signal(signal.SIGKILL)
                    killed.append(p.pid)

    killer = asyncio.create_task(kill_workers())
    result = await publish_batched(settings, [path], workers=2, chunk_bytes=64 * 1024)
    killer.cancel()
    assert killed and result.worker_failures >= 1
    assert result.accepted == len(valid)
    assert [r["line"] for r in result.rejected] == rejected
    await _check_topics(settings, valid)


def test_a_chunk_submitted_to_a_pool_already_broken_is_validated_again(tmp_path):
    """(Worker processes, no broker.) Seen in CI: the validating workers died between two submits, so the next `submit` raised
    BrokenProcessPool out of `dphp publish` instead of validating again with a new pool."""
    import asyncio
    import os
    import signal
    import time as _time

    from services.operations.batch_publishing import Validators, chunks_of
    from services.operations.publish_chunks import validate_chunk

    path = tmp_path / "lines.jsonl"
    path.write_bytes(b'{"not": "an event"}\n' * 3)
    chunk = next(iter(chunks_of([path])))
    partitions = {"registered": 6, "moved": 6, "meetings": 1}
    validators = Validators(2, partitions)
    try:
        validators._start_pool()
        validators.pool.submit(os.getpid).result(timeout=60)  # the workers exist
        for pid in list(validators.pool._processes):
            os.kill(pid, signal.SIGKILL)
        deadline = _time.monotonic() + 30
        while not validators.pool._broken and _time.monotonic() < deadline:
            _time.sleep(0.05)
        assert validators.pool._broken, "the pool did not notice its workers died"
        validators.submit(chunk)
        got = asyncio.run(validators.result(chunk.seq))
        want = validate_chunk(chunk, partitions)
        assert (got.seq, got.rejected, got.valid) == (want.seq, want.rejected, want.valid)
        assert validators.failures == 1
    finally:
        validators.close()
