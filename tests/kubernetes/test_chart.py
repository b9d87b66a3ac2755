"""The Helm chart (demos/kubernetes/chart/ovserve/), rendered by Helm (tests/kubernetes/chart_render.py):
`helm create`'s conventions, every rendered object against the Kubernetes and CRD schemas for the
defaults and the option sets, the combinations the chart refuses, and manifests/ as one render.
"""

from __future__ import annotations

import json
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from tests.helpers.kubernetes import (
    CHART,
    chart_values,
    documents,
    mount_for,
    ovserve_containers,
    parse_args,
    pod_spec,
    server_container,
    validate,
)
from tests.kubernetes.chart_render import HELM_LABELS, manifests_values, render, render_error, render_files, without_helm_labels

SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", *HELM_LABELS)
HPA_ON = {"autoscaling": {"enabled": True, "metricsAdapter": "prometheus-adapter"}}
RWX = {"modelRepository": {"pvc": {"accessModes": ["ReadWriteMany"]}}}


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _check_all(docs: list[dict[str, Any]]) -> None:
    """Every object valid; its pods' args parse with our CLI, their paths on mounted volumes."""
    for doc in docs:
        validate(doc)
        assert set(STANDARD_LABELS) <= doc["metadata"]["labels"].keys(), doc["kind"]
    for deployment in _by_kind(docs)["Deployment"]:
        pod = pod_spec(deployment)
        for container in ovserve_containers(pod):
            parsed = parse_args(container["args"])
            for path in (parsed.config_path, parsed.api_key_file, parsed.model_repository_path):
                if path is not None:
                    mount_for(pod, container, str(path))


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Values as Helm merges them: maps key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_values_yaml_matches_its_schema_and_the_schema_refuses_typos() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(chart_values(), SCHEMA)
    jsonschema.validate(_merged(chart_values(), manifests_values()), SCHEMA)
    bad: dict[str, Any]
    for bad in ({"replicaCount": "2"}, {"autoscalling": {}}, {"modelRepository": {"volume": "hostPath"}}, {"server": {"logLevel": "LOUD"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(_merged(chart_values(), bad), SCHEMA)
    assert "additional properties 'autoscalling'" in render_error({"autoscalling": {}})  # Helm reads the schema too


def test_schema_choices_are_ones_ovserve_accepts() -> None:
    from serving.cli import build_parser
    from serving.repository.layout import TASKS

    choices = {a.dest: a.choices for a in build_parser()._actions if a.choices}
    assert set(SCHEMA["properties"]["server"]["properties"]["logLevel"]["enum"]) <= set(choices["log_level"])
    assert set(SCHEMA["properties"]["server"]["properties"]["logFormat"]["enum"]) <= set(choices["log_format"])
    assert set(SCHEMA["properties"]["modelRepository"]["properties"]["pull"]["properties"]["task"]["enum"]) <= set(TASKS)


def test_default_render_follows_helm_create_conventions() -> None:
    docs = render()
    _check_all(docs)
    kinds = _by_kind(docs)
    assert sorted(kinds) == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "PodDisruptionBudget", "Service", "ServiceAccount"]
    (deployment,) = kinds["Deployment"]
    labels = deployment["metadata"]["labels"]
    assert labels["helm.sh/chart"] == "ovserve-0.1.0" and labels["app.kubernetes.io/managed-by"] == "Helm"
    assert deployment["spec"]["replicas"] == 1  # no HPA unless its metrics adapter is named
    pod = pod_spec(deployment)
    (account,) = kinds["ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    (pdb,) = kinds["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1  # one replica can still be drained
    (pvc,) = kinds["PersistentVolumeClaim"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    security = server_container(deployment)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_name_overrides() -> None:
    names = {d["metadata"]["name"] for d in render(release="prod")}
    assert names == {"prod-ovserve", "prod-ovserve-config", "prod-ovserve-models"}
    docs = render({"nameOverride": "llm"}, release="prod")
    assert {d["metadata"]["name"] for d in docs} == {"prod-llm", "prod-llm-config", "prod-llm-models"}
    assert {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in docs} == {"llm"}
    (deployment,) = _by_kind(docs)["Deployment"]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "llm", "app.kubernetes.io/instance": "prod"}
    docs = render({"fullnameOverride": "chat"}, release="prod")
    assert {d["metadata"]["name"] for d in docs} == {"chat", "chat-config", "chat-models"}
    _check_all(docs)


def test_the_plain_manifests_are_the_chart_rendered_with_ci_values() -> None:
    files = render_files(manifests_values())
    plain = {(d["kind"], d["metadata"]["name"]): d for d in documents("manifests")}
    rendered = {
        (d["kind"], d["metadata"]["name"]): d for text in files.values() for d in yaml.safe_load_all(without_helm_labels(text)) if d
    }
    assert rendered == plain, "regenerate demos/kubernetes/manifests/: python -m tests.kubernetes.chart_render"


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(
            {
                "metrics": {
                    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                    "podMonitor": {"enabled": True},
                }
            },
            id="monitors-on",
        ),
        pytest.param({**HPA_ON, **RWX}, id="hpa-with-adapter-rwx"),
        pytest.param({"replicaCount": 2, **RWX}, id="replicas-2-rwx"),
        pytest.param(
            {"replicaCount": 2, "modelRepository": {"volume": "emptyDir", "pull": {"enabled": True, "hfTokenSecret": "hf"}}},
            id="replicas-2-pull-per-pod",
        ),
        pytest.param({"replicaCount": 3, "modelRepository": {"pvc": {"accessModes": ["ReadOnlyMany"]}}}, id="replicas-3-rox"),
        pytest.param({"apiKey": {"existingSecret": "ovserve-api-key"}}, id="api-key"),
        pytest.param({"modelRepository": {"pvc": {"create": False, "existingClaim": "models"}}}, id="existing-claim"),
        pytest.param(
            {"prometheusAdapter": {"createConfigMap": True}, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
            id="adapter-rules-min-available",
        ),
        pytest.param(
            {
                "serviceAccount": {"create": False},
                "podDisruptionBudget": {"enabled": False},
                "modelRepository": {"pvc": {"keepOnUninstall": False}},
            },
            id="minimal",
        ),
    ],
)
def test_option_renders_are_valid(values: dict[str, Any]) -> None:
    docs = render(values)
    _check_all(docs)
    kinds = _by_kind(docs)
    (deployment,) = kinds["Deployment"]
    server = server_container(deployment)
    metrics = values.get("metrics", {})
    for kind, key in (("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor")):
        assert (kind in kinds) == bool(metrics.get(key, {}).get("enabled"))
    for monitor in kinds.get("ServiceMonitor", []) + kinds.get("PodMonitor", []):
        assert monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        (endpoint,) = monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert kinds["ServiceMonitor"][0]["metadata"]["labels"]["release"] == "kube-prometheus-stack" if "ServiceMonitor" in kinds else True
    if values.get("autoscaling"):
        (hpa,) = kinds["HorizontalPodAutoscaler"]
        assert "replicas" not in deployment["spec"] and hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    else:
        assert "HorizontalPodAutoscaler" not in kinds
        assert deployment["spec"]["replicas"] == values.get("replicaCount", 1)
    if values.get("apiKey"):
        assert parse_args(server["args"]).api_key_file is not None
    if values.get("prometheusAdapter"):
        (adapter,) = [d for d in kinds["ConfigMap"] if d["metadata"]["name"].endswith("prometheus-adapter-rules")]
        assert yaml.safe_load(adapter["data"]["config.yaml"])["rules"] == chart_values()["prometheusAdapter"]["rules"]
    assert ("ServiceAccount" in kinds) == values.get("serviceAccount", {}).get("create", True)
    assert ("PodDisruptionBudget" in kinds) == values.get("podDisruptionBudget", {}).get("enabled", True)
    for pvc in kinds.get("PersistentVolumeClaim", []):
        keep = pvc["metadata"].get("annotations", {}).get("helm.sh/resource-policy")
        assert keep == ("keep" if values.get("modelRepository", {}).get("pvc", {}).get("keepOnUninstall", True) else None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"replicaCount": 2}, "2 replicas need a model volume every pod can mount", id="replicas-2-rwo"),
        pytest.param({**HPA_ON}, "4 replicas need a model volume every pod can mount", id="hpa-rwo"),
        pytest.param({"autoscaling": {"enabled": True}}, "autoscaling.enabled needs autoscaling.metricsAdapter", id="hpa-without-adapter"),
        pytest.param(
            {"replicaCount": 2, "modelRepository": {"volume": "emptyDir"}}, "replicas need a model volume", id="emptydir-without-pull"
        ),
        pytest.param(
            {"replicaCount": 2, "modelRepository": {"pvc": {"accessModes": ["ReadOnlyMany"]}, "pull": {"enabled": True}}},
            "replicas need a model volume",
            id="rox-with-pull",
        ),
    ],
)
def test_the_chart_refuses(values: dict[str, Any], message: str) -> None:
    assert message in render_error(values)


def test_helm_lint_strict_finds_no_warning() -> None:
    report = helm_python.lint(str(CHART), strict=True, kube_version="v1.37.0")
    assert not report["errors"] and [m for m in report["messages"] if m["severity"] > 1] == [], report  # 1: info (no icon)
