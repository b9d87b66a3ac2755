# ovserve image: the server (OpenAI /v3, KServe v2 REST on 8000, KServe v2 gRPC on 9000, /metrics).
#
#   docker build -t REGISTRY/ovserve:0.1.0 .                            # serving (and pulling OpenVINO IR)
#   docker build --build-arg WITH_EXPORT=true -t REGISTRY/ovserve:0.1.0-export .   # + torch CPU for --pull export
#
# Two stages. `build` makes a venv in /opt/ovserve from requirements/runtime.lock (every file checked
# against its hash; pip's hash mode also refuses a dependency the lock does not list), builds the
# wheel and installs it with --no-deps. The final stage copies only that venv: no compiler, no
# build backend, no test or export packages (docs/packaging.md; the same steps run in a clean venv
# in tests/e2e/test_wheel_install.py, ~420 MB of packages: the image is about 550 MB).
#
# The base is pinned to the exact Python the locks are tested with. Pin it by digest where a
# registry can be asked: `docker buildx imagetools inspect python:3.11.7-slim-bookworm`, then
# --build-arg PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ARG WITH_EXPORT=false
# torch's CPU-only wheels: export.lock names torch 2.13.0+cpu, the build on that index.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY requirements/runtime.lock requirements/export.lock requirements/build.lock ./requirements/
# The venv has no pip of its own: the base image's pip installs into it (--python).
RUN python -m venv --without-pip /opt/ovserve \
    && pip --python /opt/ovserve/bin/python install --require-hashes -r requirements/runtime.lock \
    && if [ "$WITH_EXPORT" = "true" ]; then \
         pip --python /opt/ovserve/bin/python install --require-hashes \
           --extra-index-url "$TORCH_INDEX_URL" -r requirements/export.lock; \
       fi \
    && pip install --require-hashes -r requirements/build.lock

COPY pyproject.toml README.md ./
COPY graphs ./graphs
COPY calculators ./calculators
COPY serving ./serving
RUN pip wheel --no-deps --no-build-isolation -w /dist . \
    && pip --python /opt/ovserve/bin/python install --no-deps /dist/ovserve-*.whl


FROM ${PYTHON_IMAGE}

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ovserve" \
      org.opencontainers.image.description="OpenVINO model server whose serving logic is a MediaPipe-style graph" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PATH=/opt/ovserve/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OVMS_MODEL_REPOSITORY_PATH=/models

# A fixed numeric uid/gid (1000), so Kubernetes' runAsNonRoot can check it; the manifests run as 1000 too.
RUN groupadd --gid 1000 ovserve \
    && useradd --uid 1000 --gid 1000 --home-dir /home/ovserve --create-home --shell /usr/sbin/nologin ovserve \
    && mkdir -p /models \
    && chown ovserve:ovserve /models

COPY --from=build /opt/ovserve /opt/ovserve

USER 1000:1000
WORKDIR /home/ovserve

EXPOSE 8000 9000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/live', timeout=4)"]

ENTRYPOINT ["ovserve"]
# Serve /models/config.json on all interfaces; Kubernetes passes its own args (demos/kubernetes).
CMD ["--config_path", "/models/config.json", "--rest_port", "8000", "--rest_bind_address", "0.0.0.0", "--port", "9000", "--metrics_enable"]
