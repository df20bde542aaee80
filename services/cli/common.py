"""Shared pieces of the `dphp` commands: settings, output formats, one-line errors.

Every string the commands print (a dead letter's reason, a meeting id, a venue, an error) is
printed as text: never as rich markup (`[/bold]`, `[link=...]`) or emoji codes (`:house:`), and
with control characters shown as escapes (`\\x1b`, `\\n`) instead of being sent to the terminal.
`out` and `err` below enforce this for every string they print; `visible` and `cell` do it for
text built elsewhere. `--format json` keeps the exact strings (escaped the JSON way).
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from services.common.settings import Settings

# Characters a terminal may act on rather than show: C0 and C1 controls and DEL (ANSI escape
# sequences start with ESC or CSI), line and paragraph separators, the bidirectional controls
# (they reorder what follows on the line), and lone surrogates (not encodable as UTF-8).
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_ACTIVE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029,
           *range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0xD800, 0xE000)]
_VISIBLE = {c: _NAMED.get(chr(c)) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _ACTIVE}
_JSON_SAFE = {c: f"\\u{c:04x}" for c in _ACTIVE if c >= 0x7F}  # json.dumps escapes the C0 ones itself
CELL_LIMIT = 300  # characters of one table cell; longer values end in "…(+N)" (csv and json: whole)


def visible(value: Any) -> str:
    """The value as text that prints literally: every character a terminal could act on is
    written as a backslash escape (ESC as `\\x1b`, a newline as `\\n`); everything else,
    brackets and backslashes included, is unchanged."""
    return ("" if value is None else str(value)).translate(_VISIBLE)


def cell(value: Any, limit: int | None = None) -> str:
    """`visible(value)`, cut to `limit` characters with a note of how many were left out."""
    text = visible(value)
    if limit is not None and len(text) > limit:
        cut = limit - 12
        return f"{text[:cut]}…(+{len(text) - cut})"
    return text


def dump_json(doc: Any) -> str:
    """One JSON document with the exact strings; characters a terminal could act on are \\u escapes."""
    return json.dumps(doc, ensure_ascii=False).translate(_JSON_SAFE)


class LiteralConsole(Console):
    """A console that prints every string as text: no markup, no emoji codes, no highlighting,
    control characters made visible. Styled output is passed as `Text` objects."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs["markup"] = kwargs["emoji"] = False
        return super().render_str(visible(text), **kwargs)


err = LiteralConsole(stderr=True)
# Piped output keeps whole cells rather than a terminal's 80 columns.
out = LiteralConsole(width=None if sys.stdout.isatty() else 200)

F = TypeVar("F", bound=Callable)


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError: a bad DPHP_* variable (its values never shown)
        errors = getattr(exc, "errors", None)
        reasons = [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in errors()] if errors else [str(exc)]
        fail(f"invalid settings: {'; '.join(reasons)}", code=2)
        raise  # unreachable


def fail(message: str, code: int = 1) -> None:
    err.print(Text.assemble(("error:", "red"), " ", visible(message)), soft_wrap=True)
    raise typer.Exit(code)


def expected_errors(func: F) -> F:
    """Turns expected failures (broker or database down, stack errors) into one line and exit 1,
    a refused argument (`InvalidArgument`) into one line and exit 2."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from services.common.errors import InvalidArgument, describe_expected

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except InvalidArgument as exc:
            fail(str(exc), code=2)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130)
        except Exception as exc:
            message = describe_expected(exc)
            if message is None:
                raise
            fail(message)

    return wrapper  # type: ignore[return-value]


def log_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
