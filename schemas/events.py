"""CloudEvents 1.0 envelopes and event data of DPHP, contract version 1."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

TYPE_VOTER_REGISTERED = "id.go.kpu.dphp.voter-registered.v1"
TYPE_VOTER_MOVED = "id.go.kpu.dphp.voter-moved.v1"
TYPE_MEETING_HELD = "id.go.kpu.dphp.meeting-held.v1"
CONTENT_TYPE = "application/cloudevents+json"

Nik = Annotated[str, Field(pattern=r"^[0-9]{16}$", description="16-digit NIK")]
Nkk = Annotated[str, Field(pattern=r"^[0-9]{16}$", description="16-digit family card number")]
DesaCode = Annotated[str, Field(pattern=r"^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}$")]
AwareDatetime = Annotated[dt.datetime, Field(description="RFC 3339 with offset")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Tps(_Strict):
    """A polling station: desa/kelurahan code and number."""

    desa_code: DesaCode
    number: int = Field(ge=1, le=999)
    kind: Literal["reguler", "lokasi_khusus"]


class Address(_Strict):
    street: str
    rt: str
    rw: str


class VoterRegisteredData(_Strict):
    """Data of `id.go.kpu.dphp.voter-registered.v1`."""

    nik: Nik
    nkk: Nkk
    name: str = Field(min_length=1)
    birth_place: str
    birth_date: dt.date
    sex: Literal["L", "P"]
    marital_status: Literal["B", "S", "P"]
    disability: Literal[1, 2, 3, 4, 5, 6] | None
    ktp_el: bool
    address: Address
    tps: Tps
    new_voter: bool


class VoterMovedData(_Strict):
    """Data of `id.go.kpu.dphp.voter-moved.v1`."""

    nik: Nik
    to_tps: Tps
    from_tps: Tps | None = None
    reason: Literal["pindah_domisili", "pindah_memilih", "salah_penempatan_tps"]


class Attendee(_Strict):
    institution: str
    name: str
    role: str


class DeclaredFigures(_Strict):
    male: int = Field(ge=0)
    female: int = Field(ge=0)
    total: int = Field(ge=0)
    tps_count: int = Field(ge=0)
    tps_loksus_count: int = Field(ge=0)


class MeetingHeldData(_Strict):
    """Data of `id.go.kpu.dphp.meeting-held.v1`."""

    meeting_id: str = Field(min_length=1)
    level: Literal["desa", "kecamatan", "kabupaten", "provinsi"]
    region_code: str
    stage: Literal["dphp", "dps", "dpshp", "dpt"]
    held_at: AwareDatetime
    data_cutoff: AwareDatetime | None
    venue: str
    attendees: list[Attendee]
    declared: DeclaredFigures | None
    notes: str


class _Envelope(BaseModel):
    # Unknown extension attributes are kept and ignored (CONTRACT 2).
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    time: AwareDatetime
    subject: str
    datacontenttype: Literal["application/json"] | None = None
    dataschema: str | None = None


class VoterRegistered(_Envelope):
    """CloudEvent: a voter was registered (or corrected) during coklit."""

    type: Literal["id.go.kpu.dphp.voter-registered.v1"]
    data: VoterRegisteredData


class VoterMoved(_Envelope):
    """CloudEvent: a voter was placed at another TPS."""

    type: Literal["id.go.kpu.dphp.voter-moved.v1"]
    data: VoterMovedData


class MeetingHeld(_Envelope):
    """CloudEvent: a recapitulation meeting (rapat pleno) was held."""

    type: Literal["id.go.kpu.dphp.meeting-held.v1"]
    data: MeetingHeldData


Event = VoterRegistered | VoterMoved | MeetingHeld
