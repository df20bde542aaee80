"""Seeded random event sets of moderate size for integration tests (hypothesis is for unit tests)."""

from __future__ import annotations

import datetime as dt
import random
import uuid

from schemas.events import Event
from tests.strategies import make_meeting, make_moved, make_nik, make_registered

WIB = dt.timezone(dt.timedelta(hours=7))
DESA = ("33.16.01.2001", "33.16.01.2002", "33.16.09.1011", "33.16.02.2001")
ELSEWHERE = ("34.71.01.1001", "33.17.01.2001")
BASE = dt.datetime(2024, 6, 24, 8, 0, tzinfo=WIB)


def event_set(seed: int, voters: int = 200) -> list[Event]:
    """Registrations (with corrections), moves (some before the registration, some of NIKs never
    registered, some out of the kabupaten, some into a TPS lokasi khusus), ties in `time`, and
    meetings at desa, kecamatan and kabupaten level."""
    rnd = random.Random(seed)

    def when() -> dt.datetime:
        # Few distinct minutes: many ties in `time`, broken by id.
        t = BASE + dt.timedelta(minutes=rnd.randrange(0, 60 * 24 * 40, 90))
        return t.astimezone(rnd.choice((WIB, dt.UTC)))

    def eid() -> str:
        return str(uuid.UUID(int=rnd.getrandbits(128)))

    events: list[Event] = []
    for i in range(voters):
        sex = rnd.choice("LP")
        birth = rnd.choice((dt.date(1970, 1, 1), dt.date(1985, 6, 15), dt.date(2001, 2, 3),
                            dt.date(2007, 11, 27), dt.date(2007, 11, 28), dt.date(2008, 5, 5)))
        nik = make_nik(rnd.choice(("01", "02", "09")), birth, sex, i + 1)
        tps = (rnd.choice(DESA), rnd.choice((1, 2, 3)), "reguler")
        if rnd.random() < 0.05:
            tps = ("33.16.09.1011", 901, "lokasi_khusus")
        registered = rnd.random() < 0.95
        if registered:
            for _ in range(2 if rnd.random() < 0.15 else 1):  # corrections
                events.append(make_registered(
                    eid(), when(), nik, tps=tps, sex=rnd.choice("LP") if rnd.random() < 0.2 else sex,
                    birth_date=birth, marital_status=rnd.choice("BBBSP"),
                    disability=rnd.choice((None,) * 8 + (1, 2, 3, 4, 5, 6)),
                    new_voter=rnd.random() < 0.1))
        if rnd.random() < 0.25 or not registered:
            to = rnd.choice([(rnd.choice(DESA), rnd.choice((1, 2, 3)), "reguler"),
                             ("33.16.09.1011", 901, "lokasi_khusus"),
                             (rnd.choice(ELSEWHERE), 1, "reguler")])
            events.append(make_moved(eid(), when(), nik, to, from_tps=tps,
                                     reason=rnd.choice(("pindah_domisili", "pindah_memilih", "salah_penempatan_tps"))))
    for level, code in (("desa", "33.16.01.2001"), ("kecamatan", "33.16.01"), ("kabupaten", "33.16"),
                        ("desa", "33.16.09.1011")):
        held = when()
        declared = {"male": rnd.randrange(50), "female": rnd.randrange(50), "total": rnd.randrange(100),
                    "tps_count": rnd.randrange(5), "tps_loksus_count": rnd.randrange(2)}
        mid = f"pleno-dphp-{code}"
        events.append(make_meeting(eid(), held, mid, level, code, held_at=held, declared=declared,
                                   data_cutoff=held if rnd.random() < 0.5 else None,
                                   attendees=[{"institution": "KPU Kabupaten Blora", "name": "Heni Rina Minarti",
                                               "role": "Komisioner"}]))
        if rnd.random() < 0.5:  # a later corrected version of the minutes
            later = held + dt.timedelta(days=1)
            events.append(make_meeting(eid(), later, mid, level, code, held_at=held, declared=None))
    return events


def deliveries(events: list[Event], seed: int, duplicate_ratio: float = 0.05) -> list[Event]:
    """The events shuffled, with a share delivered twice."""
    rnd = random.Random(seed)
    out = list(events) + rnd.sample(events, int(len(events) * duplicate_ratio))
    rnd.shuffle(out)
    return out
