"""The bounds of CONTRACT 2, version 1.1: both sides of each, for ``parse_event`` and
``parse_event_fields`` alike (same acceptance, same reason and class), and for the models."""

from __future__ import annotations

import datetime as dt
import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import (
    MAX_RECORD_BYTES,
    MODEL_BY_TYPE,
    TIME_MAX,
    TIME_MIN,
    TYPE_MEETING_HELD,
    MeetingHeld,
    VoterRegistered,
)
from schemas.parsing import ERROR_MALFORMED, ERROR_SCHEMA, InvalidEvent, parse_event, parse_event_fields
from tests.conftest_schemas_helpers import meeting, moved, raw, registered, with_changes

pytestmark = pytest.mark.unit

TIME_REASON = "must be between 1900-01-01T00:00:00Z and 2100-12-31T23:59:59Z as an instant"
DATE_REASON = "must be between 1900-01-01 and 2100-12-31"


def _outcome(parse, data, expected_type):
    try:
        return "accepted", parse(data, expected_type)
    except InvalidEvent as exc:
        return "rejected", (exc.reason, exc.error_class)


def both(data: bytes | bytearray | str, expected_type: str | None = None):
    """parse_event's outcome, asserted equal to parse_event_fields' (bytes and str alike)."""
    model = _outcome(parse_event, data, expected_type)
    if model[0] == "accepted":
        model = ("accepted", model[1].model_dump())
    assert _outcome(parse_event_fields, data, expected_type) == model
    if isinstance(data, (bytes, bytearray)):
        as_text = _outcome(parse_event_fields, bytes(data).decode("utf-8", "surrogatepass"), expected_type)
        assert as_text == model
    return model


def accepted(data, expected_type=None):
    outcome = both(data, expected_type)
    assert outcome[0] == "accepted", outcome
    return outcome[1]


def rejected(data, expected_type=None):
    outcome = both(data, expected_type)
    assert outcome[0] == "rejected", "accepted, but it is outside the bounds"
    return outcome[1]


def _model_accepts(data: bytes) -> bool:
    doc_type = json.loads(data)["type"]
    if doc_type not in MODEL_BY_TYPE:
        return False
    try:
        MODEL_BY_TYPE[doc_type].model_validate_json(data)
    except ValidationError:
        return False
    return True


# --- times: instants in 1900-01-01T00:00:00Z .. 2100-12-31T23:59:59Z ----------------------------------------

TIMES_INSIDE = [
    "1900-01-01T00:00:00Z", "1900-01-01T00:00:00+00:00", "1900-01-01T00:30:00+00:30", "1899-12-31T23:00:00-01:00",
    "1899-12-31T00:01:00-23:59", "2100-12-31T23:59:59Z", "2100-12-31T23:59:59.000000Z", "2101-01-01T00:29:59+00:30",
    "2101-01-01T23:58:59+23:59", "2100-12-31T23:59:59-00:00", "2024-08-11T09:00:00+07:00",
]
TIMES_OUTSIDE = [
    "1899-12-31T23:59:59Z", "1899-12-31T23:59:59.999999Z", "1900-01-01T00:30:00+01:00", "1900-01-01T00:00:00+00:01",
    "1900-01-01T23:58:00+23:59", "2100-12-31T23:59:59-00:30", "2100-12-31T23:59:59.000001Z", "2101-01-01T00:00:00Z",
    "2100-12-31T00:01:00-23:59", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
    "1000-01-01T00:00:00Z",
]
TIME_PATHS = [(moved(), "time"), (meeting(), "time"), (meeting(), "data.held_at"), (meeting(), "data.data_cutoff")]


@pytest.mark.parametrize(("doc", "path"), TIME_PATHS, ids=lambda x: x if isinstance(x, str) else x["type"][15:])
def test_times_inside_the_bounds_are_accepted(doc, path):
    for value in TIMES_INSIDE:
        accepted(raw(with_changes(doc, path, value)))


@pytest.mark.parametrize(("doc", "path"), TIME_PATHS, ids=lambda x: x if isinstance(x, str) else x["type"][15:])
def test_times_outside_the_bounds_are_rejected_as_instants(doc, path):
    for value in TIMES_OUTSIDE:
        assert rejected(raw(with_changes(doc, path, value))) == (f"{path}: {TIME_REASON}", ERROR_SCHEMA), value


def test_registration_time_bounds():
    doc = with_changes(registered(), "data.birth_date", "1900-01-01")
    for value in ("1900-01-01T00:00:00Z", "1900-01-01T00:30:00+00:30", "2100-12-31T23:59:59Z", "2101-01-01T23:58:59+23:59"):
        accepted(raw(with_changes(doc, "time", value)))
    for value in TIMES_OUTSIDE:
        assert rejected(raw(with_changes(doc, "time", value))) == (f"time: {TIME_REASON}", ERROR_SCHEMA), value
    # Inside the bounds as an instant, but on 1899-12-31 in its own offset: birth_date is after it.
    assert rejected(raw(with_changes(doc, "time", "1899-12-31T23:00:00-01:00")))[1] == "rule"


def test_offsets_up_to_23_59_are_read_and_24_00_is_not():
    event = accepted(raw(with_changes(meeting(), "data.held_at", "2024-08-11T09:00:00-23:59")))
    assert event["data"]["held_at"].utcoffset() == -dt.timedelta(hours=23, minutes=59)
    for value in ("2024-08-11T09:00:00+24:00", "2024-08-11T09:00:00-24:00", "2024-08-11T09:00:00+23:60"):
        reason, klass = rejected(raw(with_changes(meeting(), "data.held_at", value)))
        assert reason.startswith("data.held_at: ") and klass == ERROR_SCHEMA


OFFSET_MINUTES = st.integers(-(24 * 60 - 1), 24 * 60 - 1)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1898, 12, 30), max_value=dt.datetime(2102, 1, 2)), OFFSET_MINUTES,
       st.sampled_from(["time", "data.held_at", "data.data_cutoff"]))
def test_a_time_is_accepted_exactly_when_its_instant_is_inside(local, minutes, path):
    offset = dt.timezone(dt.timedelta(minutes=minutes))
    value = local.replace(tzinfo=offset)
    sign = "-" if minutes < 0 else "+"
    text = local.isoformat() + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    data = raw(with_changes(meeting(), path, text))
    outcome = both(data)
    assert (outcome[0] == "accepted") == (TIME_MIN <= value <= TIME_MAX), text
    assert _model_accepts(data) == (outcome[0] == "accepted")


# --- dates ----------------------------------------------------------------------------------------------------


def test_birth_date_bounds():
    late = with_changes(registered(), "time", "2100-12-31T23:59:59Z")
    accepted(raw(with_changes(late, "data.birth_date", "1900-01-01")))
    accepted(raw(with_changes(late, "data.birth_date", "2100-12-31")))
    for value in ("1899-12-31", "2101-01-01", "0001-01-01", "9999-12-31"):
        assert rejected(raw(with_changes(late, "data.birth_date", value))) == (
            f"data.birth_date: {DATE_REASON}", ERROR_SCHEMA)


# --- declared figures: integers 0 .. 2,147,483,647 ------------------------------------------------------------

FIGURES = ("male", "female", "total", "tps_count", "tps_loksus_count")


def _figure(field: str, literal: bytes) -> bytes:
    """The meeting example with a declared figure written as ``literal`` (JSON text, as sent)."""
    doc = with_changes(meeting(), f"data.declared.{field}", 123456789)
    return raw(doc).replace(b'"%s":123456789' % field.encode(), b'"%s":%s' % (field.encode(), literal))


@pytest.mark.parametrize("field", FIGURES)
def test_declared_figures_inside_the_bounds(field):
    for literal, value in ((b"0", 0), (b"2147483647", 2_147_483_647), (b"-0", 0), (b"1", 1)):
        assert accepted(_figure(field, literal))["data"]["declared"][field] == value


@pytest.mark.parametrize("field", FIGURES)
def test_declared_figures_outside_the_bounds(field):
    path = f"data.declared.{field}"
    cases = {
        b"-1": "must be greater than or equal to 0",
        b"2147483648": "must be less than or equal to 2147483647",
        b"99999999999999999999999999999999": "must be less than or equal to 2147483647",
        b"-99999999999999999999999999999999": "must be greater than or equal to 0",
        b"1e400": "must be a valid integer",
        b"-1e400": "must be a valid integer",
        b"1.0": "must be a valid integer",
        b"-0.0": "must be a valid integer",
        b"1e2": "must be a valid integer",
        b"NaN": "must be a valid integer",
        b'"1"': "must be a valid integer",
        b"true": "must be a valid integer",
    }
    for literal, words in cases.items():
        assert rejected(_figure(field, literal)) == (f"{path}: {words}", ERROR_SCHEMA), literal


# --- lengths (characters, i.e. code points) ------------------------------------------------------------------

# (example, path, shortest allowed, longest allowed); paths that the subject must follow are set together.
LENGTHS = [
    (registered(), "id", 1, 256),
    (registered(), "data.name", 1, 1000),
    (registered(), "data.birth_place", 0, 1000),
    (registered(), "data.address.street", 0, 1000),
    (meeting(), "id", 1, 256),
    (meeting(), "data.meeting_id", 1, 256),
    (meeting(), "data.venue", 1, 256),
    (meeting(), "data.notes", 0, 10_000),
]


def _with_text(doc, path, value):
    out = with_changes(doc, path, value)
    if path == "data.meeting_id":
        out["subject"] = value
    return out


@pytest.mark.parametrize(("doc", "path", "low", "high"), LENGTHS, ids=lambda x: x if isinstance(x, str) else None)
@pytest.mark.parametrize("char", ["a", "é", "王", "😀"])
def test_string_lengths_both_sides(doc, path, low, high, char):
    for n in (low, high):
        assert accepted(raw(_with_text(doc, path, char * n)))
        assert _model_accepts(raw(_with_text(doc, path, char * n)))
    too_long = rejected(raw(_with_text(doc, path, char * (high + 1))))
    assert too_long == (f"{path}: must have at most {high} characters", ERROR_SCHEMA)
    assert not _model_accepts(raw(_with_text(doc, path, char * (high + 1))))
    if low:
        assert rejected(raw(_with_text(doc, path, ""))) == (f"{path}: must have at least 1 character", ERROR_SCHEMA)


def test_source_length_both_sides():
    for n in (1, 256):
        accepted(raw(with_changes(registered(), "source", "/" + "a" * (n - 1))))
    assert rejected(raw(with_changes(registered(), "source", "/" + "a" * 256))) == (
        "source: must have at most 256 characters", ERROR_SCHEMA)
    assert rejected(raw(with_changes(registered(), "source", "")))[1] == ERROR_SCHEMA


@pytest.mark.parametrize("field", ["institution", "name", "role"])
def test_attendee_fields_at_most_1000_characters(field):
    attendee = {"institution": "x", "name": "y", "role": "z"}
    for n in (0, 1000):
        accepted(raw(with_changes(meeting(), "data.attendees", [{**attendee, field: "é" * n}])))
    bad = raw(with_changes(meeting(), "data.attendees", [attendee, {**attendee, field: "é" * 1001}]))
    assert rejected(bad) == (f"data.attendees[1].{field}: must have at most 1000 characters", ERROR_SCHEMA)


def test_at_most_1000_attendees():
    attendee = {"institution": "Rutan", "name": "Budi", "role": "Kepala"}
    for n in (0, 1, 1000):
        assert len(accepted(raw(with_changes(meeting(), "data.attendees", [attendee] * n)))["data"]["attendees"]) == n
    reason, klass = rejected(raw(with_changes(meeting(), "data.attendees", [attendee] * 1001)))
    assert reason.startswith("data.attendees: must have at most 1000 items") and klass == ERROR_SCHEMA


# --- the record value: at most 1 MiB --------------------------------------------------------------------------


def _padded(size: int, char: str = "a") -> bytes:
    """The moved example with an extension attribute that makes it ``size`` bytes long."""
    base = raw(with_changes(moved(), "xpad", ""))
    pad = size - len(base)
    width = len(char.encode())
    assert pad >= 0 and pad % width == 0
    out = base.replace(b'"xpad":""', b'"xpad":"' + char.encode() * (pad // width) + b'"')
    assert len(out) == size
    return out


def test_a_record_of_exactly_1_mib_is_accepted_and_one_byte_more_is_not():
    assert accepted(_padded(MAX_RECORD_BYTES))["xpad"] == "a" * (MAX_RECORD_BYTES - len(raw(with_changes(moved(), "xpad", ""))))
    assert rejected(_padded(MAX_RECORD_BYTES + 1)) == (
        "the record value has 1,048,577 bytes, more than 1 MiB (1,048,576)", ERROR_MALFORMED)
    assert rejected(bytearray(_padded(MAX_RECORD_BYTES + 1)))[1] == ERROR_MALFORMED


def test_the_size_of_a_str_record_is_its_utf8_size():
    size = MAX_RECORD_BYTES + 1 + (MAX_RECORD_BYTES + 1 - len(raw(with_changes(moved(), "xpad", "")))) % 2
    big = _padded(size, "é").decode()
    assert len(big) < MAX_RECORD_BYTES < len(big.encode())
    assert rejected(big)[1] == ERROR_MALFORMED
    assert rejected(b"x" * (MAX_RECORD_BYTES + 1))[0].startswith("the record value has 1,048,577 bytes")


def test_the_size_is_checked_before_parsing():
    # Not JSON at all, yet the size is what is said: nothing was parsed.
    assert rejected(b"{" * (MAX_RECORD_BYTES + 1))[0].startswith("the record value has")


# --- control characters ---------------------------------------------------------------------------------------

# Free-text fields: a control character in them is reported as such.
TEXT_PATHS = [
    (registered(), "id"), (registered(), "data.name"), (registered(), "data.birth_place"),
    (registered(), "data.address.street"), (registered(), "data.address.rt"), (registered(), "data.address.rw"),
    (moved(), "id"), (meeting(), "data.venue"), (meeting(), "data.notes"),
]
CONTROLS = [chr(c) for c in range(32)]


def _escape_forms(c: str) -> list[bytes]:
    forms = {b"\\u%04x" % ord(c), b"\\u%04X" % ord(c)}
    short = {"\b": b"\\b", "\f": b"\\f", "\n": b"\\n", "\r": b"\\r", "\t": b"\\t"}.get(c)
    if short:
        forms.add(short)
    return sorted(forms)


@pytest.mark.parametrize(("doc", "path"), TEXT_PATHS, ids=lambda x: x if isinstance(x, str) else x["type"][15:])
def test_control_characters_are_rejected_with_the_field_and_the_character(doc, path):
    for c in CONTROLS:
        allowed = path == "data.notes" and c in "\t\n"
        for form in _escape_forms(c):
            data = raw(with_changes(doc, path, "A_B")).replace(b"A_B", b"A" + form + b"B")
            if allowed:
                assert accepted(data)["data"]["notes"] == f"A{c}B"
                assert _model_accepts(data)
            else:
                reason, klass = rejected(data)
                assert reason.startswith(f"{path}: must not contain control character U+{ord(c):04X}"), reason
                assert klass == ERROR_MALFORMED
                assert not _model_accepts(data)


def test_nul_is_named_and_tab_or_newline_outside_notes_says_where_they_may_be():
    data = raw(with_changes(registered(), "data.name", "A_B")).replace(b"A_B", b"A\\u0000B")
    assert rejected(data) == ("data.name: must not contain control character U+0000 (NUL)", ERROR_MALFORMED)
    data = raw(with_changes(registered(), "data.name", "A\tB"))
    assert rejected(data) == (
        "data.name: must not contain control character U+0009; only data.notes may hold tab and newline",
        ERROR_MALFORMED,
    )


def test_notes_may_hold_tab_and_newline_but_no_other_control_character():
    assert accepted(raw(with_changes(meeting(), "data.notes", "baris 1\nbaris 2\tkolom\n")))["data"]["notes"] == (
        "baris 1\nbaris 2\tkolom\n")
    assert rejected(raw(with_changes(meeting(), "data.notes", "a\r\nb"))) == (
        "data.notes: must not contain control character U+000D", ERROR_MALFORMED)
    # An escaped backslash followed by n is two characters of text, not a newline.
    assert accepted(raw(with_changes(meeting(), "data.venue", "C:\\new")))["data"]["venue"] == "C:\\new"


def test_a_newline_in_a_field_called_notes_elsewhere_is_not_allowed():
    data = raw(with_changes(registered(), "data.notes", "a\nb"))  # an ignored field of a registration
    assert rejected(data) == (
        "data.notes: must not contain control character U+000A; only data.notes may hold tab and newline",
        ERROR_MALFORMED,
    )
    data = raw(with_changes(meeting(), "notes", "a\nb"))  # an extension attribute called notes
    assert rejected(data)[0].startswith("notes: must not contain control character U+000A")


def test_every_string_of_the_examples_refuses_a_control_character():
    # Whatever the field (codes, enumerations, NIKs, times, type): rejected, the same by both.
    for doc in (registered(), moved(), meeting()):
        for path, value in _strings(doc):
            for c in ("\x00", "\x01", "\x1f", "\r", "\n", "\t"):
                if path == ("data", "notes") and c in "\t\n":
                    continue
                changed = json.loads(json.dumps(doc))
                target = changed
                for p in path[:-1]:
                    target = target[p]
                target[path[-1]] = value + c
                if path == ("data", "meeting_id"):
                    changed["subject"] = value + c
                rejected(raw(changed))
                assert not _model_accepts(raw(changed)), path


def _strings(node, path=()):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, i))


def test_control_characters_in_extensions_ignored_fields_and_member_names():
    cases = [
        (with_changes(moved(), "xnote", "a\u0007b"), "xnote: must not contain control character U+0007"),
        (with_changes(moved(), "xlist", ["ok", {"k": "a\u0001"}]), "xlist[1].k: must not contain control character U+0001"),
        (with_changes(moved(), "data.comment", "a\u001fb"), "data.comment: must not contain control character U+001F"),
        (with_changes(moved(), "x\u0002", 1), "the event: a member name must not contain control character U+0002"),
        (with_changes(moved(), "data.to_tps.x\n", 1),
         "data.to_tps: a member name must not contain control character U+000A"),
        (with_changes(meeting(), "xobj", {"a\u0003": "b"}), "xobj: a member name must not contain control character U+0003"),
    ]
    for doc, reason in cases:
        got, klass = rejected(raw(doc))
        assert got.startswith(reason) and klass == ERROR_MALFORMED, got


def test_a_control_character_in_a_repeated_member_is_found_too():
    base = raw(moved())
    data = base.replace(b'"reason":', b'"reason":"a\\u0001","reason":', 1)
    assert rejected(data) == (
        "a string of the record (a repeated member) must not contain control character U+0001", ERROR_MALFORMED)
    notes = raw(meeting()).replace(b'"notes":""', b'"notes":"a\\nb","notes":""')
    assert rejected(notes)[1] == ERROR_MALFORMED
    twice = raw(meeting()).replace(b'"notes":""', b'"notes":"a\\nb","notes":"\\n"')
    assert rejected(twice)[1] == ERROR_MALFORMED
    once = raw(meeting()).replace(b'"notes":""', b'"notes":"x","notes":"a\\nb"')
    assert accepted(once)["data"]["notes"] == "a\nb"


def test_reasons_about_member_names_never_show_a_nik():
    doc = with_changes(moved(), "x3316015205900002", "a\u0001")
    reason, _ = rejected(raw(doc))
    assert "3316015205900002" not in reason and "3316**********02" in reason
    long_name = with_changes(moved(), "x" * 500, "a\u0001")
    assert len(rejected(raw(long_name))[0]) < 200


# --- lone surrogates (not UTF-8: PostgreSQL text cannot hold them) ----------------------------------------------


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\udfff", b"\\udc00\\ud800", b"\\ud83d"])
def test_lone_surrogates_are_rejected_everywhere(escape):
    for doc, anchor in ((registered(), b'"SITI AMINAH"'), (meeting(), b'"notes":""'), (moved(), b'"subject":')):
        data = raw(doc)
        if anchor == b'"notes":""':
            data = data.replace(anchor, b'"notes":"a' + escape + b'b"')
        elif anchor == b'"subject":':
            data = data.replace(anchor, b'"x' + escape + b'":1,"subject":')
        else:
            data = data.replace(anchor, b'"SITI' + escape + b'"')
        reason, klass = rejected(data)
        assert klass == ERROR_MALFORMED and "surrogate" in reason, reason


def test_a_surrogate_pair_is_a_character():
    data = raw(registered()).replace(b'"SITI AMINAH"', b'"SITI \\ud83d\\ude00"')
    assert accepted(data)["data"]["name"] == "SITI 😀"


# --- extension attributes: kept and ignored, but finite -------------------------------------------------------


def test_extension_numbers_must_be_finite():
    base = raw(moved())
    for literal in (b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"[1, 1e999]", b'{"a": 1e400}'):
        data = base.replace(b'"subject":', b'"xnum":' + literal + b',"subject":', 1)
        assert rejected(data) == ("xnum: must be a finite number (1e400 and larger overflow)", ERROR_SCHEMA), literal
    for literal, value in ((b"1e300", 1e300), (b"-0.0", -0.0), (b"99999999999999999999999", 99999999999999999999999),
                           (b"1e-400", 0.0), (b'"text"', "text"), (b"true", True), (b"null", None)):
        data = base.replace(b'"subject":', b'"xnum":' + literal + b',"subject":', 1)
        assert accepted(data)["xnum"] == value, literal


def test_models_check_extensions_in_python_mode_too():
    doc = orjson.loads(raw(moved()))
    event = MODEL_BY_TYPE[doc["type"]].model_validate({**doc, "time": parse_event(raw(moved())).time, "xok": "fine"})
    assert event.model_extra == {"xok": "fine"}
    for extra in ({"xnum": math.inf}, {"xnum": [math.nan]}, {"xs": "a\x00"}, {"xs": {"k\x01": 1}},
                  {"x\x05": 1}, {"xs": "\ud800"}):
        with pytest.raises(ValidationError):
            MODEL_BY_TYPE[doc["type"]].model_validate({**doc, "time": parse_event(raw(moved())).time, **extra})


# --- the models (Python mode) keep the bounds too ---------------------------------------------------------------


def test_models_in_python_mode_keep_the_bounds():
    good = parse_event(raw(meeting()))
    fields = good.model_dump()

    def invalid(**changes):
        doc = {**fields, **changes}
        with pytest.raises(ValidationError):
            MeetingHeld.model_validate(doc)

    MeetingHeld.model_validate(fields)
    invalid(time=dt.datetime(1899, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc))
    invalid(time=dt.datetime(2101, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(minutes=-30))) - dt.timedelta(hours=1))
    invalid(id="x" * 257)
    invalid(id="a\x01")
    data = fields["data"]
    for change in ({"venue": ""}, {"venue": "v" * 257}, {"notes": "n" * 10_001}, {"notes": "a\rb"},
                   {"attendees": [{"institution": "i", "name": "n", "role": "r"}] * 1001},
                   {"declared": {**data["declared"], "male": 2**31}}, {"declared": {**data["declared"], "male": -1}},
                   {"held_at": dt.datetime(1900, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))}):
        invalid(data={**data, **change})
    MeetingHeld.model_validate({**fields, "data": {**data, "notes": "a\tb\nc", "declared": {**data["declared"],
                                                                                          "male": 2**31 - 1}}})
    reg = parse_event(raw(registered())).model_dump()
    with pytest.raises(ValidationError):
        VoterRegistered.model_validate({**reg, "data": {**reg["data"], "birth_date": dt.date(1899, 12, 31)}})
    with pytest.raises(ValidationError):
        VoterRegistered.model_validate({**reg, "data": {**reg["data"], "name": "\ud800"}})


# --- hypothesis: any text in any free-text field --------------------------------------------------------------

FREE_TEXT = [
    (registered(), "data.name", 1, 1000), (registered(), "data.birth_place", 0, 1000),
    (registered(), "data.address.street", 0, 1000), (registered(), "data.address.rt", 0, None),
    (registered(), "id", 1, 256), (meeting(), "data.venue", 1, 256), (meeting(), "data.notes", 0, 10_000),
    (meeting(), "xext", 0, None),
]
any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(
    lambda s: s * 3)  # repeats stretch lengths without slowing hypothesis down


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FREE_TEXT), any_text, st.sampled_from([0, 1, 255, 256, 257, 999, 1000, 1001, 10_001]))
def test_any_text_is_accepted_exactly_when_it_is_inside_the_bounds(field, value, pad):
    doc, path, low, high = field
    if high is not None and pad:
        value = (value + "x" * pad)[: pad]
    notes = path == "data.notes"
    forbidden = {chr(c) for c in range(32)} - ({"\t", "\n"} if notes else set())
    inside = (not forbidden & set(value)) and len(value) >= low and (high is None or len(value) <= high)
    assume(path != "id" or inside or value)  # an empty id is covered elsewhere
    data = raw(with_changes(doc, path, value))
    outcome = both(data)
    assert (outcome[0] == "accepted") == inside, (path, len(value), outcome)
    if path != "xext":
        assert _model_accepts(data) == inside


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**70), 2**70) | st.sampled_from([0, 2**31 - 1, 2**31, -1]), st.sampled_from(FIGURES))
def test_any_integer_figure_is_accepted_exactly_when_inside(value, field):
    data = raw(with_changes(meeting(), f"data.declared.{field}", 0)).replace(
        b'"%s":0' % field.encode(), b'"%s":%d' % (field.encode(), value))
    outcome = both(data)
    assert (outcome[0] == "accepted") == (0 <= value <= 2**31 - 1)
    if outcome[0] == "accepted":
        assert outcome[1]["data"]["declared"][field] == value


def test_expected_type_does_not_change_the_bounds():
    data = raw(with_changes(meeting(), "data.venue", "v" * 257))
    assert rejected(data, TYPE_MEETING_HELD) == rejected(data)


# --- reasons never show a full NIK, wherever it was put ----------------------------------------------------------

NIK = "3316015205900002"


@pytest.mark.parametrize(("doc", "path"), [
    (registered(), "data.tps.desa_code"), (moved(), "data.to_tps.desa_code"), (moved(), "data.from_tps.desa_code"),
    (meeting(), "data.region_code"), (registered(), "type"), (registered(), "specversion"),
    (registered(), "data.sex"), (registered(), f"x{NIK}"), (meeting(), "data.level"),
], ids=lambda x: x if isinstance(x, str) else x["type"][15:])
def test_a_nik_put_anywhere_is_masked_in_the_reason(doc, path):
    for value in (NIK, NIK + "9999", f"a{NIK}\u0001", [NIK]):
        data = raw(with_changes(doc, path, value))
        outcome = both(data)
        if outcome[0] == "accepted":
            continue
        reason = outcome[1][0]
        assert NIK not in reason, reason
        assert "\n" not in reason


def test_masking_keeps_the_rest_of_a_reason():
    reason, klass = rejected(raw(with_changes(registered(), "data.tps.desa_code", NIK)))
    assert reason == "data.tps.desa_code: '3316**********02' is not a Kemendagri desa/kelurahan code (level 4, like " \
                     "33.16.01.2001)" and klass == "rule"
    assert InvalidEvent(f"x {NIK} y", ERROR_SCHEMA).reason == "x 3316**********02 y"


def test_a_record_without_a_value_is_still_an_invalid_event():
    # A tombstone's value is None: the size check must not turn it into a TypeError.
    for value in (None, 42):
        assert rejected(value)[0] == "JSON input should be string, bytes or bytearray"
