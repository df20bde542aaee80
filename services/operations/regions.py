"""Region names and the check of a region code given by an operator."""

from __future__ import annotations

from services.common.errors import InvalidArgument


def region_name(code: str) -> str:
    """The display name of a region code (TPS, desa, kecamatan, kabupaten, provinsi or ID)."""
    from services.projection.recap import region_display_name

    return region_display_name(code)


def check_region(code: str) -> None:
    """Refuses (`InvalidArgument`) a code that is not a Kemendagri region code or ID."""
    from schemas.regions import region_name as name

    if code == "ID":
        return
    base = code.split("/")[0]
    if name(base) is None:
        raise InvalidArgument(
            f"unknown region code {code!r}: give a Kemendagri code such as 33.16 or 33.16.01, or ID")
