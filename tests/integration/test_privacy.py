"""The reader's surface (CONTRACT 5, privacy threshold): what `dphp_reader` can read, against the fold.

Each test migrates a schema of its own and connects to it a second time as `dphp_reader` (the
plain stack: the role exists with LOGIN and trust authentication).
"""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from schemas.events import VoterMoved, VoterRegistered
from services.common.db import migrate
from services.operations import reading
from services.projection import queries
from services.projection import store as st
from services.projection.fold import Projection
from services.projection.privacy import public_rows
from services.projection.recap import LEVELS, comparable_meetings, comparable_report, region_contains, report_json
from tests.eventsets import deliveries, event_set
from tests.integration.test_store import apply_all
from tests.strategies import make_registered
from services.devstack.services import READER_ROLE, url_with_user
from tests.support.services import dphp_json

pytestmark = pytest.mark.integration

CAPACITY = 3
MIN_VOTERS = 10  # the default of DPHP_PRIVACY_MIN_VOTERS


def as_reader(database_url: str) -> str:
    """The same database URL with the role dphp_reader (no password: the plain stack trusts it)."""
    return url_with_user(database_url, READER_ROLE)


@pytest.fixture
async def projection(settings):
    """The schema's store (as the migrating role) and a connection as dphp_reader."""
    await migrate(settings)
    conn = await asyncpg.connect(settings.database_url)
    store = st.ProjectionStore(conn, settings.db_schema)
    await store.prepare()
    await store.ensure_config(settings.voting_day, CAPACITY)
    reader = await asyncpg.connect(as_reader(settings.database_url))
    yield store, reader
    await reader.close()
    await conn.execute(f"DROP SCHEMA {settings.db_schema} CASCADE")
    await conn.close()


async def test_the_reader_cannot_read_personal_data_or_exact_tps_figures(projection, settings):
    store, reader = projection
    s = settings.db_schema
    await apply_all(store, event_set(5, voters=30), 100, st.eligibility_cutoff(settings.voting_day))
    tables = {r["tablename"] for r in await store.conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", s)}
    assert {"voter", "voter_event", "tps_tally", "meeting"} <= tables
    for relation in sorted(tables | {"recap_full", "recap_tps"}):
        if relation in ("privacy_config", "consumer_position"):
            continue  # the threshold and the stored offsets: no personal data (migrations 007, 008)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.fetch(f"SELECT * FROM {s}.{relation} LIMIT 1")
    for gone in ("registration", "movement"):  # dropped by migration 003: nothing to grant
        with pytest.raises(asyncpg.UndefinedTableError):
            await reader.fetch(f"SELECT * FROM {s}.{gone} LIMIT 1")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the exact as-of recap
        await reader.fetch(f"SELECT * FROM {s}.recap_as_of($1, 'ID', now())", s)
    for view in ("recap", "recap_public", "meetings"):
        assert await reader.fetch(f"SELECT * FROM {s}.{view}")
    # The definer's function serves only a schema its caller may use.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await reader.fetch(f"SELECT * FROM {s}.recap_as_of_public('pg_catalog', 'ID', now())")


async def test_the_reader_cannot_run_its_own_functions_with_the_owners_rights(projection, settings):
    """Found by review: the reader puts its own recap_as_of_public, recap_as_of (reading voters'
    NIKs), privacy_withheld and privacy_config in its temporary schema, and asks the owner's
    SECURITY DEFINER function to serve that schema; its recap_as_of would run as the owner."""
    store, reader = projection
    s = settings.db_schema
    await apply_all(store, event_set(5, voters=30), 100, st.eligibility_cutoff(settings.voting_day))
    columns = ", ".join(f"{c} integer" for c in ("male", "female", "total", "tps_count", "tps_loksus_count",
                                                  "new_voters", "disabled", "under_age", "over_capacity_tps",
                                                  "d1", "d2", "d3", "d4", "d5", "d6"))
    await reader.execute("CREATE TEMP TABLE privacy_config (min_voters integer)")
    await reader.execute("INSERT INTO pg_temp.privacy_config VALUES (0)")
    temp = await reader.fetchval("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
    leak = f"SELECT 'tps'::text, nik::text, {', '.join(['0'] * 15)} FROM {s}.voter"
    await reader.execute(f"""CREATE FUNCTION pg_temp.recap_as_of(s text, region text, t timestamptz)
        RETURNS TABLE (level text, region_code text, {columns}) LANGUAGE sql AS $$ {leak} $$""")
    await reader.execute("""CREATE FUNCTION pg_temp.privacy_withheld(l text, n integer, m integer)
        RETURNS boolean LANGUAGE sql AS $$ SELECT false $$""")
    await reader.execute(f"""CREATE FUNCTION pg_temp.recap_as_of_public(s text, region text, t timestamptz)
        RETURNS TABLE (level text, region_code text, {columns}) LANGUAGE sql AS $$ SELECT * FROM pg_temp.recap_as_of(s, region, t) $$""")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        rows = await reader.fetch(f"SELECT * FROM {s}.recap_as_of_public($1, 'ID', now())", temp)
        assert not any(len(r["region_code"]) == 16 for r in rows), "the reader read NIKs as the owner"
    # The projection itself is still served.
    assert await reader.fetch(f"SELECT * FROM {s}.recap_as_of_public($1, 'ID', now())", s)


async def stored_and_folded(store, settings, seed: int) -> tuple[list, Projection]:
    """An event set of 300 voters stored (redelivered, out of order) and folded: (events, fold)."""
    events = event_set(seed, voters=300)
    await apply_all(store, deliveries(events, seed), 500, st.eligibility_cutoff(settings.voting_day))
    fold = Projection(tps_capacity=CAPACITY)
    fold.apply(events)
    return events, fold


async def test_the_readers_recap_is_the_folds_with_the_threshold_at_every_level_as_of_too(projection, settings):
    store, reader = projection
    s = settings.db_schema
    events, fold = await stored_and_folded(store, settings, 31)

    def public(recap, region: str = "ID") -> dict:
        return comparable_report([r for r in public_rows(report_json(recap), MIN_VOTERS)
                                  if region_contains(region, r["region_code"])])

    want = public(fold.recap())
    withheld = [k for k, v in want.items() if v["disabled"] is None]
    assert withheld and all(k[0] == "tps" for k in withheld)  # the set has small TPS, and only TPS withhold
    got: dict = {}
    for level in LEVELS:
        got |= comparable_report(await reading.recap_rows(reader, s, "ID", level, public=True))
    assert got == want
    # The contract's view, as the reader reads it.
    view = {(r["level"], r["region_code"]): r["disabled"] for r in await reader.fetch(f"SELECT * FROM {s}.recap")}
    assert view == {k: v["disabled"] for k, v in want.items()}

    times = sorted({e.time for e in events if isinstance(e, (VoterRegistered, VoterMoved))})
    for t in (times[len(times) // 3], times[-1]):
        for region in ("ID", "33.16", "33.16.01", "33.16.01.2001"):
            rows = await queries.recap_as_of(reader, s, region, t, public=True)
            assert comparable_report(rows) == public(fold.recap(as_of=t), region), (t, region)
        as_of_rows = await reading.recap_rows(reader, s, "33.16", "tps", as_of=t, public=True)
        assert comparable_report(as_of_rows) == {k: v for k, v in public(fold.recap(as_of=t), "33.16").items()
                                                 if k[0] == "tps"}
    meetings = await queries.meetings(reader, s, public=True)
    assert meetings and comparable_meetings(meetings) == comparable_meetings(fold.meetings())


def _voters(desa: str, number: int, eligible: int, under_age: int, disabled: int, first: int) -> list:
    t = dt.datetime(2024, 7, 1, 3, 0, tzinfo=dt.UTC)
    out = []
    for i in range(eligible + under_age):
        young = i >= eligible
        born = dt.date(2010, 5, 12) if young else dt.date(1990, 5, 12)
        nik = f"331601{12:02d}{born:%m%y}{first + i:04d}"
        out.append(make_registered(f"priv-{first + i}", t + dt.timedelta(minutes=i), nik, tps=(desa, number),
                                   sex="L", birth_date=born, disability=3 if i < disabled else None))
    return out


async def test_nine_voters_withhold_ten_do_not_and_the_operator_sees_exact_figures(projection, settings):
    store, reader = projection
    s, desa = settings.db_schema, "33.16.01.2001"
    # TPS 001: 9 eligible voters (and 2 under age, who do not count), one with a disability;
    # TPS 002: 10 eligible voters, two with a disability.
    events = _voters(desa, 1, 9, 2, 1, first=1) + _voters(desa, 2, 10, 0, 2, first=100)
    await apply_all(store, events, 50, st.eligibility_cutoff(settings.voting_day))
    rows = {r["region_code"]: r for r in await reading.recap_rows(reader, s, desa, "tps", public=True)}
    small, big = rows[f"{desa}/001"], rows[f"{desa}/002"]
    assert (small["total"], small["under_age"], small["disabled"], small["disability_by_type"]) == (9, 2, None, None)
    assert (big["total"], big["disabled"], big["disability_by_type"]["3"]) == (10, 2, 2)
    (own,) = await reading.recap_rows(reader, s, desa, "desa", public=True)
    assert (own["total"], own["disabled"]) == (19, 3)  # desa level stays exact
    late = dt.datetime(2024, 8, 1, tzinfo=dt.UTC)
    as_of = {r["region_code"]: r for r in await reading.recap_rows(reader, s, desa, "tps", late, public=True)}
    assert as_of[f"{desa}/001"]["disabled"] is None and as_of[f"{desa}/002"]["disabled"] == 2

    # The operator (a role that reads the tables), through `dphp report` as users run it: exact.
    operator = dphp_json(settings, "report", "--region", desa, "--level", "tps")
    assert [(r["region_code"], r["disabled"], r["disability_by_type"]["3"]) for r in operator] == [
        (f"{desa}/001", 1, 1), (f"{desa}/002", 2, 2)]
    # The same commands run as the reader role: the reader's figures, not a permission error.
    as_reader_role = settings.model_copy(update={"database_url": as_reader(settings.database_url)})
    withheld = dphp_json(as_reader_role, "report", "--region", desa, "--level", "tps")
    assert [(r["region_code"], r["disabled"]) for r in withheld] == [(f"{desa}/001", None), (f"{desa}/002", 2)]
    assert dphp_json(as_reader_role, "meetings", "--region", desa) == []

    # The threshold is the setting, recorded by `migrate`: at 11, TPS 002 withholds too; at 0 none does.
    for min_voters, hidden in ((11, {"001", "002"}), (0, set())):
        await migrate(settings.model_copy(update={"privacy_min_voters": min_voters}))
        rows = await reading.recap_rows(reader, s, desa, "tps", public=True)
        assert {r["region_code"][-3:] for r in rows if r["disabled"] is None} == hidden


async def test_the_readers_functions_follow_a_renamed_schema(projection, settings):
    """`dphp replay` renames schemas; the functions name their tables through their argument."""
    store, reader = projection
    s = settings.db_schema
    await apply_all(store, event_set(9, voters=40), 100, st.eligibility_cutoff(settings.voting_day))
    t = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    before = await queries.recap_as_of(reader, s, "ID", t, public=True)
    await store.conn.execute(f"ALTER SCHEMA {s} RENAME TO {s}_renamed")
    try:
        assert await queries.recap_as_of(reader, f"{s}_renamed", "ID", t, public=True) == before
        assert await queries.recap_as_of(store.conn, f"{s}_renamed", "ID", t) != before  # exact: differs
    finally:
        await store.conn.execute(f"ALTER SCHEMA {s}_renamed RENAME TO {s}")
