"""Deterministic, realistic sample data: the events of one kabupaten/kota's DPHP (see `generator`)."""

from services.sample.generator import (
    NotAKabupatenError,
    SampleError,
    SampleStats,
    UnknownRegionError,
    check_region,
    generate,
    write_sample,
)

__all__ = [
    "NotAKabupatenError",
    "SampleError",
    "SampleStats",
    "UnknownRegionError",
    "check_region",
    "generate",
    "write_sample",
]
