"""The sample generator (services/sample): deterministic, valid per CONTRACT 2, realistic, complete."""

from __future__ import annotations

import bisect
import collections
import datetime as dt
import functools
import json
from pathlib import Path

import orjson
import pytest

from schemas.events import MeetingHeld, VoterMoved, VoterRegistered
from services.sample import (
    NotAKabupatenError,
    SampleError,
    UnknownRegionError,
    check_region,
    generate,
    write_sample,
)

pytestmark = pytest.mark.unit

REGION = "33.16"
VOTERS = 5_000
SEED = 1
VOTING_DAY = dt.date(2024, 11, 27)
ELIGIBLE_BORN_BY = dt.date(2007, 11, 27)
WIB = dt.timezone(dt.timedelta(hours=7))
MODELS = {
    "id.go.kpu.dphp.voter-registered.v1": VoterRegistered,
    "id.go.kpu.dphp.voter-moved.v1": VoterMoved,
    "id.go.kpu.dphp.meeting-held.v1": MeetingHeld,
}
DECLARED = ("male", "female", "total", "tps_count", "tps_loksus_count")


@pytest.fixture(scope="module")
def raw() -> list[bytes]:
    return list(generate(REGION, VOTERS, SEED))


@pytest.fixture(scope="module")
def events(raw: list[bytes]) -> list[dict]:
    return [orjson.loads(line) for line in raw]


@pytest.fixture(scope="module")
def registered(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"].endswith("voter-registered.v1")]


@pytest.fixture(scope="module")
def moved(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"].endswith("voter-moved.v1")]


@pytest.fixture(scope="module")
def meetings(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"].endswith("meeting-held.v1")]


@pytest.fixture(scope="module")
def voters(registered: list[dict]) -> dict[str, dict]:
    """Latest registration (identity and placement at the end of coklit) per NIK."""
    latest: dict[str, tuple] = {}
    for e in registered:
        key = (_instant(e["time"]), e["id"])
        nik = e["data"]["nik"]
        if nik not in latest or latest[nik][0] < key:
            latest[nik] = (key, e["data"])
    return {nik: d for nik, (_, d) in latest.items()}


@functools.lru_cache(maxsize=None)
def _instant(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def _eligible(d: dict) -> bool:
    return dt.date.fromisoformat(d["birth_date"]) <= ELIGIBLE_BORN_BY or d["marital_status"] in ("S", "P")


_STATES: dict = {}


def _state(events: list[dict], cutoff: dt.datetime | None) -> tuple[dict, dict, set]:
    """As-of state over the voter events with time <= cutoff (all when None), CONTRACT 3:
    identity (latest registration) and placement (latest registration or move) per NIK, and the
    TPS that some event names lokasi_khusus."""
    key = (id(events), cutoff)
    if key not in _STATES:
        ordered = _STATES.get(("sorted", id(events)))
        if ordered is None:
            voter_events = [e for e in events if e["type"].startswith("id.go.kpu.dphp.voter")]
            voter_events.sort(key=lambda e: (_instant(e["time"]), e["id"]))
            ordered = _STATES[("sorted", id(events))] = (voter_events, [_instant(e["time"]) for e in voter_events])
        chosen = ordered[0] if cutoff is None else ordered[0][: bisect.bisect_right(ordered[1], cutoff)]
        identity: dict[str, dict] = {}
        placement: dict[str, tuple[str, int]] = {}
        loksus: set[tuple[str, int]] = set()
        for e in chosen:
            d = e["data"]
            tps = d["tps"] if "tps" in d else d["to_tps"]
            if tps["kind"] == "lokasi_khusus":
                loksus.add((tps["desa_code"], tps["number"]))
            if "tps" in d:
                identity[d["nik"]] = d
            placement[d["nik"]] = (tps["desa_code"], tps["number"])
        _STATES[key] = (identity, placement, loksus)
    return _STATES[key]


def _per_tps(events: list[dict], cutoff: dt.datetime | None) -> dict[tuple[str, int], list[int]]:
    """Eligible [men, women] per TPS (desa_code, number) as of the cutoff."""
    key = ("tps", id(events), cutoff)
    if key not in _STATES:
        identity, placement, _ = _state(events, cutoff)
        per: dict[tuple[str, int], list[int]] = collections.defaultdict(lambda: [0, 0])
        for nik, d in identity.items():
            if _eligible(d):
                per[placement[nik]][d["sex"] == "P"] += 1
        _STATES[key] = dict(per)
    return _STATES[key]


def _eligible_per_tps(events: list[dict], cutoff: dt.datetime | None) -> dict[tuple[str, int], int]:
    return {k: m + f for k, (m, f) in _per_tps(events, cutoff).items()}


def _figures(events: list[dict], region: str, cutoff: dt.datetime | None) -> dict[str, int]:
    """The declared fields of the as-of recap of a region (desa, kecamatan or kabupaten)."""
    _, _, loksus = _state(events, cutoff)
    male = female = tps = tps_loksus = 0
    for where, (m, f) in _per_tps(events, cutoff).items():
        if where[0].startswith(region) and m + f:
            male, female, tps = male + m, female + f, tps + 1
            tps_loksus += where in loksus
    return {"male": male, "female": female, "total": male + female, "tps_count": tps,
            "tps_loksus_count": tps_loksus}


# --- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_the_same_bytes(raw: list[bytes]) -> None:
    again = list(generate(REGION, VOTERS, SEED))
    assert b"".join(again) == b"".join(raw)


def test_other_seed_or_size_gives_other_events(raw: list[bytes]) -> None:
    other = list(generate(REGION, VOTERS, SEED + 1))
    assert b"".join(other) != b"".join(raw)
    ids = {orjson.loads(line)["id"] for line in raw}
    assert not ids & {orjson.loads(line)["id"] for line in other}
    smaller = list(generate(REGION, VOTERS - 1, SEED))
    assert not ids & {orjson.loads(line)["id"] for line in smaller}


def test_lines_are_jsonl(raw: list[bytes]) -> None:
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in raw)
    assert len({orjson.loads(line)["id"] for line in raw}) == len(raw)


# --- validity (CONTRACT 2) -------------------------------------------------------------------------

def test_every_event_validates_with_the_models(raw: list[bytes]) -> None:
    for line in raw:
        event_type = orjson.loads(line)["type"]
        event = MODELS[event_type].model_validate_json(line)
        assert event.specversion == "1.0"
        assert event.time.utcoffset() == dt.timedelta(hours=7)
        assert event.source.startswith("/kpu/33.16/")
        if event_type.endswith("meeting-held.v1"):
            assert event.subject == event.data.meeting_id
        else:
            assert event.subject == event.data.nik
        if event_type.endswith("voter-registered.v1"):
            assert event.data.birth_date <= event.time.date()


def test_codes_are_kemendagri_codes_of_the_right_level(events: list[dict]) -> None:
    from lokal import wilayah

    desa, base = wilayah._desa(), wilayah._base()
    for e in events:
        d = e["data"]
        for tps in (d.get("tps"), d.get("to_tps"), d.get("from_tps")):
            if tps is not None:
                assert tps["desa_code"] in desa
        if "meeting_id" in d:
            depth = {"desa": 3, "kecamatan": 2, "kabupaten": 1}[d["level"]]
            assert d["region_code"].count(".") == depth
            assert d["region_code"] in (desa if depth == 3 else base)


def test_times(registered: list[dict], moved: list[dict], meetings: list[dict]) -> None:
    coklit = (dt.datetime(2024, 6, 24, tzinfo=WIB), dt.datetime(2024, 7, 25, tzinfo=WIB))
    for e in registered:
        assert coklit[0] <= _instant(e["time"]) < coklit[1]
    for e in moved:
        assert coklit[1] <= _instant(e["time"]) < dt.datetime(2024, 9, 16, tzinfo=WIB)
    for e in meetings:
        held = _instant(e["data"]["held_at"])
        assert coklit[1] <= held < dt.datetime(2024, 9, 1, tzinfo=WIB)
        assert _instant(e["time"]) >= held


# --- voters ------------------------------------------------------------------------------------

def test_niks_are_consistent_and_unique(voters: dict[str, dict]) -> None:
    from lokal import wilayah
    from lokal.nik import parse_nik

    assert len(voters) == VOTERS
    kecamatan = {c.replace(".", "") for c in wilayah._base() if c.count(".") == 2}
    for nik, d in voters.items():
        born = dt.date.fromisoformat(d["birth_date"])
        day = born.day + (40 if d["sex"] == "P" else 0)
        assert nik[6:12] == f"{day:02d}{born.month:02d}{born.year % 100:02d}"
        assert nik[12:] != "0000"
        assert nik[:6] in kecamatan
        assert d["nkk"][:6] == nik[:6] and len(d["nkk"]) == 16 and d["nkk"].isdigit()
        info = parse_nik(nik, reference_date=VOTING_DAY)
        assert info.valid and info.gender == d["sex"] and info.birth_date == d["birth_date"]
        if d["tps"]["kind"] == "reguler":  # residents: NIK and family card of their kecamatan
            assert nik[:6] == d["tps"]["desa_code"][:8].replace(".", "")


def test_families_share_a_family_card_and_an_address(registered: list[dict], voters: dict[str, dict]) -> None:
    first: dict[str, dict] = {}  # as registered at the Pantarlih's visit, before any correction
    for e in sorted(registered, key=lambda e: (_instant(e["time"]), e["id"]), reverse=True):
        first[e["data"]["nik"]] = e["data"]
    families = collections.defaultdict(list)
    for d in first.values():
        families[d["nkk"]].append(d)
    sizes = collections.Counter(len(v) for v in families.values())
    assert sum(n for size, n in sizes.items() if size >= 2) > len(families) / 2
    for members in families.values():
        assert len({orjson.dumps(m["address"]) for m in members}) == 1
    for d in voters.values():
        a = d["address"]
        assert a["street"].startswith(("DUKUH ", "JL. "))
        assert len(a["rt"]) == len(a["rw"]) == 3 and a["rt"].isdigit() and a["rw"].isdigit()


def test_people_look_real(voters: dict[str, dict]) -> None:
    values = list(voters.values())
    n = len(values)
    places = collections.Counter(d["birth_place"] for d in values)
    assert places.most_common(1)[0][0] == "BLORA" and places["BLORA"] > 0.8 * n and len(places) > 5
    assert all(d["name"] == d["name"].upper() and d["name"].replace(" ", "").isalpha() for d in values)
    assert 0.2 < sum(" " in d["name"] for d in values) / n < 0.8
    sexes = collections.Counter(d["sex"] for d in values)
    assert 0.45 < sexes["P"] / n < 0.55
    ages = [(VOTING_DAY - dt.date.fromisoformat(d["birth_date"])).days // 365 for d in values]
    assert min(ages) == 16 and max(ages) >= 85 and 35 < sum(ages) / n < 50
    assert sum(d["ktp_el"] for d in values) > 0.95 * n
    assert 0.015 < sum(d["new_voter"] for d in values) / n < 0.035
    assert 0.005 < sum(d["disability"] is not None for d in values) / n < 0.02
    assert {d["disability"] for d in values} == {None, 1, 2, 3, 4, 5, 6}
    assert {d["marital_status"] for d in values} == {"B", "S", "P"}


def test_under_age_voters_some_married(voters: dict[str, dict]) -> None:
    young = [d for d in voters.values() if dt.date.fromisoformat(d["birth_date"]) > ELIGIBLE_BORN_BY]
    under_age = [d for d in young if d["marital_status"] == "B"]
    married = [d for d in young if d["marital_status"] in ("S", "P")]
    assert under_age and married
    assert 0.001 < len(young) / len(voters) < 0.03
    births = {d["birth_date"] for d in voters.values()}
    assert {"2007-11-27", "2007-11-28"} <= births  # the edge: 17 on voting day, and one day short


def test_corrections(registered: list[dict]) -> None:
    by_nik = collections.defaultdict(list)
    for e in registered:
        by_nik[e["data"]["nik"]].append(e)
    corrected = {nik: sorted(es, key=lambda e: _instant(e["time"])) for nik, es in by_nik.items() if len(es) > 1}
    assert 0.005 * VOTERS < len(corrected) < 0.02 * VOTERS
    changed = collections.Counter()
    for first, second in corrected.values():
        assert _instant(second["time"]) > _instant(first["time"])
        a, b = first["data"], second["data"]
        diff = {k for k in a if a[k] != b[k]}
        assert len(diff) == 1 and diff <= {"name", "address", "ktp_el", "disability", "marital_status", "birth_place"}
        changed.update(diff)
    assert len(changed) >= 4


def test_tps_numbering_and_capacity(events: list[dict], voters: dict[str, dict]) -> None:
    numbers = collections.defaultdict(set)
    for d in voters.values():
        numbers[d["tps"]["desa_code"]].add(d["tps"]["number"])
    for desa, nums in numbers.items():
        regular = sorted(n for n in nums if n < 900)
        assert regular == list(range(1, len(regular) + 1)), desa
    assert max(_eligible_per_tps(events, None).values()) <= 600
    everyone = collections.Counter((d["tps"]["desa_code"], d["tps"]["number"]) for d in voters.values())
    assert max(everyone.values()) <= 600


def test_tps_lokasi_khusus_of_the_rutan(voters: dict[str, dict], meetings: list[dict]) -> None:
    inmates = [d for d in voters.values() if d["tps"]["kind"] == "lokasi_khusus"]
    assert 24 <= len(inmates) <= 300
    assert {(d["tps"]["desa_code"], d["tps"]["number"]) for d in inmates} == {("33.16.09.1011", 901)}
    assert all(not d["new_voter"] for d in inmates)
    assert sum(d["sex"] == "L" for d in inmates) > 0.8 * len(inmates)


def test_moves_of_every_kind(moved: list[dict], voters: dict[str, dict]) -> None:
    reasons = collections.Counter(e["data"]["reason"] for e in moved)
    assert set(reasons) == {"pindah_domisili", "pindah_memilih", "salah_penempatan_tps"}
    assert 0.007 * VOTERS < len(moved) < 0.02 * VOTERS
    out = [e for e in moved if not e["data"]["to_tps"]["desa_code"].startswith("33.16.")]
    assert out and all(e["data"]["to_tps"]["kind"] == "reguler" for e in out)
    assert {e["data"]["reason"] for e in out} >= {"pindah_domisili", "pindah_memilih"}
    into_loksus = [e for e in moved if e["data"]["to_tps"]["number"] == 901]
    assert into_loksus
    assert all(e["data"]["to_tps"] == {"desa_code": "33.16.09.1011", "number": 901, "kind": "lokasi_khusus"}
               and e["data"]["reason"] == "pindah_memilih" for e in into_loksus)
    with_from = [e for e in moved if "from_tps" in e["data"]]
    assert len(with_from) > 0.8 * len(moved)
    for e in with_from:
        nik = e["data"]["nik"]
        if nik in voters:  # from_tps is where the voter was placed
            assert e["data"]["from_tps"] == voters[nik]["tps"]
            assert e["data"]["to_tps"] != e["data"]["from_tps"]
    wrong_tps = [e for e in with_from if e["data"]["reason"] == "salah_penempatan_tps"]
    assert wrong_tps and all(e["data"]["to_tps"]["desa_code"][:8] == e["data"]["from_tps"]["desa_code"][:8]
                             for e in wrong_tps)  # another TPS of the desa, or of a desa nearby
    assert any(e["data"]["nik"] not in voters for e in moved)  # registered elsewhere: does not count
    assert len({e["data"]["nik"] for e in moved}) == len(moved)


def test_meetings_at_every_level(meetings: list[dict]) -> None:
    from lokal import wilayah

    latest = {}
    for e in sorted(meetings, key=lambda e: (_instant(e["time"]), e["id"])):
        latest[e["data"]["meeting_id"]] = e["data"]
    levels = collections.Counter(d["level"] for d in latest.values())
    n_desa = sum(1 for c in wilayah._desa() if c.startswith("33.16."))
    assert n_desa == 295
    assert levels == {"desa": 295, "kecamatan": 16, "kabupaten": 2}
    assert len(meetings) >= len(latest)
    assert all(d["stage"] == "dphp" for d in latest.values())
    pleno = latest["pleno-dphp-33.16-2024-08-11"]
    assert pleno["venue"] == "Ruang Pertemuan KPU Blora" and pleno["declared"] is not None
    assert pleno["held_at"] == "2024-08-11T09:00:00+07:00"
    people = {(a["institution"], a["name"], a["role"]) for a in pleno["attendees"]}
    assert ("Rutan Kelas IIB Blora", "Budi Hardiono", "Kepala Rutan") in people
    assert ("KPU Kabupaten Blora", "Widi Nurintan Ari Kurnianto", "Ketua") in people
    institutions = {a["institution"] for a in pleno["attendees"]}
    for inst in ("Polres Blora", "Kodim Blora", "Yonif 410 Alugoro", "Kejaksaan Negeri Blora",
                 "Bawaslu Kabupaten Blora"):
        assert inst in institutions
    rakor = latest["rakor-dphp-33.16-2024-08-02"]
    assert rakor["declared"] is None
    for d in latest.values():
        if d["level"] == "desa":
            assert _instant(d["held_at"]) < dt.datetime(2024, 7, 29, tzinfo=WIB)
        elif d["level"] == "kecamatan":
            assert dt.datetime(2024, 8, 1, tzinfo=WIB) <= _instant(d["held_at"]) < dt.datetime(2024, 8, 6, tzinfo=WIB)


def test_declared_figures_mostly_match_the_as_of_recap(events: list[dict], meetings: list[dict]) -> None:
    latest = {}
    for e in sorted(meetings, key=lambda e: (_instant(e["time"]), e["id"])):
        latest[e["data"]["meeting_id"]] = e["data"]
    assert any(d["data_cutoff"] is not None for d in latest.values())
    equal = off = 0
    for d in latest.values():
        if d["declared"] is None:
            continue
        computed = _figures(events, d["region_code"], _instant(d["data_cutoff"] or d["held_at"]))
        if d["declared"] == computed:
            equal += 1
        else:
            off += 1
            assert all(abs(d["declared"][k] - computed[k]) <= 4 for k in DECLARED), d["meeting_id"]
            assert d["level"] != "kabupaten"
    assert off >= 1 and equal >= 0.85 * (equal + off)
    pleno = latest["pleno-dphp-33.16-2024-08-11"]
    assert pleno["declared"]["tps_loksus_count"] == 1
    assert pleno["declared"] != _figures(events, "33.16", None)  # later moves change the recap


# --- write_sample and its statistics -----------------------------------------------------------------

def test_write_sample_writes_what_generate_yields(tmp_path: Path, raw: list[bytes], events: list[dict]) -> None:
    seen = []
    stats = write_sample(REGION, VOTERS, SEED, tmp_path / "blora.jsonl", progress=seen.append)
    data = (tmp_path / "blora.jsonl").read_bytes()
    assert data == b"".join(raw)
    assert not (tmp_path / "blora.jsonl.tmp").exists()
    assert stats.events == len(raw) and stats.bytes == len(data)
    assert seen and seen[-1] == VOTERS
    types = collections.Counter(e["type"] for e in events)
    assert stats.by_type == dict(types)
    assert stats.corrections == stats.registrations - VOTERS
    assert stats.moves == sum(stats.moves_by_reason.values())
    assert stats.desa == 295 and stats.kecamatan == 16
    assert stats.loksus_tps == "33.16.09.1011/901"
    final = _figures(events, REGION, None)
    assert {k: getattr(stats, k) for k in DECLARED} == final
    assert stats.tps_loksus_count == 1 and stats.over_capacity_tps == 0


def test_full_size_plan_gives_about_1450_tps() -> None:
    """Only the TPS plan of a full-size Blora (made before the first event), not the whole file."""
    from services.sample import generator

    g = generator._Gen(REGION, 700_000, SEED)
    lines = g.lines()
    next(lines)
    regular = len(g.tps_no) - 1
    assert 1_400 <= regular <= 1_520
    assert 700_000 / regular < 500


def test_another_region(tmp_path: Path) -> None:
    stats = write_sample("51.71", 600, 3, tmp_path / "denpasar.jsonl")  # Kota Denpasar, WITA
    lines = (tmp_path / "denpasar.jsonl").read_bytes().splitlines()
    assert stats.events == len(lines)
    for line in lines:
        e = orjson.loads(line)
        event = MODELS[e["type"]].model_validate_json(line)
        assert event.time.utcoffset() == dt.timedelta(hours=8)
        assert e["source"].startswith("/kpu/51.71/")
    assert stats.loksus_tps.startswith("51.71.") and stats.loksus_tps.endswith("/901")
    assert stats.region_name == "Kota Denpasar"


# --- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("region, error", [
    ("99.99", UnknownRegionError), ("", UnknownRegionError), ("blora", UnknownRegionError),
    ("33", NotAKabupatenError), ("33.16.09", NotAKabupatenError), ("33.16.09.1011", NotAKabupatenError),
])
def test_bad_regions(region: str, error: type) -> None:
    with pytest.raises(error):
        generate(region, 10, 1)
    assert issubclass(error, SampleError) and issubclass(error, ValueError)


def test_check_region() -> None:
    assert check_region("33.16") == ("33.16", "Kabupaten Blora")
    assert check_region("3316") == ("33.16", "Kabupaten Blora")


@pytest.mark.parametrize("voters", [0, -5, True, 2.5])
def test_bad_voter_counts(voters) -> None:
    with pytest.raises(SampleError):
        generate(REGION, voters, 1)


def test_tiny_sample_still_valid() -> None:
    for n in (1, 7, 60):
        lines = list(generate(REGION, n, 2))
        for line in lines:
            MODELS[orjson.loads(line)["type"]].model_validate_json(line)
        niks = {orjson.loads(x)["data"]["nik"] for x in lines if b"voter-registered" in x}
        assert len(niks) == n


def test_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_sample(REGION, 10, 1, tmp_path / "missing" / "x.jsonl")
    assert not (tmp_path / "missing").exists()


# --- the command ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli():
    from typer.testing import CliRunner

    from services.cli import dev_cmd, sample_cmd  # noqa: F401  (two commands: `dphp sample` is a subcommand)
    from services.cli.main import app

    return CliRunner(), app


def test_cli_help(cli) -> None:
    runner, app = cli
    result = runner.invoke(app, ["sample", "--help"])
    assert result.exit_code == 0
    for option in ("--region", "--voters", "--seed", "--out", "--format"):
        assert option in result.output


def test_cli_writes_a_sample(cli, tmp_path: Path) -> None:
    runner, app = cli
    out = tmp_path / "s.jsonl"
    result = runner.invoke(app, ["sample", "--region", "33.16", "--voters", "300", "--seed", "4", "--out", str(out),
                                 "--format", "json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events"] == len(out.read_bytes().splitlines())
    assert summary["voters"] == 300 and summary["file"] == str(out)
    assert out.read_bytes() == b"".join(generate("33.16", 300, 4))
    result = runner.invoke(app, ["sample", "--voters", "300", "--out", str(out), "-q"])
    assert result.exit_code == 0 and "events" in result.stdout


@pytest.mark.parametrize("args, code, words", [
    (["--region", "99.99"], 2, "unknown region"),
    (["--region", "33.16.09"], 2, "kecamatan"),
    (["--region", "33"], 2, "provinsi"),
    (["--voters", "0"], 2, "--voters"),
    (["--out", "/nonexistent-dir/x.jsonl"], 1, "cannot write"),
])
def test_cli_errors(cli, tmp_path: Path, args: list[str], code: int, words: str) -> None:
    runner, app = cli
    base = {"--region": "33.16", "--voters": "50", "--out": str(tmp_path / "x.jsonl")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    result = runner.invoke(app, ["sample", *[x for kv in base.items() for x in kv], "-q"])
    assert result.exit_code == code
    assert words in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
