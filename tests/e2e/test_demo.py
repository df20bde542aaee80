"""`make demo` from a fresh clone, as a new user runs it; its printed totals against the fold."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from schemas.parsing import parse_event
from services.devstack.process import free_port
from services.projection.fold import Projection

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(33\.16(?:\.\d\d)?)\s+.+?\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$")
MEETING = re.compile(r"^(\S+)\s+(\S+)/(\d+)\s+(\S+)/(\d+)\s+(\S+)/(\d+)\s+(\S+)/(\d+)")


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    target = tmp_path / "dphp"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    return target


def test_make_demo_from_a_fresh_clone(clone: Path):
    # The clone starts a stack of its own on free ports, so that nothing else is disturbed.
    env = dict(os.environ,
               DPHP_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
               DPHP_DATABASE_URL=f"postgresql://dphp@127.0.0.1:{free_port()}/dphp",
               DPHP_WEB_PORT=str(free_port()))
    env.pop("DPHP_STATE_DIR", None)
    env.pop("VIRTUAL_ENV", None)
    # As a user's shell runs it, not as a sub-make of `make test` (which prints "Leaving directory").
    for name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS"):
        env.pop(name, None)
    try:
        result = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=1500)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        # It ends with the web address of Blora's recap, whose page shows the printed figures.
        last = result.stdout.strip().splitlines()[-1]
        address = last.rsplit(" ", 1)[1]
        assert address == f"http://127.0.0.1:{env['DPHP_WEB_PORT']}/region/33.16", last
        web_rows = web_kecamatan_rows(address)
    finally:
        subprocess.run([str(clone / ".venv" / "bin" / "dphp"), "dev", "down"], cwd=clone, env=env,
                       capture_output=True, timeout=120)
    printed = result.stdout.splitlines()
    rows = {m.group(1): tuple(int(g) for g in m.groups()[1:]) for m in map(ROW.match, printed) if m}
    meetings = {m.group(1): m.groups()[1:] for m in map(MEETING.match, printed) if m}

    sample = clone / ".dphp" / "demo" / "blora-700000-1.jsonl"
    projection = Projection()
    with open(sample, "rb") as f:
        projection.apply(parse_event(line) for line in f)
    recap = projection.recap()
    expected_rows = {}
    for (level, code), row in recap.items():
        if level in ("kecamatan", "kabupaten") and code.startswith("33.16"):
            expected_rows[code] = (row.male, row.female, row.total, row.tps_count, row.tps_loksus_count)
    assert len(expected_rows) == 17  # 16 kecamatan and the kabupaten
    assert rows == expected_rows
    assert web_rows == {code: row for code, row in rows.items() if code != "33.16"}

    folded = {m.meeting_id: m for m in projection.meetings("33.16") if m.level in ("kabupaten", "kecamatan")}
    assert set(meetings) == set(folded)
    for meeting_id, printed_pairs in meetings.items():
        view = folded[meeting_id]
        computed = [str(view.computed[f]) for f in ("male", "female", "total", "tps_count")]
        declared = [str(view.declared[f]) if view.declared else "-" for f in ("male", "female", "total", "tps_count")]
        assert list(printed_pairs[1::2]) == computed, meeting_id
        assert list(printed_pairs[0::2]) == declared, meeting_id
    assert "dphp dev down" in result.stdout


def web_kecamatan_rows(address: str) -> dict[str, tuple[int, ...]]:
    """The kecamatan rows of the web page (L, P, total, TPS, TPS loksus), as the demo prints them."""
    import time
    import urllib.request
    from html.parser import HTMLParser

    deadline = time.monotonic() + 60
    while True:  # the web service started with the stack; give it a moment on a busy machine
        try:
            with urllib.request.urlopen(address, timeout=30) as resp:
                page = resp.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, dict[str, str]] = {}
            self.region = self.field = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "tr" and "data-region" in a:
                self.region = a["data-region"]
                self.rows[self.region] = {}
            if tag == "td" and self.region and "data-field" in a:
                self.field = a["data-field"]

        def handle_data(self, data):
            if self.field:
                self.rows[self.region][self.field] = data.strip()
                self.field = None

    parser = Rows()
    parser.feed(page)
    fields = ("male", "female", "total", "tps_count", "tps_loksus_count")
    return {code: tuple(int(r[f].replace(".", "")) for f in fields) for code, r in parser.rows.items()}
