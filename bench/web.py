"""Latency of the web pages (issue 14, Deliver 5): p50/p99 of a province page and a kabupaten page.

    python -m bench.web [--requests N] [--province 33] [--kabupaten 33.16]

Reads the projection the settings name (e.g. after `make demo` or `make bench`), through the web
app in-process (httpx over ASGI: the app and PostgreSQL, no network). Two runs: with the app's
cache (keyed by the stored positions: a page is recomputed only after a batch is stored) and
without it (every request reads the view `recap_full`). A measurement, not a test: the machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from services.common.settings import Settings


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(settings: Settings, paths: list[str], requests: int, cache: bool) -> dict[str, dict]:
    import httpx

    from services.web.app import create_app
    from services.web.data import WebData

    data = WebData(settings, cache=cache)
    await data.start()
    try:
        app = create_app(settings, data)
        out = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as client:
            for path in paths:
                assert (await client.get(path)).status_code == 200, path  # warm-up (and the cache)
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    r = await client.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200
                out[path] = {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 99), "n": requests}
        return out
    finally:
        await data.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--province", default="33")
    p.add_argument("--kabupaten", default="33.16")
    args = p.parse_args(argv)
    settings = Settings()
    paths = [f"/region/{args.province}", f"/region/{args.kabupaten}", f"/api/recap/{args.kabupaten}"]
    print(f"projection: schema {settings.db_schema} at {settings.database_url.split('@')[-1]}")
    print(f"{'page':<24} {'cache':<6} {'p50 ms':>8} {'p99 ms':>8} {'n':>5}")
    for cache in (True, False):
        for path, f in asyncio.run(measure(settings, paths, args.requests, cache)).items():
            print(f"{path:<24} {'yes' if cache else 'no':<6} {f['p50_ms']:>8.1f} {f['p99_ms']:>8.1f} {f['n']:>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
