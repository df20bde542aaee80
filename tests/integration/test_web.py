"""The web service as a process against the real stack: the JSON API equals `dphp report` and
`dphp meetings`, errors are clear, the print form's PDF holds the figures, and `dphp subscribe`
follows the recap topic."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import pytest_asyncio

from schemas.events import VoterMoved, VoterRegistered
from schemas.recap import Recap
from services.web.pdf import html_to_pdf
from tests.support.kafka import read_all
from tests.support.services import dphp, dphp_json
from tests.support.web import start_web_stack, stop_web_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# (region, level) pairs from the nation down to one TPS; each is compared with `dphp report`.
CASES = [("ID", "nasional"), ("ID", "provinsi"), ("ID", "kecamatan"), ("ID", "tps"), ("33", "kabupaten"),
         ("33", "desa"), ("33.16", "kecamatan"), ("33.16", "tps"), ("33.16.01", "desa"),
         ("33.16.09.1011", "tps"), ("33.16.09.1011/901", "tps")]
# At TPS level the web service will withhold small TPS's disability figures (CONTRACT 5).
WITHHELD_AT_TPS = ("disabled", "disability_by_type")


@pytest_asyncio.fixture(scope="module")
async def web(stack, tmp_path_factory):
    started = await start_web_stack(stack, tmp_path_factory.mktemp("web-logs"))
    try:
        yield started
    finally:
        stop_web_stack(started)


def get(web, path: str, **params) -> tuple[int, object]:
    url = web.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            body = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def comparable(rows: list[dict], level: str) -> list[dict]:
    if level != "tps":
        return rows
    return [{k: v for k, v in r.items() if k not in WITHHELD_AT_TPS} for r in rows]


def cutoff(web) -> str:
    """A time in the middle of the voter events: an as-of recap that differs from the current one."""
    times = sorted(e.time for e in web.events if isinstance(e, (VoterRegistered, VoterMoved)))
    return times[len(times) // 2].isoformat()


@pytest.mark.parametrize(("region", "level"), CASES)
def test_api_equals_dphp_report(web, region, level):
    status, api = get(web, f"/api/recap/{region}", level=level)
    assert status == 200, api
    cli = dphp_json(web.settings, "report", "--region", region, "--level", level)
    assert api, "the sample places voters in every region of the cases"
    assert comparable(api, level) == comparable(cli, level)


@pytest.mark.parametrize(("region", "level"), [("33.16", "kecamatan"), ("33.16.01", "tps"), ("ID", "provinsi")])
def test_api_as_of_equals_dphp_report_as_of(web, region, level):
    t = cutoff(web)
    status, api = get(web, f"/api/recap/{region}", level=level, as_of=t)
    assert status == 200, api
    cli = dphp_json(web.settings, "report", "--region", region, "--level", level, "--as-of", t)
    assert comparable(api, level) == comparable(cli, level)
    _, current = get(web, f"/api/recap/{region}", level=level)
    assert api != current, "the cutoff lies inside the events: the as-of recap differs"


def test_meetings_api_equals_dphp_meetings(web):
    status, api = get(web, "/api/meetings/33.16")
    assert status == 200
    cli = dphp_json(web.settings, "meetings", "--region", "33.16")
    assert [{k: m[k] for k in cli[0]} for m in api] == cli
    assert len(cli) >= 3


def test_unknown_region_is_404_with_a_clear_message(web):
    # Found by review: TPS codes with a known desa but a bad number or a second slash (a 500 before).
    for path in ("/api/recap/99.99", "/region/99.99", "/region/99.99/print", "/api/meetings/12.34.56",
                 "/region/33.16.01.2001/001/x", "/region/33.16.01.2001/001/x/print", "/api/recap/33.16/abc",
                 "/region/33.16/abc", "/api/recap/33.16.01.2001/99999", "/region/" + "3" * 5000):
        status, body = get(web, path)
        assert status == 404, path
        assert "unknown region code" in (body["detail"] if isinstance(body, dict) else body), path


def test_bad_as_of_is_422(web):
    # not a time; no offset; past the calendar's edges (a 500 before: found by review)
    for value in ("yesterday", "2024-07-10T00:00:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+07:00"):
        status, body = get(web, "/api/recap/33.16", as_of=value)
        assert status == 422 and "as_of" in body["detail"], body
        status, page = get(web, "/region/33.16", as_of=value)
        assert status == 422 and "as_of" in page
    status, body = get(web, "/api/recap/33.16", level="provinsi")
    assert status == 422 and "above the region's own level" in body["detail"]


def test_pages_show_the_report_and_no_nik(web):
    import re

    rows = dphp_json(web.settings, "report", "--region", "33.16")
    status, page = get(web, "/region/33.16")
    assert status == 200
    for r in rows:
        assert f'href="/region/{r["region_code"]}"' in page and r["name"] in page
    for path in ("/", "/region/33.16/meetings", "/region/33.16.01.2001", "/region/33.16.09.1011/901"):
        status, page = get(web, path)
        assert status == 200, path
        assert not re.search(r"\d{16}", page), f"a 16-digit number (a NIK?) on {path}"
        assert "newest event applied" in page


def test_web_serves_metrics_and_health_as_every_service(web):
    from tests.support.http import samples

    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(web.url)
    for path in ("/metrics", "/health/live", "/health/ready"):  # answered at the path, no redirect
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        conn.request("GET", path)
        assert conn.getresponse().status in (200, 503), path
        conn.close()
    status, body = get(web, "/health/live")
    assert status == 200 and body["status"] == "live"
    deadline = time.monotonic() + 30
    while (answer := get(web, "/health/ready"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert answer == (200, {"status": "ready", "reasons": []})
    found = samples(web.url)
    assert found[("dphp_database_up", ())] == 1.0
    newest = max(e.time for e in web.events if isinstance(e, (VoterRegistered, VoterMoved)))
    assert found[("dphp_newest_event_timestamp_seconds", ())] == newest.timestamp()


def test_the_web_service_reads_as_the_reader_role(web):
    """The web process logs in as dphp_reader (as `dphp dev up` starts it), which can read no table
    of voters: its pages work on the reader's views alone (CONTRACT 5)."""
    import asyncpg

    from services.devstack.services import READER_ROLE, url_with_user

    async def refused() -> bool:
        conn = await asyncpg.connect(url_with_user(web.settings.database_url, READER_ROLE))
        try:
            await conn.fetchval(f"SELECT count(*) FROM {web.settings.db_schema}.voter")
        except asyncpg.InsufficientPrivilegeError:
            return True
        finally:
            await conn.close()
        return False

    assert asyncio.run(refused())
    status, rows = get(web, "/api/recap/33.16", level="kecamatan")
    assert status == 200 and rows == dphp_json(web.settings, "report", "--region", "33.16")


def test_print_form_as_pdf_holds_the_figures(web, tmp_path):
    rows = dphp_json(web.settings, "report", "--region", "33.16")
    own = dphp_json(web.settings, "report", "--region", "33.16", "--level", "kabupaten")[0]
    status, html = get(web, "/region/33.16/print")
    assert status == 200
    text = pdftext(html_to_pdf(html, tmp_path / "form.pdf"))
    assert "REKAPITULASI DAFTAR PEMILIH HASIL PEMUTAKHIRAN" in text and "KPU KABUPATEN BLORA" in text
    lines = text.splitlines()
    for r in rows:
        line = next(x for x in lines if r["region_code"] in x)
        assert r["name"] in line and dots(r["total"]) in line and dots(r["male"]) in line
    total_line = next(x for x in lines if "JUMLAH" in x)
    assert dots(own["total"]) in total_line


def test_dphp_report_and_meetings_write_pdf_and_html(web, tmp_path):
    out = tmp_path / "blora.pdf"
    result = dphp(web.settings, "report", "--region", "33.16", "--format", "pdf", "--out", str(out))
    assert result.returncode == 0, result.stderr
    own = dphp_json(web.settings, "report", "--region", "33.16", "--level", "kabupaten")[0]
    assert dots(own["total"]) in pdftext(out)
    minutes = tmp_path / "minutes.pdf"
    result = dphp(web.settings, "meetings", "--region", "33.16", "--format", "pdf", "--out", str(minutes))
    assert result.returncode == 0, result.stderr
    text = pdftext(minutes)
    for m in dphp_json(web.settings, "meetings", "--region", "33.16"):
        assert m["meeting_id"] in text
    html = dphp(web.settings, "report", "--region", "33.16.01", "--format", "html")
    assert html.returncode == 0 and "<table" in html.stdout
    missing = dphp(web.settings.model_copy(update={"chromium": "no-such-chromium"}),
                   "report", "--region", "33.16", "--format", "pdf", "--out", str(tmp_path / "x.pdf"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "chromium" in missing.stderr
    usage = dphp(web.settings, "report", "--region", "33.16", "--format", "pdf")
    assert usage.returncode == 2 and "--out" in usage.stderr


async def test_subscribe_json_from_the_beginning_matches_the_topic(web):
    want = {r["region_code"]: r for r in dphp_json(web.settings, "report", "--region", "33.16", "--level", "desa")}
    args = ["subscribe", "--region", "33.16", "--level", "desa", "--from-beginning", "--exit-at-end"]
    deadline = time.monotonic() + 60
    while True:  # the report service publishes every 0.3 s once the projection has the events
        result = await asyncio.to_thread(dphp_json_lines, web.settings, *args)
        latest = {r["region_code"]: r for r in result}
        got = {k: {f: v for f, v in r.items() if f not in ("as_of", "published_at")} for k, r in latest.items()}
        if got == want or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert got == want
    on_topic = [Recap.from_json(rec.value) for rec in
                await read_all(web.settings, web.settings.topic_recap, expected=10**9, timeout_ms=2000)]
    filtered = [json.loads(r.model_dump_json()) for r in on_topic
                if r.level == "desa" and r.region_code.startswith("33.16.")]
    assert result == filtered, "every wanted record of the topic, in the topic's order"


def dphp_json_lines(settings, *args) -> list[dict]:
    result = dphp(settings, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def pdftext(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def dots(n: int) -> str:
    """A figure as the forms print it: thousands separated by dots."""
    return f"{n:,}".replace(",", ".")


async def test_meeting_reads_use_the_pool_not_a_connection_per_request(web):
    """Found by review: each meetings page opened a connection of its own, so page loads could use
    up PostgreSQL's connections. With the settings' address made unreachable after the pool is up,
    the reads still work: they run on the pool's connections."""
    from services.devstack.process import free_port
    from services.web.data import WebData

    data = WebData(web.settings, pool_size=1, cache=False)
    await data.start()
    try:
        want = await data.meetings("33.16")
        data.settings = web.settings.model_copy(
            update={"database_url": f"postgresql://nobody@127.0.0.1:{free_port()}/none"})
        meetings = await data.meetings("33.16")
        assert meetings and meetings == want
        assert await data.meeting(meetings[0]["meeting_id"]) == meetings[0]
    finally:
        await data.close()
