"""The plain manifests (demos/kubernetes/manifests/) against our own code: selectors and port names,
the container args through our CLI parser, probes, mounts, config.json through our loader, and the
metric the HPA scales on.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from serving.config_file import ConfigFileError, load_config_file
from tests.helpers.kubernetes import (
    DEMO,
    SERVER_METRICS,
    chart_values,
    check_probe,
    dockerfile_user,
    documents,
    metric_family,
    mount_for,
    one,
    parse_args,
    pod_labels,
    pod_spec,
    port_numbers,
    server_container,
)


def _check_services_select_workloads(folder: str) -> None:
    workloads = documents(folder, "Deployment")
    for service in documents(folder, "Service"):
        selector = service["spec"]["selector"]
        targets = [w for w in workloads if selector.items() <= pod_labels(w).items()]
        assert len(targets) == 1, f"Service {service['metadata']['name']} selects {len(targets)} Deployments"
        port_names = {p["name"] for c in pod_spec(targets[0])["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                assert target in port_names, f"Service {service['metadata']['name']}: no container port named {target}"
    for workload in workloads:
        assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels(workload).items()


# --------------------------------------------------------------------------- the ovserve Deployment


def test_services_select_the_deployments_and_their_port_names() -> None:
    _check_services_select_workloads("manifests")
    _check_services_select_workloads("inference-gateway")


def test_deployment_args_parse_with_our_cli_and_match_ports_probes_and_mounts(tmp_path: Path) -> None:
    deployment = one("manifests", "Deployment")
    pod = pod_spec(deployment)
    server = server_container(deployment)
    args = parse_args(server["args"])
    ports = port_numbers(server)
    assert args.rest_port == ports["http"] == 8000
    assert args.port == ports["grpc"] == 9000
    assert args.rest_bind_address == "0.0.0.0"
    assert args.metrics_enable
    check_probe(server, "startupProbe", "/v2/health/live", args.rest_port)
    check_probe(server, "livenessProbe", "/v2/health/live", args.rest_port)
    check_probe(server, "readinessProbe", "/v2/health/ready", args.rest_port)
    # Draining: the pod outlives the preStop sleep plus --shutdown_timeout.
    pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + args.shutdown_timeout
    # Prometheus scrapes /metrics on the REST port.
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == args.rest_port
    # Runs as the image's non-root user.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_user()
    assert server["resources"]["requests"] and server["resources"]["limits"]
    # --config_path is a key of the mounted ConfigMap, mounted as a folder (no subPath: edits reach the pod).
    mount, volume = mount_for(pod, server, str(args.config_path))
    assert "subPath" not in mount
    configmap = one("manifests", "ConfigMap", volume["configMap"]["name"])
    key = args.config_path.relative_to(mount["mountPath"]).as_posix()
    config_text = configmap["data"][key]
    # ... it loads with our own loader, and its base paths lie on the model volume.
    base_paths = _check_config_json(config_text, tmp_path)
    for base_path in base_paths:
        _, model_volume = mount_for(pod, server, base_path)
        claim = model_volume["persistentVolumeClaim"]["claimName"]
        assert one("manifests", "PersistentVolumeClaim", claim)


def _check_config_json(text: str, tmp_path: Path) -> list[str]:
    """Load config.json with serving.config_file as the pod would, its absolute paths under tmp_path."""
    raw = json.loads(text)
    relocated = copy.deepcopy(raw)
    for entry in relocated.get("model_config_list", []):
        base_path = entry.get("config", {}).get("base_path")
        if isinstance(base_path, str) and base_path.startswith("/"):
            folder = tmp_path / base_path.lstrip("/")
            folder.mkdir(parents=True)
            (folder / "graph.pbtxt").write_text("", encoding="utf-8")  # the loader only checks it is there
            entry["config"]["base_path"] = str(folder)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(relocated), encoding="utf-8")
    specs = load_config_file(config)  # raises ConfigFileError, naming the key, as the server would
    assert [s.name for s in specs] == [e["config"]["name"] for e in raw["model_config_list"]]
    base_paths = [entry["config"]["base_path"] for entry in raw["model_config_list"]]
    assert all(p.startswith("/") for p in base_paths), "base_path must be absolute: the ConfigMap is mounted apart from the models"
    return base_paths


def test_config_json_is_held_to_our_loader(tmp_path: Path) -> None:
    text = one("manifests", "ConfigMap")["data"]["config.json"]
    broken = json.loads(text)
    broken["model_config_list"][0]["config"]["basepath"] = "x"
    with pytest.raises(ConfigFileError, match="basepath"):
        _check_config_json(json.dumps(broken), tmp_path)


def test_hpa_scales_the_deployment_on_our_metric_via_the_adapter_rule() -> None:
    hpa = one("manifests", "HorizontalPodAutoscaler")
    deployment = one("manifests", "Deployment")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    assert name in SERVER_METRICS
    chart_rules = chart_values()["prometheusAdapter"]["rules"]
    adapter = yaml.safe_load((DEMO / "prometheus-adapter" / "values.yaml").read_text(encoding="utf-8"))
    assert adapter["rules"]["custom"] == chart_rules
    (rule,) = [r for r in chart_rules if r["name"]["as"] == name]
    assert metric_family(rule["seriesQuery"]) in SERVER_METRICS
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_the_metrics_the_manifests_read_are_in_the_servers_catalog() -> None:
    """SERVER_METRICS against serving.metrics_catalog (what /metrics serves): gauges, and labelled by model where the EPP selects one."""
    from serving.metrics_catalog import FAMILIES

    catalog = {family.name: family for family in FAMILIES}
    for name in sorted(SERVER_METRICS):
        assert name in catalog, f"{name}: /metrics does not serve it"
        assert catalog[name].kind == "gauge", name
    for name in ("ovserve_engine_requests_waiting", "ovserve_engine_requests_running", "ovserve_kv_cache_usage_ratio"):
        assert "model" in catalog[name].labels, name
