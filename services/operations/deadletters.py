"""Dead letters for operators: list them, select some and re-publish them to their topics.

Thin functions over `services/common/deadletter.py` (reading the topic, the retry rules)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.common.deadletter import DeadLetter, check_retryable, read_dead_letters, republish
from services.common.errors import OperatorError
from services.common.settings import Settings


def selector(error_class: str | None, topic: str | None,
             ids: set[str] | None = None) -> Callable[[DeadLetter], bool]:
    """Keeps the dead letters of that error class, from that original topic, with those ids
    (`PARTITION:OFFSET`); None keeps any."""
    def keep(d: DeadLetter) -> bool:
        return ((error_class is None or d.error_class == error_class)
                and (topic is None or d.original_topic == topic)
                and (ids is None or d.id in ids))
    return keep


async def list_dead_letters(settings: Settings, error_class: str | None = None,
                            topic: str | None = None) -> list[DeadLetter]:
    """Every dead letter (of that error class, from that topic) in the dead-letter topic."""
    return await read_dead_letters(settings, selector(error_class, topic))


async def select_for_retry(settings: Settings, ids: Iterable[str] | None = None, error_class: str | None = None,
                           topic: str | None = None) -> list[DeadLetter]:
    """The dead letters with these ids (or all, narrowed by error class and topic) that may be
    re-published; `OperatorError` if an id names none of them, or if any of them names a topic
    other than the input topics (then nothing of the selection may be sent)."""
    wanted = set(ids) if ids else None
    letters = await read_dead_letters(settings, selector(error_class, topic, wanted))
    if wanted:
        unknown = sorted(wanted - {d.id for d in letters})
        if unknown:
            raise OperatorError(f"no such dead letter(s) in {settings.topic_dead_letter} with the given filters: "
                                f"{', '.join(unknown)}")
    check_retryable(settings, letters)  # only to the input topics; all of the selection or nothing
    return letters


async def retry(settings: Settings, letters: Iterable[DeadLetter]) -> int:
    """Re-publishes the dead letters, unchanged, to their original topics; returns how many."""
    return await republish(settings, letters)
