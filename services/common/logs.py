"""The one logging set-up of the services, the CLI and the benchmark."""

from __future__ import annotations

import datetime as dt
import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The attributes of every log record; anything else on a record is a field of its message.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def setup_logging(level: int = logging.INFO, fmt: str = "text", service: str = "dphp", **kwargs) -> None:
    """Log lines to stderr (further `logging.basicConfig` options in `kwargs`): with `fmt="text"`
    time, level and logger name before the message; with `fmt="json"` (DPHP_LOG_FORMAT=json) one
    JSON object per line with `time`, `level`, `service`, `logger`, `message` and `fields`."""
    if fmt != "json":
        logging.basicConfig(level=level, format=FORMAT, **kwargs)
        return
    handler = logging.StreamHandler(kwargs.pop("stream", None))
    handler.setFormatter(json_formatter(service))
    logging.basicConfig(level=level, handlers=[handler], **kwargs)


def json_formatter(service: str) -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class DphpJsonFormatter(JsonFormatter):
        def add_fields(self, log_record, record, message_dict) -> None:
            log_record["time"] = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds")
            log_record["level"] = record.levelname
            log_record["service"] = service
            log_record["logger"] = record.name
            log_record["message"] = record.getMessage()
            log_record["fields"] = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
            if record.exc_info:
                log_record["exception"] = self.formatException(record.exc_info)

    return DphpJsonFormatter(json_ensure_ascii=False)


def quiet_kafka_logs() -> None:
    """aiokafka's own log lines ("Unable connect to ...") would add to a command's one-line error."""
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
