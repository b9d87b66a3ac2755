"""The Dockerfile the manifests run: the runtime lock installed, a non-root user, the ports exposed."""

from __future__ import annotations

import json
import re

from tests.helpers.kubernetes import ROOT, dockerfile, dockerfile_user, one, parse_args, port_numbers, server_container


def test_dockerfile_installs_the_lock_runs_as_non_root_and_exposes_the_ports() -> None:
    instructions = dockerfile()
    # Two stages on one pinned base; the final one gets only the build stage's venv.
    assert [arg for op, arg in instructions if op == "FROM"] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11.7-slim-bookworm") in instructions
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    assert [arg for op, arg in final if op == "COPY"] == ["--from=build /opt/ovserve /opt/ovserve"]
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "install --require-hashes -r requirements/runtime.lock" in runs and "test.lock" not in runs
    assert re.search(r"install --no-deps /dist/ovserve-\*\.whl", runs)
    labels = " ".join(arg for op, arg in final if op == "LABEL")
    assert "org.opencontainers.image.title" in labels and "org.opencontainers.image.version" in labels
    assert any(op == "HEALTHCHECK" and "/v2/health/live" in arg for op, arg in final)
    assert "torchvision" not in " ".join(arg for _, arg in instructions)
    assert dockerfile_user() != 0
    exposed = {int(p) for op, arg in instructions if op == "EXPOSE" for p in arg.split()}
    deployment = server_container(one("manifests", "Deployment"))
    assert set(port_numbers(deployment).values()) <= exposed
    (entrypoint,) = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoint == ["ovserve"]
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    parse_args(cmd)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and ".git" in ignored
