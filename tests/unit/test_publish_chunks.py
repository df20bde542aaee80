"""The batched publisher's validating side: chunks of whole lines, line numbers, partitions."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from services.operations.publish_chunks import jsonl_chunks, murmur2, partition_of, validate_chunk
from services.operations.publishing import read_lines
from services.sample import generate

pytestmark = pytest.mark.unit
PARTITIONS = {"registered": 6, "moved": 6, "meetings": 1}


def test_murmur2_is_kafkas() -> None:
    rng = random.Random(5)
    keys = [b"", b"a", b"ab", b"abc", b"3316015205900002", b"pleno-dphp-33.16-2024-08-11"]
    keys += [rng.randbytes(rng.randrange(0, 40)) for _ in range(2000)]
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key), key
    # the Java client's own value for a known key (DefaultPartitionerTest-style check)
    assert partition_of(b"3316015205900002", 6) == (aiokafka_murmur2(b"3316015205900002") & 0x7FFFFFFF) % 6


def _file(tmp_path: Path) -> tuple[Path, list[bytes]]:
    lines = list(generate("33.16", 300, 4))
    body = b""
    for i, line in enumerate(lines):
        if i % 50 == 7:
            body += b"\n   \n"  # blank lines: skipped, but counted
        if i % 60 == 11:
            body += b'{"specversion": "1.0", "id": "x"}\n'  # invalid
        if i % 70 == 13:
            body += line.rstrip(b"\n") + b"\r\n"  # CRLF
            continue
        body += line
    body += b"not json at the end, no newline"
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(body)
    return path, lines


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 1 << 20])
def test_chunks_give_the_lines_and_numbers_of_the_per_event_path(tmp_path: Path, chunk_bytes: int) -> None:
    path, lines = _file(tmp_path)
    expected = [(x.line, x.raw) for x in read_lines(path)]  # the per-event path's lines
    seen_valid, seen_rejected = [], []
    chunks = list(jsonl_chunks(path, 10, chunk_bytes))
    assert [c.seq for c in chunks] == list(range(10, 10 + len(chunks)))
    for chunk in chunks:
        res = validate_chunk(chunk, PARTITIONS)
        line_of = {}
        start, number = 0, chunk.first_line
        for raw in chunk.data.split(b"\n"):
            line_of[start] = number
            start += len(raw) + 1
            number += 1
        for kind, part, key, s, e in res.valid:
            seen_valid.append((line_of[s], chunk.data[s:e]))
            assert part == partition_of(key, PARTITIONS[kind])
        seen_rejected.extend(res.rejected)
    assert sorted(seen_valid + [(n, None) for n, _ in seen_rejected], key=lambda x: x[0]) == [
        (n, raw if (n, raw) in seen_valid else None) for n, raw in expected]
    assert [raw for _, raw in seen_valid] == [line.rstrip(b"\n") for line in lines]
    invalid = sum(1 for i in range(len(lines)) if i % 60 == 11) + 1
    assert len(seen_rejected) == invalid and all(reason for _, reason in seen_rejected)
    assert seen_rejected[-1][0] == expected[-1][0]  # the last line, without a newline

