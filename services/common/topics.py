"""Topic set-up of CONTRACT section 1 through the Kafka admin API."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.common.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    s = settings
    return [
        TopicSpec(s.topic_registered, s.partitions_registered, {}),
        TopicSpec(s.topic_moved, s.partitions_moved, {}),
        TopicSpec(s.topic_meetings, s.partitions_meetings, {}),
        TopicSpec(s.topic_dead_letter, s.partitions_dead_letter, {}),
        TopicSpec(s.topic_recap, s.partitions_recap, {"cleanup.policy": "compact"}),
    ]


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=15000,
        **settings.kafka_security_kwargs(),
    )


def replication_for(brokers: int) -> tuple[int, dict[str, str]]:
    """Replication factor and topic settings for a cluster of `brokers`: three copies with
    min.insync.replicas=2 from three brokers on (a broker may fail and acks=all writes go on),
    else one copy per broker."""
    factor = min(3, max(1, brokers))
    return factor, ({"min.insync.replicas": "2"} if factor >= 3 else {})


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Creates the missing topics, replicated as the cluster's size allows (`replication_for`);
    returns the names it created."""
    specs = specs if specs is not None else topic_specs(settings)
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in specs if t.name not in existing]
        created = []
        if missing:
            brokers = len((await admin.describe_cluster()).get("brokers", [])) or 1
            factor, replicated = replication_for(brokers)
        for t in missing:
            try:
                await admin.create_topics(
                    [NewTopic(t.name, num_partitions=t.partitions, replication_factor=factor,
                              topic_configs={**replicated, **t.config})]
                )
                created.append(t.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


async def delete_topics(settings: Settings, names: list[str]) -> None:
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topics: list[str]) -> dict[str, list[int]]:
    """The partition ids of each topic; a topic that does not exist has none."""
    admin = admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    found = {d["topic"]: sorted(p["partition"] for p in d.get("partitions", []))
             for d in described if not d.get("error_code")}
    return {t: found.get(t, []) for t in topics}


def main() -> None:
    """`python -m services.common.topics`: create the contract's topics (docker-compose)."""
    import asyncio

    created = asyncio.run(ensure_topics(Settings()))
    print(f"created {', '.join(created)}" if created else "all topics present")


if __name__ == "__main__":
    main()

