"""Recognises the expected failures (unreachable broker or database) and words them in one line."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError

from services.devstack.process import StackError


def describe_expected(exc: BaseException) -> str | None:
    match exc:
        case StackError():
            return str(exc)
        case KafkaConnectionError():
            return f"cannot reach the Kafka broker: {exc} (is it running? `dphp dev up`)"
        case KafkaError():
            return f"Kafka error: {exc}"
        case OSError() if _looks_like_db(exc):
            return f"cannot reach PostgreSQL: {exc} (is it running? `dphp dev up`)"
        case asyncpg.InvalidCatalogNameError() | asyncpg.InvalidPasswordError() | asyncpg.InvalidAuthorizationSpecificationError():
            return f"PostgreSQL refused the connection: {exc}"
        case asyncpg.PostgresError():
            return f"PostgreSQL error: {exc}"
        case asyncio.TimeoutError():
            return "timed out talking to the broker or the database"
        case ConnectionError() | OSError():
            return f"connection failed: {exc}"
    return None


def _looks_like_db(exc: BaseException) -> bool:
    # asyncpg raises plain OSErrors; the port of the configured database URL names them.
    from services.common.settings import Settings

    try:
        url = Settings().database_url
    except Exception:
        url = ""
    port = url.rsplit(":", 1)[-1].split("/")[0] if url.count(":") >= 2 else "5432"
    return f"port {port}" in str(exc) or f", {port})" in str(exc) or "postgres" in str(exc).lower()
