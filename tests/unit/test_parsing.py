"""schemas.parsing: parse_event, error wording, keys, NIK masking and the CSV layout of `dphp publish`."""

from __future__ import annotations

import csv
import io
import timeit

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import TYPE_MEETING_HELD, TYPE_VOTER_MOVED, TYPE_VOTER_REGISTERED, VoterRegistered
from schemas.parsing import (
    ERROR_CLASSES,
    ERROR_MALFORMED,
    ERROR_SCHEMA,
    ERROR_UNEXPECTED_TYPE,
    ERROR_UNKNOWN_TYPE,
    CsvLayout,
    InvalidEvent,
    csv_columns,
    csv_row_to_json,
    describe_type,
    event_key,
    event_to_csv_row,
    mask_nik,
    parse_event,
    parse_event_fields,
    topic_kind,
)
from tests.conftest_schemas_helpers import events, meeting, moved, raw, registered, with_changes

pytestmark = pytest.mark.unit


# --- InvalidEvent, masking, keys ----------------------------------------------------------------------------


def test_invalid_event_carries_reason_and_class():
    with pytest.raises(InvalidEvent) as info:
        parse_event(b"{")
    err = info.value
    assert str(err) == err.reason
    assert err.error_class in ERROR_CLASSES
    assert isinstance(err, ValueError)
    assert "InvalidEvent(" in repr(err)


def test_mask_nik():
    assert mask_nik("3316015205900002") == "3316**********02"
    assert len(mask_nik("3316015205900002")) == 16
    assert mask_nik("12345") == "*****"
    assert mask_nik("") == ""


def test_event_key_and_topic_kind():
    reg, mov, meet = parse_event(raw(registered())), parse_event(raw(moved())), parse_event(raw(meeting()))
    assert event_key(reg) == event_key(mov) == b"3316015205900002"
    assert event_key(meet) == b"pleno-dphp-33.16-2024-08-11"
    assert reg.key == event_key(reg) and meet.key == event_key(meet)
    assert [topic_kind(e) for e in (reg, mov, meet)] == ["registered", "moved", "meetings"]
    assert topic_kind(TYPE_VOTER_MOVED) == "moved"
    with pytest.raises(ValueError):
        topic_kind("id.go.kpu.dphp.voter-moved.v2")


def test_describe_type():
    assert describe_type(TYPE_VOTER_REGISTERED) is None
    assert describe_type(TYPE_VOTER_REGISTERED, TYPE_VOTER_REGISTERED) is None
    assert describe_type(TYPE_VOTER_REGISTERED, TYPE_MEETING_HELD)[1] == ERROR_UNEXPECTED_TYPE
    reason, klass = describe_type("id.go.kpu.dphp.meeting-held.v3")
    assert klass == ERROR_UNKNOWN_TYPE and "major version v3" in reason


def test_long_unknown_type_is_shortened_in_the_reason():
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw(with_changes(registered(), "type", "x" * 5000)))
    assert len(info.value.reason) < 400


def test_reasons_are_one_line():
    for doc in (with_changes(registered(), "data.name", 5), with_changes(meeting(), "data.attendees", "x"), {}):
        with pytest.raises(InvalidEvent) as info:
            parse_event(raw(doc))
        assert "\n" not in info.value.reason


def test_empty_object_reports_the_missing_type():
    with pytest.raises(InvalidEvent) as info:
        parse_event(b"{}")
    assert info.value.reason == "type: missing"


def test_parsing_is_fast():
    data = raw(registered())
    assert 500 <= len(data) <= 700
    parse_event(data)
    per_call = min(timeit.repeat(lambda: parse_event(data), number=2000, repeat=3)) / 2000
    # ~10 us on a developer machine; the bound only catches an accidental slow path.
    assert per_call < 100e-6, f"{per_call * 1e6:.1f} us per event"


# --- CSV ------------------------------------------------------------------------------------------------------


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


REGISTERED_CSV = """\
id,source,type,time,subject,data.nik,data.nkk,data.name,data.birth_place,data.birth_date,data.sex,\
data.marital_status,data.disability,data.ktp_el,data.address.street,data.address.rt,data.address.rw,\
data.tps.desa_code,data.tps.number,data.tps.kind,data.new_voter
6f1c2a3e-4b5d-4e6f-8a7b-9c0d1e2f3a4b,/kpu/33.16/coklit,id.go.kpu.dphp.voter-registered.v1,\
2024-07-02T10:15:00+07:00,3316015205900002,3316015205900002,3316010101090001,SITI AMINAH,BLORA,1990-05-12,P,S,,\
true,DUKUH KRAJAN,001,002,33.16.01.2001,1,reguler,false
"""


def test_csv_columns_are_the_documented_layout():
    assert csv_columns(TYPE_VOTER_REGISTERED) == tuple(_rows(REGISTERED_CSV)[0])
    assert csv_columns(TYPE_VOTER_MOVED) == (
        "id", "source", "type", "time", "subject", "data.nik",
        "data.to_tps.desa_code", "data.to_tps.number", "data.to_tps.kind",
        "data.from_tps.desa_code", "data.from_tps.number", "data.from_tps.kind", "data.reason",
    )
    assert csv_columns(TYPE_MEETING_HELD)[5:] == (
        "data.meeting_id", "data.level", "data.region_code", "data.stage", "data.held_at", "data.data_cutoff",
        "data.venue", "data.attendees", "data.declared", "data.notes",
    )
    with pytest.raises(ValueError):
        csv_columns("nope")


def test_csv_row_gives_the_same_event_as_the_json_example():
    header, row = _rows(REGISTERED_CSV)
    event = parse_event(csv_row_to_json(header, row))
    expected = parse_event(raw(with_changes(registered(), "datacontenttype", delete=True)))
    assert event == expected
    assert event.data.disability is None


def test_csv_moved_without_from_tps_and_meeting_with_json_cells():
    header = list(csv_columns(TYPE_VOTER_MOVED))
    row = ["e1", "/kpu/33.16/coklit", TYPE_VOTER_MOVED, "2024-07-20T14:30:00+07:00", "3316015205900002",
           "3316015205900002", "33.16.09.1011", "901", "lokasi_khusus", "", "", "", "pindah_memilih"]
    event = parse_event(csv_row_to_json(header, row))
    assert event.data.from_tps is None and event.data.to_tps.number == 901

    header = list(csv_columns(TYPE_MEETING_HELD))
    ex = meeting()
    row = [ex["id"], ex["source"], ex["type"], ex["time"], ex["subject"], "pleno-dphp-33.16-2024-08-11", "kabupaten",
           "33.16", "dphp", "2024-08-11T09:00:00+07:00", "", "Ruang Pertemuan KPU Blora",
           orjson.dumps(ex["data"]["attendees"]).decode(), orjson.dumps(ex["data"]["declared"]).decode(), ""]
    event = parse_event(csv_row_to_json(header, row))
    assert event == parse_event(raw(with_changes(ex, "datacontenttype", delete=True)))
    row[13] = ""
    assert parse_event(csv_row_to_json(header, row)).data.declared is None


def test_csv_partial_from_tps_is_rejected_by_the_validator():
    header = list(csv_columns(TYPE_VOTER_MOVED))
    row = ["e1", "/kpu/33.16/coklit", TYPE_VOTER_MOVED, "2024-07-20T14:30:00+07:00", "3316015205900002",
           "3316015205900002", "33.16.09.1011", "901", "lokasi_khusus", "33.16.01.2001", "", "", "pindah_memilih"]
    with pytest.raises(InvalidEvent) as info:
        parse_event(csv_row_to_json(header, row))
    assert info.value.reason.startswith("data.from_tps.number:")


@pytest.mark.parametrize(
    "column, cell, expected",
    [
        ("data.tps.number", "007", 7),
        ("data.tps.number", " 12 ", 12),
        ("data.ktp_el", "TRUE", True),
        ("data.ktp_el", "False", False),
        ("data.disability", "3", 3),
        ("data.disability", "", None),
        ("data.disability", "  ", None),
    ],
)
def test_csv_cells_convert(column, cell, expected):
    header, row = _rows(REGISTERED_CSV)
    row[header.index(column)] = cell
    event = parse_event(csv_row_to_json(header, row))
    obj = event
    for p in column.split("."):
        obj = getattr(obj, p)
    assert obj == expected


@pytest.mark.parametrize(
    "column, cell",
    [
        ("data.tps.number", "1.0"),
        ("data.tps.number", "satu"),
        ("data.tps.number", "-1"),
        ("data.tps.number", ""),
        ("data.ktp_el", "ya"),
        ("data.ktp_el", "1"),
        ("data.ktp_el", ""),
        ("data.disability", "x"),
        ("data.birth_date", "12/05/1990"),
        ("time", "2024-07-02 10:15:00"),
        ("time", ""),
    ],
)
def test_csv_bad_cells_are_rejected_by_the_validator(column, cell):
    header, row = _rows(REGISTERED_CSV)
    row[header.index(column)] = cell
    with pytest.raises(InvalidEvent) as info:
        parse_event(csv_row_to_json(header, row))
    assert info.value.reason.startswith(f"{column}:")
    assert info.value.error_class in (ERROR_SCHEMA, "rule")


def test_csv_missing_column_is_a_missing_field():
    header, row = _rows(REGISTERED_CSV)
    i = header.index("data.nkk")
    del header[i], row[i]
    with pytest.raises(InvalidEvent) as info:
        parse_event(csv_row_to_json(header, row))
    assert info.value.reason == "data.nkk: missing"


def test_csv_column_order_is_free_and_extension_and_optional_columns_work():
    header, row = _rows(REGISTERED_CSV)
    pairs = list(zip(header, row, strict=True))[::-1]
    pairs += [("specversion", ""), ("datacontenttype", ""), ("dataschema", "https://kpu.go.id/s.json"),
              ("kpubatch", "batch-7"), ("emptyext", "")]
    header2, row2 = [p[0] for p in pairs], [p[1] for p in pairs]
    event = parse_event(csv_row_to_json(header2, row2))
    assert event.specversion == "1.0" and event.datacontenttype is None
    assert event.dataschema == "https://kpu.go.id/s.json"
    assert event.model_extra == {"kpubatch": "batch-7"}
    assert event.data == parse_event(raw(registered())).data


def test_csv_header_with_bom_and_spaces():
    header, row = _rows(REGISTERED_CSV)
    header = ["\ufeffid"] + [f" {h} " for h in header[1:]]
    assert isinstance(parse_event(csv_row_to_json(header, row)), VoterRegistered)


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda h, r: (h, r[:-1]), "the row has 20 fields, the header 21"),
        (lambda h, r: (h, r + ["x"]), "the row has 22 fields"),
        (lambda h, r: (h[:-1] + ["id"], r), "appears twice"),
        (lambda h, r: (h[:-1] + [""], r), "has no name"),
        (lambda h, r: (h[:-1] + ["data.tps"], r), "conflicts"),
    ],
)
def test_csv_shape_errors_are_malformed(mutate, words):
    header, row = _rows(REGISTERED_CSV)
    header, row = mutate(header, row)
    with pytest.raises(InvalidEvent) as info:
        csv_row_to_json(header, row)
    assert words in info.value.reason
    assert info.value.error_class == ERROR_MALFORMED


def test_csv_json_cell_that_is_not_json_is_malformed():
    header = list(csv_columns(TYPE_MEETING_HELD))
    row = ["m", "/kpu", TYPE_MEETING_HELD, "2024-08-11T13:00:00+07:00", "m", "m", "kabupaten", "33.16", "dphp",
           "2024-08-11T09:00:00+07:00", "", "", "[{not json", "", ""]
    with pytest.raises(InvalidEvent) as info:
        csv_row_to_json(header, row)
    assert info.value.reason == "data.attendees: the cell is not valid JSON"


def test_csv_layout_object_is_reusable():
    header, row = _rows(REGISTERED_CSV)
    layout = CsvLayout(header)
    assert layout.to_json(row) == layout.to_json(row) == csv_row_to_json(header, row)


@settings(max_examples=150, deadline=None)
@given(events(with_extensions=False))
def test_csv_round_trip(event):
    columns = csv_columns(event.type) + ("datacontenttype", "dataschema")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerow(event_to_csv_row(event, columns))
    header, row = _rows(buf.getvalue())
    assert parse_event(csv_row_to_json(header, row), expected_type=event.type) == event


def test_bytearray_input_is_accepted():
    assert isinstance(parse_event(bytearray(raw(registered()))), VoterRegistered)
    with pytest.raises(InvalidEvent):
        parse_event(bytearray(b"\xff"))


# --- the cheap paths of parse_event say exactly what the models say ----------------------------------------


def _reason(data: bytes | bytearray | str, expected_type: str | None = None) -> tuple[str, str]:
    with pytest.raises(InvalidEvent) as info:
        parse_event(data, expected_type)
    return info.value.reason, info.value.error_class


RULE_BREAKS = [
    (registered(), "subject", "3316015205900003", "subject must equal data.nik"),
    (moved(), "subject", "3316015205900003", "subject must equal data.nik"),
    (meeting(), "subject", "pleno-lain", "subject must equal data.meeting_id"),
    (registered(), "data.birth_date", "2030-01-01", "data.birth_date is after the date of the event's time"),
]


@pytest.mark.parametrize(("doc", "path", "value", "reason"), RULE_BREAKS)
def test_cross_field_rules_are_checked_by_parse_event_and_by_the_models(doc, path, value, reason):
    from pydantic import ValidationError

    from schemas import parsing
    from schemas.events import MODEL_BY_TYPE

    assert parsing._RULES_HERE, "the rules should be checked in parse_event, not by pydantic-core calling _rules"
    bad = raw(with_changes(doc, path, value))
    assert _reason(bad) == (reason, "rule")
    assert _reason(bad.decode()) == (reason, "rule")
    assert _reason(bad, doc["type"]) == (reason, "rule")
    model = MODEL_BY_TYPE[doc["type"]]
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(bad)
    assert [(e["msg"], e["loc"]) for e in info.value.errors()] == [(reason, ())]
    assert parse_event(raw(doc)).rule_violation() is None


def test_a_wrong_type_is_reported_before_a_rule_and_a_rule_before_a_nul():
    doc = with_changes(moved(), "subject", "3316015205900003")
    assert _reason(raw(doc), TYPE_VOTER_REGISTERED)[1] == ERROR_UNEXPECTED_TYPE
    nul = with_changes(doc, "data.reason", "pindah_memilih")
    data = raw(nul).replace(b'"subject":"', b'"x-note":"a\\u0000b","subject":"', 1)
    assert _reason(data) == ("subject must equal data.nik", "rule")
    assert _reason(raw(moved()).replace(b'"subject":"', b'"x-note":"a\\u0000b","subject":"', 1))[1] == ERROR_MALFORMED


@pytest.mark.parametrize("kind", [bytes, bytearray, str])
def test_nul_escape_is_found_in_every_input_kind(kind):
    data = raw(registered()).replace(b'"SITI AMINAH"', b'"SITI \\u0000AMINAH"')
    data = data.decode() if kind is str else kind(data)
    assert _reason(data) == ("data.name: must not contain control character U+0000 (NUL)", ERROR_MALFORMED)
    escaped = raw(registered()).replace(b'"SITI AMINAH"', b'"SITI \\\\u0000AMINAH"')
    escaped = escaped.decode() if kind is str else kind(escaped)
    assert parse_event(escaped).data.name == "SITI \\u0000AMINAH"


@pytest.mark.parametrize(
    ("doc", "path"), [(registered(), "time"), (meeting(), "data.held_at"), (meeting(), "data.data_cutoff")]
)
def test_datetime_reasons_from_json(doc, path):
    for value in (1721274162, True, [], {"t": 1}):
        assert _reason(raw(with_changes(doc, path, value))) == (f"{path}: must be an RFC 3339 date-time string", ERROR_SCHEMA)
    for value in ("2024-07-18T10:42:42", "1721274162", "2024-07-18T10:42+07:00", ""):
        assert _reason(raw(with_changes(doc, path, value))) == (
            f"{path}: must be an RFC 3339 date-time with offset, like 2024-08-11T09:00:00+07:00", ERROR_SCHEMA,
        )
    reason, klass = _reason(raw(with_changes(doc, path, "2024-02-30T10:42:42+07:00")))
    assert reason.startswith(f"{path}: ") and klass == ERROR_SCHEMA


def test_datetime_python_mode_is_unchanged():
    import datetime as dt

    from pydantic import ValidationError

    doc = orjson.loads(raw(registered()))
    doc["data"]["birth_date"] = dt.date(1990, 5, 12)
    assert VoterRegistered.model_validate(doc).time == parse_event(raw(registered())).time  # a string, in Python too
    doc["time"] = dt.datetime(2024, 7, 2, 3, 15, tzinfo=dt.timezone.utc)
    assert VoterRegistered.model_validate(doc).time == doc["time"]
    for value, kind in ((1721274162, "datetime_type"), ("2024-07-02T10:15:00", "datetime_format"),
                        (dt.datetime(2024, 7, 2, 3, 15), "timezone_aware")):
        doc["time"] = value
        with pytest.raises(ValidationError) as info:
            VoterRegistered.model_validate(doc)
        assert info.value.errors()[0]["type"] == kind


def test_desa_codes_are_looked_up_in_json_and_python_mode():
    from pydantic import ValidationError

    from schemas.events import Tps

    assert parse_event(raw(registered())).data.tps.desa_code == "33.16.01.2001"
    assert _reason(raw(with_changes(registered(), "data.tps.desa_code", "33.16.01.2999"))) == (
        "data.tps.desa_code: '33.16.01.2999' is not a Kemendagri desa/kelurahan code (level 4, like 33.16.01.2001)",
        "rule",
    )
    assert Tps.model_validate({"desa_code": "34.71.01.1001", "number": 1, "kind": "reguler"}).desa_code == "34.71.01.1001"
    for code in ("33.16.01", "", "x" * 50):
        with pytest.raises(ValidationError) as info:
            Tps.model_validate({"desa_code": code, "number": 1, "kind": "reguler"})
        assert info.value.errors()[0]["type"] == "desa_code"


# --- parse_event_fields accepts and rejects exactly as parse_event ------------------------------------------


def _outcome(parse, data, expected_type):
    try:
        return "accepted", parse(data, expected_type)
    except InvalidEvent as exc:
        return "rejected", (exc.reason, exc.error_class)


def _same_as_parse_event(data, expected_type=None):
    fields = _outcome(parse_event_fields, data, expected_type)
    model = _outcome(parse_event, data, expected_type)
    if model[0] == "accepted":
        model = ("accepted", model[1].model_dump())
    assert fields == model
    return fields[0]


def _paths(doc, prefix=()):
    for key, value in doc.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _paths(item, prefix + (key, i))


TRICKY_VALUES = [
    None, True, False, 0, 1, -1, 7, 999, 1000, 1.0, 1.5, "", " ", "1", "true", "null", "L", "P", "B", "S", "x",
    "reguler", "lokasi_khusus", "pindah_memilih", "desa", "kabupaten", "dphp", "3316015205900002",
    "3316010101800001", "3316016902010001", "3316013002900001", "331601520590000", "33160152059000021",
    "2024-07-02", "2030-01-01", "2024-02-30", "2024-07-02T10:15:00+07:00", "2024-07-02T10:15:00",
    "2024-07-02 10:15:00Z", "33.16.01.2001", "33.16.01", "33.16", "33", "99.99.99.9999", "/kpu/33.16/coklit",
    "a b", "application/json", "text/plain", "1.0", "2.0", TYPE_VOTER_REGISTERED, TYPE_VOTER_MOVED,
    TYPE_MEETING_HELD, "id.go.kpu.dphp.voter-moved.v2", "a\u0000b", [], {}, [1], {"a": 1},
    # the bounds of contract 1.1, both sides
    "a\u0001b", "a\tb", "a\nb", "a\rb", "\u001f", "1900-01-01T00:00:00Z", "1899-12-31T23:59:59Z",
    "1900-01-01T00:30:00+01:00", "2100-12-31T23:59:59Z", "2100-12-31T23:59:59-00:30", "2101-01-01T00:29:59+00:30",
    "1900-01-01", "1899-12-31", "2100-12-31", "2101-01-01", 2_147_483_647, 2_147_483_648, 2**64 - 1, -(2**63),
    1e300, -0.0, "x" * 256, "x" * 257, "x" * 1000, "x" * 1001, "x" * 10_001, [{"a": 1}] * 1001,
]
json_values = st.one_of(
    st.sampled_from(TRICKY_VALUES), st.integers(-(2**40), 2**40), st.text(max_size=20),
    st.lists(st.sampled_from(TRICKY_VALUES), max_size=2),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_parse_event_fields_accepts_and_rejects_as_parse_event(event, data):
    doc = orjson.loads(event.model_dump_json())
    for _ in range(data.draw(st.integers(0, 3))):
        path = data.draw(st.sampled_from(sorted(_paths(doc), key=str)))
        target = doc
        for part in path[:-1]:
            target = target[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del target[path[-1]]
        elif action == "replace":
            target[path[-1]] = data.draw(json_values)
        elif isinstance(target, dict):
            target[data.draw(st.sampled_from(["x-extra", "unknown", "nik", "type", "data"]))] = data.draw(json_values)
        if not isinstance(doc, dict) or not doc:
            break
    expected_type = data.draw(st.sampled_from([None, TYPE_VOTER_REGISTERED, TYPE_VOTER_MOVED, TYPE_MEETING_HELD]))
    body = orjson.dumps(doc)
    _same_as_parse_event(body, expected_type)
    _same_as_parse_event(body.decode(), expected_type)


@pytest.mark.parametrize("doc", [registered(), moved(), meeting()], ids=["registered", "moved", "meeting"])
def test_parse_event_fields_agrees_on_every_single_change_of_an_example(doc):
    outcomes = set()
    for path in _paths(doc):
        dotted = ".".join(str(p) for p in path)
        if any(isinstance(p, int) for p in path):
            continue
        outcomes.add(_same_as_parse_event(raw(with_changes(doc, dotted, delete=True))))
        for value in TRICKY_VALUES:
            outcomes.add(_same_as_parse_event(raw(with_changes(doc, dotted, value)), doc["type"]))
    assert outcomes == {"accepted", "rejected"}


@pytest.mark.parametrize(("doc", "path", "value", "reason"), RULE_BREAKS)
def test_parse_event_fields_breaks_the_same_rules(doc, path, value, reason):
    assert _same_as_parse_event(raw(with_changes(doc, path, value))) == "rejected"
    assert _same_as_parse_event(raw(doc)) == "accepted"
    assert _same_as_parse_event(raw(doc), doc["type"]) == "accepted"


def test_parse_event_fields_edge_inputs():
    nul = raw(registered()).replace(b'"SITI AMINAH"', b'"SITI \\u0000AMINAH"')
    escaped = raw(registered()).replace(b'"SITI AMINAH"', b'"SITI \\\\u0000AMINAH"')
    for data in (nul, escaped, bytearray(nul), nul.decode(), b"\xff", b"[]", b"{}", b"", b"null",
                 raw(with_changes(moved(), "data.from_tps", None)), raw(with_changes(meeting(), "data.declared", None))):
        _same_as_parse_event(data)
        _same_as_parse_event(data, TYPE_VOTER_MOVED)
    assert _same_as_parse_event(escaped) == "accepted" and _same_as_parse_event(nul) == "rejected"
