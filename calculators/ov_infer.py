"""One OpenVINO infer request per thread: `CompiledModel.__call__` shares a single request, so
two calls in flight at once (requests served from a thread pool) fail with "Infer Request is
busy". Each thread gets its own, made on first use."""

from __future__ import annotations

import threading
from typing import Any


class PerThreadInfer:
    def __init__(self, compiled_model: Any) -> None:
        self.compiled_model = compiled_model
        self._local = threading.local()

    def first_output(self, inputs: dict[str, Any]) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled_model.create_infer_request()
        return next(iter(request.infer(inputs).values()))
