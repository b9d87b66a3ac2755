"""KServe v2 client helpers (tritonclient): text inputs, outputs, streaming."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp


def text_input(module: Any, text: str | bytes, binary: bool = True) -> Any:
    tensor = module.InferInput("text_input", [1], "BYTES")
    data = np.array([text.encode() if isinstance(text, str) else text], dtype=object)
    if module is thttp:
        tensor.set_data_from_numpy(data, binary_data=binary)
    else:
        tensor.set_data_from_numpy(data)
    return tensor


def texts(result: Any, name: str = "text_output") -> list[str]:
    return [item.decode() for item in result.as_numpy(name).reshape(-1)]


def stream_all(
    client: tgrpc.InferenceServerClient, requests: dict[str, str], headers: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, list[Any]]:
    """Send every request on one stream (opened with `headers` as its metadata); each id's
    results up to its final response."""
    results: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)), headers=headers)
    try:
        for request_id, prompt in requests.items():
            client.async_stream_infer("tiny", [text_input(tgrpc, prompt)], request_id=request_id, **kwargs)
        collected: dict[str, list[Any]] = {request_id: [] for request_id in requests}
        open_ids = set(requests)
        while open_ids:
            result, error = results.get(timeout=120)
            assert error is None, error
            response = result.get_response()
            collected[response.id].append(result)
            if response.parameters["triton_final_response"].bool_param:
                open_ids.remove(response.id)
        return collected
    finally:
        client.stop_stream()
