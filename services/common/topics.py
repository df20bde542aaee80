"""Topic set-up of CONTRACT section 1 through the Kafka admin API."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from services.common.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


#: CONTRACT 2: a record value over 1 MiB is invalid; the input topics take a valid one with its key,
#: headers and batch overhead (the broker's default, 1,048,588 bytes, is too tight for that).
MAX_VALUE_BYTES = 1_048_576
INPUT_MAX_MESSAGE_BYTES = MAX_VALUE_BYTES + 64 * 1024
#: The dead-letter topic takes every record the input topics take, with the dead-letter headers
#: added (CONTRACT 2): twice the input limit, so that nothing is ever truncated or refused there.
DEAD_LETTER_MAX_MESSAGE_BYTES = 2 * INPUT_MAX_MESSAGE_BYTES


def topic_specs(settings: Settings) -> list[TopicSpec]:
    s = settings
    inputs = {"max.message.bytes": str(INPUT_MAX_MESSAGE_BYTES)}
    return [
        TopicSpec(s.topic_registered, s.partitions_registered, inputs),
        TopicSpec(s.topic_moved, s.partitions_moved, inputs),
        TopicSpec(s.topic_meetings, s.partitions_meetings, inputs),
        TopicSpec(s.topic_dead_letter, s.partitions_dead_letter,
                  {"max.message.bytes": str(DEAD_LETTER_MAX_MESSAGE_BYTES)}),
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
                response = await admin.create_topics(
                    [NewTopic(t.name, num_partitions=t.partitions, replication_factor=factor,
                              topic_configs={**replicated, **t.config})]
                )
            except TopicAlreadyExistsError:
                continue
            # The admin client reports a topic's error in the response instead of raising. The
            # list above may be stale (another process created the topic a moment ago).
            for _, code, message in (response.topic_errors or []):
                if code == TopicAlreadyExistsError.errno:
                    break
                if code:
                    raise for_code(code)(f"creating topic {t.name}: {message}")
            else:
                created.append(t.name)
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

