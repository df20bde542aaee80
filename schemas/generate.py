"""Writes the JSON Schema files and the AsyncAPI document from the pydantic models.

    python -m schemas.generate          # (re)writes schemas/json/*.json and schemas/asyncapi.json
    python -m schemas.generate --check  # exit 1 (listing them) if any file is missing or out of date

Output is deterministic (sorted keys, two-space indent, UTF-8, trailing newline), so the files
are committed and a test keeps them in step with the models.

The JSON Schemas check shapes, types, enumerations, ranges and patterns (NIK date part included).
Rules that need the Kemendagri tree or compare fields (desa and region codes exist, level matches
the code's depth, subject equals the NIK or meeting_id, birth_date not after time) are only in
the validator (``schemas.parsing.parse_event``); the schemas' descriptions say so. So are the
bounds of contract version 1.1 that JSON Schema cannot state (times as instants, the record size,
member names and extension attributes); those it can (lengths, figures, dates, control characters
in the models' strings) are in the schemas.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.events import (
    CONTENT_TYPE,
    ID_MAX_LENGTH,
    NIK_PATTERN,
    NOTES_PATTERN,
    TEXT_PATTERN,
    TYPE_MEETING_HELD,
    TYPE_VOTER_MOVED,
    TYPE_VOTER_REGISTERED,
    MeetingHeld,
    VoterMoved,
    VoterRegistered,
)
from schemas import deadletter
from schemas.recap import Recap

HERE = Path(__file__).resolve().parent
JSON_DIR = HERE / "json"
EXAMPLES_DIR = HERE / "examples"
ASYNCAPI_PATH = HERE / "asyncapi.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"

#: Defaults of CONTRACT 1 and 6 (the settings may change them).
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
_RULES_NOTE = (
    "Not expressible here, checked by the DPHP validator: desa codes and region_code are codes of "
    "the Kemendagri tree, region_code has the depth of level, subject equals data.nik or "
    "data.meeting_id, data.birth_date is not after the date of time."
)
_BOUNDS_NOTE = (
    "Bounds (contract version 1.1) expressed here: string lengths, declared figures 0..2147483647, "
    "at most 1000 attendees, dates 1900-01-01..2100-12-31, and no C0 control character (U+0000-U+001F) "
    "in any string of the model except tab and newline in data.notes. Not expressible here, checked by "
    "the DPHP validator: time, data.held_at and data.data_cutoff lie in 1900-01-01T00:00:00Z.."
    "2100-12-31T23:59:59Z as instants (the patterns only bound the local year to 1899..2101 and the "
    "offset to 23:59); the record value has at most 1 MiB (1048576 bytes); no member name, extension "
    "attribute or ignored data field holds a C0 control character either, and an extension attribute's "
    "numbers are finite (a JSON number like 1e400 is rejected)."
)


#: JSON Schema of "no C0 control character" (contract 1.1), as ``not`` + ``pattern``: a pattern
#: with ``^...$`` would let a trailing newline through in validators that use Python's ``re``
#: (``$`` matches before a final newline there, not in ECMA-262).
_NO_CONTROL = {"pattern": "[\\u0000-\\u001F]"}
_NO_CONTROL_IN_NOTES = {"pattern": "[\\u0000-\\u0008\\u000B-\\u001F]"}


def _control_rule(node: Any, notes: bool = False) -> Any:
    """``node`` (a JSON Schema) with every string schema refusing control characters by
    ``not``/``pattern``, in place of the models' ``TEXT_PATTERN``/``NOTES_PATTERN``; ``notes``
    allows tab and newline (the ``notes`` property)."""
    if isinstance(node, list):
        return [_control_rule(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _control_rule(v) for k, v in node.items() if k != "properties"}
    if "properties" in node:
        out["properties"] = {name: _control_rule(v, notes=name == "notes") for name, v in node["properties"].items()}
    if node.get("type") == "string" and "const" not in node and "enum" not in node:
        if out.get("pattern") in (TEXT_PATTERN, NOTES_PATTERN):
            del out["pattern"]
        out["not"] = dict(_NO_CONTROL_IN_NOTES if notes else _NO_CONTROL)
    return out


def _event_schemas() -> dict[str, tuple[type[BaseModel], str]]:
    return {
        "voter-registered.v1.json": (VoterRegistered, TYPE_VOTER_REGISTERED),
        "voter-moved.v1.json": (VoterMoved, TYPE_VOTER_MOVED),
        "meeting-held.v1.json": (MeetingHeld, TYPE_MEETING_HELD),
    }


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (draft 2020-12) of each event and of the recap message."""
    out: dict[str, dict[str, Any]] = {}
    for name, (model, event_type) in _event_schemas().items():
        schema = _control_rule(model.model_json_schema(mode="validation"))
        schema["$schema"] = DRAFT
        schema["title"] = event_type
        schema["description"] = (
            f"CloudEvent 1.0 (structured mode, JSON) of type {event_type}, DPHP contract v1. "
            f"Unknown envelope attributes are extensions (kept, ignored); unknown data fields are "
            f"ignored. {_RULES_NOTE} {_BOUNDS_NOTE}"
        )
        out[name] = schema
    recap = Recap.model_json_schema(mode="validation")
    recap["$schema"] = DRAFT
    recap["title"] = "dphp.recap message v1"
    recap["description"] = (
        "Recap of one region on the compacted dphp.recap topic (key: region_code). "
        "as_of is the time of the newest event included, published_at when it was produced. "
        "Privacy threshold (contract 1.1, section 5): a TPS row whose eligible voters (male + female) are "
        "fewer than DPHP_PRIVACY_MIN_VOTERS (default 10) carries null disabled and disability_by_type "
        "(withheld: at a small TPS they would reveal a neighbour's disability); every other figure, and "
        "every row of desa level and above, is exact."
    )
    out["recap.v1.json"] = recap
    return out


def _examples() -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES_DIR.glob("*.json"))}


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0 document of the five topics of CONTRACT 1."""
    _, defs = models_json_schema(
        [(VoterRegistered, "validation"), (VoterMoved, "validation"), (MeetingHeld, "validation"),
         (Recap, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    recap_defs = {"Recap", *Recap.model_json_schema(mode="validation").get("$defs", {})}
    schemas: dict[str, Any] = {name: d if name in recap_defs else _control_rule(d) for name, d in defs["$defs"].items()}
    examples = _examples()
    ce_headers = {
        "type": "object",
        "required": ["content-type"],
        "properties": {"content-type": {"type": "string", "const": CONTENT_TYPE}},
    }

    def kafka_key(description: str, **schema: Any) -> dict[str, Any]:
        return {"kafka": {"key": {"type": "string", "description": description, **schema},
                          "bindingVersion": KAFKA_BINDING_VERSION}}

    def example(name: str, key: str) -> list[dict[str, Any]]:
        if name not in examples:
            return []
        return [{"name": name, "headers": {"content-type": CONTENT_TYPE}, "payload": examples[name],
                 "summary": f"key {key}"}]

    nik_key = kafka_key("NIK (equal to subject and data.nik), UTF-8", pattern=NIK_PATTERN)
    messages: dict[str, Any] = {
        "voterRegistered": {
            "name": "voter-registered",
            "title": "Voter registered",
            "summary": "A voter was registered during coklit; a second one of the same NIK is a correction.",
            "contentType": CONTENT_TYPE,
            "headers": ce_headers,
            "payload": {"$ref": "#/components/schemas/VoterRegistered"},
            "bindings": nik_key,
            "examples": example("voter-registered.v1", "3316015205900002"),
        },
        "voterMoved": {
            "name": "voter-moved",
            "title": "Voter moved",
            "summary": "A voter was placed at another TPS (to_tps may be anywhere in Indonesia).",
            "contentType": CONTENT_TYPE,
            "headers": ce_headers,
            "payload": {"$ref": "#/components/schemas/VoterMoved"},
            "bindings": nik_key,
            "examples": example("voter-moved.v1", "3316015205900002"),
        },
        "meetingHeld": {
            "name": "meeting-held",
            "title": "Meeting held",
            "summary": "A recapitulation meeting (rapat pleno) with the figures of its minutes.",
            "contentType": CONTENT_TYPE,
            "headers": ce_headers,
            "payload": {"$ref": "#/components/schemas/MeetingHeld"},
            "bindings": kafka_key("meeting_id (equal to subject and data.meeting_id), UTF-8", minLength=1,
                                  maxLength=ID_MAX_LENGTH),
            "examples": example("meeting-held.v1", "pleno-dphp-33.16-2024-08-11"),
        },
        "deadLetter": {
            "name": "dead-letter",
            "title": "Dead letter",
            "summary": "A record a projection service rejected: original key and value unchanged, reason in headers.",
            "contentType": "application/octet-stream",
            "headers": {
                "type": "object",
                "description": "UTF-8 strings.",
                "required": list(deadletter.HEADERS),
                "properties": {
                    deadletter.ORIGINAL_TOPIC: {"type": "string", "description": "topic the record was read from"},
                    deadletter.ORIGINAL_PARTITION: {"type": "string", "pattern": "^[0-9]+$",
                                                "description": "its partition, decimal"},
                    deadletter.ORIGINAL_OFFSET: {"type": "string", "pattern": "^[0-9]+$",
                                             "description": "its offset, decimal"},
                    deadletter.CONSUMER_GROUP: {"type": "string", "description": "consumer group that rejected it"},
                    deadletter.ERROR_CLASS: {
                        "type": "string",
                        "description": "malformed, unknown_type, unexpected_type, schema or rule "
                                       "(see schemas.parsing.ERROR_CLASSES)",
                    },
                    deadletter.ERROR_REASON: {"type": "string",
                                          "description": "one human line; NIKs masked (3316**********02)"},
                    deadletter.FAILED_AT: {"type": "string", "format": "date-time", "description": "RFC 3339"},
                    "content-type": {"type": "string", "description": "the original record's, if it had one"},
                },
            },
            "payload": {"description": "the original record value, bytes unchanged (need not be JSON)"},
            "bindings": {"kafka": {"key": {"description": "the original record key, unchanged"},
                                   "bindingVersion": KAFKA_BINDING_VERSION}},
        },
        "recap": {
            "name": "recap",
            "title": "Recap of a region",
            "summary": "The latest recap of one region, every level (tps to nasional).",
            "contentType": "application/json",
            "payload": {"$ref": "#/components/schemas/Recap"},
            "bindings": kafka_key(
                "region_code: ID, 33, 33.16, 33.16.01, 33.16.01.2001 or 33.16.01.2001/001",
                pattern=r"^(ID|[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4}(/[0-9]{3})?)?)?)?)$",
            ),
            "examples": [{"name": "recap.v1", "payload": examples["recap.v1"]}] if "recap.v1" in examples else [],
        },
    }
    for m in messages.values():
        if not m.get("examples"):
            m.pop("examples", None)

    topics = [
        # channel id, address, message id, partitions, topic configuration, description
        ("voterRegistered", "dphp.voter-registered", "voterRegistered", 6, None,
         f"CloudEvents of type {TYPE_VOTER_REGISTERED}, key NIK."),
        ("voterMoved", "dphp.voter-moved", "voterMoved", 6, None,
         f"CloudEvents of type {TYPE_VOTER_MOVED}, key NIK."),
        ("meetingHeld", "dphp.meeting-held", "meetingHeld", 1, None,
         f"CloudEvents of type {TYPE_MEETING_HELD}, key meeting_id. One or more partitions."),
        ("deadLetter", "dphp.dead-letter", "deadLetter", 1, None,
         "Records the projection rejected, with the reason in headers."),
        ("recap", "dphp.recap", "recap", 1, {"cleanup.policy": ["compact"]},
         "Compacted: the latest recap per region code, every level."),
    ]
    channels: dict[str, Any] = {}
    for cid, address, mid, partitions, config, description in topics:
        binding: dict[str, Any] = {"topic": address, "partitions": partitions,
                                   "bindingVersion": KAFKA_BINDING_VERSION}
        if config:
            binding["topicConfiguration"] = config
        channels[cid] = {
            "address": address,
            "description": description + " The name and partition count are settings; these are the defaults.",
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"}},
            "bindings": {"kafka": binding},
        }

    def op(action: str, cid: str, mid: str, summary: str) -> dict[str, Any]:
        return {"action": action, "channel": {"$ref": f"#/channels/{cid}"}, "summary": summary,
                "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"}]}

    operations = {
        "publishVoterRegistered": op("send", "voterRegistered", "voterRegistered",
                                     "Upstream publishers (coklit applications, `dphp publish`)."),
        "projectVoterRegistered": op("receive", "voterRegistered", "voterRegistered",
                                     "The projection reads every registration."),
        "publishVoterMoved": op("send", "voterMoved", "voterMoved", "Upstream publishers, `dphp publish`."),
        "projectVoterMoved": op("receive", "voterMoved", "voterMoved", "The projection reads every move."),
        "publishMeetingHeld": op("send", "meetingHeld", "meetingHeld", "Upstream publishers, `dphp publish`."),
        "projectMeetingHeld": op("receive", "meetingHeld", "meetingHeld", "The projection reads every meeting."),
        "deadLetterRejected": op("send", "deadLetter", "deadLetter",
                                 "A projection service sends each record it rejects; reading goes on."),
        "inspectDeadLetters": op("receive", "deadLetter", "deadLetter", "`dphp dlq list` and `dphp dlq retry`."),
        "publishRecap": op("send", "recap", "recap", "The report service publishes changed recaps."),
        "subscribeRecap": op("receive", "recap", "recap", "Downstream subscribers: latest recap per region."),
    }

    return {
        "asyncapi": "3.0.0",
        "id": "urn:id:go:kpu:dphp",
        "info": {
            "title": "DPHP events",
            "version": "1.1.0",
            "description": (
                "Event-driven projection of Indonesia's updated voter list (DPHP). Contract version 1.1: "
                "CloudEvents 1.0 in structured mode (JSON) on three input topics, a dead-letter topic "
                "and a compacted recap topic. Full NIKs never leave the voter topics except in dead "
                "letters (the original bytes). " + _BOUNDS_NOTE
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": DEFAULT_BOOTSTRAP,
                "protocol": "kafka",
                "description": "The default bootstrap address (setting DPHP_KAFKA_BOOTSTRAP).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files = {JSON_DIR / name: _dump(schema) for name, schema in json_schemas().items()}
    files[ASYNCAPI_PATH] = _dump(asyncapi())
    return files


def stale_files() -> list[Path]:
    """Generated files that are missing or differ from what the models give."""
    out = []
    for path, text in render().items():
        try:
            if path.read_text(encoding="utf-8") != text:
                out.append(path)
        except FileNotFoundError:
            out.append(path)
    return out


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is missing or out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for p in stale:
            print(f"out of date: {_shown(p)} (run `python -m schemas.generate`)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in render().items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
