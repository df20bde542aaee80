"""Parsing DPHP events from Kafka record values (and from CSV rows) with one clear reason on failure.

``parse_event(raw)`` validates the bytes directly (pydantic-core parses the JSON and validates
in one pass, dispatching on ``type`` through a discriminated union: no intermediate dict). On
failure it raises ``InvalidEvent`` whose ``reason`` is one human line, e.g.
``data.nik: NIK must be 16 digits`` or ``subject must equal data.nik``, and whose ``error_class``
is one of the ``ERROR_*`` constants (for the ``dphp.error.class`` dead-letter header). A reason
never contains a full NIK (and no input value other than codes, event types and times);
``mask_nik`` gives the published form ``3316**********02``.

Cost per event (``python -m bench.parse_micro``): the validator is a copy of the union's core
schema without the models' ``_rules`` after-validators; ``parse_event`` calls the event's
``rule_violation()`` itself once the event is otherwise valid (the after-validator's error was
then the only one, and a wrong ``type`` was reported before it), so a pydantic-core-to-Python
call is saved. Desa codes and RFC 3339 times are checked without Python calls (see
``schemas.events``), and strings are not cached (most are unique).

Bounds of contract 1.1 (``schemas.events``): a record value of more than 1 MiB is rejected before
parsing (``len``; a ``str`` is measured in UTF-8 only when it could be that large). Lengths,
figures, times and dates are the models' own checks. Control characters are not looked for by a
pattern per string (the models' patterns are taken out of these validators): JSON can only carry
one as an escape, so once the event is valid the record is searched for a backslash (a
``memchr``; most records have none) and then for control-character escapes; a record with one is
rejected (``ERROR_MALFORMED``, the field and code point in the reason) unless they are the tabs and
newlines of a meeting's ``notes``. That covers member names, extension attributes and ignored
fields as well, which no pattern sees.

CSV layout (``dphp publish``)
-----------------------------
One CSV file (RFC 4180, UTF-8, a leading byte-order mark is ignored, comma separator) holds
events of one type. The first row is a header naming the columns; their order is free, the
canonical order being ``csv_columns(type)``:

* envelope: ``id,source,type,time,subject``; optional ``specversion`` (empty or absent: "1.0"),
  ``datacontenttype``, ``dataschema``. Any other column without a ``data.`` prefix is a
  CloudEvents extension attribute (string; left out when empty).
* data, flattened with dots:

  - voter-registered: ``data.nik, data.nkk, data.name, data.birth_place, data.birth_date,
    data.sex, data.marital_status, data.disability, data.ktp_el, data.address.street,
    data.address.rt, data.address.rw, data.tps.desa_code, data.tps.number, data.tps.kind,
    data.new_voter``
  - voter-moved: ``data.nik, data.to_tps.desa_code, data.to_tps.number, data.to_tps.kind,
    data.from_tps.desa_code, data.from_tps.number, data.from_tps.kind, data.reason``
  - meeting-held: ``data.meeting_id, data.level, data.region_code, data.stage, data.held_at,
    data.data_cutoff, data.venue, data.attendees, data.declared, data.notes``

Cell values:

* text cells are taken as they are (an empty cell of a required text field is the empty string);
* integers (``data.disability``, ``data.*tps.number``): decimal digits (``7``, ``007``); anything
  else is passed on as text and rejected as a wrong type;
* booleans (``data.ktp_el``, ``data.new_voter``): ``true`` or ``false``, any case;
* dates ``YYYY-MM-DD``; date-times RFC 3339 with offset;
* ``data.attendees``: a JSON array of ``{"institution", "name", "role"}`` objects;
  ``data.declared``: a JSON object (``{"male": ..., "female": ..., "total": ..., "tps_count": ...,
  "tps_loksus_count": ...}``) or an empty cell;
* an empty (or blank) cell of an optional field means null: ``data.disability``,
  ``data.data_cutoff``, ``data.declared``, ``datacontenttype``, ``dataschema``; ``from_tps`` is
  null when its three cells are empty.

``csv_row_to_json(header, row)`` builds the CloudEvent JSON bytes of a row, which then go through
``parse_event`` like any JSONL line; ``event_to_csv_row`` is its inverse.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import CoreConfig, CoreSchema, PydanticCustomError, SchemaValidator, core_schema

from schemas.events import (
    DATE_MAX,
    DATE_MIN,
    DATETIME_TYPE_MESSAGE,
    EVENT_TYPES,
    MAX_RECORD_BYTES,
    MODEL_BY_TYPE,
    NOTES_PATTERN,
    RULE_ERROR_TYPES,
    TEXT_PATTERN,
    TIME_BOUNDS_TEXT,
    _check_extension,
    check_finite_numbers,
    control_character,
    control_message,
    pattern_error,
    TYPE_MEETING_HELD,
    TYPE_PREFIX,
    TYPE_VOTER_MOVED,
    TYPE_VOTER_REGISTERED,
    MeetingHeld,
    VoterMoved,
    VoterRegistered,
    _Envelope,
)

AnyEvent = VoterRegistered | VoterMoved | MeetingHeld
TopicKind = Literal["registered", "moved", "meetings"]

#: ``dphp.error.class`` values.
#: malformed: more than 1 MiB, not UTF-8 (a lone surrogate too), not JSON, not an object, a control
#: character in a string (NUL included), a bad CSV row.
ERROR_MALFORMED = "malformed"
ERROR_UNKNOWN_TYPE = "unknown_type"  # type missing, unknown, or another major version
ERROR_UNEXPECTED_TYPE = "unexpected_type"  # a known type, but not the one of this topic
ERROR_SCHEMA = "schema"  # missing or wrong-typed field, value outside its enumeration or range
ERROR_RULE = "rule"  # a contract rule: NIK/NKK, region codes, subject, birth_date, level, time format
ERROR_CLASSES = (ERROR_MALFORMED, ERROR_UNKNOWN_TYPE, ERROR_UNEXPECTED_TYPE, ERROR_SCHEMA, ERROR_RULE)

KIND_BY_TYPE: dict[str, TopicKind] = {
    TYPE_VOTER_REGISTERED: "registered",
    TYPE_VOTER_MOVED: "moved",
    TYPE_MEETING_HELD: "meetings",
}
TYPE_BY_KIND: dict[str, str] = {v: k for k, v in KIND_BY_TYPE.items()}
_KNOWN_NAMES = {t[len(TYPE_PREFIX): t.rindex(".v")]: t for t in EVENT_TYPES}


#: 16 or more digits in a row: never shown in a reason (a NIK would be among them).
_MAYBE_NIK = re.compile(r"[0-9]{16,}")


class InvalidEvent(ValueError):
    """An event that breaks the contract; ``reason`` is one line without personal data (runs of
    16 or more digits are masked as NIKs are)."""

    def __init__(self, reason: str, error_class: str) -> None:
        # A reason may quote a code or a type as sent; a NIK put there is masked like any other.
        if _MAYBE_NIK.search(reason):
            reason = _MAYBE_NIK.sub(lambda m: mask_nik(m.group()), reason)
        super().__init__(reason)
        self.reason = reason
        self.error_class = error_class

    def __repr__(self) -> str:
        return f"InvalidEvent({self.reason!r}, {self.error_class!r})"


#: Most strings of an event are unique (id, NIK, NKK, names): caching them costs more than it saves.
_CORE_CONFIG = CoreConfig(cache_strings=False)
_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(
    Annotated[VoterRegistered | VoterMoved | MeetingHeld, Field(discriminator="type")],
    config=ConfigDict(cache_strings=False),
)


def _for_records(schema: Any) -> Any:
    """A copy of a core schema for validating record values: the models' control-character
    patterns (``TEXT_PATTERN``, ``NOTES_PATTERN``) are taken out of the string schemas, and the
    extension values are checked for finite numbers only. ``_control_escapes`` finds control
    characters in the record instead: JSON cannot hold one in a string but as an escape, so a
    record without a backslash (most of them) costs one ``memchr``, not a regex per string; and
    it sees member names and ignored fields too."""
    if isinstance(schema, list):
        return [_for_records(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "str" and schema.get("pattern") in (TEXT_PATTERN, NOTES_PATTERN):
        return {k: v for k, v in schema.items() if k != "pattern"}
    if (schema.get("type") == "function-after"
            and (schema.get("function") or {}).get("function") is _check_extension):
        return {**schema, "function": {**schema["function"], "function": check_finite_numbers},
                "schema": _for_records(schema.get("schema"))}
    return {k: _for_records(v) for k, v in schema.items()}


def _model_without_rules(choice: Any, cls: type[AnyEvent]) -> Any:
    """The model schema inside the ``_rules`` after-validator (of the envelope, which every event
    model inherits), or None if ``choice`` is not
    shaped so (then nothing is taken out)."""
    if not isinstance(choice, dict) or choice.get("type") != "function-after":
        return None
    function = choice.get("function") or {}
    inner = choice.get("schema") or {}
    if (function.get("function") is not _Envelope.__dict__["_rules"] or inner.get("type") != "model"
            or inner.get("cls") is not cls or (choice.get("ref") and inner.get("ref"))):
        return None
    inner = dict(inner)
    if choice.get("ref"):
        inner["ref"] = choice["ref"]
    return inner


def _validate_json_without_rules() -> Callable[..., Any] | None:
    """``validate_json`` of the union without the event models' ``_rules`` after-validators; None
    if the adapter's core schema is not shaped as expected.

    ``parse_event`` checks ``rule_violation()`` itself once the event is valid, which is when the
    after-validator would have run (and the only error then). A plain Python call from here costs
    less than pydantic-core calling the validator; the events are the same objects either way.
    """
    schema = _for_records(_ADAPTER.core_schema)
    definitions = None
    union = schema
    if schema.get("type") == "definitions":
        definitions, union = schema["definitions"], schema["schema"]
    if union.get("type") != "tagged-union" or set(union["choices"]) != set(MODEL_BY_TYPE):
        return None
    choices = {}
    for tag, choice in union["choices"].items():
        model = _model_without_rules(choice, MODEL_BY_TYPE[tag])
        if model is None:
            return None
        choices[tag] = model

    stripped: CoreSchema = {**union, "choices": choices}  # type: ignore[typeddict-item]
    if definitions is not None:
        stripped = core_schema.definitions_schema(stripped, definitions)
    # pydantic-core reuses a complete model's own validator for a "model" schema (its "prebuilt"
    # validator), which would bring the patterns back for the nested models (Tps, Address, the
    # data objects; the events themselves have an after-validator, which rules reuse out). While
    # this validator is built, the nested models are marked incomplete so that their schemas here
    # are the ones used.
    nested = [cls for cls in _nested_models(stripped) if cls.__dict__.get("__pydantic_complete__")]
    try:
        for cls in nested:
            cls.__pydantic_complete__ = False
        return SchemaValidator(stripped, _CORE_CONFIG).validate_json
    finally:
        for cls in nested:
            cls.__pydantic_complete__ = True


def _nested_models(schema: Any) -> set[type]:
    """The classes of the "model" schemas in a core schema."""
    found: set[type] = set()
    if isinstance(schema, list):
        for x in schema:
            found |= _nested_models(x)
    elif isinstance(schema, dict):
        if schema.get("type") == "model" and isinstance(schema.get("cls"), type):
            found.add(schema["cls"])
        for v in schema.values():
            found |= _nested_models(v)
    return found


# The pydantic-core validator itself: ``TypeAdapter.validate_json`` is a Python wrapper around it
# (a few hundred ns a call).
_validate_json = _validate_json_without_rules()
#: True when the ``_rules`` after-validators were taken out and ``parse_event`` checks the rules.
_RULES_HERE = _validate_json is not None
if _validate_json is None:  # pragma: no cover - a pydantic that shapes the schema otherwise
    _validate_json = _ADAPTER.validator.validate_json

# A JSON escape of a C0 control character, not itself escaped: \b \f \n \r \t or \u0000-\u001F
# (JSON cannot hold a control character in a string otherwise). Group 1: the escape's letters.
_CONTROL_B = re.compile(rb"(?<!\\)(?:\\\\)*\\([bfnrt]|u00[01][0-9A-Fa-f])")
_CONTROL_S = re.compile(r"(?<!\\)(?:\\\\)*\\([bfnrt]|u00[01][0-9A-Fa-f])")
_TAB_NEWLINE = frozenset({b"t", b"n", b"u0009", b"u000a", b"u000A", "t", "n", "u0009", "u000a", "u000A"})
_BACKSLASH = ord("\\")
#: A str of at most this many characters has at most ``MAX_RECORD_BYTES`` bytes in UTF-8.
_SURELY_SMALL = MAX_RECORD_BYTES // 4


def parse_event(raw: bytes | bytearray | str, expected_type: str | None = None) -> AnyEvent:
    """Validates one CloudEvent (JSON, structured mode) per CONTRACT section 2.

    ``expected_type``: the ``type`` the topic carries; another known type is rejected with
    ``ERROR_UNEXPECTED_TYPE``. Raises ``InvalidEvent``.
    """
    if _length(raw) > _SURELY_SMALL:
        _check_size(raw)
    try:
        event = _validate_json(raw)
    except ValidationError as exc:
        raise _explain(exc, raw, expected_type) from None
    if expected_type is not None and event.type != expected_type:
        raise InvalidEvent(_unexpected(event.type, expected_type), ERROR_UNEXPECTED_TYPE)
    # The models' cross-field rules (subject, birth_date), after the type check as when the
    # after-validator raised them (``_explain`` puts a wrong type first).
    if _RULES_HERE:
        violation = event.rule_violation()
        if violation is not None:
            raise _rule_error(violation)
    escapes = _control_escapes(raw)
    if escapes:
        reason = _control_reason(raw, escapes, event.data.notes if event.type == TYPE_MEETING_HELD else None)
        if reason is not None:
            raise InvalidEvent(reason, ERROR_MALFORMED)
    return event


def _length(raw: Any) -> int:
    # A record without a value (a tombstone: None) is not JSON; pydantic-core says so.
    try:
        return len(raw)
    except TypeError:
        return 0


def _check_size(raw: bytes | bytearray | str) -> None:
    """Raises ``InvalidEvent`` for a record value of more than ``MAX_RECORD_BYTES`` (1 MiB)."""
    n = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if n > MAX_RECORD_BYTES:
        raise InvalidEvent(f"the record value has {n:,} bytes, more than 1 MiB ({MAX_RECORD_BYTES:,})",
                           ERROR_MALFORMED)


def _control_escapes(raw: bytes | bytearray | str) -> list[Any]:
    """The escapes of control characters in a record (as group 1 of ``_CONTROL_B``), usually none.

    Look for a backslash first: most events have none. ``92 in raw`` (the byte value of "\\") is
    a plain memchr; ``b"\\" in raw`` would first try the operand as an integer and pay for the
    TypeError."""
    if isinstance(raw, str):
        return _CONTROL_S.findall(raw) if "\\" in raw else []
    return _CONTROL_B.findall(raw) if _BACKSLASH in raw else []


def _control_reason(raw: bytes | bytearray | str, escapes: list[Any], notes: str | None) -> str | None:
    """None when the control characters of a valid record are the tabs and newlines of
    ``notes`` (the meeting's notes, else None), else the reason (``ERROR_MALFORMED``).

    Each escape gives one character, so the tabs and newlines are all in ``notes`` when it holds as
    many as the record has escapes (a repeated member's discarded value has them otherwise)."""
    if (notes is not None and len(escapes) == notes.count("\t") + notes.count("\n")
            and all(e in _TAB_NEWLINE for e in escapes)):
        return None
    try:
        found = _find_control(json.loads(raw), (), notes is not None)
    except (ValueError, RecursionError):  # pragma: no cover - pydantic-core read it; the reason gets no path
        found = None
    if found is not None:
        return found
    # Only in the value of a repeated member, which JSON parsing discards (or json could not read it).
    chars = [_escaped_char(e) for e in escapes]
    c = next((c for c in chars if c not in "\t\n"), chars[0])
    return f"a string of the record (a repeated member) {control_message(c)}"


# A \\u escape of a surrogate, not itself escaped: a pair (high then low) or a lone half (group 1
# has 4 characters then).
_SURROGATE_B = re.compile(rb"(?<!\\)(?:\\\\)*\\u([dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
                          rb"|[dD][c-fC-F][0-9a-fA-F]{2})")


def _has_lone_surrogate(raw: bytes | bytearray | str) -> bool:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return any(len(m.group(1)) == 4 for m in _SURROGATE_B.finditer(data))


def _escaped_char(escape: bytes | str) -> str:
    e = escape.decode() if isinstance(escape, bytes) else escape
    return {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(e) or chr(int(e[1:], 16))


def _find_control(node: Any, path: tuple[str | int, ...], meeting: bool) -> str | None:
    """The reason for the first forbidden control character in a parsed record, or None."""
    if isinstance(node, str):
        c = control_character(node, notes=meeting and path == ("data", "notes"))
        return None if c is None else f"{_path_shown(path)}: {control_message(c)}"
    if isinstance(node, dict):
        for key, value in node.items():
            c = control_character(key)
            if c is not None:
                return f"{_path_shown(path) or 'the event'}: a member name {control_message(c)}"
            found = _find_control(value, (*path, key), meeting)
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _find_control(value, (*path, i), meeting)
            if found is not None:
                return found
    return None


def _path_shown(path: Sequence[int | str]) -> str:
    # Member names may be anything (extensions, ignored fields): shortened (InvalidEvent masks
    # NIK-like digits).
    return _path([p if isinstance(p, int) else _shown(p, 40) for p in path])


# --- the same validation, giving plain dicts --------------------------------------------------------


class _Unshaped(Exception):
    """A core schema not shaped as ``_as_typed_dict`` expects."""


def _as_typed_dict(schema: Any) -> Any:
    """A copy of a core schema in which every model is a typed dict with the same fields, field
    schemas, defaults, extra behaviour and config, and the events' ``_rules`` after-validators are
    left out (``parse_event_fields`` checks the rules). Raises ``_Unshaped``."""
    if isinstance(schema, list):
        return [_as_typed_dict(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "function-after" and (schema.get("function") or {}).get("function") is _Envelope.__dict__["_rules"]:
        inner = schema.get("schema") or {}
        if inner.get("type") != "model" or (schema.get("ref") and inner.get("ref")):
            raise _Unshaped("_rules")
        return _as_typed_dict({**inner, "ref": schema["ref"]} if schema.get("ref") else inner)
    if kind == "model":
        fields_schema = schema.get("schema") or {}
        if (fields_schema.get("type") != "model-fields" or fields_schema.get("computed_fields")
                or schema.get("post_init") or schema.get("custom_init") or schema.get("root_model")):
            raise _Unshaped(str(schema.get("cls")))
        fields = {}
        for name, field in fields_schema["fields"].items():
            if field.get("validation_alias") is not None:
                raise _Unshaped(name)
            fields[name] = core_schema.typed_dict_field(_as_typed_dict(field["schema"]),
                                                        required=field["schema"].get("type") != "default")
        config = schema.get("config") or {}
        return core_schema.typed_dict_schema(
            fields,
            extra_behavior=fields_schema.get("extra_behavior") or config.get("extra_fields_behavior"),
            extras_schema=fields_schema.get("extras_schema"),
            strict=fields_schema.get("strict", config.get("strict")),
            ref=schema.get("ref"),
            config=config,
        )
    return {k: _as_typed_dict(v) for k, v in schema.items()}


def _fields_validator() -> Callable[..., Any] | None:
    # The models' own schema, as typed dicts: the same checks, without building model instances.
    try:
        return SchemaValidator(_as_typed_dict(_for_records(_ADAPTER.core_schema)), _CORE_CONFIG).validate_json
    except Exception:  # noqa: BLE001 - pragma: no cover - a pydantic that shapes schemas otherwise
        return None


_validate_fields_json = _fields_validator()


def _fields_follow_rules(event: dict[str, Any]) -> bool:
    # The cross-field rules of the models' ``rule_violation`` (``schemas.events``), on dicts.
    data = event["data"]
    t = event["type"]
    if t == TYPE_MEETING_HELD:
        return event["subject"] == data["meeting_id"]
    if event["subject"] != data["nik"]:
        return False
    return t != TYPE_VOTER_REGISTERED or data["birth_date"] <= event["time"].date()


def parse_event_fields(raw: bytes | bytearray | str, expected_type: str | None = None) -> dict[str, Any]:
    """What ``parse_event`` validates and accepts, as plain dicts instead of models: the envelope's
    attributes (extensions too), ``data`` and its nested objects as dicts under the models' field
    names, dates and times as with the models. About a third cheaper than ``parse_event`` (no model
    instances), for consumers that only read values. Raises ``parse_event``'s ``InvalidEvent``.
    """
    if _validate_fields_json is None:  # pragma: no cover - see _fields_validator
        return parse_event(raw, expected_type).model_dump()
    if _length(raw) > _SURELY_SMALL:
        _check_size(raw)
    try:
        event = _validate_fields_json(raw)
    except ValidationError:
        event = None
    if (event is None or (expected_type is not None and event["type"] != expected_type)
            or not _fields_follow_rules(event) or not _control_free(raw, event)):
        # Rejected (rarely): the models say why, with parse_event's reason and class. They decide.
        return parse_event(raw, expected_type).model_dump()
    return event


def _control_free(raw: bytes | bytearray | str, event: dict[str, Any]) -> bool:
    escapes = _control_escapes(raw)
    if not escapes:
        return True
    notes = event["data"]["notes"] if event["type"] == TYPE_MEETING_HELD else None
    return _control_reason(raw, escapes, notes) is None


def _rule_error(error: PydanticCustomError) -> InvalidEvent:
    """What ``_explain`` says of the one error of a model's ``_rules`` (its location is the event)."""
    kind = error.type
    msg = _message({"type": kind, "msg": error.message()})
    return InvalidEvent(msg, ERROR_RULE if kind in RULE_ERROR_TYPES else ERROR_SCHEMA)


def mask_nik(nik: str) -> str:
    """The published form of a NIK: first 4 and last 2 digits, 10 ``*`` between (``3316**********02``).

    Works on any string; one shorter than 7 characters is starred entirely.
    """
    if len(nik) < 7:
        return "*" * len(nik)
    return f"{nik[:4]}{'*' * 10}{nik[-2:]}"


def event_key(event: AnyEvent) -> bytes:
    """The Kafka key of the event (CONTRACT 1): the NIK for voter events, the meeting_id for meetings."""
    if isinstance(event, MeetingHeld):
        return event.data.meeting_id.encode()
    return event.data.nik.encode()


def topic_kind(event: AnyEvent | str) -> TopicKind:
    """``registered``, ``moved`` or ``meetings`` for an event or a ``type`` string.

    The topic name is the setting ``topic_<kind>`` (``Settings.topic_registered`` ...).
    """
    t = event if isinstance(event, str) else event.type
    try:
        return KIND_BY_TYPE[t]
    except KeyError:
        raise ValueError(f"not a DPHP event type: {_shown(t)!r}") from None


def describe_type(t: str, expected_type: str | None = None) -> tuple[str, str] | None:
    """(reason, error_class) if ``t`` is not acceptable (unknown, other major version, or not
    ``expected_type``), else None."""
    if t in KIND_BY_TYPE:
        if expected_type is not None and t != expected_type:
            return _unexpected(t, expected_type), ERROR_UNEXPECTED_TYPE
        return None
    return _unknown_type(t), ERROR_UNKNOWN_TYPE


# --- error wording --------------------------------------------------------------------------------

_TYPE_RE = re.compile(re.escape(TYPE_PREFIX) + r"([a-z0-9-]+)\.v([0-9]+)")


def _shown(v: str, limit: int = 80) -> str:
    return v if len(v) <= limit else v[:limit] + "..."


def _unknown_type(tag: str) -> str:
    m = _TYPE_RE.fullmatch(tag)
    if m and m.group(1) in _KNOWN_NAMES:
        return (f"type {tag}: major version v{m.group(2)} is not supported "
                f"(this consumer reads {_KNOWN_NAMES[m.group(1)]})")
    return f"type {_shown(tag)!r} is not a DPHP event type (known: {', '.join(EVENT_TYPES)})"


def _unexpected(actual: str, expected: str) -> str:
    return f"type {actual} does not belong here (expected {expected})"


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_PHRASES = (
    ("Input should be ", "must be "),
    ("Input should have ", "must have "),
    ("String should ", "must "),
    ("List should ", "must "),
    ("Value error, ", ""),
    ("Field required", "missing"),
)


def _message(err: dict[str, Any]) -> str:
    msg: str = err["msg"]
    for old, new in _PHRASES:
        if msg.startswith(old):
            msg = new + msg[len(old):]
            break
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "datetime_type":  # from JSON, pydantic's own message (see events._Rfc3339)
        msg = DATETIME_TYPE_MESSAGE
    elif err["type"] in ("greater_than_equal", "less_than_equal"):
        # The bounds of times and dates (contract 1.1) in one phrase, whichever side is crossed.
        ctx = err.get("ctx") or {}
        bound = ctx.get("ge", ctx.get("le"))
        if isinstance(bound, dt.datetime) or bound in _TIME_BOUND_TEXTS:
            msg = "must be " + TIME_BOUNDS_TEXT.split(" (")[0]
        elif isinstance(bound, dt.date) or bound in _DATE_BOUND_TEXTS:
            msg = f"must be between {DATE_MIN} and {DATE_MAX}"
    return msg


# How pydantic-core words the bounds of times and dates in an error's context.
_TIME_BOUND_TEXTS = frozenset({"1900-01-01T00:00:00Z", "2100-12-31T23:59:59Z"})
_DATE_BOUND_TEXTS = frozenset({str(DATE_MIN), str(DATE_MAX)})


def _explain(exc: ValidationError, raw: bytes | bytearray | str, expected_type: str | None) -> InvalidEvent:
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        if not isinstance(raw, str):
            try:
                bytes(raw).decode("utf-8")
            except UnicodeDecodeError as u:
                return InvalidEvent(f"not valid UTF-8 (byte {u.start + 1})", ERROR_MALFORMED)
        detail = (first.get("ctx") or {}).get("error") or first["msg"]
        if "escape" in detail and _has_lone_surrogate(raw):
            # "unexpected end of hex escape" is what a high surrogate without its low half gives.
            return InvalidEvent(f"malformed JSON: a lone surrogate escape (\\ud800-\\udfff outside a pair, not "
                                f"UTF-8), {detail}", ERROR_MALFORMED)
        return InvalidEvent(f"malformed JSON: {detail}", ERROR_MALFORMED)
    if kind in ("model_attributes_type", "model_type", "dict_type") and not first["loc"]:
        return InvalidEvent("the event must be a JSON object", ERROR_MALFORMED)
    if kind == "union_tag_not_found":
        return InvalidEvent("type: missing", ERROR_UNKNOWN_TYPE)
    if kind == "union_tag_invalid":
        tag = str((first.get("ctx") or {}).get("tag", ""))
        return InvalidEvent(_unknown_type(tag), ERROR_UNKNOWN_TYPE)
    loc = first["loc"]
    # loc[0] is the discriminator tag: the event's type.
    tag = loc[0] if loc and isinstance(loc[0], str) and loc[0] in KIND_BY_TYPE else None
    if tag is not None:
        if expected_type is not None and tag != expected_type:
            return InvalidEvent(_unexpected(tag, expected_type), ERROR_UNEXPECTED_TYPE)
        loc = loc[1:]
    path = _path(loc)
    if kind == "string_pattern_mismatch" and loc and isinstance(loc[-1], str):
        kind, msg = pattern_error(loc[-1], first.get("input"))
    else:
        msg = _message(first)
    reason = f"{path}: {msg}" if path else msg
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more {'error' if len(errors) == 2 else 'errors'})"
    klass = ERROR_RULE if kind in RULE_ERROR_TYPES else ERROR_MALFORMED if kind == "control_character" else ERROR_SCHEMA
    return InvalidEvent(reason, klass)


# --- CSV ------------------------------------------------------------------------------------------

ENVELOPE_COLUMNS: tuple[str, ...] = ("id", "source", "type", "time", "subject")
OPTIONAL_ENVELOPE_COLUMNS: tuple[str, ...] = ("specversion", "datacontenttype", "dataschema")

_TPS_COLUMNS = ("desa_code", "number", "kind")
CSV_DATA_COLUMNS: dict[str, tuple[str, ...]] = {
    TYPE_VOTER_REGISTERED: (
        "data.nik", "data.nkk", "data.name", "data.birth_place", "data.birth_date", "data.sex",
        "data.marital_status", "data.disability", "data.ktp_el", "data.address.street",
        "data.address.rt", "data.address.rw", "data.tps.desa_code", "data.tps.number",
        "data.tps.kind", "data.new_voter",
    ),
    TYPE_VOTER_MOVED: (
        "data.nik", *(f"data.to_tps.{c}" for c in _TPS_COLUMNS), *(f"data.from_tps.{c}" for c in _TPS_COLUMNS),
        "data.reason",
    ),
    TYPE_MEETING_HELD: (
        "data.meeting_id", "data.level", "data.region_code", "data.stage", "data.held_at",
        "data.data_cutoff", "data.venue", "data.attendees", "data.declared", "data.notes",
    ),
}

_TEXT, _OPT_TEXT, _INT, _OPT_INT, _BOOL, _JSON, _OPT_JSON, _EXTENSION, _SPECVERSION = range(9)
_COLUMN_KIND: dict[str, int] = {
    "specversion": _SPECVERSION,
    "datacontenttype": _OPT_TEXT,
    "dataschema": _OPT_TEXT,
    "data.disability": _OPT_INT,
    "data.tps.number": _INT,
    "data.to_tps.number": _INT,
    "data.from_tps.number": _INT,
    "data.ktp_el": _BOOL,
    "data.new_voter": _BOOL,
    "data.data_cutoff": _OPT_TEXT,
    "data.attendees": _JSON,
    "data.declared": _OPT_JSON,
}
#: Nested objects that are null when all their cells are empty.
_OPTIONAL_GROUPS = ("data.from_tps",)
_DIGITS = re.compile(r"[0-9]+")


def csv_columns(event_type: str) -> tuple[str, ...]:
    """The canonical header of a CSV file of ``event_type``."""
    try:
        return ENVELOPE_COLUMNS + CSV_DATA_COLUMNS[event_type]
    except KeyError:
        raise ValueError(f"not a DPHP event type: {_shown(event_type)!r}") from None


class CsvLayout:
    """A checked CSV header, compiled once per file. ``to_json(row)`` -> CloudEvent JSON bytes."""

    def __init__(self, header: Sequence[str]) -> None:
        names = [h.strip() for h in header]
        if names and names[0].startswith("\ufeff"):
            names[0] = names[0][1:].strip()
        seen: set[str] = set()
        for n in names:
            if not n:
                raise InvalidEvent("CSV header: a column has no name", ERROR_MALFORMED)
            if n in seen:
                raise InvalidEvent(f"CSV header: column {_shown(n)!r} appears twice", ERROR_MALFORMED)
            seen.add(n)
        # A column may not be both a value and an object: "data.tps" with "data.tps.number".
        for n in names:
            if any(other.startswith(n + ".") for other in names):
                raise InvalidEvent(f"CSV header: column {_shown(n)!r} conflicts with {_shown(n)}.*", ERROR_MALFORMED)
        self.columns: tuple[str, ...] = tuple(names)
        plan: list[tuple[int, tuple[str, ...], int, str | None]] = []
        for i, n in enumerate(names):
            parts = tuple(n.split("."))
            if parts[0] == "data" and len(parts) > 1:
                kind = _COLUMN_KIND.get(n, _TEXT)
                path = parts
            else:
                kind = _COLUMN_KIND.get(n, _TEXT if n in ENVELOPE_COLUMNS else _EXTENSION)
                path = (n,)
            group = next((g for g in _OPTIONAL_GROUPS if n.startswith(g + ".")), None)
            plan.append((i, path, kind, group))
        self._plan = plan
        self._has_specversion = "specversion" in seen

    def to_json(self, row: Sequence[str]) -> bytes:
        if len(row) != len(self.columns):
            raise InvalidEvent(f"the row has {len(row)} fields, the header {len(self.columns)}", ERROR_MALFORMED)
        event: dict[str, Any] = {} if self._has_specversion else {"specversion": "1.0"}
        empty_groups: dict[str, bool] = {}
        for i, path, kind, group in self._plan:
            cell = row[i]
            value = _cell(cell, kind, self.columns[i])
            if value is _OMIT:
                continue
            if group is not None:
                empty_groups[group] = empty_groups.get(group, True) and not cell.strip()
            target = event
            for p in path[:-1]:
                target = target.setdefault(p, {})
            target[path[-1]] = value
        for group, empty in empty_groups.items():
            if empty:
                parent = event
                parts = group.split(".")
                for p in parts[:-1]:
                    parent = parent[p]
                parent[parts[-1]] = None
        return orjson.dumps(event)


_OMIT = object()


def _cell(text: str, kind: int, column: str) -> Any:
    if kind == _TEXT:
        return text
    stripped = text.strip()
    if kind == _OPT_TEXT:
        return text if stripped else None
    if kind == _EXTENSION:
        return text if stripped else _OMIT
    if kind == _SPECVERSION:
        return text if stripped else "1.0"
    if not stripped:
        return None
    if kind in (_INT, _OPT_INT):
        return int(stripped) if _DIGITS.fullmatch(stripped) else text
    if kind == _BOOL:
        low = stripped.lower()
        return True if low == "true" else False if low == "false" else text
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        raise InvalidEvent(f"{column}: the cell is not valid JSON", ERROR_MALFORMED) from None


@functools.lru_cache(maxsize=64)
def _layout(header: tuple[str, ...]) -> CsvLayout:
    return CsvLayout(header)


def csv_row_to_json(header: Sequence[str], row: Sequence[str]) -> bytes:
    """The CloudEvent JSON bytes of one CSV row (layout in the module docstring).

    Raises ``InvalidEvent`` (``ERROR_MALFORMED``) for a bad header, a row of the wrong length or a
    JSON cell that is not JSON; everything else is left to ``parse_event``.
    """
    return _layout(tuple(header)).to_json(row)


def event_to_csv_row(event: AnyEvent, columns: Sequence[str] | None = None) -> list[str]:
    """The CSV cells of an event for ``columns`` (default ``csv_columns(event.type)``)."""
    cols = columns if columns is not None else csv_columns(event.type)
    doc = event.model_dump(mode="json")
    out: list[str] = []
    for col in cols:
        parts = col.split(".")
        value: Any = doc
        for p in parts:
            value = value.get(p) if isinstance(value, dict) else None
        kind = _COLUMN_KIND.get(col)
        if value is None:
            out.append("")
        elif kind in (_JSON, _OPT_JSON):
            out.append(orjson.dumps(value).decode())
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, (dict, list)):
            out.append(orjson.dumps(value).decode())
        else:
            out.append(str(value))
    return out
