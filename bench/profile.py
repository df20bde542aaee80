"""Sampling profile of one running service with py-spy (`pip install py-spy` into .venv), summarised.

py-spy attaches to the service process by PID from outside (no change to the service), samples its
Python stacks (idle ones too: the event loop waiting in `select` for PostgreSQL or Kafka) and writes
collapsed stacks; `summarize` groups them by where the time goes.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Leaf-first: the innermost frame that matches decides the category of a sample.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("idle: event loop waits (PostgreSQL, Kafka)", re.compile(r"\bselect \(.*selectors\.py")),
    ("parse + validate events (pydantic)", re.compile(r"\((?:(?:.*/)?schemas/|.*pydantic)")),
    ("build rows (store.*_row)", re.compile(r"^(registration|movement|meeting)_row \((?:.*/)?services/projection/store\.py")),
    ("asyncpg COPY (encode rows, send)", re.compile(r"copy.*\(.*asyncpg/", re.I)),
    ("asyncpg: SQL statements, protocol", re.compile(r"\(.*asyncpg/")),
    ("aiokafka: fetch, decode records, commit", re.compile(r"\(.*aiokafka/")),
    ("FastStream wrapper", re.compile(r"\(.*faststream/")),
    ("ProjectionConsumer.handle (grouping, positions)", re.compile(r"\(.*services/projection/consumer\.py")),
    ("asyncio machinery", re.compile(r"\(.*asyncio/")),
    ("logging", re.compile(r"\(.*logging/")),
]
_THREAD = re.compile(r"_bootstrap \(.*threading\.py")
_IDLE = re.compile(r"(wait|select|get) \(.*(threading|selectors|queue)\.py")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@dataclass
class Spy:
    pid: int
    out: Path
    rate: int = 100
    proc: subprocess.Popen | None = None

    def start(self) -> Spy:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
             "--output", str(self.out), "--nonblocking", "--idle"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    f = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in f:
            f = f.split(marker, 1)[1]
            break
    return f"{m['func']} ({f})"


def summarize(raw: Path, top: int = 15) -> dict:
    """Categories (share of all samples), top functions by self and by inclusive samples."""
    categories: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    other_threads = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if any(_THREAD.search(f) for f in frames[:3]):
            # Not the event loop's thread (an idle anyio worker of FastStream): counted apart.
            other_threads["idle" if _IDLE.search(frames[-1]) else "busy"] += n
            continue
        total += n
        if not frames:
            categories["other (no Python frame)"] += n
            continue
        for frame in reversed(frames):
            for name, rx in CATEGORIES:
                if rx.search(frame):
                    categories[name] += n
                    break
            else:
                continue
            break
        else:
            categories["other"] += n
        self_time[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            inclusive[f] += n
    share = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "other_threads": dict(other_threads),
        "categories": [(k, share(v)) for k, v in categories.most_common()],
        "self": [(k, share(v)) for k, v in self_time.most_common(top)],
        "inclusive": [(k, share(v)) for k, v in inclusive.most_common(top + 12)],
    }


def markdown(summary: dict, what: str) -> str:
    others = summary.get("other_threads") or {}
    lines = [f"Profile of {what}: py-spy, {summary['samples']} samples of the event loop's thread, idle "
             f"included" + (f" (other threads apart: {others.get('idle', 0)} idle, {others.get('busy', 0)} busy)"
                            if others else "") + ".", "",
             "| where the time goes | share |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f}% |" for k, v in summary["categories"]]
    lines += ["", "| top functions (self) | share |", "|---|---:|"]
    lines += [f"| `{k}` | {v:.1f}% |" for k, v in summary["self"]]
    lines += ["", "| top functions (inclusive) | share |", "|---|---:|"]
    lines += [f"| `{k}` | {v:.1f}% |" for k, v in summary["inclusive"]]
    return "\n".join(lines) + "\n"
