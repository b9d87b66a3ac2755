"""The stock calculators. Importing this package registers them in `graphs.default_registry`."""

from calculators import detokenizer_calculator, http_llm, tokenizer_calculator  # noqa: F401
from calculators.audio import calculator as _audio_calculator  # noqa: F401
from calculators.audio import speech_calculator as _speech_calculator  # noqa: F401
from calculators.embeddings import calculator as _embeddings_calculator  # noqa: F401
from calculators.image import calculator as _image_calculator  # noqa: F401
from calculators.llm import calculator as _llm_calculator  # noqa: F401
from calculators.openai import request_calculator, response_calculator  # noqa: F401
from calculators.rerank import calculator as _rerank_calculator  # noqa: F401
