"""Province-scale samples (`dphp sample --region 33`): the split, the region counts, determinism."""

from __future__ import annotations

import collections
import functools
from pathlib import Path

import orjson
import pytest

from schemas.parsing import parse_event
from services.sample import SampleError, UnknownRegionError
from services.sample.province import (
    JAWA_TENGAH,
    check_province,
    planned_tps,
    split_voters,
    write_province_sample,
)

pytestmark = pytest.mark.unit

VOTERS = 6_000  # the smallest sizes keep a test fast; every desa still has a meeting


@functools.cache
def _sample(tmp: str, seed: int) -> tuple[bytes, object]:
    out = Path(tmp) / f"jateng-{seed}.jsonl"
    stats = write_province_sample("33", VOTERS, seed, out)
    return out.read_bytes(), stats


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("province"))


def test_full_size_split_keeps_the_published_figures() -> None:
    shares = split_voters("33", JAWA_TENGAH.voters)
    assert len(shares) == 35 and sum(shares.values()) == 28_427_616
    assert (shares["33.29"], shares["33.01"], shares["33.02"], shares["33.71"]) == (
        1_519_562, 1_517_475, 1_390_832, 97_825)
    assert max(shares, key=shares.get) == "33.29"  # Brebes, the largest
    assert min(shares, key=shares.get) == "33.71"  # Kota Magelang, the smallest


def test_full_size_tps_count_is_the_real_one() -> None:
    tps, loksus = planned_tps("33", JAWA_TENGAH.voters, 1)
    assert abs(tps - 56_812) / 56_812 < 0.005
    assert loksus == 35


def test_split_of_any_size_adds_up() -> None:
    for voters in (3_500, 10_001, 1_234_567):
        shares = split_voters("33", voters)
        assert sum(shares.values()) == voters and min(shares.values()) >= 100


def test_region_counts_and_totals(folder: str) -> None:
    raw, stats = _sample(folder, 1)
    events = [orjson.loads(line) for line in raw.splitlines()]
    assert len(events) == stats.events
    regs = [e for e in events if e["type"].endswith("voter-registered.v1")]
    assert len({e["data"]["nik"] for e in regs}) == VOTERS == stats.voters
    meetings = collections.Counter(e["data"]["level"] for e in events if e["type"].endswith("meeting-held.v1"))
    # one pleno per desa and kecamatan of the province, two per kabupaten (rakor + pleno), one provinsi
    assert meetings["desa"] >= 8_563 and meetings["kecamatan"] == 576
    assert meetings["kabupaten"] == 70 and meetings["provinsi"] == 1
    desa = {e["data"]["region_code"] for e in events if e["type"].endswith("meeting-held.v1")
            and e["data"]["level"] == "desa"}
    assert len(desa) == 8_563 == stats.desa and stats.kecamatan == 576
    kabs = {e["data"]["tps"]["desa_code"][:5] for e in regs}
    assert len(kabs) == 35
    loksus = {(e["data"]["tps"]["desa_code"], e["data"]["tps"]["number"]) for e in regs
              if e["data"]["tps"]["kind"] == "lokasi_khusus"}
    assert len(loksus) == 35 == stats.tps_loksus_count
    eligible = stats.male + stats.female
    assert eligible == stats.total and 0.97 * VOTERS < stats.total + stats.under_age <= VOTERS


def test_every_line_is_a_valid_event(folder: str) -> None:
    raw, _ = _sample(folder, 1)
    for line in raw.splitlines():
        parse_event(line)  # raises InvalidEvent


def test_deterministic_for_a_seed(folder: str, tmp_path: Path) -> None:
    raw, _ = _sample(folder, 1)
    again = tmp_path / "again.jsonl"
    write_province_sample("33", VOTERS, 1, again)
    assert again.read_bytes() == raw
    other, _ = _sample(folder, 2)
    assert other != raw
    ids = {orjson.loads(x)["id"] for x in raw.splitlines()}
    assert ids.isdisjoint(orjson.loads(x)["id"] for x in other.splitlines())
    assert len(ids) == len(raw.splitlines())


@pytest.mark.parametrize("region", ["99", "3", "ab", ""])
def test_unknown_province(region: str) -> None:
    with pytest.raises(UnknownRegionError):
        check_province(region)


def test_too_few_voters(tmp_path: Path) -> None:
    with pytest.raises(SampleError, match="at least 3,500"):
        write_province_sample("33", 3_499, 1, tmp_path / "x.jsonl")
    assert not list(tmp_path.iterdir())
