"""The HTML of the web pages and of the printable forms (one set of Jinja2 templates, used by the
web service and by `dphp report|meetings --format html|pdf`)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

from schemas.recap import DECLARED_FIELDS, DISABILITY_TYPES, LEVELS
from services.operations.regions import region_name

TEMPLATES = Path(__file__).resolve().parent / "templates"
WIB = dt.timezone(dt.timedelta(hours=7))

DISABILITY_NAMES = {"1": "fisik", "2": "intelektual", "3": "mental", "4": "sensorik wicara",
                    "5": "sensorik rungu", "6": "sensorik netra"}
LEVEL_TITLES = {"tps": "TPS", "desa": "Desa/Kelurahan", "kecamatan": "Kecamatan", "kabupaten": "Kabupaten/Kota",
                "provinsi": "Provinsi", "nasional": "Nasional"}
# The KPU that holds the plenary meeting of a region's recap, by the region's level.
KPU_OF_LEVEL = {"tps": "KPPS", "desa": "PPS", "kecamatan": "PPK", "kabupaten": "KPU", "provinsi": "KPU",
                "nasional": "KPU Republik Indonesia"}


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v: "–" if v is None else f"{v:,}".replace(",", ".")
    env.filters["when"] = when
    env.globals.update(region_title=region_title, KPU_OF_LEVEL=KPU_OF_LEVEL, DISABILITY_TYPES=DISABILITY_TYPES, DISABILITY_NAMES=DISABILITY_NAMES,
                       DECLARED_FIELDS=DECLARED_FIELDS, LEVEL_TITLES=LEVEL_TITLES, region_name=region_name)
    return env


def when(value: Any) -> str:
    """A time as `2024-08-11 09:00 WIB` (Western Indonesian Time), or `–`."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(WIB).strftime("%Y-%m-%d %H:%M WIB")


def region_title(code: str) -> str:
    """`Kabupaten Blora`, `Kecamatan Jati`, `Desa Jati`, `Kelurahan Jetis`, `Provinsi Jawa Tengah`, `TPS 001 ...`."""
    level, name = own_level(code), region_name(code)
    if level in ("nasional", "tps") or name.split(" ")[0] in ("Kabupaten", "Kota"):
        return name
    if level == "desa":
        return f"{'Kelurahan' if code.split('.')[3].startswith('1') else 'Desa'} {name}"
    return f"{LEVEL_TITLES[level]} {name}"


def region_path(code: str) -> list[dict[str, str]]:
    """Breadcrumbs: the nation down to the region itself."""
    from schemas.regions import ancestors

    return [{"code": c, "name": region_name(c)} for c in (*reversed(ancestors(code)), code)] if code != "ID" \
        else [{"code": "ID", "name": region_name("ID")}]


def own_level(code: str) -> str:
    from services.projection.recap import level_of

    return level_of(code)


def child_level(code: str) -> str | None:
    level = own_level(code)
    return None if level == "tps" else LEVELS[LEVELS.index(level) - 1]


def region_context(code: str, own: list[dict], children: list[dict], freshness: dict,
                   as_of: dt.datetime | None, generated_at: dt.datetime | None = None) -> dict[str, Any]:
    level = own_level(code)
    return {
        "code": code, "name": region_name(code), "title": region_title(code), "level": level, "level_title": LEVEL_TITLES[level],
        "child_level": child_level(code), "own": own[0] if own else None, "children": children,
        "crumbs": region_path(code), "freshness": freshness, "as_of": as_of,
        "kpu": f"{KPU_OF_LEVEL[level]} {region_title(code)}" if level != "nasional" else KPU_OF_LEVEL[level],
        "generated_at": generated_at or dt.datetime.now(dt.UTC),
    }


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def region_page(ctx: dict[str, Any]) -> str:
    return render("region.html", **ctx)


def region_print(ctx: dict[str, Any]) -> str:
    return render("print_region.html", **ctx)


def meetings_context(code: str, meetings: list[dict], freshness: dict,
                     generated_at: dt.datetime | None = None) -> dict[str, Any]:
    return {"code": code, "name": region_name(code), "meetings": meetings, "crumbs": region_path(code),
            "freshness": freshness, "as_of": None, "generated_at": generated_at or dt.datetime.now(dt.UTC)}


def meetings_page(ctx: dict[str, Any]) -> str:
    return render("meetings.html", **ctx)


def meetings_print(ctx: dict[str, Any]) -> str:
    return render("print_meetings.html", **ctx)


def error_page(status: int, message: str) -> str:
    return render("error.html", status=status, message=message, crumbs=[], freshness=None, as_of=None)
