"""The README's event examples are valid events and valid against the JSON Schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from schemas.parsing import parse_event

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```json\n(.*?)```", re.S)


def readme_events() -> list[dict]:
    blocks = [json.loads(b) for b in BLOCK.findall((ROOT / "README.md").read_text())]
    return [b for b in blocks if "specversion" in b]


def test_the_readme_shows_every_event_type():
    types = {e["type"] for e in readme_events()}
    assert {t.rsplit(".", 1)[0].rsplit(".", 1)[1] for t in types} == {
        "voter-registered", "voter-moved", "meeting-held"}


@pytest.mark.parametrize("event", readme_events(), ids=lambda e: e["type"])
def test_readme_examples_validate(event):
    jsonschema = pytest.importorskip("jsonschema")
    name = event["type"].split(".")[-2] + "." + event["type"].split(".")[-1]
    schema = json.loads((ROOT / "schemas" / "json" / f"{name}.json").read_text())
    jsonschema.validate(event, schema)
    assert parse_event(json.dumps(event).encode()).type == event["type"]


def test_the_readme_states_the_bounds_of_contract_1_1():
    from schemas import events

    text = (ROOT / "README.md").read_text()
    section = text[text.index("**Bounds (contract version 1.1).**"):]
    section = section[: section.index("\n**Versioning.**")]
    for figure in (events.MAX_RECORD_BYTES, events.FIGURE_MAX, events.NOTES_MAX_LENGTH, events.TEXT_MAX_LENGTH,
                   events.ATTENDEES_MAX):
        assert f"{figure:,}" in section, figure
    for words in ("1 .. 256 characters", "1900-01-01T00:00:00Z .. 2100-12-31T23:59:59Z as instants",
                  "1900-01-01 .. 2100-12-31", "U+0000 .. U+001F", "tab and newline in `data.notes`"):
        assert words in section, words
