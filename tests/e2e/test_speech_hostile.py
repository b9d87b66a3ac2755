"""Hostile text-to-speech requests against a real server: each is refused in OpenAI's error shape
with an honest status naming the field, sent while a chat stream on the tiny model is in flight
(its engine worker paused meanwhile), which then finishes with its exact answer; the toy SpeechT5
still speaks afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.bystander import chat_stream_paused
from tests.helpers.http import assert_openai_error, post, user
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server
from tests.helpers.speech import VOICES, read_wav, speech_graph, write_voices

PATH = "/v3/audio/speech"
MAX_CHARS = 200  # the toy's positions end at 102 input tokens: longer input fails in the engine
BODY = {"model": "speech", "voice": "alloy", "input": "hello world"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_tts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("speech-hostile")
    graphs = {"tiny": llm_graph(tiny_model_dir), "speech": speech_graph(tiny_tts_dir, {name: f"voices/{name}.bin" for name in VOICES})}
    config = write_config(root, graphs)
    write_voices(root / "speech" / "voices")
    srv = start_server("--config_path", str(config), "--max_speech_input_chars", str(MAX_CHARS))
    yield srv
    assert srv.process.poll() is None, "the server exited during the module's tests:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)


# (what, body, status, param, words in the message)
HOSTILE: list[tuple[str, dict[str, Any], int, str | None, str]] = [
    ("an unknown model", {**BODY, "model": "nobody"}, 404, "model", "nobody"),
    ("no model", {"input": "hi"}, 400, "model", "model"),
    ("an unknown voice", {**BODY, "voice": "nova"}, 400, "voice", "known voices: alloy, echo"),
    ("a voice that is no string", {**BODY, "voice": ["alloy"]}, 400, "voice", "a string"),
    ("no input", {"model": "speech", "voice": "alloy"}, 400, "input", "missing required field"),
    ("an empty input", {**BODY, "input": ""}, 400, "input", "empty"),
    ("an input of spaces", {**BODY, "input": "   "}, 400, "input", "empty"),
    ("an input that is no string", {**BODY, "input": {"text": "hi"}}, 400, "input", "a string"),
    ("an input over the limit", {**BODY, "input": "a" * (MAX_CHARS + 1)}, 400, "input", "--max_speech_input_chars"),
    ("an input longer than the model takes", {**BODY, "input": "ab " * 60}, 400, "input", "could not speak"),
    ("aac", {**BODY, "response_format": "aac"}, 400, "response_format", "supported: wav, pcm, flac, mp3, opus"),
    ("a format that is no audio", {**BODY, "response_format": "json"}, 400, "response_format", "supported: wav, pcm, flac"),
    ("a speed SpeechT5 cannot make", {**BODY, "speed": 1.5}, 400, "speed", "1.0"),
    ("a speed out of OpenAI's range", {**BODY, "speed": 10}, 400, "speed", "speed_max (4)"),
    ("a speed that is no number", {**BODY, "speed": "fast"}, 400, "speed", "a number"),
    ("instructions", {**BODY, "instructions": "Speak like a pirate."}, 400, "instructions", "not supported"),
    ("sse streaming", {**BODY, "stream_format": "sse"}, 400, "stream_format", "not supported"),
    ("speech from the text model", {**BODY, "model": "tiny"}, 400, "model", "does not serve audio/speech"),
]


def hostile_while_streaming(server: Server) -> list[tuple[int, bytes]]:
    answers = []
    with chat_stream_paused(server):
        for _, body, _, _, _ in HOSTILE:
            status, _, reply = post(server, PATH, body)
            answers.append((status, reply))
        status, _, reply = post(server, PATH, b"input=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
        answers.append((status, reply))
        status, _, reply = post(server, PATH, b'{"model": "speech", "input": ')
        answers.append((status, reply))
        status, _, reply = post(server, "/v3/chat/completions", {"model": "speech", "messages": user("hi")})
        answers.append((status, reply))
    return answers


def test_hostile_speech_is_refused_naming_the_field_while_a_chat_stream_finishes(server: Server) -> None:
    answers = hostile_while_streaming(server)
    for (what, _, status, param, words), (got, reply) in zip(HOSTILE, answers, strict=False):
        error = assert_openai_error(got, reply, status, param)
        assert words in error["message"], (what, error)
    form, truncated, chat = answers[len(HOSTILE) :]
    assert "application/json" in assert_openai_error(*form, 415)["message"]
    assert_openai_error(*truncated, 400)
    assert "does not serve chat/completions" in assert_openai_error(*chat, 400, "model")["message"]


def test_speech_still_speaks(server: Server) -> None:
    """The too-long input broke genai's pipeline (every later generate failed): the server loaded a fresh one."""
    assert any("generate failed" in line and "loading the pipeline afresh" in line for line in server.output)
    status, headers, reply = post(server, PATH, BODY)
    assert status == 200 and headers["Content-Type"] == "audio/wav" and read_wav(reply)[0].shape == (61440,)
