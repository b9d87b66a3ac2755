"""The Helm chart (demos/kubernetes/chart/ovserve/): rendered and compared with the plain manifests
when a Helm engine is there (the `helm` binary, or the helm-python-sdk package); else its templates
and values are compared with the plain manifests on what can be checked without rendering.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.helpers.kubernetes import (
    CHART,
    DEMO,
    chart_values,
    documents,
    load_all,
    mount_for,
    one,
    ovserve_containers,
    parse_args,
    pod_labels,
    pod_spec,
    server_container,
    validate,
)


def _template(name: str) -> str:
    return (CHART / "templates" / name).read_text(encoding="utf-8")


def test_chart_templates_and_values_agree_with_the_plain_manifests() -> None:
    """What can be compared without rendering: files, kinds, flags, values, config.json."""
    values = chart_values()
    for path in (DEMO / "manifests").glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        template = _template(path.name)
        for doc in load_all(path.read_text(encoding="utf-8")):
            assert f"kind: {doc['kind']}" in template, f"{path.name}: the template makes no {doc['kind']}"
            assert doc["apiVersion"] in template
    deployment = one("manifests", "Deployment")
    server = server_container(deployment)
    template = _template("deployment.yaml")
    manifest_flags = {a for a in server["args"] if a.startswith("--")}
    template_flags = set(re.findall(r"^\s*- (--[a-z_]+)\s*$", template, re.M))
    assert manifest_flags == template_flags - {"--api_key_file", "--pull", "--source_model", "--model_repository_path", "--task"}
    args = parse_args(server["args"])
    assert server["image"] == f"{values['image']['repository']}:{values['image']['tag']}"
    assert (args.rest_port, args.port) == (values["server"]["restPort"], values["server"]["grpcPort"])
    assert args.shutdown_timeout == values["server"]["shutdownTimeout"]
    assert (args.log_level, args.log_format) == (values["server"]["logLevel"], values["server"]["logFormat"])
    assert args.file_system_poll_wait_seconds == values["server"]["filePollSeconds"]
    assert server["resources"] == values["resources"]
    assert server["securityContext"] == values["securityContext"]
    assert pod_spec(deployment)["securityContext"] == values["podSecurityContext"]
    assert server["lifecycle"]["preStop"]["sleep"]["seconds"] == values["preStopSleepSeconds"]
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] == values["preStopSleepSeconds"] + values["server"]["shutdownTimeout"] + 15
    assert "add .Values.preStopSleepSeconds .Values.server.shutdownTimeout 15" in template
    for probe, probe_path in (("startup", "/v2/health/live"), ("liveness", "/v2/health/live"), ("readiness", "/v2/health/ready")):
        assert server[f"{probe}Probe"]["httpGet"]["path"] == probe_path
        assert {k: v for k, v in server[f"{probe}Probe"].items() if k != "httpGet"} == values["probes"][probe]
        assert re.search(rf"{probe}Probe:\n\s+httpGet:\n\s+path: {probe_path}\n", template), f"{probe}Probe in the template"
    hpa = one("manifests", "HorizontalPodAutoscaler")["spec"]
    scaling = values["autoscaling"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling["minReplicas"], scaling["maxReplicas"])
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == scaling["metricName"]
    assert hpa["metrics"][0]["pods"]["target"]["averageValue"] == scaling["targetAverageValue"]
    pvc = one("manifests", "PersistentVolumeClaim")["spec"]
    assert pvc["accessModes"] == values["modelRepository"]["pvc"]["accessModes"]
    assert pvc["resources"]["requests"]["storage"] == values["modelRepository"]["pvc"]["size"]
    config = json.loads(one("manifests", "ConfigMap")["data"]["config.json"])
    mount = values["modelRepository"]["mountPath"]
    assert config == {
        "model_config_list": [{"config": {"name": m["name"], "base_path": f"{mount}/{m['basePath']}"}} for m in values["models"]]
    }
    assert pod_labels(deployment)["inference.networking.k8s.io/engine-type"] == values["inferencePool"]["engineType"]
    # The pull init-container writes DIR/<Hugging Face id>: the id must be one of the config's base paths.
    assert values["modelRepository"]["pull"]["sourceModel"] in [m["basePath"] for m in values["models"]]


def _helm_render(values: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
    """The chart rendered by Helm (release "ovserve"), or None when no Helm engine is installed."""
    helm = shutil.which("helm")
    if helm:
        cmd = [helm, "template", "ovserve", str(CHART)]
        if values:
            cmd += ["--values", "-"]
        text = subprocess.run(cmd, input=yaml.safe_dump(values or {}), capture_output=True, text=True, check=True).stdout
        return load_all(text)
    try:
        import helm_python  # type: ignore[import-not-found]  # helm-python-sdk: Helm's Go SDK as a library
    except ImportError:
        return None
    with helm_python.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name="ovserve", namespace="default")
    return [doc for name, text in sorted(rendered.items()) if name.endswith(".yaml") for doc in load_all(text)]


def _render_or_skip(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    docs = _helm_render(values)
    if docs is None:
        pytest.skip("no Helm engine here (neither the helm binary nor the helm-python-sdk package): the plain manifests stand in")
    return docs


def _by_kind_and_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_helm_default_render_equals_the_plain_manifests() -> None:
    rendered = _by_kind_and_name(_render_or_skip())
    plain = _by_kind_and_name(documents("manifests"))
    assert rendered == plain


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"apiKey": {"existingSecret": "ovserve-api-key"}}, id="api-key"),
        pytest.param({"modelRepository": {"volume": "emptyDir", "pull": {"enabled": True, "hfTokenSecret": "hf"}}}, id="pull-emptydir"),
        pytest.param({"autoscaling": {"enabled": False}, "replicaCount": 2, "prometheusAdapter": {"createConfigMap": True}}, id="no-hpa"),
        pytest.param({"modelRepository": {"pvc": {"create": False, "existingClaim": "models"}}}, id="existing-claim"),
    ],
)
def test_helm_renders_of_other_values_are_valid(values: dict[str, Any]) -> None:
    docs = _render_or_skip(values)
    for doc in docs:
        validate(doc)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = pod_spec(deployment)
    for container in ovserve_containers(pod):
        parsed = parse_args(container["args"])
        for path in (parsed.config_path, parsed.api_key_file, parsed.model_repository_path):
            if path is not None:
                mount_for(pod, container, str(path))
    server = server_container(deployment)
    if values.get("apiKey"):
        assert parse_args(server["args"]).api_key_file is not None
    if values.get("prometheusAdapter"):
        (adapter,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("prometheus-adapter-rules")]
        assert yaml.safe_load(adapter["data"]["config.yaml"])["rules"] == chart_values()["prometheusAdapter"]["rules"]
