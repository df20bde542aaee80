"""Generated JSON Schemas and AsyncAPI document: up to date, consistent with the models, the examples
and CONTRACT 1 and 2."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings

from schemas import generate
from schemas.events import CONTENT_TYPE, EVENT_TYPES
from schemas.parsing import InvalidEvent, parse_event
from schemas.recap import Recap
from tests.conftest_schemas_helpers import (
    EXAMPLE_NAMES,
    EXAMPLES,
    events,
    example,
    raw,
    recaps,
    registered,
    with_changes,
)

pytestmark = pytest.mark.unit

SCHEMA_OF_EXAMPLE = {
    "voter-registered.v1": "voter-registered.v1.json",
    "voter-moved.v1": "voter-moved.v1.json",
    "meeting-held.v1": "meeting-held.v1.json",
    "recap.v1": "recap.v1.json",
}

# The data objects of CONTRACT section 2, verbatim.
CONTRACT_DATA = {
    "voter-registered.v1": {
        "nik": "3316015205900002", "nkk": "3316010101090001", "name": "SITI AMINAH",
        "birth_place": "BLORA", "birth_date": "1990-05-12", "sex": "P", "marital_status": "S",
        "disability": None, "ktp_el": True,
        "address": {"street": "DUKUH KRAJAN", "rt": "001", "rw": "002"},
        "tps": {"desa_code": "33.16.01.2001", "number": 1, "kind": "reguler"},
        "new_voter": False,
    },
    "voter-moved.v1": {
        "nik": "3316015205900002",
        "to_tps": {"desa_code": "33.16.09.1011", "number": 901, "kind": "lokasi_khusus"},
        "from_tps": {"desa_code": "33.16.01.2001", "number": 1, "kind": "reguler"},
        "reason": "pindah_memilih",
    },
    "meeting-held.v1": {
        "meeting_id": "pleno-dphp-33.16-2024-08-11", "level": "kabupaten", "region_code": "33.16",
        "stage": "dphp", "held_at": "2024-08-11T09:00:00+07:00", "data_cutoff": None,
        "venue": "Ruang Pertemuan KPU Blora",
        "attendees": [{"institution": "Rutan Kelas IIB Blora", "name": "Budi Hardiono", "role": "Kepala Rutan"}],
        "declared": {"male": 348000, "female": 352000, "total": 700000, "tps_count": 1450, "tps_loksus_count": 1},
        "notes": "",
    },
}


def _load(path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- up to date -------------------------------------------------------------------------------------------


def test_generated_files_are_up_to_date():
    stale = [str(p.relative_to(generate.HERE.parent)) for p in generate.stale_files()]
    assert not stale, f"run `python -m schemas.generate`: {stale}"


def test_check_mode_exit_codes(capsys, monkeypatch, tmp_path):
    assert generate.main(["--check"]) == 0
    target = tmp_path / "json" / "x.v1.json"
    monkeypatch.setattr(generate, "render", lambda: {target: "{}\n"})
    assert generate.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert generate.main([]) == 0
    assert target.read_text() == "{}\n"
    assert generate.main(["--check"]) == 0
    target.write_text("{ }\n")
    assert generate.main(["--check"]) == 1


def test_output_is_deterministic_and_sorted():
    first, second = generate.render(), generate.render()
    assert first == second
    for path, text in first.items():
        assert text.endswith("}\n")
        doc = json.loads(text)
        assert json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text, path


# --- the examples -------------------------------------------------------------------------------------------


def test_examples_carry_the_contract_data():
    for name in EXAMPLE_NAMES:
        doc = example(name)
        assert doc["data"] == CONTRACT_DATA[name]
        assert doc["type"] == f"id.go.kpu.dphp.{name}"
        assert doc["specversion"] == "1.0"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_validate_with_the_models(name):
    event = parse_event((EXAMPLES / f"{name}.json").read_bytes(), expected_type=f"id.go.kpu.dphp.{name}")
    assert event.model_dump(mode="json", exclude_none=False)["data"]["nik" if "voter" in name else "meeting_id"]


def test_recap_example_validates_with_the_model():
    Recap.from_json((EXAMPLES / "recap.v1.json").read_bytes())


def _validator(schema_file: str):
    jsonschema = pytest.importorskip("jsonschema", reason="add jsonschema to the dev dependencies")
    schema = _load(generate.JSON_DIR / schema_file)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("name", sorted(SCHEMA_OF_EXAMPLE))
def test_examples_validate_against_the_json_schemas(name):
    validator = _validator(SCHEMA_OF_EXAMPLE[name])
    errors = [e.message for e in validator.iter_errors(example(name))]
    assert errors == []


@pytest.mark.parametrize(
    "path, value",
    [
        ("data.nik", "3316013205900002"),  # impossible date part: in the schema's pattern too
        ("data.nik", "331601520590000"),
        ("data.nkk", 3316010101090001),
        ("data.tps.number", "1"),
        ("data.tps.number", 0),
        ("data.ktp_el", 1),
        ("data.sex", "X"),
        ("time", "2024-07-02T10:15:00"),
        ("specversion", "0.3"),
        ("data.tps.desa_code", "3316012001"),
    ],
)
def test_json_schema_rejects_what_the_validator_rejects(path, value):
    validator = _validator("voter-registered.v1.json")
    doc = with_changes(registered(), path, value)
    assert list(validator.iter_errors(doc))


@settings(max_examples=60, deadline=None)
@given(events())
def test_generated_valid_events_validate_against_the_json_schemas(event):
    validator = _validator(f"{event.type.removeprefix('id.go.kpu.dphp.')}.json")
    assert [e.message for e in validator.iter_errors(json.loads(event.model_dump_json()))] == []


@settings(max_examples=40, deadline=None)
@given(recaps())
def test_generated_recaps_validate_against_the_json_schema(recap):
    validator = _validator("recap.v1.json")
    assert [e.message for e in validator.iter_errors(json.loads(recap.model_dump_json()))] == []


# --- the AsyncAPI document ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return _load(generate.ASYNCAPI_PATH)


def test_asyncapi_channels_are_the_contract_topics(asyncapi):
    assert asyncapi["asyncapi"] == "3.0.0"
    addresses = {c["address"]: c for c in asyncapi["channels"].values()}
    assert set(addresses) == {"dphp.voter-registered", "dphp.voter-moved", "dphp.meeting-held", "dphp.dead-letter",
                              "dphp.recap"}
    assert addresses["dphp.voter-registered"]["bindings"]["kafka"]["partitions"] == 6
    assert addresses["dphp.voter-moved"]["bindings"]["kafka"]["partitions"] == 6
    assert addresses["dphp.recap"]["bindings"]["kafka"]["topicConfiguration"] == {"cleanup.policy": ["compact"]}
    assert asyncapi["servers"]["local"] == {
        "host": "127.0.0.1:9092", "protocol": "kafka",
        "description": asyncapi["servers"]["local"]["description"],
    }


def test_asyncapi_defaults_match_the_settings(asyncapi, monkeypatch):
    settings_mod = pytest.importorskip("services.common.settings")
    for var in [v for v in os.environ if v.startswith("DPHP_")]:
        monkeypatch.delenv(var)
    s = settings_mod.Settings()
    by_address = {c["address"]: c["bindings"]["kafka"]["partitions"] for c in asyncapi["channels"].values()}
    assert by_address == {
        s.topic_registered: s.partitions_registered,
        s.topic_moved: s.partitions_moved,
        s.topic_meetings: s.partitions_meetings,
        s.topic_dead_letter: s.partitions_dead_letter,
        s.topic_recap: s.partitions_recap,
    }
    assert asyncapi["servers"]["local"]["host"] == s.kafka_bootstrap == settings_mod.DEFAULT_KAFKA_BOOTSTRAP


def test_asyncapi_messages_keys_and_headers(asyncapi):
    messages = asyncapi["components"]["messages"]
    for mid in ("voterRegistered", "voterMoved", "meetingHeld"):
        m = messages[mid]
        assert m["contentType"] == CONTENT_TYPE
        assert m["headers"]["properties"]["content-type"]["const"] == CONTENT_TYPE
        assert "key" in m["bindings"]["kafka"]
        assert m["examples"][0]["payload"] == example(m["examples"][0]["name"])
    assert "NIK" in messages["voterRegistered"]["bindings"]["kafka"]["key"]["description"]
    assert "meeting_id" in messages["meetingHeld"]["bindings"]["kafka"]["key"]["description"]
    assert messages["meetingHeld"]["bindings"]["kafka"]["key"]["maxLength"] == 256  # contract 1.1
    dead = messages["deadLetter"]["headers"]
    expected = ["dphp.original.topic", "dphp.original.partition", "dphp.original.offset", "dphp.consumer.group",
                "dphp.error.class", "dphp.error.reason", "dphp.failed.at"]
    assert dead["required"] == expected
    assert set(expected) <= set(dead["properties"])
    assert "region_code" in messages["recap"]["bindings"]["kafka"]["key"]["description"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for v in node.values():
            out += _refs(v)
        return out
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: Any, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_references_resolve(asyncapi):
    refs = _refs(asyncapi)
    assert refs
    for ref in refs:
        _resolve(asyncapi, ref)
    for op in asyncapi["operations"].values():
        assert op["action"] in ("send", "receive")


def test_json_schemas_reference_only_their_own_defs():
    for path in generate.JSON_DIR.glob("*.json"):
        doc = _load(path)
        for ref in _refs(doc):
            _resolve(doc, ref)
    assert {p.name for p in generate.JSON_DIR.glob("*.json")} == set(SCHEMA_OF_EXAMPLE.values())
    assert all(t.removeprefix("id.go.kpu.dphp.") + ".json" in SCHEMA_OF_EXAMPLE.values() for t in EVENT_TYPES)


def test_examples_folder_holds_the_canonical_examples():
    assert {p.stem for p in EXAMPLES.glob("*.json")} == set(SCHEMA_OF_EXAMPLE)
    for name in EXAMPLE_NAMES:
        assert parse_event(raw(example(name)))


# --- the bounds of contract 1.1, both sides, where JSON Schema can say them ------------------------------------

_ATTENDEE = {"institution": "Rutan", "name": "Budi", "role": "Kepala"}
# (schema, example, path, inside, outside): every value inside is valid, every value outside invalid.
SCHEMA_BOUNDS = [
    ("voter-registered.v1.json", "voter-registered.v1", "id", ["x", "é" * 256], ["", "é" * 257, "a\u0001b"]),
    ("voter-registered.v1.json", "voter-registered.v1", "source", ["/", "/" + "a" * 255], ["", "/" + "a" * 256]),
    ("voter-registered.v1.json", "voter-registered.v1", "subject", ["3316015205900002"], ["3316015205900002\n"]),
    ("voter-registered.v1.json", "voter-registered.v1", "data.name", ["A", "王" * 1000],
     ["", "王" * 1001, "A\u0000", "A\tB", "A\nB", "A\u001fB"]),
    ("voter-registered.v1.json", "voter-registered.v1", "data.birth_place", ["", "b" * 1000], ["b" * 1001, "\r"]),
    ("voter-registered.v1.json", "voter-registered.v1", "data.address.street", ["", "s" * 1000], ["s" * 1001, "\x7f\x01"]),
    ("voter-registered.v1.json", "voter-registered.v1", "data.address.rt", ["001", "r" * 5000], ["0\t01"]),
    ("voter-registered.v1.json", "voter-registered.v1", "data.birth_date", ["1900-01-01", "2100-12-31"],
     ["1899-12-31", "2101-01-01", "0001-01-01", "9999-12-31"]),
    ("voter-registered.v1.json", "voter-registered.v1", "time",
     ["1900-01-01T00:00:00Z", "2100-12-31T23:59:59Z", "2024-07-02T10:15:00-23:59"],
     ["1898-12-31T23:59:59Z", "2102-01-01T00:00:00Z", "2024-07-02T10:15:00+24:00", "0001-01-01T00:00:00Z"]),
    ("voter-registered.v1.json", "voter-registered.v1", "datacontenttype", ["application/json; charset=utf-8"],
     ["application/json\t", "application/json;\u0001"]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.meeting_id", ["m", "m" * 256], ["", "m" * 257, "m\n"]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.venue", ["v", "v" * 256], ["", "v" * 257, "v\u0000"]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.notes", ["", "n" * 10_000, "a\tb\nc"],
     ["n" * 10_001, "a\rb", "a\u0000", "a\u000bb"]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.attendees", [[], [_ATTENDEE] * 1000,
                                                                   [{**_ATTENDEE, "name": "n" * 1000}]],
     [[_ATTENDEE] * 1001, [{**_ATTENDEE, "role": "r" * 1001}], [{**_ATTENDEE, "institution": "a\nb"}]]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.declared.male", [0, 2_147_483_647], [-1, 2_147_483_648, 1.5]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.declared.tps_loksus_count", [0, 2_147_483_647],
     [-1, 2_147_483_648, 2**63 - 1]),
    ("meeting-held.v1.json", "meeting-held.v1", "data.held_at", ["1899-12-31T23:00:00-01:00", "2101-01-01T00:29:59+00:30"],
     ["1898-12-31T23:00:00-01:00", "2102-01-01T00:00:00Z"]),
    ("voter-moved.v1.json", "voter-moved.v1", "id", ["i" * 256], ["i" * 257, ""]),
]


@pytest.mark.parametrize(("schema_file", "name", "path", "inside", "outside"), SCHEMA_BOUNDS,
                         ids=[f"{b[1]}:{b[2]}" for b in SCHEMA_BOUNDS])
def test_json_schemas_state_the_bounds_on_both_sides(schema_file, name, path, inside, outside):
    validator = _validator(schema_file)

    def doc_with(value):
        doc = with_changes(example(name), path, value)
        if path == "data.meeting_id":
            doc["subject"] = value
        if path == "data.birth_date":  # birth_date is not after the date of time
            doc["time"] = "2100-12-31T23:59:59Z"
        if path == "time":
            doc["data"]["birth_date"] = "1900-01-01"
        return doc

    for value in inside:
        doc = doc_with(value)
        assert [e.message for e in validator.iter_errors(doc)] == [], (path, value)
        parse_event(raw(doc))  # and the validator agrees
    for value in outside:
        assert list(validator.iter_errors(doc_with(value))), (path, value)
        with pytest.raises(InvalidEvent):
            parse_event(raw(doc_with(value)))


def test_json_schemas_describe_the_bounds_they_cannot_express():
    for name in ("voter-registered.v1.json", "voter-moved.v1.json", "meeting-held.v1.json"):
        description = _load(generate.JSON_DIR / name)["description"]
        for words in ("as instants", "1 MiB", "member name", "extension attribute", "1e400"):
            assert words in description, (name, words)
    info = _load(generate.ASYNCAPI_PATH)["info"]
    assert info["version"] == "1.1.0" and "as instants" in info["description"]
