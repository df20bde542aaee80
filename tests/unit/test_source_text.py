"""The project's sources compile on every Python that pyproject.toml admits (>= 3.11).

Python 3.13 and later compile docstrings through UTF-8 (they strip their indentation at compile
time): a docstring holding a lone surrogate, which a non-raw ``\\ud800`` escape makes, stopped
``import schemas.events`` with a UnicodeEncodeError on 3.13.0, while 3.11 imported it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "services", "bench", "tests", "scripts")


def docstrings(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node, clean=False)
            if text is not None:
                yield getattr(node, "lineno", 1), text


def test_every_docstring_is_utf8_text():
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in docstrings(path):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {exc.reason} at {exc.start}")
    assert not bad, "docstrings that are not UTF-8 text (a non-raw \\ud800-style escape?):\n" + "\n".join(bad)
