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
