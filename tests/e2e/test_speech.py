"""Text to speech through the OpenAI SDK against a real server (OVMS's text-to-speech graph on the
toy SpeechT5 of tests/models/tts.py, whose random weights speak noise of a known length): wav,
pcm, flac, mp3 and opus, voices from the graph's `voices` and from the model folder's `voices/`, the model's default
voice, the same input giving the same samples, the engine's own waveform, /v1, OVMS's graph as
its pull writes it, `--task text2speech`, metrics and trace spans."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from tests.helpers.http import post
from tests.helpers.metrics import scrape, value
from tests.helpers.servables import write_config
from tests.helpers.server import Server, start_server
from tests.helpers.speech import VOICES, embedding, folder_with_voices, read_wav, speech_graph, stock_graph, write_voices
from tests.models.tts import SAMPLE_RATE

TEXT = "hello world"
SAMPLES = 61440  # 12 tokens (with </s>) x 20 / 2 steps x 512 samples: tests/models/tts.py


@pytest.fixture(scope="module")
def server(tiny_tts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("speech")
    graphs = {
        "speech": speech_graph(tiny_tts_dir, {name: f"voices/{name}.bin" for name in VOICES}),
        "speech-ovms": stock_graph().replace('models_path: "./"', f"models_path: {json.dumps(str(tiny_tts_dir))}"),
    }
    config = write_config(root, graphs)
    write_voices(root / "speech" / "voices")
    srv = start_server("--config_path", str(config), "--trace", "header", "--metrics_enable")
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def test_wav_through_the_sdk(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="speech", voice="alloy", input=TEXT)
    assert response.response.headers["content-type"] == "audio/wav"
    samples, rate, subtype = read_wav(response.content)
    assert (rate, subtype, samples.dtype, samples.shape) == (SAMPLE_RATE, "PCM_16", np.int16, (SAMPLES,))
    assert np.abs(samples).max() > 0
    again = client.audio.speech.create(model="speech", voice="alloy", input=TEXT, response_format="wav")
    assert again.content == response.content  # same input, same samples
    other = read_wav(client.audio.speech.create(model="speech", voice="echo", input=TEXT).content)[0]
    assert other.shape == samples.shape and not np.array_equal(other, samples)


def test_pcm_streamed_is_the_wav_samples(client: openai.OpenAI) -> None:
    wav = read_wav(client.audio.speech.create(model="speech", voice="echo", input=TEXT).content)[0]
    with client.audio.speech.with_streaming_response.create(model="speech", voice="echo", input=TEXT, response_format="pcm") as response:
        assert response.headers["content-type"] == "audio/pcm"
        pcm = b"".join(response.iter_bytes())
    assert len(pcm) == 2 * SAMPLES
    assert np.array_equal(np.frombuffer(pcm, dtype="<i2"), wav)


@pytest.mark.parametrize(("response_format", "media_type"), [("flac", "audio/flac"), ("mp3", "audio/mpeg"), ("opus", "audio/ogg")])
def test_compressed_formats(client: openai.OpenAI, response_format: str, media_type: str) -> None:
    import io

    import soundfile

    wav = read_wav(client.audio.speech.create(model="speech", voice="alloy", input=TEXT).content)[0]
    response = client.audio.speech.create(model="speech", voice="alloy", input=TEXT, response_format=response_format)
    assert response.response.headers["content-type"] == media_type
    with soundfile.SoundFile(io.BytesIO(response.content)) as audio:
        assert (audio.samplerate, audio.channels) == (SAMPLE_RATE, 1)
        samples = audio.read(dtype="int16")
    if response_format == "flac":
        assert np.array_equal(samples, wav)  # lossless: the wav's samples
    else:
        assert abs(len(samples) - SAMPLES) < 2048  # the codec's padding at most


def test_the_samples_are_the_engines(client: openai.OpenAI, tiny_tts_dir: Path) -> None:
    import openvino as ov
    import openvino_genai

    served = read_wav(client.audio.speech.create(model="speech", voice="alloy", input=TEXT).content)[0]
    pipeline = openvino_genai.Text2SpeechPipeline(str(tiny_tts_dir), "CPU")
    engine = np.array(pipeline.generate(TEXT, ov.Tensor(embedding(VOICES["alloy"]))).speeches[0].data).reshape(-1)
    expected = np.clip(engine, -1, 1) * 32768  # libsndfile's float -> 16-bit scale
    # not bit-exact: two loads of the toy differ slightly (each is deterministic on its own;
    # measured in process: correlation 0.99997, rms difference 0.7 % of the rms)
    assert served.shape == expected.shape and np.corrcoef(served, expected)[0, 1] > 0.999


def test_default_voice_and_length_follow_the_input(server: Server) -> None:
    status, headers, body = post(server, "/v3/audio/speech", {"model": "speech", "input": TEXT})
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    assert read_wav(body)[0].shape == (SAMPLES,)
    status, _, body = post(server, "/v3/audio/speech", {"model": "speech", "input": "hi", "response_format": "pcm"})
    assert status == 200 and len(body) == 2 * 30 * 512  # "hi" + </s>: 3 tokens, 30 steps


def test_v1_alias_and_ovms_graph_without_voices(server: Server) -> None:
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0) as v1:
        assert read_wav(v1.audio.speech.create(model="speech", voice="echo", input=TEXT).content)[0].shape == (SAMPLES,)
        with pytest.raises(openai.BadRequestError, match="known voices: none"):
            v1.audio.speech.create(model="speech-ovms", voice="alloy", input=TEXT)
    status, _, body = post(server, "/v1/audio/speech", {"model": "speech-ovms", "input": TEXT})
    assert status == 200 and read_wav(body)[0].shape == (SAMPLES,)


def test_engine_time_metric_and_trace_spans(server: Server) -> None:
    status, headers, _ = post(server, "/v3/audio/speech", {"model": "speech", "input": "hi"}, headers={"X-Ovserve-Trace": "1"})
    assert status == 200
    assert value(scrape(server), "ovserve_text_to_speech_seconds_count", model="speech") >= 1
    with urllib.request.urlopen(f"{server.base_url}/debug/traces/{headers['X-Ovserve-Trace-Id']}", timeout=30) as response:
        names = {e.get("name") for e in json.load(response)["traceEvents"]}
    assert {"generate speech", "encode audio"} <= names


def test_task_text2speech_serves_a_folder_with_voices(tiny_tts_dir: Path, tmp_path: Path) -> None:
    """Single-model mode: `--task text2speech` on the folder (OVMS's stock graph), voices from its voices/."""
    folder = folder_with_voices(tiny_tts_dir, tmp_path / "tts")
    srv = start_server("--model_path", str(folder), "--model_name", "t", "--task", "text2speech")
    try:
        with openai.OpenAI(base_url=srv.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
            assert read_wav(sdk.audio.speech.create(model="t", voice="echo", input=TEXT).content)[0].shape == (SAMPLES,)
            with pytest.raises(openai.BadRequestError, match="known voices: alloy, echo"):
                sdk.audio.speech.create(model="t", voice="nova", input=TEXT)
    finally:
        assert srv.stop() == 0, "\n".join(srv.output)
