"""A seeded, reproducible generator of hostile Kafka records for the three input topics (issue 10,
deliverable 3), each labelled by what CONTRACT 2 (version 1.1, with its bounds) says of it.

``campaign(seed, scale)`` returns a ``Campaign``: the valid events of ``tests.eventsets.event_set``
and, derived from them, records of about 250 hostile *kinds* (``HostileRecord.kind``):
truncated and malformed JSON, wrong encodings (latin-1, UTF-16, overlong UTF-8, lone surrogates as
``\\ud800`` escapes and as raw bytes), overlong strings and numbers (``1e400``, ``10**40``, ``-0``,
floats where integers are expected), deep nesting, duplicate keys, NUL and other control
characters, rich markup, ANSI escapes and SQL in every string field, instants at the calendar's
edges and offsets of +-23:59, values around 1 MiB, every bound of CONTRACT 2 on both sides, and
hostile Kafka keys (null, binary, huge).

Each record's ``expect`` is decided here, from the contract, never by running the project's
parser:

* ``valid``: the contract accepts it; it must be applied (``event`` is what it means, built
  without the project's validation, for the pure fold);
* ``invalid``: the contract rejects it; it must be in the dead-letter topic, once, with a reason;
* ``either``: the contract leaves it open (a UTF-8 byte-order mark, keys that appear twice with
  different values, ``-0`` for an integer, nesting deeper than any parser limit): it must be
  dead-lettered once *or* applied as ``event`` (the last of duplicate keys wins), never lost.

The generator is pure: the same seed and scale give the same records, byte for byte.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.events import (
    TYPE_MEETING_HELD,
    TYPE_VOTER_MOVED,
    TYPE_VOTER_REGISTERED,
    Address,
    Attendee,
    DeclaredFigures,
    Event,
    MeetingHeld,
    MeetingHeldData,
    Tps,
    VoterMoved,
    VoterMovedData,
    VoterRegistered,
    VoterRegisteredData,
)

Expect = Literal["valid", "invalid", "either"]
TopicKind = Literal["registered", "moved", "meetings"]
TOPIC_OF_TYPE: dict[str, TopicKind] = {
    TYPE_VOTER_REGISTERED: "registered", TYPE_VOTER_MOVED: "moved", TYPE_MEETING_HELD: "meetings"}

MIB = 1_048_576
INT4_MAX = 2_147_483_647
LOWER_INSTANT = "1900-01-01T00:00:00Z"
UPPER_INSTANT = "2100-12-31T23:59:59Z"


@dataclass
class HostileRecord:
    kind: str
    topic: TopicKind
    key: bytes | None
    value: bytes | None
    expect: Expect
    event: Event | None = None  # for valid and either: what it means
    hostile: bool = True  # False for the plain valid events of the base set
    #: The input topic may refuse it (the publisher gets the error: nothing is lost): a valid
    #: value with a key so large that value and key exceed any sensible topic limit. If the topic
    #: accepts it, it must be applied all the same.
    refusable: bool = False
    #: The record's headers; None: CONTRACT 2's `content-type: application/cloudevents+json`.
    headers: list[tuple[str, bytes]] | None = None

    def __post_init__(self) -> None:
        if self.expect != "invalid" and self.event is None:
            raise ValueError(f"{self.kind}: a {self.expect} record needs its event")


@dataclass
class Campaign:
    seed: int
    records: list[HostileRecord]
    niks: set[str] = field(default_factory=set)  # every 16-digit NIK of the input (for the log check)

    @property
    def hostile(self) -> list[HostileRecord]:
        return [r for r in self.records if r.hostile]


# --- building events without the project's validation ------------------------------------------------

def _instant(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(text)
    return t


def _tps(d: dict[str, Any] | None) -> Tps | None:
    return None if d is None else Tps.model_construct(desa_code=d["desa_code"], number=d["number"], kind=d["kind"])


def event_of(doc: dict[str, Any]) -> Event:
    """The event a contract-valid document means, built with ``model_construct`` (no validation)."""
    d = doc["data"]
    env = {k: v for k, v in doc.items() if k not in ("data", "time")}
    env["time"] = _instant(doc["time"])
    env.setdefault("datacontenttype", None)
    env.setdefault("dataschema", None)
    t = doc["type"]
    if t == TYPE_VOTER_REGISTERED:
        data = VoterRegisteredData.model_construct(
            nik=d["nik"], nkk=d["nkk"], name=d["name"], birth_place=d["birth_place"],
            birth_date=dt.date.fromisoformat(d["birth_date"]), sex=d["sex"], marital_status=d["marital_status"],
            disability=d.get("disability"), ktp_el=d["ktp_el"], address=Address.model_construct(**d["address"]),
            tps=_tps(d["tps"]), new_voter=d["new_voter"])
        return VoterRegistered.model_construct(data=data, **env)
    if t == TYPE_VOTER_MOVED:
        data = VoterMovedData.model_construct(nik=d["nik"], to_tps=_tps(d["to_tps"]), from_tps=_tps(d.get("from_tps")),
                                              reason=d["reason"])
        return VoterMoved.model_construct(data=data, **env)
    if t == TYPE_MEETING_HELD:
        declared = d.get("declared")
        data = MeetingHeldData.model_construct(
            meeting_id=d["meeting_id"], level=d["level"], region_code=d["region_code"], stage=d["stage"],
            held_at=_instant(d["held_at"]),
            data_cutoff=_instant(d["data_cutoff"]) if d.get("data_cutoff") is not None else None,
            venue=d["venue"], attendees=[Attendee.model_construct(**a) for a in d["attendees"]],
            declared=DeclaredFigures.model_construct(**declared) if declared is not None else None,
            notes=d["notes"])
        return MeetingHeld.model_construct(data=data, **env)
    raise ValueError(t)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_PH = "\u2063HOSTILE{}\u2063"  # a placeholder no generated text contains


def render(doc: dict[str, Any], raw: dict[str, bytes]) -> bytes:
    """The JSON of ``doc`` with each placeholder string ``"<PH n>"`` (quotes included) replaced by
    ``raw[n]``, verbatim: for bytes no JSON encoder writes (escapes, encodings, numbers)."""
    out = _dumps(doc)
    for name, value in raw.items():
        token = _dumps(_PH.format(name))
        if token not in out:
            raise AssertionError(f"placeholder {name} not in the document")
        out = out.replace(token, value)
    return out


def ph(name: str) -> str:
    return _PH.format(name)


# --- paths in documents ---------------------------------------------------------------------------------

def get(doc: dict[str, Any], path: str) -> Any:
    target: Any = doc
    for part in path.split("."):
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    target: Any = doc
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(parts[-1])] = value
    else:
        target[parts[-1]] = value


#: Free-text string fields of each type ("x-ext" is an unknown extension attribute). Meetings'
#: `meeting_id` is set together with `subject` (they must be equal).
TEXT_FIELDS: dict[TopicKind, tuple[str, ...]] = {
    "registered": ("id", "x-ext", "data.name", "data.birth_place", "data.address.street", "data.address.rt",
                   "data.address.rw"),
    "moved": ("id", "x-ext"),
    "meetings": ("id", "x-ext", "data.meeting_id", "data.venue", "data.notes", "data.attendees.0.institution",
                 "data.attendees.0.name", "data.attendees.0.role"),
}
#: Fields with at most 1,000 characters (CONTRACT 2, bounds of version 1.1).
BOUNDED_1000 = {"data.name", "data.birth_place", "data.address.street", "data.attendees.0.institution",
                "data.attendees.0.name", "data.attendees.0.role"}
BOUNDED_256 = {"id", "source", "data.meeting_id", "data.venue"}

MARKUP = ("[bold]x[/bold]", "[/]", "[link=x]y[/link]", "[bold red]ALERT[/]", "[/][/bold]", "\\[bold]", "[red",
          "[link=file:///etc/passwd]z[/link]")
SQL = ("'; DROP TABLE dphp.voter; --", "\" OR 1=1 --", "$$; SELECT pg_sleep(30); $$", "x' || (SELECT current_user) || '",
       "1); DELETE FROM dphp.consumer_position; --", "\\'; COPY (SELECT 1) TO PROGRAM 'id'; --")
ANSI = ("\u001b[31mred\u001b[0m", "\u001b[2J\u001b[H", "\u001b]8;;http://x\u0007link\u001b]8;;\u0007", "a\u001b[1Ab")
C1 = ("\u009b31mcsi", "del\u007f", "\u0085nel", "\u202eRTL override", "zero\u200bwidth", "line\u2028sep", "😀 emoji")


@dataclass
class _Ctx:
    rnd: random.Random
    counter: int = 0

    def fresh_id(self, prefix: str = "h") -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:06d}-{self.rnd.getrandbits(32):08x}"


Made = tuple[bytes | None, Expect, dict[str, Any] | None]  # (value, expect, document it means)
Maker = Callable[[_Ctx, dict[str, Any]], Made]


@dataclass(frozen=True)
class Kind:
    name: str
    topics: tuple[TopicKind, ...]
    make: Maker
    count: int = 8  # records per topic at scale 1
    key: Callable[[_Ctx, dict[str, Any]], bytes | None] | None = None  # default: CONTRACT 1 key
    refusable: bool = False  # see HostileRecord.refusable
    headers: Callable[[_Ctx], list[tuple[str, bytes]]] | None = None  # default: content-type only


def _valid(doc: dict[str, Any]) -> Made:
    return _dumps(doc), "valid", doc


def _invalid(value: bytes | None) -> Made:
    return value, "invalid", None


def _set(path: str, value: Any, expect: Expect = "invalid") -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        put(doc, path, value() if callable(value) else value)
        if path == "data.meeting_id":
            doc["subject"] = doc["data"]["meeting_id"]
        return (_dumps(doc), expect, doc if expect != "invalid" else None)
    return make


def _raw_at(path: str, raw: bytes | Callable[[_Ctx], bytes], expect: Expect = "invalid",
            means: Any = None) -> Maker:
    """The value at ``path`` written as raw JSON text (``raw``); ``means``: its value if accepted."""
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        put(doc, path, ph("v"))
        value = render(doc, {"v": raw(ctx) if callable(raw) else raw})
        if expect == "invalid":
            return value, expect, None
        put(doc, path, means)
        return value, expect, doc
    return make


# --- the kinds ------------------------------------------------------------------------------------------

ALL: tuple[TopicKind, ...] = ("registered", "moved", "meetings")
R: tuple[TopicKind, ...] = ("registered",)
M: tuple[TopicKind, ...] = ("moved",)
H: tuple[TopicKind, ...] = ("meetings",)
RM: tuple[TopicKind, ...] = ("registered", "moved")
MH: tuple[TopicKind, ...] = ("moved", "meetings")


def _truncated(ctx: _Ctx, doc: dict[str, Any]) -> Made:
    raw = _dumps(doc)
    return _invalid(raw[:ctx.rnd.randrange(1, len(raw) - 1)])


def _text_name(doc: dict[str, Any]) -> str:
    """A free-text field of the document's type to carry encodings (stored by the projection)."""
    return {"registered": "data.name", "moved": "x-ext", "meetings": "data.venue"}[TOPIC_OF_TYPE[doc["type"]]]


def _encoded(make_bytes: Callable[[_Ctx, dict[str, Any]], bytes], expect: Expect = "invalid",
             means: Callable[[dict[str, Any]], None] | None = None) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        value = make_bytes(ctx, doc)
        if expect == "invalid":
            return value, expect, None
        if means is not None:
            means(doc)
        return value, expect, doc
    return make


def _in_text(raw: bytes) -> Callable[[_Ctx, dict[str, Any]], bytes]:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> bytes:
        put(doc, _text_name(doc), ph("s"))
        return render(doc, {"s": b'"JOS' + raw + b' SUGI"'})
    return make


def _latin1(ctx: _Ctx, doc: dict[str, Any]) -> bytes:
    put(doc, _text_name(doc), "JOSÉ MARÍA ÑOÑO")
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("latin-1")


def _utf16(encoding: str) -> Callable[[_Ctx, dict[str, Any]], bytes]:
    return lambda ctx, doc: json.dumps(doc, ensure_ascii=False).encode(encoding)


def _escaped_pair(doc: dict[str, Any]) -> None:
    put(doc, _text_name(doc), "JOS😀 SUGI")


def _utf8_bom(ctx: _Ctx, doc: dict[str, Any]) -> bytes:
    return b"\xef\xbb\xbf" + _dumps(doc)


def _deep(depth: int, closed: bool = True) -> Callable[[_Ctx], bytes]:
    return lambda ctx: b"[" * depth + (b"]" * depth if closed else b"")


def _deep_value(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _dup(path: str, first: Any, last: Any, expect: Expect) -> Maker:
    """``path``'s key written twice in its object: ``first``, then ``last``."""
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        parent_path, _, name = path.rpartition(".")
        parent = get(doc, parent_path) if parent_path else doc
        put(doc, path, first)
        parent["\u2063dup\u2063"] = ph("d")
        raw = _dumps(doc).replace(_dumps("\u2063dup\u2063") + b":" + _dumps(ph("d")),
                                  _dumps(name) + b":" + _dumps(last))
        del parent["\u2063dup\u2063"]
        if expect == "invalid":
            return raw, expect, None
        put(doc, path, last)
        return raw, expect, doc
    return make


def _syntax(variant: str) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        raw = _dumps(doc)
        if variant == "trailing-comma":
            raw = raw[:-1] + b",}"
        elif variant == "single-quotes":
            raw = raw.replace(b'"specversion":"1.0"', b"'specversion':'1.0'")
        elif variant == "nan":
            doc["x-ext"] = ph("n")
            raw = render(doc, {"n": b"NaN"})
        elif variant == "infinity":
            doc["x-ext"] = ph("n")
            raw = render(doc, {"n": b"-Infinity"})
        elif variant == "comment":
            raw = b"/* c */" + raw
        elif variant == "unquoted-key":
            raw = raw.replace(b'"specversion"', b"specversion", 1)
        elif variant == "trailing-garbage":
            raw = raw + b" x"
        elif variant == "two-objects":
            raw = raw + raw
        elif variant == "raw-control-byte":
            put(doc, _text_name(doc), ph("c"))
            raw = render(doc, {"c": b'"a\x01b"'})
        elif variant == "raw-newline-in-string":
            put(doc, _text_name(doc), ph("c"))
            raw = render(doc, {"c": b'"a\nb"'})
        elif variant == "bad-escape":
            put(doc, _text_name(doc), ph("c"))
            raw = render(doc, {"c": b'"a\\qb"'})
        elif variant == "unterminated-string":
            raw = raw[:-2]
        else:
            raise ValueError(variant)
        return _invalid(raw)
    return make


def _constant(value: bytes | None) -> Maker:
    return lambda ctx, doc: _invalid(value)


def _time_edge(text: str, expect: Expect, birth: str | None = None) -> Maker:
    """``time`` set to ``text``; for registrations the birth date moved so that only the time's
    bound decides (``birth``: when the time's date is before the usual birth dates)."""
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        doc["time"] = text
        if doc["type"] == TYPE_VOTER_REGISTERED and birth is not None:
            doc["data"]["birth_date"] = birth
        return (_dumps(doc), expect, doc if expect != "invalid" else None)
    return make


def _meeting_time(field_name: str, text: str, expect: Expect) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        doc["data"][field_name] = text
        return (_dumps(doc), expect, doc if expect != "invalid" else None)
    return make


def _declared(name: str, raw: bytes, expect: Expect, means: int | None = None) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        doc["data"]["declared"] = {"male": 1, "female": 2, "total": 3, "tps_count": 1, "tps_loksus_count": 0}
        doc["data"]["declared"][name] = ph("n")
        value = render(doc, {"n": raw})
        if expect == "invalid":
            return value, expect, None
        doc["data"]["declared"][name] = means
        return value, expect, doc
    return make


def _long(path: str, n: int, expect: Expect, char: str = "A") -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        text = (char * n)[:n]
        if path == "source":
            text = ("/" + "k" * n)[:n]
        put(doc, path, text)
        if path == "data.meeting_id":
            doc["subject"] = text
        return (_dumps(doc), expect, doc if expect != "invalid" else None)
    return make


def _attendees(n: int, expect: Expect) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        doc["data"]["attendees"] = [{"institution": f"[bold]Inst {i}[/]", "name": f"Nama '{i}'; --", "role": "Anggota"}
                                    for i in range(n)]
        return (_dumps(doc), expect, doc if expect != "invalid" else None)
    return make


def _sized(target: int, how: str, expect: Expect) -> Maker:
    """A record value of exactly ``target`` bytes, padded with insignificant whitespace or with an
    extension attribute's string."""
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        if how == "ws":
            raw = _dumps(doc)
            raw = b"{" + b" " * (target - len(raw)) + raw[1:]
        else:
            doc["x-pad"] = ""
            base = len(_dumps(doc))
            doc["x-pad"] = "p" * (target - base)
            raw = _dumps(doc)
        assert len(raw) == target, (len(raw), target)
        return (raw, expect, doc if expect != "invalid" else None)
    return make


def _with_key(key: Callable[[_Ctx, dict[str, Any]], bytes | None]):
    return key


def _key_null(ctx: _Ctx, doc: dict[str, Any]) -> bytes | None:
    return None


def _key_binary(ctx: _Ctx, doc: dict[str, Any]) -> bytes:
    return b"\x00\xff\xfe\xc0\xaf" + bytes(ctx.rnd.getrandbits(8) for _ in range(11))


def _key_huge(ctx: _Ctx, doc: dict[str, Any]) -> bytes:
    return b"9" * 100_000


def _registered_only(path: str, value: Any, expect: Expect) -> Maker:
    return _set(path, value, expect)


def _nik(value: str) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        doc["data"]["nik"] = value
        doc["subject"] = value
        return _invalid(_dumps(doc))
    return make


def _del(path: str) -> Maker:
    def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
        parent_path, _, name = path.rpartition(".")
        parent = get(doc, parent_path) if parent_path else doc
        del parent[name]
        return _invalid(_dumps(doc))
    return make


def _other_type(t: str) -> Maker:
    return _set("type", t)


def _field_kinds() -> list[Kind]:
    """Markup, SQL, C1/format characters (valid) and ANSI escapes, NUL, other C0 (invalid) in every
    free-text field of every type."""
    kinds: list[Kind] = []
    topics_of: dict[str, tuple[TopicKind, ...]] = {}
    for topic, paths in TEXT_FIELDS.items():
        for path in paths:
            topics_of[path] = topics_of.get(path, ()) + (topic,)
    for path, topics in topics_of.items():
        if True:
            def payload(choices, path=path):
                def value(ctx: _Ctx, doc: dict[str, Any]) -> str:
                    text = ctx.rnd.choice(choices)
                    return text if path not in ("id", "data.meeting_id") else f"{text}-{ctx.fresh_id('x')}"
                return value

            def setter(choices, expect, path=path):
                value = payload(choices)

                def make(ctx: _Ctx, doc: dict[str, Any]) -> Made:
                    text = value(ctx, doc)
                    if path == "data.meeting_id":
                        text = text[:256]
                    put(doc, path, text)
                    if path == "data.meeting_id":
                        doc["subject"] = text
                    return (_dumps(doc), expect, doc if expect != "invalid" else None)
                return make

            c0 = tuple(f"a{chr(c)}b" for c in range(1, 32) if not (path == "data.notes" and c in (9, 10)))
            kinds += [
                Kind(f"markup:{path}", topics, setter(MARKUP, "valid")),
                Kind(f"sql:{path}", topics, setter(SQL, "valid")),
                Kind(f"c1-format-chars:{path}", topics, setter(C1, "valid")),
                Kind(f"ansi-escape:{path}", topics, setter(ANSI, "invalid")),
                Kind(f"nul:{path}", topics, setter(("a\u0000b", "\u0000", "x\u0000"), "invalid")),
                Kind(f"c0-control:{path}", topics, setter(c0, "invalid")),
            ]
    kinds += [
        Kind("notes:tab-newline", H, _set("data.notes", "line 1\n\tline 2\r", "invalid")),  # CR is C0
        Kind("notes:tab-and-newline-only", H, _set("data.notes", "line 1\n\tline 2\n", "valid")),
        Kind("markup:source", ALL, _set("source", "/kpu/[bold]x[/bold][link=x]y[/link][/]", "valid")),
        Kind("sql:source-uri-chars", ALL, _set("source", "/kpu/';DROP%20TABLE%20dphp.voter;--", "valid")),
        Kind("sql:source-with-space", ALL, _set("source", "/kpu/'; DROP TABLE dphp.voter; --")),
        Kind("ansi-escape:source", ALL, _set("source", "/kpu/\u001b[31m")),
        Kind("markup:enum-sex", R, _set("data.sex", "[bold]L[/]")),
        Kind("markup:enum-tps-kind", RM, lambda ctx, doc: _set(
            "data.tps.kind" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.kind", "[/]")(ctx, doc)),
        Kind("markup:enum-level", H, _set("data.level", "[link=x]desa")),
        Kind("sql:enum-reason", M, _set("data.reason", "pindah_memilih'; --")),
        Kind("sql:desa-code", RM, lambda ctx, doc: _set(
            "data.tps.desa_code" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.desa_code",
            "33.16.01.2001'; --")(ctx, doc)),
        Kind("markup:region-code", H, _set("data.region_code", "[bold]33[/]")),
    ]
    return kinds


def kinds() -> list[Kind]:
    ks: list[Kind] = [
        # malformed bytes
        Kind("json:truncated", ALL, _truncated, count=30),
        Kind("json:empty-value", ALL, _constant(b""), count=3),
        Kind("json:null-value(tombstone)", ALL, _constant(None), count=3),
        Kind("json:whitespace-only", ALL, _constant(b" \n\t "), count=2),
        Kind("json:not-an-object-null", ALL, _constant(b"null"), count=2),
        Kind("json:not-an-object-array", ALL, _constant(b"[]"), count=2),
        Kind("json:not-an-object-number", ALL, _constant(b"123"), count=2),
        Kind("json:not-an-object-string", ALL, _constant(b'"{}"'), count=2),
        *[Kind(f"json:{v}", ALL, _syntax(v), count=4) for v in (
            "trailing-comma", "single-quotes", "nan", "infinity", "comment", "unquoted-key", "trailing-garbage",
            "two-objects", "raw-control-byte", "raw-newline-in-string", "bad-escape", "unterminated-string")],
        # encodings
        Kind("encoding:latin-1", ALL, _encoded(_latin1)),
        Kind("encoding:utf-16-bom", ALL, _encoded(_utf16("utf-16")), count=4),
        Kind("encoding:utf-16-le", ALL, _encoded(_utf16("utf-16-le")), count=4),
        Kind("encoding:utf-32", ALL, _encoded(_utf16("utf-32")), count=2),
        Kind("encoding:overlong-utf8-2byte", ALL, _encoded(_in_text(b"\xc0\xaf"))),
        Kind("encoding:overlong-utf8-3byte", ALL, _encoded(_in_text(b"\xe0\x80\xaf"))),
        Kind("encoding:overlong-utf8-nul", ALL, _encoded(_in_text(b"\xc0\x80"))),
        Kind("encoding:lone-surrogate-escape-high", ALL, _encoded(_in_text(b"\\ud800"))),
        Kind("encoding:lone-surrogate-escape-low", ALL, _encoded(_in_text(b"\\udfff"))),
        Kind("encoding:reversed-surrogate-escapes", ALL, _encoded(_in_text(b"\\udc00\\ud800"))),
        Kind("encoding:surrogate-raw-bytes", ALL, _encoded(_in_text(b"\xed\xa0\x80"))),
        Kind("encoding:surrogate-pair-raw-bytes(cesu-8)", ALL, _encoded(_in_text(b"\xed\xa0\xbd\xed\xb8\x80"))),
        Kind("encoding:invalid-byte-ff", ALL, _encoded(_in_text(b"\xff"))),
        Kind("encoding:truncated-multibyte", ALL, _encoded(_in_text(b"\xe2\x82"))),
        Kind("encoding:above-u10ffff", ALL, _encoded(_in_text(b"\xf4\x90\x80\x80"))),
        Kind("encoding:surrogate-pair-escape(valid)", ALL,
             _encoded(_in_text(b"\\ud83d\\ude00"), "valid", _escaped_pair)),
        Kind("encoding:utf8-bom", ALL, _encoded(_utf8_bom, "either", lambda doc: None), count=3),
        # numbers
        Kind("number:1e400-for-int", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", b"1e400")(ctx, doc)),
        Kind("number:10**40-for-int", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number",
            str(10**40).encode())(ctx, doc)),
        Kind("number:5000-digits", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number",
            b"9" * 5000)(ctx, doc), count=3),
        Kind("number:float-1.0-for-int", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", b"1.0")(ctx, doc)),
        Kind("number:1e0-for-int", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", b"1e0")(ctx, doc)),
        Kind("number:tps-number-minus-0", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", b"-0")(ctx, doc)),
        Kind("number:string-for-int", RM, lambda ctx, doc: _raw_at(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", b'"1"')(ctx, doc)),
        Kind("number:disability-2.0", R, _raw_at("data.disability", b"2.0")),
        Kind("number:disability-10**40", R, _raw_at("data.disability", str(10**40).encode())),
        Kind("number:int-for-bool", R, _raw_at("data.ktp_el", b"1")),
        Kind("number:time-as-number", ALL, _raw_at("time", b"1719792000")),
        Kind("number:declared-1e400", H, _declared("male", b"1e400", "invalid")),
        Kind("number:declared-10**40", H, _declared("total", str(10**40).encode(), "invalid")),
        Kind("number:declared-float-5.0", H, _declared("female", b"5.0", "invalid")),
        Kind("number:declared-minus-0.0", H, _declared("female", b"-0.0", "invalid")),
        Kind("number:declared-minus-0", H, _declared("female", b"-0", "either", 0)),
        # nesting
        Kind("nesting:ext-depth-64", ALL, lambda ctx, doc: _raw_at("x-deep", _deep(64), "valid",
                                                                   _deep_value(64))(ctx, doc)),
        Kind("nesting:ext-depth-100000", ALL, lambda ctx, doc: _raw_at("x-deep", _deep(100_000), "either",
                                                                       None)(ctx, doc), count=2),
        Kind("nesting:ext-depth-100000-unclosed", ALL, lambda ctx, doc: _raw_at("x-deep", _deep(100_000, False))(ctx, doc),
             count=2),
        Kind("nesting:object-depth-5000-in-name", R, _raw_at("data.name", b'{"a":' * 5000 + b"1" + b"}" * 5000),
             count=3),
        Kind("nesting:array-depth-1000-in-venue", H, _raw_at("data.venue", _deep(1000)), count=3),
        Kind("nesting:data-unknown-field-depth-64", ALL, lambda ctx, doc: _raw_at(
            "data.x-deep", _deep(64), "valid", None)(ctx, doc)),
        Kind("nesting:data-is-array", ALL, _set("data", [[{"nik": "1"}]])),
        # duplicate keys
        Kind("dup-key:same-value-source", ALL, lambda ctx, doc: _dup("source", doc["source"], doc["source"], "valid")(ctx, doc)),
        Kind("dup-key:same-value-type", ALL, lambda ctx, doc: _dup("type", doc["type"], doc["type"], "valid")(ctx, doc)),
        Kind("dup-key:differing-name", R, _dup("data.name", "FIRST NAME", "LAST NAME", "either")),
        Kind("dup-key:differing-sex", R, lambda ctx, doc: _dup("data.sex", doc["data"]["sex"],
                                                               "L" if doc["data"]["sex"] == "P" else "P", "either")(ctx, doc)),
        Kind("dup-key:differing-to-tps-number", M, _dup("data.to_tps.number", 1, 2, "either")),
        Kind("dup-key:differing-stage", H, _dup("data.stage", "dps", "dpt", "either")),
        Kind("dup-key:type-v2-then-v1", ALL, lambda ctx, doc: _dup(
            "type", doc["type"].replace(".v1", ".v2"), doc["type"], "either")(ctx, doc)),
        Kind("dup-key:data-twice-first-invalid", ALL, lambda ctx, doc: _dup("data", {"nik": "x"}, doc["data"],
                                                                           "either")(ctx, doc)),
        # instants (time of every type; held_at and data_cutoff of meetings)
        Kind("time:0001-01-01", ALL, _time_edge("0001-01-01T00:00:00Z", "invalid", "0001-01-01")),
        Kind("time:0001-01-01+23:59", ALL, _time_edge("0001-01-01T00:00:00+23:59", "invalid", "0001-01-01")),
        Kind("time:9999-12-31", ALL, _time_edge("9999-12-31T23:59:59Z", "invalid")),
        Kind("time:9999-12-31-23:59", ALL, _time_edge("9999-12-31T23:59:59.999999-23:59", "invalid")),
        Kind("time:1900-exact", ALL, _time_edge(LOWER_INSTANT, "valid", "1900-01-01")),
        Kind("time:1900-exact-as-+23:59", ALL, _time_edge("1900-01-01T23:59:00+23:59", "valid", "1900-01-01")),
        Kind("time:1900-exact-as--23:59", MH, _time_edge("1899-12-31T00:01:00-23:59", "valid")),
        Kind("time:1900-minus-1us", ALL, _time_edge("1899-12-31T23:59:59.999999Z", "invalid", "1899-12-31")),
        Kind("time:1900-minus-1s-as-+07:00", ALL, _time_edge("1900-01-01T06:59:59+07:00", "invalid", "1900-01-01")),
        Kind("time:1900-minus-1min-as-+00:01", ALL, _time_edge("1900-01-01T00:00:00+00:01", "invalid", "1900-01-01")),
        Kind("time:2100-exact", ALL, _time_edge(UPPER_INSTANT, "valid")),
        Kind("time:2100-exact-as-+23:59", ALL, _time_edge("2101-01-01T23:58:59+23:59", "valid")),
        Kind("time:2100-exact-as--23:59", ALL, _time_edge("2100-12-31T00:00:59-23:59", "valid")),
        Kind("time:2100-plus-1us", ALL, _time_edge("2100-12-31T23:59:59.000001Z", "invalid")),
        Kind("time:2100-plus-1s", ALL, _time_edge("2101-01-01T00:00:00Z", "invalid")),
        Kind("time:2100-plus-1min-as--00:01", ALL, _time_edge("2100-12-31T23:59:59-00:01", "invalid")),
        Kind("time:offset-+23:59", ALL, _time_edge("2024-07-01T10:00:00+23:59", "valid")),
        Kind("time:offset--23:59", ALL, _time_edge("2024-07-01T10:00:00-23:59", "valid")),
        Kind("time:offset-+24:00", ALL, _time_edge("2024-07-01T10:00:00+24:00", "invalid")),
        Kind("time:offset--23:60", ALL, _time_edge("2024-07-01T10:00:00-23:60", "invalid")),
        Kind("time:no-offset", ALL, _time_edge("2024-07-01T10:00:00", "invalid")),
        Kind("time:feb-30", ALL, _time_edge("2024-02-30T10:00:00Z", "invalid")),
        Kind("time:markup", ALL, _time_edge("[bold]2024-07-01T10:00:00Z[/]", "invalid")),
        *[Kind(f"{f}:{name}", H, _meeting_time(f, text, expect)) for f in ("held_at", "data_cutoff")
          for name, text, expect in (
              ("0001-01-01", "0001-01-01T00:00:00Z", "invalid"), ("9999-12-31", "9999-12-31T23:59:59Z", "invalid"),
              ("1900-exact", LOWER_INSTANT, "valid"), ("1900-exact-as--23:59", "1899-12-31T00:01:00-23:59", "valid"),
              ("1900-minus-1us", "1899-12-31T23:59:59.999999Z", "invalid"),
              ("2100-exact", UPPER_INSTANT, "valid"), ("2100-exact-as-+23:59", "2101-01-01T23:58:59+23:59", "valid"),
              ("2100-plus-1s", "2101-01-01T00:00:00Z", "invalid"), ("offset-+24:00", "2024-07-01T10:00:00+24:00", "invalid"))],
        Kind("birth_date:1900-01-01", R, _set("data.birth_date", "1900-01-01", "valid")),
        Kind("birth_date:1899-12-31", R, _set("data.birth_date", "1899-12-31")),
        Kind("birth_date:0001-01-01", R, _set("data.birth_date", "0001-01-01")),
        Kind("birth_date:2100-12-31", R, lambda ctx, doc: _time_edge(UPPER_INSTANT, "valid")(
            ctx, (doc["data"].__setitem__("birth_date", "2100-12-31"), doc)[1])),
        Kind("birth_date:2101-01-01", R, lambda ctx, doc: _time_edge("2101-01-01T23:58:59+23:59", "invalid")(
            ctx, (doc["data"].__setitem__("birth_date", "2101-01-01"), doc)[1])),
        Kind("birth_date:9999-12-31", R, lambda ctx, doc: _time_edge("9999-12-31T23:59:59Z", "invalid")(
            ctx, (doc["data"].__setitem__("birth_date", "9999-12-31"), doc)[1])),
        # declared figures
        Kind("declared:0", H, _declared("male", b"0", "valid", 0)),
        Kind("declared:-1", H, _declared("male", b"-1", "invalid")),
        Kind("declared:2147483647", H, _declared("total", str(INT4_MAX).encode(), "valid", INT4_MAX)),
        Kind("declared:2147483648", H, _declared("total", str(INT4_MAX + 1).encode(), "invalid")),
        Kind("declared:tps_loksus_count-2147483648", H, _declared("tps_loksus_count", str(INT4_MAX + 1).encode(),
                                                                  "invalid")),
        Kind("declared:-2147483649", H, _declared("tps_count", b"-2147483649", "invalid")),
        # lengths of CONTRACT 2 v1.1, both sides
        Kind("id:empty", ALL, _set("id", "")),
        Kind("id:1-char", ALL, lambda ctx, doc: _set("id", chr(0x4E00 + ctx.counter), "valid")(ctx, doc)),
        Kind("id:256-ascii", ALL, lambda ctx, doc: _set("id", (ctx.fresh_id() + "-" + "i" * 256)[:256], "valid")(ctx, doc)),
        Kind("id:256-4-byte-chars", ALL, lambda ctx, doc: _set("id", (ctx.fresh_id() + "𝕀" * 256)[:256], "valid")(ctx, doc)),
        Kind("id:257", ALL, lambda ctx, doc: _set("id", (ctx.fresh_id() + "i" * 257)[:257])(ctx, doc)),
        Kind("id:2000-4-byte-chars", ALL, lambda ctx, doc: _set("id", (ctx.fresh_id() + "𝕀" * 2000)[:2000])(ctx, doc),
             count=4),
        Kind("source:empty", ALL, _set("source", "")),
        Kind("source:256", ALL, _long("source", 256, "valid")),
        Kind("source:257", ALL, _long("source", 257, "invalid")),
        Kind("source:5000", ALL, _long("source", 5000, "invalid"), count=4),
        Kind("meeting_id:empty", H, _set("data.meeting_id", "")),
        Kind("meeting_id:256", H, lambda ctx, doc: _set("data.meeting_id", (ctx.fresh_id("m") + "-" + "m" * 256)[:256],
                                                        "valid")(ctx, doc)),
        Kind("meeting_id:256-4-byte-chars", H, lambda ctx, doc: _set(
            "data.meeting_id", (ctx.fresh_id("m") + "𝕄" * 256)[:256], "valid")(ctx, doc)),
        Kind("meeting_id:257", H, lambda ctx, doc: _set("data.meeting_id", (ctx.fresh_id("m") + "m" * 257)[:257])(ctx, doc)),
        Kind("meeting_id:3000-4-byte-chars", H, lambda ctx, doc: _set(
            "data.meeting_id", (ctx.fresh_id("m") + "𝕄" * 3000)[:3000])(ctx, doc), count=4),
        Kind("venue:empty", H, _set("data.venue", "")),
        Kind("venue:1", H, _set("data.venue", "V", "valid")),
        Kind("venue:256", H, _long("data.venue", 256, "valid", "ü")),
        Kind("venue:257", H, _long("data.venue", 257, "invalid")),
        *[Kind(f"{p.removeprefix('data.')}:1000", (t,), _long(p, 1000, "valid", "é"))
          for t, ps in TEXT_FIELDS.items() for p in ps if p in BOUNDED_1000],
        *[Kind(f"{p.removeprefix('data.')}:1001", (t,), _long(p, 1001, "invalid"))
          for t, ps in TEXT_FIELDS.items() for p in ps if p in BOUNDED_1000],
        *[Kind(f"{p.removeprefix('data.')}:100000", (t,), _long(p, 100_000, "invalid"), count=2)
          for t, ps in TEXT_FIELDS.items() for p in ps if p in BOUNDED_1000],
        Kind("name:empty", R, _set("data.name", "")),
        Kind("birth_place:empty", R, _set("data.birth_place", "", "valid")),
        Kind("address.rt:100000(unbounded)", R, _long("data.address.rt", 100_000, "valid", "0"), count=2),
        Kind("notes:10000", H, _long("data.notes", 10_000, "valid", "n\t\n")),
        Kind("notes:10001", H, _long("data.notes", 10_001, "invalid")),
        Kind("attendees:0", H, _attendees(0, "valid"), count=2),
        Kind("attendees:1000", H, _attendees(1000, "valid"), count=3),
        Kind("attendees:1001", H, _attendees(1001, "invalid"), count=3),
        Kind("ext-attribute:500000-chars", ALL, _set("x-big", "b" * 500_000, "valid"), count=2),
        # sizes of the record value
        Kind("size:1MiB-exact-whitespace", ALL, _sized(MIB, "ws", "valid"), count=1),
        Kind("size:1MiB-exact-extension", ALL, _sized(MIB, "ext", "valid"), count=1),
        Kind("size:1MiB-minus-1000", ALL, _sized(MIB - 1000, "ext", "valid"), count=1),
        Kind("size:1MiB-plus-1-whitespace", ALL, _sized(MIB + 1, "ws", "invalid"), count=1),
        Kind("size:1MiB-plus-1-extension", ALL, _sized(MIB + 1, "ext", "invalid"), count=1),
        Kind("size:2MiB", ALL, _sized(2 * MIB, "ext", "invalid"), count=1),
        # CONTRACT 2 bounds the value, not the key ("the Kafka key is not checked"); a 100 KB key
        # with a 1 MiB value may be more than the input topic takes.
        Kind("size:1MiB-exact+huge-key", ALL, _sized(MIB, "ext", "valid"), count=1, key=_key_huge, refusable=True),
        Kind("size:1MiB+60KiB", ALL, _sized(MIB + 60 * 1024, "ext", "invalid"), count=1),
        Kind("size:1MiB-plus-1+huge-key", ALL, _sized(MIB + 1, "ext", "invalid"), count=1, key=_key_huge),
        # bounds that were there before 1.1
        Kind("tps.number:0", RM, lambda ctx, doc: _set(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", 0)(ctx, doc)),
        Kind("tps.number:1", RM, lambda ctx, doc: _set(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", 1, "valid")(ctx, doc)),
        Kind("tps.number:999", RM, lambda ctx, doc: _set(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", 999, "valid")(ctx, doc)),
        Kind("tps.number:1000", RM, lambda ctx, doc: _set(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", 1000)(ctx, doc)),
        Kind("tps.number:32768", RM, lambda ctx, doc: _set(
            "data.tps.number" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.number", 32768)(ctx, doc)),
        Kind("disability:0", R, _set("data.disability", 0)),
        Kind("disability:6", R, _set("data.disability", 6, "valid")),
        Kind("disability:7", R, _set("data.disability", 7)),
        # envelope and rules
        Kind("type:v2", ALL, lambda ctx, doc: _set("type", doc["type"].replace(".v1", ".v2"))(ctx, doc)),
        Kind("type:unknown", ALL, _set("type", "id.go.kpu.dphp.voter-deleted.v1")),
        Kind("type:other-topic's", ALL, lambda ctx, doc: _other_type(
            TYPE_VOTER_MOVED if doc["type"] == TYPE_VOTER_REGISTERED else TYPE_VOTER_REGISTERED)(ctx, doc)),
        Kind("type:markup", ALL, _set("type", "[bold]id.go.kpu.dphp.voter-registered.v1[/]")),
        Kind("specversion:1.1", ALL, _set("specversion", "1.1")),
        Kind("specversion:missing", ALL, _del("specversion")),
        Kind("data:null", ALL, _set("data", None)),
        Kind("data:string", ALL, _set("data", "{}")),
        Kind("data:missing", ALL, _del("data")),
        Kind("subject:mismatch", ALL, _set("subject", "3316010101900099")),
        Kind("subject:markup", ALL, _set("subject", "[/]")),
        Kind("nik:15-digits", RM, _nik("331601520590000")),
        Kind("nik:17-digits", RM, _nik("33160152059000021")),
        Kind("nik:arabic-indic-digits", RM, _nik("٣٣١٦٠١٥٢٠٥٩٠٠٠٠٢")),
        Kind("nik:fullwidth-digits", RM, _nik("３３１６０１５２０５９０００２１")),
        Kind("nik:impossible-date", RM, _nik("3316017713900001")),
        Kind("nik:sql", RM, _nik("3316' OR '1'='1")),
        Kind("nkk:15-digits", R, _set("data.nkk", "331601010109000")),
        Kind("desa-code:unknown", RM, lambda ctx, doc: _set(
            "data.tps.desa_code" if doc["type"] == TYPE_VOTER_REGISTERED else "data.to_tps.desa_code",
            "33.16.01.2999")(ctx, doc)),
        Kind("region-code:level-mismatch", H, lambda ctx, doc: _set(
            "data.region_code", "33.16" if doc["data"]["level"] != "kabupaten" else "33.16.01")(ctx, doc)),
        Kind("birth_date:after-time", R, lambda ctx, doc: _set("data.birth_date", "2099-01-01")(ctx, doc)),
        Kind("extension:markup-and-sql", ALL, _set("x-note", "[bold]x[/] '; DROP TABLE x; --", "valid")),
        Kind("extension:nested-object", ALL, _set("x-obj", {"a": [1, {"b": None}], "c": "[/]"}, "valid")),
    ]
    ks += _field_kinds()
    ks += [
        Kind("key:null(valid)", ALL, lambda ctx, doc: _valid(doc), key=_key_null),
        Kind("key:binary(valid)", ALL, lambda ctx, doc: _valid(doc), key=_key_binary),
        Kind("key:100KB(valid)", ALL, lambda ctx, doc: _valid(doc), key=_key_huge, count=3),
        Kind("key:null(truncated)", ALL, _truncated, key=_key_null, count=3),
        Kind("key:binary(truncated)", ALL, _truncated, key=_key_binary, count=3),
        Kind("key:100KB(truncated)", ALL, _truncated, key=_key_huge, count=3),
    ]
    ce = ("content-type", b"application/cloudevents+json")
    spoofed = lambda ctx: [ce, ("dphp.original.topic", b"dphp.recap"), ("dphp.original.partition", b"7"),  # noqa: E731
                           ("dphp.original.offset", b"999999"), ("dphp.error.reason", b"[bold]spoofed[/]"),
                           ("dphp.consumer.group", b"x"), ("dphp.retried.from", b"0:0")]
    ks += [
        Kind("headers:spoofed-dphp-headers(truncated)", ALL, _truncated, count=3, headers=spoofed),
        Kind("headers:spoofed-dphp-headers(valid)", ALL, lambda ctx, doc: _valid(doc), count=3, headers=spoofed),
        # CONTRACT 2 asks publishers for the header; its validation list does not name it.
        Kind("headers:no-content-type", ALL, lambda ctx, doc: (_dumps(doc), "either", doc), count=3,
             headers=lambda ctx: []),
        Kind("headers:content-type-text/plain", ALL, lambda ctx, doc: (_dumps(doc), "either", doc), count=3,
             headers=lambda ctx: [("content-type", b"text/plain")]),
        Kind("headers:500-binary-headers", ALL, lambda ctx, doc: (_dumps(doc), "either", doc), count=2,
             headers=lambda ctx: [ce] + [(f"x-{i}\u001b[31m", bytes([i % 256, 0, 255])) for i in range(500)]),
        Kind("headers:500-binary-headers(truncated)", ALL, _truncated, count=2,
             headers=lambda ctx: [ce] + [(f"x-{i}", bytes([i % 256, 0, 255])) for i in range(500)]),
    ]
    names = [k.name for k in ks]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, dupes
    return ks


# --- the campaign ---------------------------------------------------------------------------------

def _contract_key(doc: dict[str, Any]) -> bytes | None:
    data = doc.get("data") if isinstance(doc, dict) else None
    if isinstance(data, dict):
        for name in ("nik", "meeting_id"):
            if isinstance(data.get(name), str):
                return data[name].encode("utf-8", "surrogatepass")
    return None


def _base_docs(events: list[Event]) -> dict[TopicKind, list[dict[str, Any]]]:
    docs: dict[TopicKind, list[dict[str, Any]]] = {"registered": [], "moved": [], "meetings": []}
    for e in events:
        doc = e.model_dump(mode="json")
        doc = {k: v for k, v in doc.items() if v is not None or k not in ("dataschema", "datacontenttype")}
        if doc["type"] == TYPE_MEETING_HELD and not doc["data"]["attendees"]:
            doc["data"]["attendees"] = [{"institution": "KPU", "name": "Ketua", "role": "Ketua"}]
        docs[TOPIC_OF_TYPE[doc["type"]]].append(doc)
    return docs


_NIK_RE = re.compile(r"[0-9]{16}")
#: A NIK as the value of `nik` or `subject`, whatever else the record holds.
_NIK_FIELD_RE = re.compile(r'"(?:nik|subject)"\s*:\s*"([0-9]{16})"')


def campaign(seed: int = 10, scale: float = 1.0, voters: int = 600, only: str | None = None,
             exclude: str | None = None) -> Campaign:
    """The valid events of ``event_set(seed, voters)`` and the hostile records derived from them,
    per kind ``max(1, round(count * scale))`` records on each of the kind's topics. ``only`` and
    ``exclude``: regular expressions on kind names (``re.search``) to narrow the campaign down
    while looking for the cause of a failure; the records of the kinds kept do not change."""
    from tests.eventsets import event_set

    rnd = random.Random(seed)
    ctx = _Ctx(rnd)
    events = event_set(seed, voters=voters)
    base = _base_docs(events)
    records = [HostileRecord("valid:base", TOPIC_OF_TYPE[e.type],
                             (e.data.meeting_id if isinstance(e, MeetingHeld) else e.data.nik).encode(),
                             e.model_dump_json().encode(), "valid", e, hostile=False) for e in events]
    meeting_serial = 0
    for kind in kinds():
        n = max(1, round(kind.count * scale))
        keep = (only is None or re.search(only, kind.name)) and not (exclude and re.search(exclude, kind.name))
        for topic in kind.topics:
            for _ in range(n):
                doc = copy.deepcopy(rnd.choice(base[topic]))
                doc["id"] = ctx.fresh_id()
                if topic == "meetings":
                    # Its own meeting, so that every valid variant is visible in `dphp meetings`.
                    meeting_serial += 1
                    mid = f"{doc['data']['meeting_id']}-h{meeting_serial:05d}"
                    doc["data"]["meeting_id"] = doc["subject"] = mid
                value, expect, meant = kind.make(ctx, doc)
                key = kind.key(ctx, doc) if kind.key is not None else _contract_key(meant or doc)
                event = event_of(meant) if meant is not None else None
                if keep:
                    records.append(HostileRecord(kind.name, topic, key, value, expect, event,
                                                 refusable=kind.refusable,
                                                 headers=kind.headers(ctx) if kind.headers else None))
    # Redelivery: 2% of the hostile records once more (another offset: judged on its own; a valid
    # one changes nothing, an invalid one is dead-lettered again, once).
    again = rnd.sample([r for r in records if r.hostile], len([r for r in records if r.hostile]) // 50)
    records += [HostileRecord(f"redelivered:{r.expect}", r.topic, r.key, r.value, r.expect, r.event,
                              refusable=r.refusable, headers=r.headers) for r in again]
    niks: set[str] = set()
    for r in records:
        if r.key and _NIK_RE.fullmatch(r.key.decode("utf-8", "replace")):
            niks.add(r.key.decode())
        if r.value:
            niks.update(m.group(1) for m in _NIK_FIELD_RE.finditer(r.value.decode("utf-8", "replace")))
        if r.event is not None and not isinstance(r.event, MeetingHeld):
            niks.add(r.event.data.nik)
    return Campaign(seed, records, niks)


def interleave(records: list[HostileRecord], partitions: dict[TopicKind, int], seed: int) -> list[tuple[HostileRecord, int]]:
    """The records shuffled, each topic's spread over all its partitions round robin (so that every
    partition holds valid and invalid records in a random order): (record, partition)."""
    rnd = random.Random(seed * 7919 + 1)
    shuffled = list(records)
    rnd.shuffle(shuffled)
    next_partition = dict.fromkeys(partitions, 0)
    out = []
    for r in shuffled:
        p = next_partition[r.topic]
        next_partition[r.topic] = (p + 1) % partitions[r.topic]
        out.append((r, p))
    return out
