"""`dphp sample --region 33` as a user runs it: a province streamed to disk with bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ROOT

pytestmark = pytest.mark.e2e

# The child's peak RSS, measured by a fresh interpreter that has no other child.
_PEAK = ("import resource, subprocess, sys\n"
         "r = subprocess.run(sys.argv[1:], capture_output=True)\n"
         "sys.stderr.write(r.stderr.decode())\n"
         "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n")


def _peak_mb(out: Path, voters: int) -> int:
    cmd = [sys.executable, "-c", _PEAK, sys.executable, "-m", "services.cli", "sample", "--region", "33",
           "--voters", str(voters), "--seed", "7", "--out", str(out), "--quiet", "--format", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    rc, peak = done.stdout.split()
    assert rc == "0", done.stderr
    return int(peak)


def test_memory_does_not_grow_with_the_province(tmp_path: Path) -> None:
    small = _peak_mb(tmp_path / "small.jsonl", 20_000)
    large = _peak_mb(tmp_path / "large.jsonl", 1_000_000)
    size_mb = (tmp_path / "large.jsonl").stat().st_size / 2**20
    assert size_mb > 500  # 50 times the voters, about 560 MB on disk ...
    assert large - small < 60, (small, large)  # ... and a few tens of MB more memory (one kabupaten's state)


def test_summary_and_progress(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    done = subprocess.run([sys.executable, "-m", "services.cli", "sample", "--region", "33", "--voters", "5000",
                           "--out", str(out), "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["region_name"] == "Jawa Tengah" and summary["voters"] == 5000
    assert summary["events"] == sum(1 for _ in out.open("rb"))
    assert "5000/5000" in done.stderr  # the progress bar's last state


@pytest.mark.parametrize(("region", "message"), [("99", "unknown provinsi code '99'"),
                                                 ("32", "give --voters for provinsi 32")])
def test_bad_province(tmp_path: Path, region: str, message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "services.cli", "sample", "--region", region,
                           "--out", str(tmp_path / "x.jsonl")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
