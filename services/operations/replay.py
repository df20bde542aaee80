"""Rebuilding the projection from the topics and switching over (`dphp replay`).

The rebuild itself is `services/projection/replay.py`."""

from __future__ import annotations

from collections.abc import Callable

from services.common.settings import Settings


async def replay(settings: Settings, keep_old: bool = True,
                 progress: Callable[[int, int], None] | None = None):
    """Rebuilds the projection into a new schema, switches over in one transaction and keeps the
    replaced one (or drops it); `progress(done, total)` records. Returns the replay's result."""
    from services.projection.replay import replay as rebuild

    return await rebuild(settings, keep_old=keep_old, progress=progress)
