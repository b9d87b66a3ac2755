"""One OpenVINO infer request per thread: `CompiledModel.__call__` shares a single request, so
two calls in flight at once (requests served from a thread pool) fail with "Infer Request is
busy". Each thread gets its own, made on first use."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from graphs.errors import UnavailableError


class PerThreadInfer:
    def __init__(self, compiled_model: Any) -> None:
        self.compiled_model = compiled_model
        self._local = threading.local()

    def first_output(self, inputs: dict[str, Any]) -> Any:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled_model.create_infer_request()
        return next(iter(request.infer(inputs).values()))


def plugin_properties(plugin_config: str) -> dict[str, Any]:
    """A node's `plugin_config` JSON text as OpenVINO properties (a clear load error if bad)."""
    try:
        value = json.loads(plugin_config) if plugin_config.strip() else {}
    except json.JSONDecodeError as exc:
        raise UnavailableError(f"plugin_config is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UnavailableError("plugin_config must be a JSON object")
    return value


def compile_ir(model_dir: Path, device: str, properties: dict[str, Any]) -> tuple[PerThreadInfer, frozenset[str]]:
    """Compile `model_dir/openvino_model.xml`: the per-thread runner and the model's input names."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(model_dir / "openvino_model.xml")
    names = frozenset(i.get_any_name() for i in model.inputs)
    return PerThreadInfer(core.compile_model(model, device, properties)), names
