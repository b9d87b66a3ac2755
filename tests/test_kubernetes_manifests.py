"""The Kubernetes deployment files (demos/kubernetes/, Dockerfile) against the real schemas and our own code.

* Core kinds: kubernetes-validate's JSON schemas of one pinned Kubernetes version, strict (an
  unknown field is an error).
* Custom resources (KServe, Gateway API, Inference Extension): the openAPIV3Schema of the
  upstream CRDs in tests/data/crds/ (source and licence in each file's header), made strict the
  way the API server's strict field validation is (unknown fields are errors where the schema
  does not keep them). CEL rules (x-kubernetes-validations) are not evaluated.
* Cross-references: selectors, port names, probes, mounts, config.json through our loader, the
  container args through our CLI parser, the metric names the EPP/HPA read.
* The Helm chart: rendered and compared with the plain manifests when a Helm engine is there
  (the `helm` binary, or the helm-python-sdk package); else its templates and values are
  compared with the plain manifests on what can be checked without rendering.

No network, no server: a few seconds.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from serving.cli import build_parser
from serving.config_file import ConfigFileError, load_config_file

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demos" / "kubernetes"
CHART = DEMO / "chart" / "ovserve"
CRDS = Path(__file__).resolve().parent / "data" / "crds"
MANIFEST_DIRS = ("manifests", "kserve", "inference-gateway")
# One Kubernetes version whose schemas kubernetes-validate 1.37.0 ships (v1.37.0-local-strict).
KUBERNETES_VERSION = "1.37.0"
# The Prometheus metric families the manifests rely on: the EPP's queue / running / KV-cache
# specs (inference-gateway/epp.yaml) and the HPA's Pods metric (via the prometheus-adapter).
# The server must expose exactly these names on /metrics.
SERVER_METRICS = frozenset(
    {
        "ovserve_engine_requests_waiting",  # {model}: requests queued, not yet scheduled by the engine
        "ovserve_engine_requests_running",  # {model}
        "ovserve_kv_cache_usage_ratio",  # {model}: 0..1
        "ovserve_http_requests_in_flight",
    }
)
OVSERVE_IMAGE = re.compile(r"^([\w.-]+(:\d+)?/)*ovserve:")
EPP_METRIC_FIELDS = ("queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec", "loraSpec", "cacheInfoSpec")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --------------------------------------------------------------------------- loading


def _load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def _manifest_files() -> list[Path]:
    return sorted(p for d in MANIFEST_DIRS for p in (DEMO / d).glob("*.yaml") if p.name != "kustomization.yaml")


@functools.cache
def _documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    out = []
    for path in _manifest_files():
        for doc in _load_all(path.read_text(encoding="utf-8")):
            out.append((f"{path.relative_to(DEMO)}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}", doc))
    return tuple(out)


def _docs(folder: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        copy.deepcopy(doc)
        for where, doc in _documents()
        if (folder is None or where.startswith(folder + "/")) and (kind is None or doc["kind"] == kind)
    ]


def _one(folder: str, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _docs(folder, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {folder}/, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- schemas


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        schemas[(f"{data['group']}/{data['version']}", data["kind"])] = _strict(data["openAPIV3Schema"])
    return schemas


def _strict(schema: Any) -> Any:
    """As the API server's strict field validation: a field no schema declares is an error.

    Only structural nodes (properties, items, additionalProperties) are closed; anyOf/allOf/oneOf
    branches only constrain values in structural schemas, so they are left as they are.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {key: _strict(value) for key, value in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = _strict(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(out["additionalProperties"])
    return out


@functools.cache
def _has_core_schema(api_version: str, kind: str) -> bool:
    try:
        kubernetes_validate.validate({"apiVersion": api_version, "kind": kind}, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError:
        pass
    return True


def _is_core(doc: dict[str, Any]) -> bool:
    return _has_core_schema(doc["apiVersion"], doc["kind"])


def _validate_core(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)  # it is the jsonschema error, re-classed
        pytest.fail(f"{doc['kind']} {doc['metadata'].get('name')}: {where}: {exc.message}")


def _validate_custom(doc: dict[str, Any]) -> None:
    schema = _crd_schemas()[(doc["apiVersion"], doc["kind"])]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        pytest.fail("\n".join(f"{doc['kind']}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors))
    # metadata is a bare `type: object` in CRD schemas: hold it to the real ObjectMeta schema.
    _validate_core({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]})


def _validate(doc: dict[str, Any]) -> None:
    (_validate_core if _is_core(doc) else _validate_custom)(doc)


DOCUMENT_IDS = [where for where, _ in _documents()]


@pytest.mark.parametrize("where", DOCUMENT_IDS)
def test_every_document_matches_its_schema(where: str) -> None:
    doc = dict(_documents())[where]
    assert {"apiVersion", "kind", "metadata"} <= doc.keys()
    _validate(doc)


def test_every_custom_resource_has_a_stored_crd_schema() -> None:
    custom = {(d["apiVersion"], d["kind"]) for _, d in _documents() if not _is_core(d)}
    assert custom == set(_crd_schemas()), "a kind kubernetes-validate lacks and tests/data/crds too (or a stored schema nothing uses)"


def test_schemas_catch_breakage() -> None:
    """The validators do reject: an unknown field, a wrong type, in a core kind and in a CRD."""
    deployment = _one("manifests", "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(pytest.fail.Exception, match="pathh"):
        _validate(deployment)
    service = _one("manifests", "Service")
    service["spec"]["ports"][0]["port"] = "eight thousand"
    with pytest.raises(pytest.fail.Exception):
        _validate(service)
    pool = _one("inference-gateway", "InferencePool")
    pool["spec"]["endpointPickerRef"]["failMode"] = "FailOpen"
    with pytest.raises(pytest.fail.Exception, match="failMode"):
        _validate(pool)
    isvc = _one("kserve", "InferenceService")
    isvc["spec"]["predictor"]["model"]["storageURI"] = "pvc://x"
    with pytest.raises(pytest.fail.Exception, match="storageURI"):
        _validate(isvc)
    route = _one("inference-gateway", "HTTPRoute", "ovserve-pool")
    route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    with pytest.raises(pytest.fail.Exception):
        _validate(route)


def test_kustomizations_list_every_file() -> None:
    for folder in MANIFEST_DIRS:
        kustomization = yaml.safe_load((DEMO / folder / "kustomization.yaml").read_text(encoding="utf-8"))
        files = sorted(p.name for p in (DEMO / folder).glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(kustomization["resources"]) == files, folder


# --------------------------------------------------------------------------- helpers for cross-references


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def _ovserve_containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for container in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        if OVSERVE_IMAGE.match(container["image"]):
            yield container


def _server_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in _pod_spec(workload)["containers"] if OVSERVE_IMAGE.match(c["image"])]
    return container


def _parse_args(args: list[str]) -> Any:
    # KServe fills {{.Name}} with the InferenceService's name.
    args = [a.replace("{{.Name}}", "qwen3-8b") for a in args]
    try:
        return build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"ovserve's CLI rejects these args: {args}")


def _port_numbers(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def _mount_for(pod_spec: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volumeMount (and its volume) that holds `path` in `container`."""
    mounts = [m for m in container.get("volumeMounts", []) if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts, f"{container['name']}: nothing is mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def _check_probe(container: dict[str, Any], probe_name: str, path: str, rest_port: int) -> None:
    probe = container[probe_name]["httpGet"]
    assert probe["path"] == path, f"{probe_name} path"
    port = probe["port"]
    number = _port_numbers(container)[port] if isinstance(port, str) else port
    assert number == rest_port, f"{probe_name} is not on the REST port"


def _check_services_select_workloads(folder: str) -> None:
    workloads = _docs(folder, "Deployment")
    for service in _docs(folder, "Service"):
        selector = service["spec"]["selector"]
        targets = [w for w in workloads if selector.items() <= _pod_labels(w).items()]
        assert len(targets) == 1, f"Service {service['metadata']['name']} selects {len(targets)} Deployments"
        port_names = {p["name"] for c in _pod_spec(targets[0])["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                assert target in port_names, f"Service {service['metadata']['name']}: no container port named {target}"
    for workload in workloads:
        assert workload["spec"]["selector"]["matchLabels"].items() <= _pod_labels(workload).items()


# --------------------------------------------------------------------------- the ovserve Deployment


def test_services_select_the_deployments_and_their_port_names() -> None:
    _check_services_select_workloads("manifests")
    _check_services_select_workloads("inference-gateway")


def test_deployment_args_parse_with_our_cli_and_match_ports_probes_and_mounts(tmp_path: Path) -> None:
    deployment = _one("manifests", "Deployment")
    pod = _pod_spec(deployment)
    server = _server_container(deployment)
    args = _parse_args(server["args"])
    ports = _port_numbers(server)
    assert args.rest_port == ports["http"] == 8000
    assert args.port == ports["grpc"] == 9000
    assert args.rest_bind_address == "0.0.0.0"
    assert args.metrics_enable
    _check_probe(server, "startupProbe", "/v2/health/live", args.rest_port)
    _check_probe(server, "livenessProbe", "/v2/health/live", args.rest_port)
    _check_probe(server, "readinessProbe", "/v2/health/ready", args.rest_port)
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
    assert pod["securityContext"]["runAsUser"] == _dockerfile_user()
    assert server["resources"]["requests"] and server["resources"]["limits"]
    # --config_path is a key of the mounted ConfigMap, mounted as a folder (no subPath: edits reach the pod).
    mount, volume = _mount_for(pod, server, str(args.config_path))
    assert "subPath" not in mount
    configmap = _one("manifests", "ConfigMap", volume["configMap"]["name"])
    key = args.config_path.relative_to(mount["mountPath"]).as_posix()
    config_text = configmap["data"][key]
    # ... it loads with our own loader, and its base paths lie on the model volume.
    base_paths = _check_config_json(config_text, tmp_path)
    for base_path in base_paths:
        _, model_volume = _mount_for(pod, server, base_path)
        claim = model_volume["persistentVolumeClaim"]["claimName"]
        assert _one("manifests", "PersistentVolumeClaim", claim)


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
    text = _one("manifests", "ConfigMap")["data"]["config.json"]
    broken = json.loads(text)
    broken["model_config_list"][0]["config"]["basepath"] = "x"
    with pytest.raises(ConfigFileError, match="basepath"):
        _check_config_json(json.dumps(broken), tmp_path)


def test_hpa_scales_the_deployment_on_our_metric_via_the_adapter_rule() -> None:
    hpa = _one("manifests", "HorizontalPodAutoscaler")
    deployment = _one("manifests", "Deployment")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    assert name in SERVER_METRICS
    chart_rules = _values()["prometheusAdapter"]["rules"]
    adapter = yaml.safe_load((DEMO / "prometheus-adapter" / "values.yaml").read_text(encoding="utf-8"))
    assert adapter["rules"]["custom"] == chart_rules
    (rule,) = [r for r in chart_rules if r["name"]["as"] == name]
    assert _metric_family(rule["seriesQuery"]) in SERVER_METRICS
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def _metric_family(spec: str) -> str:
    match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?", spec.strip())
    assert match, f"not a metric selector: {spec!r}"
    return match.group(1)


def test_the_metrics_the_manifests_read_are_in_the_servers_catalog() -> None:
    """SERVER_METRICS against serving.metrics_catalog (what /metrics serves): gauges, and labelled by model where the EPP selects one."""
    from serving.metrics_catalog import FAMILIES

    catalog = {family.name: family for family in FAMILIES}
    for name in sorted(SERVER_METRICS):
        assert name in catalog, f"{name}: /metrics does not serve it"
        assert catalog[name].kind == "gauge", name
    for name in ("ovserve_engine_requests_waiting", "ovserve_engine_requests_running", "ovserve_kv_cache_usage_ratio"):
        assert "model" in catalog[name].labels, name


# --------------------------------------------------------------------------- Inference Extension


def _epp_config() -> tuple[dict[str, Any], dict[str, Any]]:
    epp = _one("inference-gateway", "Deployment", "ovserve-epp")
    container = _pod_spec(epp)["containers"][0]
    args = container["args"]
    config_file = args[args.index("--config-file") + 1]
    mount, volume = _mount_for(_pod_spec(epp), container, config_file)
    configmap = _one("inference-gateway", "ConfigMap", volume["configMap"]["name"])
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
    deployment = _one("manifests", "Deployment")
    assert _pod_labels(deployment)[extractor["engineLabelKey"]] == engine["name"]
    served = {e["config"]["name"] for e in json.loads(_one("manifests", "ConfigMap")["data"]["config.json"])["model_config_list"]}
    used = {}
    for field in ("queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec"):
        spec = engine[field]
        used[field] = _metric_family(spec)
        assert used[field] in SERVER_METRICS, f"{field}: {spec} is not a metric ovserve serves"
        labels = dict(re.findall(r'(\w+)\s*=\s*"?([^",}]*)"?', spec[spec.find("{") :])) if "{" in spec else {}
        assert labels.get("model") in served, f"{field}: model label is not a served model"
    assert used == {
        "queuedRequestsSpec": "ovserve_engine_requests_waiting",
        "runningRequestsSpec": "ovserve_engine_requests_running",
        "kvUsageSpec": "ovserve_kv_cache_usage_ratio",
    }
    assert engine["loraSpec"] == "" and engine["cacheInfoSpec"] == ""
    # The deprecated metric flags are refused by the EPP from v1.5.0 on: none of them here.
    args = _pod_spec(epp)["containers"][0]["args"]
    assert not [a for a in args if a.endswith("-metric") or "-metric=" in a]


def test_inference_pool_selects_the_ovserve_pods_and_names_the_picker() -> None:
    pool = _one("inference-gateway", "InferencePool")
    deployment = _one("manifests", "Deployment")
    assert pool["spec"]["selector"]["matchLabels"].items() <= _pod_labels(deployment).items()
    assert [p["number"] for p in pool["spec"]["targetPorts"]] == [_port_numbers(_server_container(deployment))["http"]]
    picker = pool["spec"]["endpointPickerRef"]
    service = _one("inference-gateway", "Service", picker["name"])
    assert picker["port"]["number"] in [p["port"] for p in service["spec"]["ports"]]
    epp = _one("inference-gateway", "Deployment", "ovserve-epp")
    args = _pod_spec(epp)["containers"][0]["args"]
    assert args[args.index("--pool-name") + 1] == pool["metadata"]["name"]
    assert args[args.index("--pool-group") + 1] == pool["apiVersion"].split("/")[0]
    # The picker may read pods and pools.
    role = _one("inference-gateway", "Role")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] if "watch" in rule["verbs"]}
    assert {("", "pods"), ("inference.networking.k8s.io", "inferencepools")} <= granted
    binding = _one("inference-gateway", "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == _pod_spec(epp)["serviceAccountName"]


def test_httproutes_point_at_the_pool_and_the_plain_service() -> None:
    pool = _one("inference-gateway", "InferencePool")
    service = _one("manifests", "Service")
    backends = [b for route in _docs("inference-gateway", "HTTPRoute") for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
    pools = [b for b in backends if b.get("kind") == "InferencePool"]
    services = [b for b in backends if b.get("kind", "Service") == "Service"]
    assert pools and all(b["name"] == pool["metadata"]["name"] and b["group"] == "inference.networking.k8s.io" for b in pools)
    assert services and all(b["name"] == service["metadata"]["name"] for b in services)
    assert all(b["port"] in [p["port"] for p in service["spec"]["ports"]] for b in services)


# --------------------------------------------------------------------------- KServe


def test_kserve_runtime_serves_mnt_models_on_both_protocols() -> None:
    runtime = _one("kserve", "ServingRuntime")
    isvc = _one("kserve", "InferenceService")
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])
    (container,) = runtime["spec"]["containers"]
    args = _parse_args(container["args"])
    assert str(args.model_path) == "/mnt/models"
    assert args.rest_bind_address == "0.0.0.0"
    ports = [p["containerPort"] for p in container["ports"]]
    assert ports == [args.rest_port, args.port]  # KServe's Service: port 80 -> the first, the others as they are
    assert args.rest_port == 8080  # KServe's default HTTP port
    _check_probe(container, "readinessProbe", "/v2/health/ready", args.rest_port)
    _check_probe(container, "livenessProbe", "/v2/health/live", args.rest_port)
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and not line.startswith("#")]


def _dockerfile_user() -> int:
    users = [arg for op, arg in _dockerfile() if op == "USER"]
    return int(users[-1].split(":")[0])


def test_dockerfile_installs_the_lock_runs_as_non_root_and_exposes_the_ports() -> None:
    instructions = _dockerfile()
    assert [arg for op, arg in instructions if op == "FROM"] == ["python:3.11-slim"]
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "requirements.lock" in runs and "pip install --no-deps -r" in runs
    assert re.search(r"pip install --no-deps (--no-build-isolation )?(-e )?\.", runs)
    assert "torchvision" not in " ".join(arg for _, arg in instructions)
    assert _dockerfile_user() != 0
    exposed = {int(p) for op, arg in instructions if op == "EXPOSE" for p in arg.split()}
    deployment = _server_container(_one("manifests", "Deployment"))
    assert set(_port_numbers(deployment).values()) <= exposed
    (entrypoint,) = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoint == ["ovserve"]
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    _parse_args(cmd)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and ".git" in ignored


# --------------------------------------------------------------------------- the Helm chart


@functools.cache
def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))


def _template(name: str) -> str:
    return (CHART / "templates" / name).read_text(encoding="utf-8")


def test_chart_templates_and_values_agree_with_the_plain_manifests() -> None:
    """What can be compared without rendering: files, kinds, flags, values, config.json."""
    values = _values()
    for path in (DEMO / "manifests").glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        template = _template(path.name)
        for doc in _load_all(path.read_text(encoding="utf-8")):
            assert f"kind: {doc['kind']}" in template, f"{path.name}: the template makes no {doc['kind']}"
            assert doc["apiVersion"] in template
    deployment = _one("manifests", "Deployment")
    server = _server_container(deployment)
    template = _template("deployment.yaml")
    manifest_flags = {a for a in server["args"] if a.startswith("--")}
    template_flags = set(re.findall(r"^\s*- (--[a-z_]+)\s*$", template, re.M))
    assert manifest_flags == template_flags - {"--api_key_file", "--pull", "--source_model", "--model_repository_path", "--task"}
    args = _parse_args(server["args"])
    assert server["image"] == f"{values['image']['repository']}:{values['image']['tag']}"
    assert (args.rest_port, args.port) == (values["server"]["restPort"], values["server"]["grpcPort"])
    assert args.shutdown_timeout == values["server"]["shutdownTimeout"]
    assert (args.log_level, args.log_format) == (values["server"]["logLevel"], values["server"]["logFormat"])
    assert args.file_system_poll_wait_seconds == values["server"]["filePollSeconds"]
    assert server["resources"] == values["resources"]
    assert server["securityContext"] == values["securityContext"]
    assert _pod_spec(deployment)["securityContext"] == values["podSecurityContext"]
    assert server["lifecycle"]["preStop"]["sleep"]["seconds"] == values["preStopSleepSeconds"]
    assert (
        _pod_spec(deployment)["terminationGracePeriodSeconds"] == values["preStopSleepSeconds"] + values["server"]["shutdownTimeout"] + 15
    )
    assert "add .Values.preStopSleepSeconds .Values.server.shutdownTimeout 15" in template
    for probe, probe_path in (("startup", "/v2/health/live"), ("liveness", "/v2/health/live"), ("readiness", "/v2/health/ready")):
        assert server[f"{probe}Probe"]["httpGet"]["path"] == probe_path
        assert {k: v for k, v in server[f"{probe}Probe"].items() if k != "httpGet"} == values["probes"][probe]
        assert re.search(rf"{probe}Probe:\n\s+httpGet:\n\s+path: {probe_path}\n", template), f"{probe}Probe in the template"
    hpa = _one("manifests", "HorizontalPodAutoscaler")["spec"]
    scaling = values["autoscaling"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling["minReplicas"], scaling["maxReplicas"])
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == scaling["metricName"]
    assert hpa["metrics"][0]["pods"]["target"]["averageValue"] == scaling["targetAverageValue"]
    pvc = _one("manifests", "PersistentVolumeClaim")["spec"]
    assert pvc["accessModes"] == values["modelRepository"]["pvc"]["accessModes"]
    assert pvc["resources"]["requests"]["storage"] == values["modelRepository"]["pvc"]["size"]
    config = json.loads(_one("manifests", "ConfigMap")["data"]["config.json"])
    mount = values["modelRepository"]["mountPath"]
    assert config == {
        "model_config_list": [{"config": {"name": m["name"], "base_path": f"{mount}/{m['basePath']}"}} for m in values["models"]]
    }
    assert _pod_labels(deployment)["inference.networking.k8s.io/engine-type"] == values["inferencePool"]["engineType"]
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
        return _load_all(text)
    try:
        import helm_python  # type: ignore[import-not-found]  # helm-python-sdk: Helm's Go SDK as a library
    except ImportError:
        return None
    with helm_python.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name="ovserve", namespace="default")
    return [doc for name, text in sorted(rendered.items()) if name.endswith(".yaml") for doc in _load_all(text)]


def _render_or_skip(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    docs = _helm_render(values)
    if docs is None:
        pytest.skip("no Helm engine here (neither the helm binary nor the helm-python-sdk package): the plain manifests stand in")
    return docs


def _by_kind_and_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_helm_default_render_equals_the_plain_manifests() -> None:
    rendered = _by_kind_and_name(_render_or_skip())
    plain = _by_kind_and_name(_docs("manifests"))
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
        _validate(doc)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = _pod_spec(deployment)
    for container in _ovserve_containers(pod):
        parsed = _parse_args(container["args"])
        for path in (parsed.config_path, parsed.api_key_file, parsed.model_repository_path):
            if path is not None:
                _mount_for(pod, container, str(path))
    server = _server_container(deployment)
    if values.get("apiKey"):
        assert _parse_args(server["args"]).api_key_file is not None
    if values.get("prometheusAdapter"):
        (adapter,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("prometheus-adapter-rules")]
        assert yaml.safe_load(adapter["data"]["config.yaml"])["rules"] == _values()["prometheusAdapter"]["rules"]
