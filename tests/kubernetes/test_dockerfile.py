"""The Dockerfile the manifests run: the lock installed, a non-root user, the ports exposed."""

from __future__ import annotations

import json
import re

from tests.helpers.kubernetes import ROOT, dockerfile, dockerfile_user, one, parse_args, port_numbers, server_container


def test_dockerfile_installs_the_lock_runs_as_non_root_and_exposes_the_ports() -> None:
    instructions = dockerfile()
    assert [arg for op, arg in instructions if op == "FROM"] == ["python:3.11-slim"]
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "requirements.lock" in runs and "pip install --no-deps -r" in runs
    assert re.search(r"pip install --no-deps (--no-build-isolation )?(-e )?\.", runs)
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
