"""The Inference Extension manifests (demos/kubernetes/inference-gateway/): the EPP reads the metric
names ovserve serves, the InferencePool selects the ovserve pods, the HTTPRoutes point at them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.kubernetes import (
    EPP_METRIC_FIELDS,
    documents,
    metric_family,
    mount_for,
    one,
    pod_labels,
    pod_spec,
    port_numbers,
    server_container,
)


def _epp_config() -> tuple[dict[str, Any], dict[str, Any]]:
    epp = one("inference-gateway", "Deployment", "ovserve-epp")
    container = pod_spec(epp)["containers"][0]
    args = container["args"]
    config_file = args[args.index("--config-file") + 1]
    mount, volume = mount_for(pod_spec(epp), container, config_file)
    configmap = one("inference-gateway", "ConfigMap", volume["configMap"]["name"])
    key = Path(config_file).relative_to(mount["mountPath"]).as_posix()
    return epp, yaml.safe_load(configmap["data"][key])


def test_epp_reads_our_metric_names_for_the_served_model() -> None:
    epp, config = _epp_config()
    assert config["apiVersion"] == "inference.networking.x-k8s.io/v1alpha1"
    assert config["kind"] == "EndpointPickerConfig"
    plugins = {p.get("name", p["type"]): p for p in config["plugins"]}
    refs = [p["pluginRef"] for profile in config["schedulingProfiles"] for p in profile["plugins"]]
    for source in config["data"]["sources"]:
        refs += [source["pluginRef"]] + [e["pluginRef"] for e in source["extractors"]]
    assert set(refs) <= plugins.keys(), "a pluginRef names no plugin"
    assert {"queue-scorer", "kv-cache-utilization-scorer"} <= set(refs)
    extractor = plugins["core-metrics-extractor"]["parameters"]
    (engine,) = [e for e in extractor["engineConfigs"] if e["name"] == extractor["defaultEngine"]]
    assert set(engine) == {"name", *EPP_METRIC_FIELDS}
    # The ovserve pods carry the engine label the extractor keys on.
    deployment = one("manifests", "Deployment")
    assert pod_labels(deployment)[extractor["engineLabelKey"]] == engine["name"]
    served = {e["config"]["name"] for e in json.loads(one("manifests", "ConfigMap")["data"]["config.json"])["model_config_list"]}
    used = {field: metric_family(engine[field]) for field in EPP_METRIC_FIELDS if engine[field]}
    assert used == {
        "queuedRequestsSpec": "vllm:num_requests_waiting",
        "runningRequestsSpec": "vllm:num_requests_running",
        "kvUsageSpec": "vllm:kv_cache_usage_perc",
        "loraSpec": "vllm:lora_requests_info",
    }
    for field in ("queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec"):
        spec = engine[field]
        labels = dict(re.findall(r'(\w+)\s*=\s*"?([^",}]*)"?', spec[spec.find("{") :])) if "{" in spec else {}
        assert labels.get("model_name") in served, f"{field}: model_name label is not a served model"
    # /metrics serves each (serving/metrics_catalog.py), as a gauge with the labels the specs select on.
    from serving.metrics_catalog import VLLM_BY_NAME

    for field, name in used.items():
        assert name in VLLM_BY_NAME and VLLM_BY_NAME[name].kind == "gauge", f"{field}: /metrics does not serve {name}"
    assert "model_name" in VLLM_BY_NAME["vllm:num_requests_waiting"].labels
    assert {"running_lora_adapters", "max_lora"} <= set(VLLM_BY_NAME["vllm:lora_requests_info"].labels)
    # The deprecated metric flags are refused by the EPP from v1.5.0 on: none of them here.
    args = pod_spec(epp)["containers"][0]["args"]
    assert not [a for a in args if a.endswith("-metric") or "-metric=" in a]


def test_inference_pool_selects_the_ovserve_pods_and_names_the_picker() -> None:
    pool = one("inference-gateway", "InferencePool")
    deployment = one("manifests", "Deployment")
    assert pool["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
    assert [p["number"] for p in pool["spec"]["targetPorts"]] == [port_numbers(server_container(deployment))["http"]]
    picker = pool["spec"]["endpointPickerRef"]
    service = one("inference-gateway", "Service", picker["name"])
    assert picker["port"]["number"] in [p["port"] for p in service["spec"]["ports"]]
    epp = one("inference-gateway", "Deployment", "ovserve-epp")
    args = pod_spec(epp)["containers"][0]["args"]
    assert args[args.index("--pool-name") + 1] == pool["metadata"]["name"]
    assert args[args.index("--pool-group") + 1] == pool["apiVersion"].split("/")[0]
    # The picker may read pods and pools.
    role = one("inference-gateway", "Role")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] if "watch" in rule["verbs"]}
    assert {("", "pods"), ("inference.networking.k8s.io", "inferencepools")} <= granted
    binding = one("inference-gateway", "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == pod_spec(epp)["serviceAccountName"]


def test_httproutes_point_at_the_pool_and_the_plain_service() -> None:
    pool = one("inference-gateway", "InferencePool")
    service = one("manifests", "Service")
    backends = [b for route in documents("inference-gateway", "HTTPRoute") for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
    pools = [b for b in backends if b.get("kind") == "InferencePool"]
    services = [b for b in backends if b.get("kind", "Service") == "Service"]
    assert pools and all(b["name"] == pool["metadata"]["name"] and b["group"] == "inference.networking.k8s.io" for b in pools)
    assert services and all(b["name"] == service["metadata"]["name"] for b in services)
    assert all(b["port"] in [p["port"] for p in service["spec"]["ports"]] for b in services)
