"""The validating side of `dphp publish`: files cut into chunks of whole lines, each chunk validated
(in a worker process or in the publishing process) into records ready for the producer's batches.

A chunk's result names each valid line by its span in the chunk (the publishing process holds the
bytes), its topic kind, its key and its partition, computed as the Kafka clients' default
partitioner does (murmur2 of the key), so that a NIK goes to the same partition as with any client.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Bytes of whole lines in a JSONL chunk (one line longer than this makes a chunk of its own).
CHUNK_BYTES = 1 << 20
#: Rows of a CSV chunk (CSV rows are converted to JSON in the publishing process).
CSV_CHUNK_ROWS = 2000


@dataclass
class Chunk:
    """Lines `first_line`... of `file`: either `data` (JSONL bytes of whole lines) or `rows`
    ((line, JSON bytes or None, reason) from CSV)."""

    seq: int
    file: str
    first_line: int
    data: bytes = b""
    rows: list[tuple[int, bytes | None, str]] = field(default_factory=list)


@dataclass
class ChunkResult:
    seq: int
    #: (kind, partition, key, start, end): the value is data[start:end] (CSV: rows' JSON, see `values`)
    valid: list[tuple[str, int, bytes, int, int]]
    rejected: list[tuple[int, str]]  # (line, reason)
    values: list[bytes] | None = None  # CSV: the JSON of each valid row, start indexing it


_FOUR = struct.Struct("<4I")
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as aiokafka's
    `aiokafka.partitioner.murmur2` computes it, a few times faster (whole words at once)."""
    length = len(data)
    h = 0x9747B28C ^ length
    n4 = length // 4
    words = _FOUR.unpack_from(data) if n4 == 4 else struct.unpack_from(f"<{n4}I", data)
    for k in words:
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        tail = length & ~3
        if extra >= 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: bytes, partitions: int) -> int:
    """The default partitioner's choice for a key (positive murmur2 modulo the partition count)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def jsonl_chunks(path: Path, seq: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks of whole lines; line numbers count every physical line (1-based). `seq` numbers the
    first chunk; the caller counts on from the last one's."""
    first_line = 1
    rest = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            chunk, rest = data[:cut], data[cut:]
            yield Chunk(seq, str(path), first_line, data=chunk)
            seq += 1
            first_line += chunk.count(b"\n")
    if rest:
        yield Chunk(seq, str(path), first_line, data=rest)


def csv_chunks(path: Path, seq: int, rows: int = CSV_CHUNK_ROWS) -> Iterator[Chunk]:
    from services.operations.publishing import read_lines

    current: list[tuple[int, bytes | None, str]] = []
    for line in read_lines(path):
        if line.raw.startswith(b"\x00csv:"):
            current.append((line.line, None, line.raw[5:].decode()))
        else:
            current.append((line.line, line.raw, ""))
        if len(current) >= rows:
            yield Chunk(seq, str(path), current[0][0], rows=current)
            seq += 1
            current = []
    if current:
        yield Chunk(seq, str(path), current[0][0], rows=current)


def _check(raw: bytes, partitions: dict[str, int]) -> tuple[str, int, bytes] | str:
    """(kind, partition, key) of a valid event, or the reason it is not."""
    from schemas.parsing import KIND_BY_TYPE, InvalidEvent, parse_event_fields

    try:
        event = parse_event_fields(raw)
    except InvalidEvent as exc:
        return exc.reason
    kind = KIND_BY_TYPE[event["type"]]
    data = event["data"]
    key = (data["meeting_id"] if kind == "meetings" else data["nik"]).encode()
    return kind, partition_of(key, partitions[kind]), key


def validate_chunk(chunk: Chunk, partitions: dict[str, int]) -> ChunkResult:
    """Validates every line of a chunk (CONTRACT 2, as `parse_event`): the worker processes' job."""
    valid: list[tuple[str, int, bytes, int, int]] = []
    rejected: list[tuple[int, str]] = []
    if chunk.rows:
        values: list[bytes] = []
        for line, raw, reason in chunk.rows:
            got = reason if raw is None else _check(raw, partitions)
            if isinstance(got, str):
                rejected.append((line, got))
            else:
                valid.append((*got, len(values), 0))
                values.append(raw)  # type: ignore[arg-type]
        return ChunkResult(chunk.seq, valid, rejected, values)
    data = chunk.data
    line = chunk.first_line
    start = 0
    for raw in data.split(b"\n"):
        end = start + len(raw)
        if raw.strip():
            value_end = end
            while value_end > start and data[value_end - 1] in (13, 10):  # raw.rstrip(b"\r\n")
                value_end -= 1
            got = _check(data[start:value_end], partitions)
            if isinstance(got, str):
                rejected.append((line, got))
            else:
                valid.append((*got, start, value_end))
        start = end + 1
        line += 1
    return ChunkResult(chunk.seq, valid, rejected)
