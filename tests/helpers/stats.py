"""A real server's /debug/stats: the LLM engine and worker figures."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers.http import get
from tests.helpers.server import Server


def engine(server: Server, servable: str) -> dict[str, Any]:
    status, body = get(server, "/debug/stats")
    assert status == 200
    return json.loads(body)["servables"][servable]["resources"]["llm"]  # type: ignore[no-any-return]


def worker_stats(server: Server) -> dict[str, Any]:
    status, body = get(server, "/debug/stats")
    assert status == 200
    return json.loads(body)["servables"]["tiny"]["resources"]["llm"]  # type: ignore[no-any-return]
