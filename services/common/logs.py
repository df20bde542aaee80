"""The one logging set-up of the services, the CLI and the benchmark."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO, **kwargs) -> None:
    """Log lines with time, level and logger name to stderr (further `logging.basicConfig` options
    in `kwargs`)."""
    logging.basicConfig(level=level, format=FORMAT, **kwargs)


def quiet_kafka_logs() -> None:
    """aiokafka's own log lines ("Unable connect to ...") would add to a command's one-line error."""
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
