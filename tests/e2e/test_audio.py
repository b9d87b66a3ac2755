"""Speech-to-text through the OpenAI SDK against a real server (OVMS's speech-to-text graphs on the
toy Whisper of tests/models/whisper.py, which transcribes WHISPER_CASES' pure-tone "words"
exactly): every response format, streaming, translations, the same audio as wav, flac, ogg and
mp3 (encoded here with soundfile, at other rates, in stereo), and OVMS's plain graph unchanged."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.helpers.audio import CONTAINERS, encode, post_form, speech_graph
from tests.helpers.metrics import scrape, value
from tests.helpers.servables import write_config
from tests.helpers.server import Server, start_server
from tests.models.whisper_data import WHISPER_CASES

CASE = WHISPER_CASES[0]  # "one two three"
TEXT = CASE.text.strip()
WAV = ("speech.wav", encode(CASE))


@pytest.fixture(scope="module")
def server(tiny_whisper_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    graphs = {"whisper": speech_graph(tiny_whisper_dir), "whisper-ovms": speech_graph(tiny_whisper_dir, plain=True)}
    srv = start_server(
        "--config_path", str(write_config(tmp_path_factory.mktemp("audio"), graphs)), "--trace", "header", "--metrics_enable"
    )
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_every_container_transcribes_exactly(client: openai.OpenAI, container: str) -> None:
    for case in WHISPER_CASES:
        upload = (f"speech.{container}", encode(case, container, stereo=container != "wav"))
        result = client.audio.transcriptions.create(model="whisper", file=upload)
        assert result.text == case.text.strip(), (container, case)


def test_json(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(model="whisper", file=WAV, response_format="json")
    assert result.text == TEXT
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == pytest.approx(1.2)  # type: ignore[union-attr]


def test_text_srt_vtt(client: openai.OpenAI) -> None:
    assert client.audio.transcriptions.create(model="whisper", file=WAV, response_format="text") == TEXT + "\n"
    srt = client.audio.transcriptions.create(model="whisper", file=WAV, response_format="srt")
    lines = str(srt).split("\n")
    assert lines[0] == "1" and lines[1].startswith("00:00:00,000 --> 00:00:01,") and lines[2] == TEXT
    vtt = str(client.audio.transcriptions.create(model="whisper", file=WAV, response_format="vtt")).split("\n")
    assert vtt[:2] == ["WEBVTT", ""] and vtt[2].startswith("00:00:00.000 --> 00:00:01.") and vtt[3] == TEXT


def test_verbose_json_with_segments_and_words(client: openai.OpenAI) -> None:
    result = client.audio.transcriptions.create(
        model="whisper", file=WAV, response_format="verbose_json", timestamp_granularities=["segment", "word"]
    )
    assert (result.text, result.language, result.duration) == (TEXT, "en", pytest.approx(1.2))
    assert result.segments is not None and [s.text.strip() for s in result.segments] == [TEXT]
    assert result.segments[0].start == 0.0 and 0 < result.segments[0].end <= 1.2
    assert result.words is not None and [w.word for w in result.words] == TEXT.split()
    starts = [w.start for w in result.words]  # the toy's alignment heads are untrained: ordered, not accurate
    assert starts == sorted(starts) and all(w.start <= w.end for w in result.words)


def test_stream(client: openai.OpenAI) -> None:
    events = list(client.audio.transcriptions.create(model="whisper", file=WAV, stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) == 3 and "".join(deltas) == TEXT
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == TEXT
    assert done.usage is not None and done.usage.output_tokens > 0  # type: ignore[union-attr]


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations deprecated
def test_language_and_translation(client: openai.OpenAI) -> None:
    assert client.audio.transcriptions.create(model="whisper", file=WAV, language="en").text == TEXT
    translated = client.audio.translations.create(model="whisper", file=WAV)
    assert translated.text == CASE.translation.strip()
    verbose = client.audio.translations.create(model="whisper", file=("s.mp3", encode(CASE, "mp3")), response_format="verbose_json")
    assert verbose.text == CASE.translation.strip() and verbose.segments


def test_v1_alias_and_ovms_plain_graph(server: Server) -> None:
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0) as v1:
        assert v1.audio.transcriptions.create(model="whisper-ovms", file=WAV).text == TEXT
        with pytest.raises(openai.BadRequestError, match="enable_word_timestamps"):
            v1.audio.transcriptions.create(model="whisper-ovms", file=WAV, response_format="verbose_json", timestamp_granularities=["word"])


def test_engine_time_metric_and_trace_spans(server: Server) -> None:
    status, headers, _ = post_form(server, "/v3/audio/transcriptions", {"model": "whisper"}, WAV, headers={"X-Ovserve-Trace": "1"})
    assert status == 200
    assert value(scrape(server), "ovserve_speech_to_text_seconds_count", model="whisper") >= 1
    with urllib.request.urlopen(f"{server.base_url}/debug/traces/{headers['X-Ovserve-Trace-Id']}", timeout=30) as response:
        names = {e.get("name") for e in json.load(response)["traceEvents"]}
    assert {"decode audio", "generate"} <= names


def test_task_speech2text_serves_a_whisper_folder(tiny_whisper_dir: Path) -> None:
    """Single-model mode: `--task speech2text` on the folder (OVMS's stock graph, no graph.pbtxt)."""
    srv = start_server("--model_path", str(tiny_whisper_dir), "--model_name", "w", "--task", "speech2text")
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
            case = WHISPER_CASES[1]
            assert sdk.audio.transcriptions.create(model="w", file=("s.ogg", encode(case, "ogg"))).text == case.text.strip()
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)
