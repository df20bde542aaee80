"""A province-scale sample: every kabupaten/kota of a provinsi, streamed to one JSONL file.

    stats = write_province_sample("33", 28_427_616, 1, Path("jateng.jsonl"))

Each kabupaten/kota is the sample of `services.sample.generator` for its share of the voters
(with its own seed, derived from the province, the voter count and the seed), written one after
the other; then one `meeting-held` of the provinsi (KPU Provinsi, rapat pleno DPHP, declared null).
Memory is that of one kabupaten at a time (the largest: Brebes, 1.5 M voters at full size), not of
the province: lines go to the file in chunks as they are made.

Figures of Jawa Tengah (33), Pilkada 2024 DPT (KPU Provinsi Jawa Tengah, rapat pleno of
22 Sep 2024): 28,427,616 voters in 56,812 TPS (103 lokasi khusus), 8,563 desa/kelurahan,
576 kecamatan, 35 kabupaten/kota. The press release names four kabupaten/kota's figures (Brebes
1,519,562, Cilacap 1,517,475, Banyumas 1,390,832, Kota Magelang 97,825); the others are
estimates (thousands, of the order of their 2024 DPT), scaled so that all add up to the total.
Other provinces: voters split by the number of desa/kelurahan of each kabupaten/kota.

What differs from the real province: one TPS lokasi khusus per kabupaten/kota (35, not 103); a
voter moved to another kabupaten of the province leaves its kabupaten's recap and is placed at a
TPS there that may not exist in that kabupaten's layout (the projection counts it there).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from services.sample.generator import (
    TYPE_MEETING_HELD,
    SampleError,
    SampleStats,
    UnknownRegionError,
    _Gen,
    _fmt_time,
    _offset,
    _t,
    _uuid4,
    write_lines,
)


@dataclass(frozen=True)
class ProvinceFigures:
    voters: int
    tps: int
    tps_loksus: int
    desa: int
    kecamatan: int
    kabupaten: int
    #: kabupaten/kota code -> voters (relative weights; scaled to `voters`)
    weights: dict[str, float] = field(default_factory=dict)
    #: the codes whose figure is published (the others are estimates)
    named: tuple[str, ...] = ()


JAWA_TENGAH = ProvinceFigures(
    voters=28_427_616, tps=56_812, tps_loksus=103, desa=8_563, kecamatan=576, kabupaten=35,
    weights={
        "33.01": 1_517_475, "33.02": 1_390_832, "33.03": 744_000, "33.04": 747_000, "33.05": 1_005_000,
        "33.06": 600_000, "33.07": 640_000, "33.08": 998_000, "33.09": 820_000, "33.10": 987_000,
        "33.11": 676_000, "33.12": 830_000, "33.13": 696_000, "33.14": 745_000, "33.15": 1_096_000,
        "33.16": 700_000, "33.17": 494_000, "33.18": 1_040_000, "33.19": 677_000, "33.20": 935_000,
        "33.21": 897_000, "33.22": 811_000, "33.23": 605_000, "33.24": 808_000, "33.25": 600_000,
        "33.26": 715_000, "33.27": 1_077_000, "33.28": 1_145_000, "33.29": 1_519_562,
        "33.71": 97_825, "33.72": 440_000, "33.73": 150_000, "33.74": 1_200_000, "33.75": 232_000,
        "33.76": 210_000,
    },
    named=("33.01", "33.02", "33.29", "33.71"),
)
PROVINCES = {"33": JAWA_TENGAH}
#: Voters per TPS on average that gives Jawa Tengah's 56,812 TPS at full size (measured with
#: `planned_tps`: the per-desa rounding and the 570 cap add TPS above voters / target).
PROVINCE_TPS_TARGET = 505


def default_voters(province: str) -> int | None:
    figures = PROVINCES.get(province)
    return figures.voters if figures else None


def check_province(region: str) -> tuple[str, str]:
    """(code, name) of a provinsi given as "33"; `UnknownRegionError` otherwise."""
    from lokal import wilayah

    code = str(region).strip()
    name = wilayah._base().get(code) if len(code) == 2 and code.isdigit() else None
    if name is None:
        raise UnknownRegionError(f"unknown provinsi code {region!r} (give two digits, e.g. 33)")
    return code, name


def kabupaten_of(province: str) -> list[str]:
    from lokal import wilayah

    return sorted(c for c in wilayah._base() if c.startswith(province + ".") and c.count(".") == 1)


def split_voters(province: str, voters: int) -> dict[str, int]:
    """Voters of each kabupaten/kota (largest remainder; every one gets at least 100)."""
    from lokal import wilayah

    kabs = kabupaten_of(province)
    figures = PROVINCES.get(province)
    if figures is not None:  # the named figures as they are, the estimates scaled to the rest
        named = {k: figures.weights[k] for k in figures.named}
        estimated = {k: figures.weights[k] for k in kabs if k not in named}
        scale = (figures.voters - sum(named.values())) / sum(estimated.values())
        weights = {**named, **{k: w * scale for k, w in estimated.items()}}
    else:
        desa = wilayah._desa()
        weights = dict.fromkeys(kabs, 0)
        for c in desa:
            if c[:5] in weights:
                weights[c[:5]] += 1
    if voters < 100 * len(kabs):
        raise SampleError(f"a provinsi sample needs at least {100 * len(kabs):,} voters "
                          f"(100 per kabupaten/kota), not {voters:,}")
    total = sum(weights.values())
    quotas = {k: voters * w / total for k, w in weights.items()}
    shares = {k: max(100, int(q)) for k, q in quotas.items()}
    rest = voters - sum(shares.values())
    order = sorted(kabs, key=lambda k: (shares[k] - quotas[k], k))
    i = 0
    while rest != 0:  # a remainder, or the excess of the 100 minimum taken from the largest
        k = order[i % len(order)] if rest > 0 else max(shares, key=lambda c: (shares[c], c))
        shares[k] += 1 if rest > 0 else -1
        rest += -1 if rest > 0 else 1
        i += 1
    return shares


def _kab_seed(province: str, voters: int, seed: int, kab: str) -> int:
    digest = hashlib.sha256(f"dphp-province:{province}:{voters}:{seed}:{kab}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _generators(province: str, voters: int, seed: int) -> Iterator[_Gen]:
    for kab, n in split_voters(province, voters).items():
        gen = _Gen(kab, n, _kab_seed(province, voters, seed, kab))
        gen.tps_target = PROVINCE_TPS_TARGET
        yield gen


def planned_tps(province: str, voters: int, seed: int) -> tuple[int, int]:
    """(TPS, of which lokasi khusus) that a sample will have, without generating it."""
    tps = loksus = 0
    for gen in _generators(province, voters, seed):
        gen._layout()
        tps += len(gen.tps_no)
        loksus += 1
    return tps, loksus


def _province_meeting(province: str, name: str, voters: int, seed: int) -> bytes:
    import random

    rng = random.Random(f"dphp-province:{province}:{voters}:{seed}:meeting")
    off = _offset(province)
    held = _fmt_time(_t(8, 18, 9), off)
    mid = f"pleno-dphp-{province}-{held[:10]}"
    data = {"meeting_id": mid, "level": "provinsi", "region_code": province, "stage": "dphp",
            "held_at": held, "data_cutoff": None, "venue": f"Kantor KPU {name}",
            "attendees": [{"institution": f"KPU {name}", "name": "Ketua KPU Provinsi", "role": "Ketua"},
                          {"institution": f"Bawaslu {name}", "name": "Ketua Bawaslu Provinsi",
                           "role": "Perwakilan"}],
            "declared": None, "notes": f"Rapat pleno terbuka rekapitulasi DPHP tingkat {name}."}
    env = {"specversion": "1.0", "id": _uuid4(rng.getrandbits(128)), "source": f"/kpu/{province}/rekap",
           "type": TYPE_MEETING_HELD, "time": held, "subject": mid, "datacontenttype": "application/json",
           "data": data}
    return orjson.dumps(env) + b"\n"


def _add(total: SampleStats, part: SampleStats) -> None:
    for key, value in vars(part).items():
        if key in ("region", "region_name", "seed", "voters", "seconds", "loksus_tps"):
            continue
        if isinstance(value, dict):
            mine = getattr(total, key)
            for k, v in value.items():
                mine[k] = mine.get(k, 0) + v
        elif key == "max_tps_voters":
            total.max_tps_voters = max(total.max_tps_voters, value)
        elif isinstance(value, int):
            setattr(total, key, getattr(total, key) + value)


def write_province_sample(province: str, voters: int, seed: int, out: Path,
                          progress: Callable[[int], None] | None = None) -> SampleStats:
    """Write the province's sample to `out` (via ``out.tmp``, renamed when complete). The stats'
    recap figures are the sums of the kabupaten/kota recaps (see the module's note on moves);
    `kecamatan` and `desa` count the regions, `tps_count` the TPS with voters.
    `progress(done)` is called now and then with the voters generated so far."""
    code, name = check_province(province)
    if isinstance(voters, bool) or not isinstance(voters, int) or voters < 1:
        raise SampleError(f"voters must be a positive whole number, not {voters!r}")
    stats = SampleStats(region=code, region_name=name, seed=seed, voters=voters,
                        loksus_tps="one per kabupaten/kota")

    def lines() -> Iterator[bytes]:
        done_before = 0
        for gen in _generators(code, voters, seed):  # one kabupaten's state at a time
            if progress is not None:
                gen.progress = lambda n, base=done_before: progress(base + n)
            yield from gen.lines()
            _add(stats, gen.stats)
            done_before += gen.voters
        yield _province_meeting(code, name, voters, seed)

    started = time.perf_counter()
    stats.events, stats.bytes = write_lines(lines(), out)
    stats.meetings += 1
    stats.meeting_events += 1
    stats.by_type[TYPE_MEETING_HELD] += 1
    stats.meetings_by_level["provinsi"] = 1
    stats.seconds = time.perf_counter() - started
    if progress is not None:
        progress(voters)
    return stats
