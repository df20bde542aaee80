"""Shared pieces of the `dphp` commands: settings, output formats, one-line errors."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

import typer
from rich.console import Console

from services.common.settings import Settings

err = Console(stderr=True, highlight=False)
# Piped output keeps whole cells rather than a terminal's 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

F = TypeVar("F", bound=Callable)


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError: a bad DPHP_* variable
        fail(f"invalid settings: {str(exc).splitlines()[0:3]}", code=2)
        raise  # unreachable


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def expected_errors(func: F) -> F:
    """Turns expected failures (broker or database down, stack errors) into one line and exit 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from services.common.errors import describe_expected

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
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
