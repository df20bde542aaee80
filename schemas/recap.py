"""The `dphp.recap` topic message: the recap of one region (CONTRACT sections 1 and 3).

Key: the region code (UTF-8). Value: one JSON object::

    {"level": "kabupaten", "region_code": "33.16", "name": "Kabupaten Blora",
     "male": 348000, "female": 352000, "total": 700000, "tps_count": 1450, "tps_loksus_count": 1,
     "new_voters": 12000, "disabled": 2100,
     "disability_by_type": {"1": 700, "2": 300, "3": 200, "4": 100, "5": 400, "6": 400},
     "under_age": 35, "over_capacity_tps": 0,
     "as_of": "2024-08-01T17:00:00+07:00", "published_at": "2024-08-01T17:00:02.120000+07:00"}

Region codes by level: ``ID`` (nasional), ``33`` (provinsi), ``33.16`` (kabupaten), ``33.16.01``
(kecamatan), ``33.16.01.2001`` (desa), ``33.16.01.2001/001`` (tps, number in 3 digits). The model
checks that the code has the shape of its level, not that it exists.

At a TPS with fewer eligible voters than the privacy threshold (``DPHP_PRIVACY_MIN_VOTERS``,
default 10) ``disabled`` and ``disability_by_type`` are null (withheld, CONTRACT 5 version 1.1);
rows of desa level and above are always exact.

``as_of`` is the ``time`` of the newest event included (null when none is), ``published_at`` when
the message was produced. Strict like the events: counts are ``int`` (cast database numerics),
times are aware ``datetime`` objects (RFC 3339 strings with offset in JSON). Unknown fields are
ignored (later minor versions).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas import regions
from schemas.events import AwareDatetime

RecapLevel = Literal["tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional"]
#: The levels of a recap, from the finest to the coarsest (the one order used everywhere).
LEVELS: tuple[str, ...] = ("tps", "desa", "kecamatan", "kabupaten", "provinsi", "nasional")
#: The counting fields of a recap (CONTRACT 3), in the column order of the view dphp.recap.
RECAP_COUNT_FIELDS: tuple[str, ...] = (
    "male", "female", "total", "tps_count", "tps_loksus_count", "new_voters", "disabled",
    "under_age", "over_capacity_tps",
)
#: The fields of `declared` in a meeting, also those of `computed` and `discrepancy`.
DECLARED_FIELDS: tuple[str, ...] = ("male", "female", "total", "tps_count", "tps_loksus_count")
#: The disability codes of CONTRACT 2, the keys of `disability_by_type`.
DISABILITY_TYPES: tuple[str, ...] = ("1", "2", "3", "4", "5", "6")

class DisabilityByType(BaseModel):
    """Eligible voters by disability code: "1" fisik, "2" intelektual, "3" mental,
    "4" sensorik wicara, "5" sensorik rungu, "6" sensorik netra. Keys "1".."6" on the wire."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, strict=True, validate_by_alias=True, validate_by_name=True,
        serialize_by_alias=True, hide_input_in_errors=True,
    )

    fisik: int = Field(alias="1", ge=0)
    intelektual: int = Field(alias="2", ge=0)
    mental: int = Field(alias="3", ge=0)
    sensorik_wicara: int = Field(alias="4", ge=0)
    sensorik_rungu: int = Field(alias="5", ge=0)
    sensorik_netra: int = Field(alias="6", ge=0)

    @classmethod
    def zero(cls) -> DisabilityByType:
        return cls.from_mapping({})

    @classmethod
    def from_mapping(cls, counts: dict[str, int] | dict[int, int]) -> DisabilityByType:
        """From ``{"1": n, ...}`` or ``{1: n, ...}``; missing codes count 0."""
        by_code = {str(k): v for k, v in counts.items()}
        return cls.model_validate({c: int(by_code.get(c, 0)) for c in DISABILITY_TYPES})

    def as_dict(self) -> dict[str, int]:
        """``{"1": n, ..., "6": n}``."""
        return self.model_dump(by_alias=True)


class RecapRow(BaseModel):
    """A region and its counting fields (CONTRACT 3): a row of `dphp report --format json`."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, strict=True, hide_input_in_errors=True,
        # The privacy threshold (CONTRACT 5): only a TPS row may carry null disability figures.
        json_schema_extra={"if": {"properties": {"level": {"not": {"const": "tps"}}}},
                           "then": {"properties": {"disabled": {"type": "integer"},
                                                   "disability_by_type": {"type": "object"}}}},
    )

    level: RecapLevel
    region_code: str = Field(
        description="ID, 33, 33.16, 33.16.01, 33.16.01.2001 or 33.16.01.2001/001 by level",
        json_schema_extra={
            "pattern": r"^(ID|[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4}(/[0-9]{3})?)?)?)?)$"
        },
    )
    name: str
    male: int = Field(ge=0)
    female: int = Field(ge=0)
    total: int = Field(ge=0)
    tps_count: int = Field(ge=0)
    tps_loksus_count: int = Field(ge=0)
    new_voters: int = Field(ge=0)
    disabled: int | None = Field(ge=0, description=(
        "eligible voters with a disability; null (withheld) only at a TPS with fewer eligible voters "
        "than the privacy threshold (DPHP_PRIVACY_MIN_VOTERS, default 10)"))
    disability_by_type: DisabilityByType | None = Field(description="null exactly when `disabled` is null")
    under_age: int = Field(ge=0)
    over_capacity_tps: int = Field(ge=0)

    @model_validator(mode="after")
    def _code_of_level(self) -> RecapRow:
        if regions.depth_of(self.region_code) != regions.LEVEL_DEPTH[self.level]:
            raise PydanticCustomError(
                "region_level", "region_code does not have the shape of a {level} code", {"level": self.level}
            )
        if (self.disabled is None) != (self.disability_by_type is None):
            raise PydanticCustomError("withheld", "disabled and disability_by_type are null together or not at all")
        if self.disabled is None and self.level != "tps":
            raise PydanticCustomError("withheld", "only a TPS row may withhold its disability figures")
        return self

    @classmethod
    def zero(cls, level: str, region_code: str, name: str) -> RecapRow:
        """A region without any registered voter."""
        return cls.model_validate(_zero_fields(level, region_code, name))

    @property
    def key(self) -> bytes:
        """The Kafka key: the region code."""
        return self.region_code.encode()


def _zero_fields(level: str, region_code: str, name: str) -> dict[str, object]:
    fields: dict[str, object] = {"level": level, "region_code": region_code, "name": name}
    fields.update(dict.fromkeys(RECAP_COUNT_FIELDS, 0))
    fields["disability_by_type"] = DisabilityByType.zero()
    return fields


class Recap(RecapRow):
    """One message of the `dphp.recap` topic (compacted: the latest recap per region code)."""

    as_of: AwareDatetime | None = Field(description="time of the newest event included, null if none")
    published_at: AwareDatetime

    @classmethod
    def zero(cls, level: str, region_code: str, name: str, *,  # type: ignore[override]
             published_at: dt.datetime, as_of: dt.datetime | None = None) -> Recap:
        return cls.model_validate({**_zero_fields(level, region_code, name), "as_of": as_of,
                                   "published_at": published_at})

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Recap:
        return cls.model_validate_json(raw)


def recap_key(recap: RecapRow) -> bytes:
    return recap.key
