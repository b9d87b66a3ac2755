"""Log line formats shared by the server and its engine worker processes.

`text` is for people; `json` writes one JSON object per line (timestamp, level, logger,
message, process, and the traceback when there is one) for log collectors. The server sets
OVSERVE_LOG_FORMAT so that the spawned engine workers log in the same format.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
ENV_VAR = "OVSERVE_LOG_FORMAT"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(kind: str | None = None) -> logging.Formatter:
    """The formatter for `kind` (text or json); None: the one the environment names."""
    kind = kind or os.environ.get(ENV_VAR, "text")
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, kind: str = "text", handlers: list[logging.Handler] | None = None) -> None:
    """Set up the root logger (and the environment the engine workers inherit)."""
    os.environ[ENV_VAR] = kind
    handlers = handlers or [logging.StreamHandler()]
    for handler in handlers:
        handler.setFormatter(formatter(kind))
    logging.basicConfig(level=level, handlers=handlers, force=True)
