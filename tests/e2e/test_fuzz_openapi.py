"""Schemathesis (with hypothesis) against a real server, driven by our own GET /openapi.json:
valid and invalid requests on every operation; never a 5xx, every 4xx a well-formed error in
the route's shape, documented statuses and content types, and the server still up afterwards.

Budget: EXAMPLES per operation, derandomized (the same cases every run), about a minute on 2
cores. Generation is kept short (max_tokens at most 4) or the engine would spend the time.
The image and audio routes are fuzzed on a second server that serves the toy Stable Diffusion,
Whisper and SpeechT5 (their graphs cap the size and steps, the flags the speech input), with
MEDIA_EXAMPLES each; their valid cases carry a real PNG or WAV so they reach the engines.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.helpers.audio import encode
from tests.helpers.audio import speech_graph as whisper_graph
from tests.helpers.image_gen import image_graph, openai_mask, png
from tests.helpers.servables import write_config
from tests.helpers.server import Server, start_server
from tests.helpers.speech import VOICES, write_voices
from tests.helpers.speech import speech_graph as tts_graph
from tests.models import TINY_PROMPTS
from tests.models.whisper_data import WHISPER_CASES

EXAMPLES = 50
# The other APIs' routes (serving/openapi_frontends.py): fewer cases each, so together they add
# about as much as the OpenAI routes (their valid bodies run the graphs: see served_model).
OTHER_API_EXAMPLES = 8
MAX_TOKENS = 4
# /v1 routes are aliases of /v3 (same handlers), as /v3/v1|v2/rerank are of Cohere's: fuzzing them
# too doubles the time for nothing.
ALIASES = r"^(/v1/(chat/completions|completions|embeddings|tokenize|detokenize|models|responses|images/|audio/)|/v3/v[12]/rerank)"
MEDIA = r"^/v3/(images|audio)/"
MEDIA_EXAMPLES = 10
MEDIA_ROUTES = ("images/generations", "images/edits", "audio/transcriptions", "audio/translations", "audio/speech")
MEDIA_MODEL = {"images": "sd", "audio/transcriptions": "whisper", "audio/translations": "whisper", "audio/speech": "speech"}


@pytest.fixture(scope="module")
def server(three_servable_server: Server) -> Server:
    """tiny, minilm and reranker (tests/e2e/conftest.py), still running after the fuzz run."""
    return three_servable_server


@pytest.fixture(scope="module")
def media_server(
    tiny_whisper_dir: Path, tiny_diffusion_dir: Path, tiny_tts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The toy image, speech-to-text and text-to-speech servables, small limits so cases stay quick."""
    root = tmp_path_factory.mktemp("fuzz-media")
    graphs = {
        "sd": image_graph(tiny_diffusion_dir, max_resolution="64x64", max_num_images_per_prompt=2, max_num_inference_steps=2),
        "whisper": whisper_graph(tiny_whisper_dir),
        "speech": tts_graph(tiny_tts_dir, {name: f"voices/{name}.bin" for name in VOICES}),
    }
    config = write_config(root, graphs)
    write_voices(root / "speech" / "voices")
    srv = start_server("--config_path", str(config), "--max_speech_input_chars", "32", "--max_audio_seconds", "2")
    yield srv
    assert srv.process.poll() is None, "the server exited during the fuzzing:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)


def load_schema(server: Server) -> Any:
    with urllib.request.urlopen(server.base_url + "/openapi.json", timeout=30) as response:
        document = json.load(response)
    schema = schemathesis.openapi.from_dict(document).exclude(path_regex=ALIASES)
    schema.config.update(base_url=server.base_url, request_timeout=60)
    schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES)
    return schema


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    return load_schema(server).exclude(path_regex=MEDIA)


@pytest.fixture(scope="module")
def media_schema(media_server: Server) -> Any:
    return load_schema(media_server).include(path_regex=MEDIA)


LLAMA_CPP = ("/health", "/props", "/tokenize", "/detokenize")


def api_of(path: str) -> str:
    """The API whose error shape a path's 4xx takes."""
    if re.fullmatch(r"(/v3)?/v[12]/rerank", path):
        return "cohere"
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/api/"):
        return "ollama"
    if path in LLAMA_CPP:
        return "llama.cpp"
    return "kserve" if path.startswith("/v2") else "openai"


def well_formed_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is a JSON error in its API's shape: OpenAI's {"error": {message, type, param,
    code}}, KServe's {"error": "..."} on /v2 (whose 401/405 come from the middlewares in OpenAI's
    shape), Anthropic's {"type": "error", "error": {type, message}}, Ollama's {"error": "..."},
    Cohere's {"message": "..."}, llama.cpp's {"error": {code, message, type}}."""
    if not 400 <= response.status_code < 500:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    api, error = api_of(case.path), body.get("error")
    if api == "anthropic":
        assert set(body) == {"type", "error"} and body["type"] == "error", body
        assert isinstance(error, dict) and set(error) == {"type", "message"} and error["message"], body
    elif api == "cohere":
        assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"], body
    elif api == "llama.cpp":
        assert set(body) == {"error"} and isinstance(error, dict) and set(error) == {"code", "message", "type"}, body
        assert error["code"] == response.status_code and error["message"], body
    elif isinstance(error, str):  # Ollama's, and KServe's own
        assert api in ("ollama", "kserve") and set(body) == {"error"} and error, body
    else:
        assert api != "ollama" and set(body) == {"error"} and isinstance(error, dict), body
        assert set(error) == {"message", "type", "param", "code"}, body
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str), body
        assert error["param"] is None or isinstance(error["param"], str), body
    return None


def short_generation(case: Any) -> None:
    """Keep generation short: the fuzzer would otherwise ask for hundreds of tokens."""
    if not isinstance(case.body, dict):
        return
    limits: tuple[str, ...]
    if case.path.endswith(("/chat/completions", "/completions")):
        limits, default = ("max_tokens", "max_completion_tokens"), "max_tokens"
    elif case.path.endswith("/responses"):
        limits, default = ("max_output_tokens",), "max_output_tokens"
    elif case.path == "/v1/messages":
        limits, default = ("max_tokens",), "max_tokens"
    elif case.path in ("/api/chat", "/api/generate"):
        if not isinstance(case.body.get("options"), dict):
            case.body["options"] = {}
        num_predict = case.body["options"].get("num_predict")
        if not isinstance(num_predict, int) or isinstance(num_predict, bool) or not 0 <= num_predict <= MAX_TOKENS:
            case.body["options"]["num_predict"] = MAX_TOKENS  # a negative one means the server's bound
        return
    else:
        return
    for key in limits:
        value = case.body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > MAX_TOKENS:  # 1e7 passes as an int
            case.body[key] = MAX_TOKENS
    if not any(key in case.body for key in limits):
        case.body[default] = MAX_TOKENS


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same cases every run
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure's first example is reported as is
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


# The servable each of the other APIs' routes serves (tests/helpers/servables.py): their valid
# bodies name it, so they reach the graphs rather than stop at an unknown model's 404.
SERVED = {"/api/embed": "minilm", "/v1/rerank": "rerank", "/v2/rerank": "rerank"}


def served_model(case: Any) -> None:
    if isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = SERVED.get(case.path, "tiny")
    if case.path == "/props" and case.query and "model" in case.query:
        case.query["model"] = "tiny"


WAV = encode(WHISPER_CASES[0])
PNG, MASK = png(64, 64), openai_mask(64, 64)


def media_inputs(case: Any) -> None:
    """A valid case names the servable and sends real media (a PNG, a WAV, a known voice), so it
    runs the engine with the fuzzed fields; invalid cases keep what the fuzzer made."""
    if not isinstance(case.body, dict):
        return
    route = case.path.removeprefix("/v3/")
    if "model" in case.body:
        case.body["model"] = MEDIA_MODEL["images" if route.startswith("images/") else route]
    if "file" in case.body:
        case.body["file"] = WAV
    if "image" in case.body:
        case.body["image"] = PNG
    if "mask" in case.body:
        case.body["mask"] = MASK
    if "voice" in case.body:
        case.body["voice"] = "alloy"


def fuzz(operation: Any, mode: GenerationMode) -> None:
    media = re.match(MEDIA, operation.path) is not None
    other_api = api_of(operation.path) not in ("openai", "kserve") or operation.path.startswith("/v3/responses")
    examples = MEDIA_EXAMPLES if media else OTHER_API_EXAMPLES if other_api else EXAMPLES

    @settings(SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if media and mode is GenerationMode.POSITIVE:
            media_inputs(case)
        elif other_api and mode is GenerationMode.POSITIVE:
            served_model(case)
        short_generation(case)
        response = case.call(timeout=60)
        case.validate_response(response, checks=CHECKS, additional_checks=[well_formed_error])

    run()


def fuzz_all(operations: list[Any]) -> None:
    failures: list[str] = []
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz(operation, mode)
            except Unsatisfiable:  # nothing to make invalid (a GET without parameters, a free path segment)
                assert mode is GenerationMode.NEGATIVE, operation.path
            except Exception as exc:  # collect all, report together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def test_api_never_fails_on_any_input(api_schema: Any) -> None:
    """Every documented operation, with valid (positive) and invalid (negative) requests."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 10
    fuzz_all(operations)


def test_image_and_audio_routes_never_fail_on_any_input(media_schema: Any, media_server: Server) -> None:
    operations = [result.ok() for result in media_schema.get_all_operations()]
    assert sorted(o.path for o in operations) == [f"/v3/{route}" for route in sorted((*MEDIA_ROUTES, "images/files/{image_id}.png"))]
    fuzz_all(operations)
    assert media_server.process.poll() is None
    speech = {"model": "speech", "input": "hello", "voice": "alloy"}
    request = urllib.request.Request(
        media_server.base_url + "/v3/audio/speech", data=json.dumps(speech).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"] == "audio/wav" and response.read(4) == b"RIFF"


def test_server_still_answers_after_the_fuzzing(server: Server) -> None:
    assert server.process.poll() is None
    with urllib.request.urlopen(server.base_url + "/v2/health/ready", timeout=30) as response:
        assert response.status == 200
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Say this is a test"}]}).encode()
    request = urllib.request.Request(server.base_url + "/v3/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.load(response)["choices"][0]["message"]["content"] == TINY_PROMPTS["Say this is a test"]
