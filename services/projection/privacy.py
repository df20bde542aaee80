"""The privacy threshold (CONTRACT 5, version 1.1): what readers see of a small TPS.

At a TPS with few eligible voters, the count of voters with a disability (and by type) would let
a neighbour infer one person's disability. In what the reader role can read, in the recap topic
and in the web service, a TPS with fewer eligible voters (male + female) than the threshold
(`DPHP_PRIVACY_MIN_VOTERS`) shows `disabled` and `disability_by_type` as null; every other figure,
and every figure of desa level and above, stays exact. Operators (`dphp report`) see exact figures.

Pure code. The SQL side (views and the as-of function of the reader, migration 007) applies the
same rule through `dphp.privacy_withheld`; tests compare both with `public_row` over the fold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.recap import DISABILITY_TYPES

#: The fields withheld, in both shapes a recap has: nested (`disability_by_type`, as in reports
#: and messages) and flat (`d1`..`d6`, as in the views and the report service's figures).
WITHHELD_FIELDS: tuple[str, ...] = ("disabled", "disability_by_type", *(f"d{k}" for k in DISABILITY_TYPES))


def withheld(level: str, eligible_voters: int, min_voters: int) -> bool:
    """Whether a region's disability figures are withheld: only a TPS, only below the threshold."""
    return level == "tps" and eligible_voters < min_voters


def public_row(row: Mapping[str, Any], min_voters: int, level: str | None = None) -> dict[str, Any]:
    """The row as readers see it: a copy, with the disability fields null when withheld.

    `row` has `male` and `female` and the level under `level` (or given as `level`)."""
    out = dict(row)
    if withheld(level or row["level"], row["male"] + row["female"], min_voters):
        for f in WITHHELD_FIELDS:
            if f in out:
                out[f] = None
    return out


def public_rows(rows: Iterable[Mapping[str, Any]], min_voters: int) -> list[dict[str, Any]]:
    """`public_row` of each row (rows shaped as `dphp report --format json` prints them)."""
    return [public_row(r, min_voters) for r in rows]
