"""Region names and the check of a region code given by an operator."""

from __future__ import annotations

from services.common.errors import InvalidArgument


def region_name(code: str) -> str:
    """The display name of a region code (TPS, desa, kecamatan, kabupaten, provinsi or ID)."""
    from services.projection.recap import region_display_name

    return region_display_name(code)


def check_region(code: str) -> None:
    """Refuses (`InvalidArgument`) a code that is not a Kemendagri region code or ID."""
    from schemas.regions import level_of

    if level_of(code) is None:  # a TPS too: a known desa, '/', its number in three digits 001-999
        shown = code if len(code) <= 40 else code[:40] + "..."
        raise InvalidArgument(
            f"unknown region code {shown!r}: give a Kemendagri code such as 33.16 or 33.16.01, "
            "a TPS as 33.16.01.2001/001, or ID")
