"""Recognises the expected failures (unreachable broker or database) and words them in one line."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError

from services.common.db import DatabaseUnreachable


class StackError(Exception):
    """An expected failure of the local stack, shown to users as one line."""


class OperatorError(Exception):
    """An expected failure of an operation; its message is the one line the operator sees."""


class InvalidArgument(ValueError):
    """A request an operation refuses before doing anything: the caller's mistake (the CLI's
    usage error, exit 2); its message is the one line the operator sees."""


def describe_expected(exc: BaseException) -> str | None:
    match exc:
        case StackError() | DatabaseUnreachable() | OperatorError():
            return str(exc)
        case KafkaConnectionError():
            return f"cannot reach the Kafka broker: {exc} (is it running? `dphp dev up`)"
        case KafkaError():
            return f"Kafka error: {exc}"
        case asyncpg.InvalidCatalogNameError() | asyncpg.InvalidPasswordError() | asyncpg.InvalidAuthorizationSpecificationError():
            return f"PostgreSQL refused the connection: {exc}"
        case asyncpg.PostgresError():
            return f"PostgreSQL error: {exc}"
        case asyncio.TimeoutError():
            return "timed out talking to the broker or the database"
        case ConnectionError() | OSError():
            return f"connection failed: {exc}"
    return None

