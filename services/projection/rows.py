"""Rows for the SQL layer from events as ``schemas.parsing.parse_event_fields`` gives them (plain
dicts; a model's ``model_dump()`` is the same), and the columns they fill."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from services.projection.fold import eligibility_cutoff

__all__ = ["MEETING_COLUMNS", "MOVE_COLUMNS", "REG_COLUMNS", "eligibility_cutoff", "meeting_row", "movement_row",
           "registration_row"]

REG_COLUMNS = (
    "event_id", "nik", "event_time", "nkk", "name", "birth_place", "birth_date", "sex",
    "marital_status", "disability", "ktp_el", "street", "rt", "rw", "new_voter", "eligible",
    "desa_code", "tps_number", "loksus",
)
MOVE_COLUMNS = (
    "event_id", "nik", "event_time", "desa_code", "tps_number", "loksus", "from_desa_code",
    "from_tps_number", "reason",
)
MEETING_COLUMNS = (
    "meeting_id", "event_time", "event_id", "level", "region_code", "stage", "held_at",
    "data_cutoff", "venue", "attendees", "declared", "notes",
)


# Rows from events as ``schemas.parsing.parse_event_fields`` gives them (plain dicts; a model's
# ``model_dump()`` is the same).

def registration_row(e: dict[str, Any], cutoff: dt.date) -> tuple:
    d = e["data"]
    a = d["address"]
    tps = d["tps"]
    birth_date, marital_status = d["birth_date"], d["marital_status"]
    return (
        e["id"], d["nik"], e["time"], d["nkk"], d["name"], d["birth_place"], birth_date, d["sex"], marital_status,
        d["disability"], d["ktp_el"], a["street"], a["rt"], a["rw"], d["new_voter"],
        birth_date <= cutoff or marital_status != "B",
        tps["desa_code"], tps["number"], tps["kind"] == "lokasi_khusus",
    )


def movement_row(e: dict[str, Any]) -> tuple:
    d = e["data"]
    to, f = d["to_tps"], d["from_tps"]
    return (
        e["id"], d["nik"], e["time"], to["desa_code"], to["number"], to["kind"] == "lokasi_khusus",
        f["desa_code"] if f else None, f["number"] if f else None, d["reason"],
    )


def meeting_row(e: dict[str, Any]) -> tuple:
    d = e["data"]
    return (
        d["meeting_id"], e["time"], e["id"], d["level"], d["region_code"], d["stage"], d["held_at"],
        d["data_cutoff"], d["venue"], orjson.dumps(d["attendees"]).decode(),
        orjson.dumps(d["declared"]).decode() if d["declared"] is not None else None,
        d["notes"],
    )
