"""The database privileges of the secured deployment's roles (README "Security"), granted object by
object in a projection schema: by the secure stack after its migrations, and by `dphp replay` on
the schema it rebuilds before switching over, so that no default privilege is needed and a
rebuilt projection gives each service exactly what the live one gave it."""

from __future__ import annotations

PROJECTION_SERVICES = ("registrations", "movements", "meetings")
OWNER = "dphp_owner"  # owns the database and the schema, runs migrations (the operator's role)
WRITERS = "dphp_writer"  # group role of the three projection services
READER = "dphp_reader"
SERVICE_ROLES = (*(f"dphp_{s}" for s in PROJECTION_SERVICES), "dphp_report")

#: The tables each projection service writes (besides the positions and the projection's config).
SERVICE_TABLES = {"registrations": ("voter", "voter_event", "tps_tally", "tps_loksus"),
                  "movements": ("voter", "voter_event", "tps_tally", "tps_loksus"),
                  "meetings": ("meeting",)}

_TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


def grant_statements(db: str, s: str) -> list[str]:
    """The least each role needs, in schema `s` (idempotent). The projection services write only
    their tables; the report service reads the recap views and positions and keeps
    `recap_published`, and of the voters' history only the newest event time, never a NIK. The
    reader connects (no temporary tables) and reads what the migrations grant it. Default
    privileges given by earlier versions to the writers' group are taken back."""
    services = [f"dphp_{n}" for n in PROJECTION_SERVICES]
    return [
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {WRITERS}, dphp_report",
        f"REVOKE TEMPORARY ON DATABASE {db} FROM {READER}",
        f"GRANT CONNECT ON DATABASE {db} TO {READER}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} REVOKE {_TABLE_RIGHTS} ON TABLES FROM {WRITERS}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} REVOKE USAGE ON SCHEMAS FROM {WRITERS}",
        f"GRANT USAGE ON SCHEMA {s} TO {WRITERS}, dphp_report",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {WRITERS}, {', '.join(SERVICE_ROLES)}",
        f"GRANT SELECT ON {s}.schema_migrations, {s}.privacy_config TO {WRITERS}, dphp_report",
        f"GRANT {_TABLE_RIGHTS} ON {s}.consumer_position, {s}.projection_config TO {', '.join(services)}",
        *(f"GRANT {_TABLE_RIGHTS} ON {', '.join(f'{s}.{t}' for t in tables)} TO dphp_{n}"
          for n, tables in SERVICE_TABLES.items()),
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {WRITERS}",
        f"GRANT SELECT ON {s}.projection_config, {s}.consumer_position, {s}.recap_full TO dphp_report",
        # every service's lag monitor: the projection's freshness (a view: two times, no voter)
        f"GRANT SELECT ON {s}.freshness TO {', '.join(SERVICE_ROLES)}",
        f"GRANT SELECT (event_time) ON {s}.voter_event TO dphp_report",
        f"GRANT {_TABLE_RIGHTS} ON {s}.recap_published TO dphp_report",
    ]


async def grant(conn, schema: str) -> bool:
    """Grants `grant_statements` in `schema` on the connection (the owner's), in one transaction,
    when the database has the secured roles (not on the plain local stack: False)."""
    roles = {r["rolname"] for r in await conn.fetch(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", [OWNER, WRITERS, READER, *SERVICE_ROLES])}
    if len(roles) < 3 + len(SERVICE_ROLES):
        return False
    db = await conn.fetchval("SELECT current_database()")
    async with conn.transaction():
        for sql in grant_statements(db, schema):
            await conn.execute(sql)
    return True
