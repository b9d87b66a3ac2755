"""Hostile audio requests against a real server: each is refused in OpenAI's error shape with an
honest status naming the field, sent while a chat stream on the tiny model is in flight (its
engine worker paused meanwhile), which then finishes with its exact answer; the toy Whisper
still transcribes afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.audio import encode, post_form, speech_graph
from tests.helpers.bystander import chat_stream_paused
from tests.helpers.http import assert_openai_error, post, user
from tests.helpers.servables import llm_graph, write_config
from tests.helpers.server import Server, start_server
from tests.models.whisper_data import WHISPER_CASES

PATH = "/v3/audio/transcriptions"
MAX_BYTES = 100_000
MAX_SECONDS = 1.5  # WHISPER_CASES[0] lasts 1.2 s, [3] 1.6 s
WAV = encode(WHISPER_CASES[0])
FIELDS = {"model": "whisper"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tiny_whisper_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    graphs = {"tiny": llm_graph(tiny_model_dir), "whisper": speech_graph(tiny_whisper_dir)}
    config = write_config(tmp_path_factory.mktemp("audio-hostile"), graphs)
    srv = start_server("--config_path", str(config), "--max_audio_bytes", str(MAX_BYTES), "--max_audio_seconds", str(MAX_SECONDS))
    yield srv
    assert srv.process.poll() is None, "the server exited during the module's tests:\n" + "\n".join(srv.output)
    assert srv.stop() == 0, "\n".join(srv.output)


# (what, fields, file, status, param, words in the message)
HOSTILE: list[tuple[str, dict[str, str], bytes | None, int, str | None, str]] = [
    ("an unknown model", {"model": "nobody"}, WAV, 404, "model", "nobody"),
    ("no model", {}, WAV, 400, "model", "model"),
    ("no file", FIELDS, None, 400, "file", "missing required field"),
    ("an empty file", FIELDS, b"", 400, "file", "empty"),
    ("bytes that are no audio", FIELDS, b"<html>no audio here</html>" * 20, 400, "file", "could not decode"),
    ("a truncated wav header", FIELDS, WAV[:30], 400, "file", "could not decode"),
    ("audio too long", FIELDS, encode(WHISPER_CASES[3]), 400, "file", f"at most {MAX_SECONDS:g} s"),
    ("a file too large", FIELDS, WAV * 3, 413, "file", "--max_audio_bytes"),
    ("an unknown response_format", {**FIELDS, "response_format": "mp3"}, WAV, 400, "response_format", "invalid value"),
    ("a language the model lacks", {**FIELDS, "language": "de"}, WAV, 400, "language", "'de'"),
    ("a language that is no code", {**FIELDS, "language": "english"}, WAV, 400, "language", "invalid value"),
    ("a temperature out of range", {**FIELDS, "temperature": "3"}, WAV, 400, "temperature", "invalid value"),
    ("a stream of srt", {**FIELDS, "stream": "true", "response_format": "srt"}, WAV, 400, "response_format", "cannot be streamed"),
    ("words without verbose_json", {**FIELDS, "timestamp_granularities[]": "word"}, WAV, 400, "timestamp_granularities[]", "verbose_json"),
    ("audio to the text model", {"model": "tiny"}, WAV, 400, "model", "does not serve audio/transcriptions"),
]


def hostile_while_streaming(server: Server) -> list[tuple[int, bytes]]:
    answers = []
    with chat_stream_paused(server):
        for _, fields, file, _, _, _ in HOSTILE:
            status, _, reply = post_form(server, PATH, fields, None if file is None else ("speech.wav", file))
            answers.append((status, reply))
        status, _, reply = post(server, PATH, {"model": "whisper", "file": "speech.wav"})  # JSON, not a form
        answers.append((status, reply))
        status, _, reply = post_form(server, PATH, FIELDS, ("speech.wav", WAV), "multipart/form-data; boundary=elsewhere")
        answers.append((status, reply))
        status, _, reply = post(server, "/v3/chat/completions", {"model": "whisper", "messages": user("hi")})
        answers.append((status, reply))
    return answers


def test_hostile_audio_is_refused_naming_the_field_while_a_chat_stream_finishes(server: Server) -> None:
    answers = hostile_while_streaming(server)
    for (what, _, _, status, param, words), (got, reply) in zip(HOSTILE, answers, strict=False):
        error = assert_openai_error(got, reply, status, param)
        assert words in error["message"], (what, error)
    json_body, bad_boundary, chat = answers[len(HOSTILE) :]
    assert "multipart/form-data" in assert_openai_error(*json_body, 415)["message"]
    assert assert_openai_error(*bad_boundary, 400)["message"]
    assert "not chat/completions" in assert_openai_error(*chat, 400, "model")["message"]


def test_whisper_still_transcribes(server: Server) -> None:
    status, _, reply = post_form(server, PATH, FIELDS, ("speech.wav", WAV))
    assert status == 200 and json.loads(reply)["text"] == WHISPER_CASES[0].text.strip()
