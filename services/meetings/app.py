"""The meetings projection service: `dphp run meetings` or `faststream run --factory services.meetings.app:create_app`."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from services.common.settings import Settings
from services.projection.app_factory import build_app


def create_app(settings: Settings | None = None) -> FastStream:
    return build_app(settings or Settings(), "meetings")


if __name__ == "__main__":
    asyncio.run(create_app().run())
