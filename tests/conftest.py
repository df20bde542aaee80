"""Test harness: a real Kafka broker and PostgreSQL for the session, isolation by names.

The stack is, in this order: the one named by DPHP_TEST_KAFKA_BOOTSTRAP and
DPHP_TEST_DATABASE_URL; the one the settings name (DPHP_KAFKA_BOOTSTRAP and
DPHP_DATABASE_URL, by default the local development stack of `dphp dev up`) if it answers;
else one started here on free ports in a temporary folder and stopped at the end. Each test gets its own topic names, consumer groups and schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.settings import Settings


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    database_url: str
    origin: str
    state_dir: Path | None = None


def _start_own_stack(tmp: Path) -> Stack:
    from services.devstack import kafka, postgres
    from services.devstack.process import free_port

    settings = Settings()
    kl = kafka.KafkaLayout(state=tmp, jars_root=settings.kafka_jars_dir.expanduser(),
                           version=settings.kafka_version, host="127.0.0.1",
                           port=free_port(), controller_port=free_port())
    pl = postgres.PostgresLayout(state=tmp, host="127.0.0.1", port=free_port())
    kafka.start(kl, log=lambda line: None)
    try:
        postgres.start(pl, log=lambda line: None)
    except Exception:
        kafka.stop(kl)
        raise
    return Stack(f"127.0.0.1:{kl.port}", pl.url, "started by the tests", tmp)


def _configured_stack_answers(settings: Settings) -> bool:
    from services.devstack.process import port_open
    from services.devstack.stack import kafka_layout, postgres_layout

    kl, pl = kafka_layout(settings), postgres_layout(settings)
    return port_open(kl.host, kl.port) and port_open(pl.host, pl.port)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    kafka_env, db_env = os.environ.get("DPHP_TEST_KAFKA_BOOTSTRAP"), os.environ.get("DPHP_TEST_DATABASE_URL")
    if kafka_env and db_env:
        yield Stack(kafka_env, db_env, "from DPHP_TEST_* variables")
        return
    configured = Settings()
    if _configured_stack_answers(configured):
        yield Stack(configured.kafka_bootstrap, configured.database_url, "the configured (development) stack")
        return
    # Short path: PostgreSQL's and Kafka's folders live below it.
    tmp = Path(tmp_path_factory.mktemp("stack"))
    own = _start_own_stack(tmp)
    try:
        yield own
    finally:
        from services.devstack import kafka, postgres

        for layout_stop in (
            lambda: postgres.stop(postgres.PostgresLayout(state=tmp, host="127.0.0.1",
                                                          port=int(own.database_url.rsplit(":", 1)[1].split("/")[0]))),
            lambda: kafka.stop(kafka.KafkaLayout(state=tmp, jars_root=Path("."), version="", host="127.0.0.1",
                                                 port=0, controller_port=0)),
        ):
            layout_stop()


def unique_settings(stack: Stack, **overrides) -> Settings:
    """Settings whose topics, groups and schema belong to one test alone."""
    uid = uuid.uuid4().hex[:10]
    values = dict(
        kafka_bootstrap=stack.kafka_bootstrap,
        database_url=stack.database_url,
        topic_registered=f"t{uid}.voter-registered",
        topic_moved=f"t{uid}.voter-moved",
        topic_meetings=f"t{uid}.meeting-held",
        topic_dead_letter=f"t{uid}.dead-letter",
        topic_recap=f"t{uid}.recap",
        group_prefix=f"t{uid}",
        db_schema=f"t_{uid}",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return unique_settings(stack)


@pytest.fixture
def own_postgres(tmp_path):
    """A PostgreSQL of the test's own on a free port, for tests that stop or kill it."""
    from services.devstack import postgres
    from services.devstack.process import free_port

    layout = postgres.PostgresLayout(state=tmp_path / "pg", host="127.0.0.1", port=free_port())
    postgres.start(layout, log=lambda line: None)
    try:
        yield layout
    finally:
        postgres.stop(layout)
