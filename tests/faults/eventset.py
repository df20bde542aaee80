"""The fault campaign's event set: a realistic kabupaten plus tricky extras, reordered, duplicated,
with invalid records mixed in, all pre-serialised for publishing, and its pure fold.

What it holds (for a target of N published records):
* the sample generator's Blora (registrations desa by desa, ~1% corrections, ~1% moves across
  desa, kecamatan and kabupaten, moves of NIKs never registered, detention-centre TPS 901 of kind
  lokasi_khusus, desa/kecamatan/kabupaten meetings with re-issued minutes);
* ties: for ~1% of registrations a second `voter-registered` of the NIK with exactly the same
  `time` and another id (another TPS number, marital status, disability), and for ~0.5% a
  `voter-moved` at exactly the registration's `time` (to another kabupaten or into TPS 901):
  only the id decides which one is latest, across the two voter topics;
* `tests/eventsets.event_set` (moves before registrations, many ties, meetings with cutoffs);
* ~5% of all records delivered twice, everything shuffled across topics and partitions;
* ~0.1% invalid records on every input topic (malformed JSON, invalid UTF-8, an impossible NIK,
  an unknown desa, an unknown type version, a missing `data`, an unknown meeting level), each
  byte-unique so that the dead-letter topic can be checked record by record.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import uuid
from dataclasses import dataclass

import orjson

from schemas.events import MeetingHeld, VoterMoved
from schemas.parsing import InvalidEvent, parse_event
from services.projection.fold import Projection
from services.projection.recap import comparable_meetings, comparable_report
from services.sample.generator import (TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED,
                                       generate)
from tests.eventsets import ELSEWHERE, event_set

KIND_OF_TYPE = {TYPE_VOTER_REGISTERED: "registered", TYPE_VOTER_MOVED: "moved", TYPE_MEETING_HELD: "meetings"}
EXPECTED_TYPE = {v: k for k, v in KIND_OF_TYPE.items()}

Record = tuple[str, bytes, bytes]  # (kind, key, value)


@dataclass
class CampaignEvents:
    valid: list[Record]            # every distinct valid event once
    invalid: list[Record]          # every invalid record once (byte-unique)
    deliveries: list[Record]       # what is published, in order: valid + duplicates + invalid, shuffled
    expected_report: dict          # comparable_report of the fold, every level
    expected_meetings: dict        # comparable_meetings of the fold
    tps_capacity: int

    @property
    def invalid_values(self) -> set[bytes]:
        return {v for _, _, v in self.invalid}


def _key(doc: dict) -> bytes:
    data = doc["data"]
    return (data["meeting_id"] if "meeting_id" in data else data["nik"]).encode()


def _record(doc: dict) -> Record:
    return KIND_OF_TYPE[doc["type"]], _key(doc), orjson.dumps(doc)


def _extras(rnd: random.Random, regs: list[dict]) -> list[dict]:
    """Same-time corrections and same-time moves: ties broken by id only."""
    out = []
    eid = lambda: str(uuid.UUID(int=rnd.getrandbits(128), version=4))  # noqa: E731
    for doc in regs:
        x = rnd.random()
        if x < 0.01:
            twin = copy.deepcopy(doc)
            twin["id"] = eid()
            d = twin["data"]
            choice = rnd.randrange(3)
            if choice == 0 and d["tps"]["kind"] == "reguler":
                d["tps"]["number"] = max(1, d["tps"]["number"] + rnd.choice((-1, 1)))
            elif choice == 1:
                d["marital_status"] = "S" if d["marital_status"] != "S" else "P"
            else:
                d["disability"] = None if d.get("disability") else rnd.randrange(1, 7)
            out.append(twin)
        elif x < 0.015:
            to = rnd.choice([{"desa_code": rnd.choice(ELSEWHERE), "number": 1, "kind": "reguler"},
                             {"desa_code": "33.16.09.1011", "number": 901, "kind": "lokasi_khusus"}])
            out.append({"specversion": "1.0", "id": eid(), "source": "/kpu/33.16/coklit",
                        "type": TYPE_VOTER_MOVED, "time": doc["time"], "subject": doc["subject"],
                        "datacontenttype": "application/json",
                        "data": {"nik": doc["data"]["nik"], "to_tps": to, "from_tps": doc["data"]["tps"],
                                 "reason": rnd.choice(("pindah_domisili", "pindah_memilih"))}})
    return out


def _invalid(rnd: random.Random, reg: dict, move: dict, meeting: dict, count: int) -> list[Record]:
    out: list[Record] = []
    for n in range(count):
        tag = f"faultinvalid-{n:06d}"
        form = n % 9
        if form == 0:
            kind, value = rnd.choice(("registered", "moved", "meetings")), f'{{"not json {tag}'.encode()
        elif form == 1:
            kind, value = rnd.choice(("registered", "moved")), b"\xff\xfe " + tag.encode() + b" \xc3\x28"
        elif form == 2:  # day 77 - 40 = 37: an impossible NIK
            doc = copy.deepcopy(reg)
            doc["id"] = tag
            doc["subject"] = doc["data"]["nik"] = "3316017713900001"
            kind, value = "registered", orjson.dumps(doc)
        elif form == 3:
            doc = copy.deepcopy(reg)
            doc["id"] = tag
            doc["data"]["tps"]["desa_code"] = "33.16.01.2999"
            kind, value = "registered", orjson.dumps(doc)
        elif form == 4:
            doc = copy.deepcopy(reg)
            doc["id"] = tag
            doc["type"] = "id.go.kpu.dphp.voter-registered.v2"
            kind, value = "registered", orjson.dumps(doc)
        elif form == 5:
            doc = copy.deepcopy(move)
            doc["id"] = tag
            del doc["data"]
            kind, value = "moved", orjson.dumps(doc)
        elif form == 6:
            doc = copy.deepcopy(move)
            doc["id"] = tag
            doc["data"]["to_tps"]["desa_code"] = "33.16.01.2999"
            kind, value = "moved", orjson.dumps(doc)
        elif form == 7:
            doc = copy.deepcopy(meeting)
            doc["id"] = tag
            doc["data"]["level"] = "dusun"
            kind, value = "meetings", orjson.dumps(doc)
        else:  # a valid registration on the meetings topic: the wrong type for the topic
            doc = copy.deepcopy(reg)
            doc["id"] = tag
            kind, value = "meetings", orjson.dumps(doc)
        try:
            parse_event(value, EXPECTED_TYPE[kind])
        except InvalidEvent:
            pass
        else:  # pragma: no cover - the set must hold invalid records only
            raise AssertionError(f"meant to be invalid but accepted: {value[:200]!r}")
        out.append((kind, b"faultinvalid", value))
    return out


def build(seed: int, target: int, tps_capacity: int = 600) -> CampaignEvents:
    rnd = random.Random(f"faults-{seed}")  # not event_set's sequence: its ids would repeat
    extra_voters = 2000 if target >= 100_000 else 400
    voters = max(2000, int((target / 1.051 - extra_voters * 1.3) / 1.035))
    docs = [orjson.loads(line) for line in generate("33.16", voters, seed)]
    regs = [d for d in docs if d["type"] == TYPE_VOTER_REGISTERED]
    docs += _extras(rnd, regs)
    valid: list[Record] = [_record(d) for d in docs]
    for e in event_set(seed, voters=extra_voters):
        kind = "meetings" if isinstance(e, MeetingHeld) else "moved" if isinstance(e, VoterMoved) else "registered"
        valid.append((kind, (e.data.meeting_id if kind == "meetings" else e.data.nik).encode(),
                      e.model_dump_json().encode()))
    # Every valid record parses (the extras are checked like the rest), and ids are distinct.
    projection = Projection(tps_capacity=tps_capacity)
    events = [parse_event(v, EXPECTED_TYPE[k]) for k, _, v in valid]
    assert len({e.id for e in events}) == len(events), "event ids must be distinct"
    projection.apply(events)
    move = next(d for d in docs if d["type"] == TYPE_VOTER_MOVED)
    meeting = next(d for d in docs if d["type"] == TYPE_MEETING_HELD)
    invalid = _invalid(rnd, regs[0], move, meeting, max(30, target // 1000))
    out = valid + rnd.sample(valid, int(len(valid) * 0.05)) + invalid + rnd.sample(invalid, len(invalid) // 10)
    rnd.shuffle(out)
    return CampaignEvents(valid=valid, invalid=invalid, deliveries=out,
                          expected_report=comparable_report(projection.recap()),
                          expected_meetings=comparable_meetings(projection.meetings()),
                          tps_capacity=tps_capacity)


if __name__ == "__main__":  # pragma: no cover - manual sizing check
    import sys
    import time

    t = time.monotonic()
    ce = build(1, int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)
    print(len(ce.valid), len(ce.invalid), len(ce.deliveries), f"{time.monotonic() - t:.1f} s",
          dt.datetime.now().isoformat())
