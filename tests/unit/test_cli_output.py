"""The commands' output prints hostile strings as text: never as rich markup or emoji codes, never
a control sequence sent to the terminal, a very long value cut in tables (csv and json: whole)."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from services.cli.common import CELL_LIMIT, OutputFormat, dump_json, fail, visible
from services.cli.read_cmd import emit

HOSTILE = [
    "[/bold]", "[link=http://evil.example]click[/link]", "[red", "[bold red]x[/]", "\\[not escaped]",
    "back\\slash\\", ":house: :warning:", "[b]a\\[/b]", "\x1b[31mred\x1b[0m", "\x1b]8;;http://x\x07link\x1b]8;;\x07",
    "\x9b31m", "bell\x07 back\x08 cr\r nl\n tab\t", "rtl \u202edesrever\u202c", "NUL\x00", "del\x7f",
]
# Brackets, backslashes, colons, escapes and the characters a terminal acts on, among letters.
ALPHABET = st.one_of(st.sampled_from("[]\\/:=#@ \x1b\x07\x08\r\n\t\x00\x7f\x9b\u202e\u2028"),
                     st.characters(codec="utf-8", exclude_categories=("Cs",)))
TEXTS = st.text(ALPHABET, max_size=60)
ACTIVE = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x202E, 0x2028]}


def printed(rows, fmt, columns, title=None) -> str:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        emit(rows, fmt, columns, title=title)
    assert stderr.getvalue() == ""
    return stdout.getvalue()


def test_visible_keeps_printable_text_and_escapes_what_a_terminal_acts_on():
    assert visible("[/bold] back\\slash :house:") == "[/bold] back\\slash :house:"
    assert visible("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert visible("a\nb\tc\rd\x00e\x7ff\x9bg\u202eh") == "a\\nb\\tc\\rd\\x00e\\x7ff\\x9bg\\u202eh"
    assert visible(None) == "" and visible(12) == "12"


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("fmt", [OutputFormat.table, OutputFormat.csv])
def test_every_hostile_string_prints_literally(hostile, fmt):
    text = printed([{"id": "0:1", "reason": hostile}], fmt, ["id", "reason"], title=f"title {hostile}")
    assert visible(hostile) in text
    assert not ACTIVE & set(text) - {"\n"}
    if fmt is OutputFormat.table:
        assert f"title {visible(hostile)}" in text


@settings(max_examples=300, deadline=None)
@given(values=st.lists(TEXTS, min_size=1, max_size=3))
def test_any_string_in_a_table_is_printed_as_text(values):
    columns = [f"c{i}" for i in range(len(values))]
    text = printed([dict(zip(columns, values, strict=True))], OutputFormat.table, columns)
    assert "\x1b" not in text and not ACTIVE & set(text) - {"\n"}
    lines = text.splitlines()
    for v in values:
        shown = visible(v).strip()
        # A cell that fits on one line appears whole (rich may only trim its outer blanks).
        if shown and not any(c.isspace() for c in shown) and len(values) * (cell_len(shown) + 4) < 190:
            assert any(shown in line for line in lines), (shown, text)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(TEXTS, min_size=1, max_size=3))
def test_any_string_in_csv_reads_back_as_its_visible_text(values):
    columns = [f"c{i}" for i in range(len(values))]
    text = printed([dict(zip(columns, values, strict=True))], OutputFormat.csv, columns)
    assert not ACTIVE & set(text) - {"\n"}
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [{c: visible(v) for c, v in zip(columns, values, strict=True)}]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(TEXTS, min_size=1, max_size=3))
def test_json_keeps_the_exact_strings_and_sends_no_control_character(values):
    rows = [{"v": v} for v in values]
    text = printed(rows, OutputFormat.json, ["v"])
    assert not ACTIVE & set(text) - {"\n"}
    assert json.loads(text) == rows
    assert json.loads(dump_json(values)) == values


def test_a_very_long_value_is_cut_in_a_table_and_whole_in_csv():
    long = "[x] " * 3000  # words: rich wraps them (a single word it crops itself)
    table = printed([{"v": long}], OutputFormat.table, ["v"])
    assert len(table) < 2 * CELL_LIMIT + 2000
    assert f"(+{len(long) - (CELL_LIMIT - 12)})" in table.replace("\n", "").replace("│", "").replace(" ", "")
    as_csv = printed([{"v": long}], OutputFormat.csv, ["v"])
    assert list(csv.DictReader(io.StringIO(as_csv))) == [{"v": long}]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_an_error_line_prints_its_message_as_text(capsys, hostile):
    with pytest.raises(typer.Exit) as exit_:
        fail(f"unknown region code {hostile!r}")
    assert exit_.value.exit_code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: unknown region code")
    assert visible(repr(hostile)) in captured.err
    assert "\x1b" not in captured.err
