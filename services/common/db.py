"""PostgreSQL access: connections and the migration runner (plain SQL files under infra/)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

from services.common.settings import Settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "infra" / "migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Migrations name their schema `dphp`; the runner substitutes the configured one so that
# tests can use a schema each.
_SCHEMA_TOKEN = re.compile(r"\bdphp\.")


class DatabaseUnreachable(ConnectionError):
    """The configured PostgreSQL does not answer (an expected condition: one line, exit 1)."""


async def connect(settings: Settings, **kwargs) -> asyncpg.Connection:
    kwargs.setdefault("timeout", 10)
    try:
        return await asyncpg.connect(settings.database_dsn, **kwargs)
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
        p = urlparse(settings.database_url)
        raise DatabaseUnreachable(
            f"cannot reach PostgreSQL at {p.hostname}:{p.port or 5432}: {exc} (is it running? `dphp dev up`)"
        ) from exc


async def _up_to_date(conn: asyncpg.Connection, schema: str) -> bool:
    """True when every migration is recorded in the schema (read only)."""
    try:
        if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations") is None:
            return False
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
    except asyncpg.InsufficientPrivilegeError:
        return False
    return {p.name[:3] for p in migration_files()} <= done


def migration_files() -> list[Path]:
    files = sorted(p for p in MIGRATIONS.glob("*.sql") if _NAME.match(p.name))
    versions = [_NAME.match(p.name).group(1) for p in files]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a version number in {MIGRATIONS}")
    return files


def render(sql: str, schema: str) -> str:
    return _SCHEMA_TOKEN.sub(f"{schema}.", sql).replace("SCHEMA dphp", f"SCHEMA {schema}")


async def migrate(settings: Settings) -> list[str]:
    """Applies the migrations not yet recorded, in order, each in its own transaction."""
    schema = settings.db_schema
    conn = await connect(settings)
    try:
        if await _up_to_date(conn, schema):  # no DDL: a service's role without CREATE rights starts too
            await _record_privacy_threshold(conn, schema, settings.privacy_min_voters)
            return []
        # One migrator at a time per schema (services may start together).
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"dphp-migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations "
            "(version text PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
        applied = []
        for path in migration_files():
            version = path.name[:3]
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(render(path.read_text(), schema))
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)", version, path.name
                )
            applied.append(path.name)
        await _record_privacy_threshold(conn, schema, settings.privacy_min_voters)
        return applied
    finally:
        await conn.close()


async def _record_privacy_threshold(conn: asyncpg.Connection, schema: str, min_voters: int) -> None:
    """The reader's views and as-of function read the threshold (DPHP_PRIVACY_MIN_VOTERS) from
    the projection's `privacy_config` (migration 007); written only when it changes."""
    # Read first: a role that may not change it (a service's, on the secure stack) starts when it is current.
    if await conn.fetchval(f"SELECT min_voters FROM {schema}.privacy_config") == min_voters:
        return
    await conn.execute(
        f"UPDATE {schema}.privacy_config SET min_voters = $1 WHERE min_voters IS DISTINCT FROM $1", min_voters)
