"""The three projection services as processes against the real broker and database."""

from __future__ import annotations

import asyncio
import random

import pytest

from services.common.topics import ensure_topics
from services.projection.fold import Projection
from services.projection.recap import comparable_meetings, comparable_report
from tests.conftest import unique_settings
from tests.eventsets import deliveries, event_set
from tests.support.kafka import produce, read_all
from tests.support.services import ServiceProcess, dphp_json, start_services, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CAPACITY = 3


@pytest.fixture
def settings(stack):
    # Small batches so that a stream spans many transactions; a small TPS capacity so that
    # over-capacity TPS occur.
    return unique_settings(stack, tps_capacity=CAPACITY, batch_max_records=200)


def fold_of(events) -> Projection:
    p = Projection(tps_capacity=CAPACITY)
    p.apply(events)
    return p


def assert_projection_equals(settings, expected: Projection) -> None:
    want = comparable_report(expected.recap())
    got = {}
    for level in ("tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional"):
        rows = dphp_json(settings, "report", "--region", "ID", "--level", level)
        assert all(r["name"] for r in rows if r["region_code"].startswith("33.16"))
        got.update(comparable_report(rows))
    assert got == want
    # A region's own subdivisions: the default level below it.
    inside = comparable_report(dphp_json(settings, "report", "--region", "33.16"))
    assert inside == {k: v for k, v in want.items() if k[0] == "kecamatan" and k[1].startswith("33.16.")}
    meetings = dphp_json(settings, "meetings")
    assert comparable_meetings(meetings) == comparable_meetings(expected.meetings())


async def test_convergence_whatever_the_delivery_order(settings, tmp_path):
    await ensure_topics(settings)
    events = event_set(21, voters=600)
    # 5% duplicates, shuffled across topics; the set has moves before registrations and ties.
    await produce(settings, deliveries(events, 21))
    procs = start_services(settings, tmp_path)
    try:
        await wait_converged(settings, processes=procs)
    finally:
        for p in procs:
            p.stop()
    assert_projection_equals(settings, fold_of(events))


async def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(settings, tmp_path):
    await ensure_topics(settings)
    events = event_set(22, voters=3000)
    stream = deliveries(events, 22)
    procs = start_services(settings, tmp_path)
    registrations = procs[0]
    try:
        third = len(stream) // 3
        await produce(settings, stream[:third])
        await asyncio.sleep(1.5)
        registrations.kill()  # SIGKILL, mid-stream
        await produce(settings, stream[third:2 * third])
        restarted = ServiceProcess(settings, "registrations", tmp_path, instance=1).start()
        procs.append(restarted)
        await asyncio.sleep(1.0)
        restarted.kill()  # and once more, while catching up
        again = ServiceProcess(settings, "registrations", tmp_path, instance=2).start()
        procs.append(again)
        await produce(settings, stream[2 * third:])
        await wait_converged(settings, processes=procs)
    finally:
        for p in procs:
            p.stop()
    assert_projection_equals(settings, fold_of(events))


async def test_instances_join_and_leave_mid_stream(settings, tmp_path):
    await ensure_topics(settings)
    events = event_set(23, voters=3000)
    stream = deliveries(events, 23)
    first = ServiceProcess(settings, "registrations", tmp_path, 0).start()
    second = ServiceProcess(settings, "registrations", tmp_path, 1).start()
    others = start_services(settings, tmp_path, names=("movements", "meetings"))
    procs = [first, second, *others]
    try:
        chunks = [stream[i::4] for i in range(4)]
        await produce(settings, chunks[0])
        await asyncio.sleep(1.0)
        third = ServiceProcess(settings, "registrations", tmp_path, 2).start()  # joins
        procs.append(third)
        await produce(settings, chunks[1])
        await asyncio.sleep(2.0)
        first.stop()  # leaves
        await produce(settings, chunks[2])
        await asyncio.sleep(1.0)
        await produce(settings, chunks[3])
        await wait_converged(settings, processes=procs)
    finally:
        for p in procs:
            p.stop()
    assert "assigned partitions" in third.output()
    assert_projection_equals(settings, fold_of(events))


POISON = [
    (b"{not json", "malformed"),
    (b"\xff\xfe\x00 invalid utf-8", "malformed"),
]


async def test_poison_goes_to_the_dead_letter_topic_and_the_rest_is_applied(settings, tmp_path):
    await ensure_topics(settings)
    events = event_set(24, voters=200)
    good = [e for e in events]
    reg = next(e for e in events if e.type.endswith("voter-registered.v1"))
    base = reg.model_dump(mode="json")

    def variant(**changes) -> bytes:
        import copy
        import json

        doc = copy.deepcopy(base)
        for path, value in changes.items():
            target = doc
            keys = path.split("__")
            for k in keys[:-1]:
                target = target[k]
            if value is None:
                del target[keys[-1]]
            else:
                target[keys[-1]] = value
        return json.dumps(doc).encode()

    bad_nik = "3316017713900001"  # day 77 - 40 = 37: impossible
    poison = [
        b"{not json",
        b"\xff\xfe invalid utf-8 \xc3\x28",
        variant(subject=bad_nik, data__nik=bad_nik),
        variant(data__tps__desa_code="33.16.01.2999"),
        variant(type="id.go.kpu.dphp.voter-registered.v2"),
        variant(type="id.go.kpu.dphp.voter-deleted.v1"),
        variant(data=None),
    ]
    mixed = list(good)
    rnd = random.Random(5)
    positions = sorted(rnd.sample(range(len(mixed)), len(poison)))
    for pos, raw in zip(reversed(positions), reversed(poison)):
        mixed.insert(pos, (settings.topic_registered, b"k", raw))
    await produce(settings, mixed)
    procs = start_services(settings, tmp_path)
    try:
        await wait_converged(settings, processes=procs)
    finally:
        for p in procs:
            p.stop()
    dead = await read_all(settings, settings.topic_dead_letter, expected=len(poison))
    assert len(dead) == len(poison), procs[0].output()[-6000:]
    assert sorted(r.value for r in dead) == sorted(poison)
    for r in dead:
        headers = {k: v.decode() for k, v in r.headers}
        assert headers["dphp.original.topic"] == settings.topic_registered
        assert int(headers["dphp.original.offset"]) >= 0
        assert headers["dphp.consumer.group"] == settings.group_id("registrations")
        assert headers["dphp.error.reason"] and headers["dphp.error.class"] and headers["dphp.failed.at"]
        assert bad_nik not in headers["dphp.error.reason"]  # no full NIK in reasons
        assert r.key == b"k"
    reasons = " | ".join(dict(r.headers)["dphp.error.reason"].decode() for r in dead)
    assert "JSON" in reasons or "json" in reasons
    assert "v2" in reasons
    assert_projection_equals(settings, fold_of(good))
    for p in procs:
        assert bad_nik not in p.output()
