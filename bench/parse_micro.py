"""CPU cost of ``schemas.parsing.parse_event`` per event type (and of ``registration_row``).

    python -m bench.parse_micro [--voters N] [--reps R]

Generates a sample with ``services.sample.generator.write_sample`` into a temporary directory
(cached under /tmp by region/voters/seed), reads its JSONL lines as bytes and times
``parse_event`` over them with ``time.process_time()`` (CPU time: the machine is shared, so wall
time is noisy). Prints microseconds per event for each event type, best of ``--reps`` runs, for
``parse_event(raw)``, ``parse_event(raw, expected_type)`` and ``parse_event_fields(raw,
expected_type)`` (as the consumer calls it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from schemas import regions
from schemas.events import TYPE_VOTER_REGISTERED
from schemas.parsing import parse_event, parse_event_fields
from services.sample.generator import write_sample

REGION = "33.16"
SEED = 1


def _sample(voters: int) -> list[bytes]:
    path = Path(tempfile.gettempdir()) / f"dphp-parse-micro-{REGION}-{voters}-{SEED}.jsonl"
    if not path.exists():
        write_sample(REGION, voters, SEED, path)
    with open(path, "rb") as f:
        return [ln.rstrip(b"\r\n") for ln in f if ln.strip()]


def _type_of(line: bytes) -> str:
    return parse_event(line).type


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voters", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)

    regions.load()
    lines = _sample(args.voters)
    by_type: dict[str, list[bytes]] = defaultdict(list)
    for ln in lines:
        by_type[_type_of(ln)].append(ln)
    counts = ", ".join(f"{t.split('.')[-2]} {len(v)}" for t, v in by_type.items())
    print(f"sample: {len(lines)} events ({counts})")

    best: dict[str, float] = {}
    best_expected: dict[str, float] = {}
    best_fields: dict[str, float] = {}
    best_all = float("inf")
    for _ in range(args.reps):
        t0 = time.process_time()
        for ln in lines:
            parse_event(ln)
        best_all = min(best_all, time.process_time() - t0)
        for t, group in by_type.items():
            t0 = time.process_time()
            for ln in group:
                parse_event(ln)
            el = time.process_time() - t0
            best[t] = min(best.get(t, float("inf")), el)
            # As the consumer calls it: the topic's type given.
            t0 = time.process_time()
            for ln in group:
                parse_event(ln, t)
            el = time.process_time() - t0
            best_expected[t] = min(best_expected.get(t, float("inf")), el)
            # The consumer's path: plain dicts, the topic's type given.
            t0 = time.process_time()
            for ln in group:
                parse_event_fields(ln, t)
            el = time.process_time() - t0
            best_fields[t] = min(best_fields.get(t, float("inf")), el)

    for t, group in by_type.items():
        print(f"parse_event {t:<40} {best[t] / len(group) * 1e6:7.2f} us/event  (n={len(group)})")
    print(f"parse_event {'all (mixed order)':<40} {best_all / len(lines) * 1e6:7.2f} us/event  (n={len(lines)})")
    for t, group in by_type.items():
        print(f"parse_event(raw, expected_type) {t:<20} {best_expected[t] / len(group) * 1e6:7.2f} us/event")
    for t, group in by_type.items():
        print(f"parse_event_fields(raw, expected_type) {t:<13} {best_fields[t] / len(group) * 1e6:7.2f} us/event")

    reg = by_type.get(TYPE_VOTER_REGISTERED)
    if reg:
        from services.projection.store import registration_row

        events = [parse_event_fields(ln) for ln in reg]
        cutoff = dt.date(2024, 8, 11)
        b = float("inf")
        for _ in range(args.reps):
            t0 = time.process_time()
            for e in events:
                registration_row(e, cutoff)
            b = min(b, time.process_time() - t0)
        print(f"registration_row {'':<35} {b / len(events) * 1e6:7.2f} us/event  (n={len(events)})")


if __name__ == "__main__":
    main()
