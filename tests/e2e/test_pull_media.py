"""`ovserve --source_model HF_FOLDER --pull` for the media tasks, as OVMS's pull mode: the toys'
Hugging Face folders (a diffusers Stable Diffusion, a Whisper, a SpeechT5 with its HiFi-GAN in
vocoder/) exported with optimum-intel into one repository (the task given or inferred), OVMS's
graphs written beside them, then served from the repository's config.json and called with the
openai SDK. The toys' IR folders are built by the same export, so the pulled IR files must equal
them byte for byte."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

import calculators  # noqa: F401  (declares the media options types)
from graphs.pbtxt import GraphConfig, load_graph, parse_graph
from serving.repository.graph_file import graph_text
from tests.helpers.audio import encode
from tests.helpers.image_gen import decoded
from tests.helpers.server import ROOT, Server, start_server
from tests.helpers.speech import read_wav, write_voices
from tests.models.tts import SAMPLE_RATE
from tests.models.whisper_data import WHISPER_CASES

# name -> (task, whether --task is given: else inferred from the folder)
PULLS = {"sd": ("image_generation", False), "whisper": ("speech2text", False), "speech": ("text2speech", True)}
STOCK = {"image_generation": "image_generation.pbtxt", "speech2text": "speech_to_text.pbtxt", "text2speech": "text_to_speech.pbtxt"}
TTS_SAMPLES = 61440  # "hello world": tests/models/tts.py


def ovserve(*args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "serving.cli", *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def repository(
    tiny_diffusion_hf_dir: Path, tiny_whisper_hf_dir: Path, tiny_tts_hf_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The three pulled at once (each export ~20-45 s), each added to the repository's config.json."""
    root = tmp_path_factory.mktemp("pulled")
    repo, speech = root / "models", root / "speecht5"
    shutil.copytree(tiny_tts_hf_dir, speech, ignore=shutil.ignore_patterns("build_info.json"))
    write_voices(speech / "voices")  # speaker embeddings shipped with the checkpoint: the export keeps them
    sources = {"sd": tiny_diffusion_hf_dir, "whisper": tiny_whisper_hf_dir, "speech": speech}
    runs = {}
    for name, (task, given) in PULLS.items():
        args = ["--source_model", str(sources[name]), "--model_repository_path", str(repo), "--model_name", name]
        args += ["--weight-format", "fp32", "--pull", *(["--task", task] if given else [])]
        if name == "sd":
            args += ["--max_resolution", "64x64"]
        runs[name] = ovserve(*args)
    for name, run in runs.items():
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, f"{name}: {stderr}"
        assert "exporting" in stderr and "writing graph.pbtxt" in stderr, stderr
    for name in PULLS:  # one at a time: config.json is rewritten by each
        added = subprocess.run(
            [sys.executable, "-m", "serving.cli", "--add_to_config", "--config_path", str(repo / "config.json"), "--model_name", name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert added.returncode == 0, added.stderr
    return repo


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[Server]:
    srv = start_server("--config_path", str(repository / "config.json"))
    yield srv
    assert srv.stop() == 0, "\n".join(srv.output)


def _stock(task: str) -> GraphConfig:
    return parse_graph((ROOT / "graphs" / "stock" / STOCK[task]).read_text(encoding="utf-8"))


def test_the_graphs_are_ovms_pull_graphs(repository: Path) -> None:
    assert sorted(p.name for p in repository.iterdir()) == ["config.json", "sd", "speech", "whisper"]  # no partial folder
    for name, (task, _) in PULLS.items():
        graph, stock = load_graph(repository / name / "graph.pbtxt"), _stock(task)
        assert (graph.input_streams, graph.output_streams) == (stock.input_streams, stock.output_streams)
        (node,), (ovms,) = graph.nodes, stock.nodes
        assert (node.name, node.calculator, node.input_side_packets) == (ovms.name, ovms.calculator, ovms.input_side_packets)
        assert (node.input_streams, node.output_streams) == (ovms.input_streams, ovms.output_streams)
        assert (node.options_type, node.back_edges, node.input_stream_handler) == (
            ovms.options_type,
            ovms.back_edges,
            ovms.input_stream_handler,
        )
        expected = {**ovms.options, "max_resolution": "64x64"} if task == "image_generation" else ovms.options
        assert node.options == expected, name
        assert node.options["models_path"] == "./"


def _unnumbered(xml: bytes) -> bytes:
    """An IR's XML without the numbers OpenVINO appends to generated names (`Model545`,
    `Constant_1042483`): they count the models made before in the same process."""
    return re.sub(rb"_\d+", b"_N", re.sub(rb"Model\d+", b"Model", xml))


def test_the_pulled_ir_is_the_toys(repository: Path, tiny_diffusion_dir: Path, tiny_whisper_dir: Path, tiny_tts_dir: Path) -> None:
    """The toy builders call the same export: every weights file is the same bytes and every XML the
    same but for generated names' numbers; except the stateful decoders (Whisper's, SpeechT5's), whose
    layers optimum/OpenVINO serialize in a different order on each export of the same folder
    (measured): the same weights size and layer count there (their answers: below)."""
    for name, toy in (("sd", tiny_diffusion_dir), ("whisper", tiny_whisper_dir), ("speech", tiny_tts_dir)):
        files = sorted(p.relative_to(toy) for p in toy.rglob("openvino_*") if p.is_file())
        assert files, toy
        for file in files:
            pulled, built = (repository / name / file).read_bytes(), (toy / file).read_bytes()
            if file.name.startswith("openvino_decoder_model.") and name in ("whisper", "speech"):
                same = pulled.count(b"<layer ") == built.count(b"<layer ") if file.suffix == ".xml" else len(pulled) == len(built)
                assert same, f"{name}: {file}"
            elif file.suffix == ".xml":
                assert _unnumbered(pulled) == _unnumbered(built), f"{name}: {file}"
            else:
                assert pulled == built, f"{name}: {file}"


def test_images_generate_through_the_sdk(client: openai.OpenAI) -> None:
    result = client.images.generate(model="sd", prompt="a red cat", size="32x64", extra_body={"num_inference_steps": 2})
    assert result.data is not None and len(result.data) == 1
    assert decoded(result.data[0].b64_json)[1] == (32, 64)
    with pytest.raises(openai.BadRequestError, match="64x64"):  # the pulled graph's max_resolution
        client.images.generate(model="sd", prompt="a red cat", size="128x128", extra_body={"num_inference_steps": 2})


def test_transcriptions_through_the_sdk(client: openai.OpenAI) -> None:
    for case in WHISPER_CASES:
        result = client.audio.transcriptions.create(model="whisper", file=("speech.wav", encode(case)))
        assert result.text == case.text.strip(), case


def test_speech_through_the_sdk(client: openai.OpenAI) -> None:
    response = client.audio.speech.create(model="speech", voice="alloy", input="hello world")
    assert response.response.headers["content-type"] == "audio/wav"
    samples, rate, subtype = read_wav(response.content)
    assert (rate, subtype, samples.shape) == (SAMPLE_RATE, "PCM_16", (TTS_SAMPLES,))
    assert np.abs(samples).max() > 0
    other = read_wav(client.audio.speech.create(model="speech", voice="echo", input="hello world").content)[0]
    assert other.shape == samples.shape and not np.array_equal(other, samples)  # the source's voices/ came along


def test_an_openvino_folder_is_taken_as_is(tiny_tts_dir: Path, tmp_path: Path) -> None:
    """An exported SpeechT5 folder: no export, the task inferred from its config.json, OVMS's graph."""
    run = ovserve("--source_model", str(tiny_tts_dir), "--model_repository_path", str(tmp_path), "--model_name", "t", "--pull")
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert "taking it as is" in stderr and "exporting" not in stderr
    assert (tmp_path / "t" / "graph.pbtxt").read_text(encoding="utf-8") == graph_text(task="text2speech")
