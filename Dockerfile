# ovserve image: the server (OpenAI /v3, KServe v2 REST on 8000, KServe v2 gRPC on 9000, /metrics).
#
#   docker build -t REGISTRY/ovserve:0.1.0 .                            # serving (and pulling OpenVINO IR)
#   docker build --build-arg WITH_EXPORT=true -t REGISTRY/ovserve:0.1.0-export .   # + torch CPU for --pull export
#
# Every package comes from requirements.lock, installed with --no-deps (exact versions, never
# torchvision). torch is left out unless WITH_EXPORT=true: serving and pulling a model that is
# already OpenVINO IR do not import it; exporting a PyTorch model with `ovserve --pull` does.
FROM python:3.11-slim

ARG WITH_EXPORT=false
# torch's CPU-only wheels (the PyPI torch wheel for Linux pulls in CUDA libraries).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OVMS_MODEL_REPOSITORY_PATH=/models

# A fixed numeric uid/gid (1000), so Kubernetes' runAsNonRoot can check it; the manifests run as 1000 too.
RUN groupadd --gid 1000 ovserve \
    && useradd --uid 1000 --gid 1000 --home-dir /home/ovserve --create-home --shell /usr/sbin/nologin ovserve \
    && mkdir -p /models \
    && chown ovserve:ovserve /models

WORKDIR /opt/ovserve

COPY requirements.lock ./
RUN grep -v -E '^torch==' requirements.lock > /tmp/requirements-no-torch.txt \
    && pip install --no-deps -r /tmp/requirements-no-torch.txt \
    && if [ "$WITH_EXPORT" = "true" ]; then \
         pip install --no-deps --index-url "$TORCH_INDEX_URL" "$(grep -E '^torch==' requirements.lock)"; \
       fi \
    && rm /tmp/requirements-no-torch.txt

COPY pyproject.toml README.md ./
COPY graphs ./graphs
COPY calculators ./calculators
COPY serving ./serving
# setuptools comes from requirements.lock, so the build needs nothing else.
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info

USER 1000:1000
WORKDIR /home/ovserve

EXPOSE 8000 9000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/live', timeout=4)"]

ENTRYPOINT ["ovserve"]
# Serve /models/config.json on all interfaces; Kubernetes passes its own args (demos/kubernetes).
CMD ["--config_path", "/models/config.json", "--rest_port", "8000", "--rest_bind_address", "0.0.0.0", "--port", "9000", "--metrics_enable"]
