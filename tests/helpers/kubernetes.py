"""The Kubernetes deployment files (demos/kubernetes/, Dockerfile) loaded, validated against
the real schemas, and taken apart for cross-references: shared by tests/kubernetes/.

* Core kinds: kubernetes-validate's JSON schemas of one pinned Kubernetes version, strict (an
  unknown field is an error).
* Custom resources (KServe, Gateway API, Inference Extension): the openAPIV3Schema of the
  upstream CRDs in tests/data/crds/ (source and licence in each file's header), made strict the
  way the API server's strict field validation is (unknown fields are errors where the schema
  does not keep them). CEL rules (x-kubernetes-validations) are not evaluated.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from serving.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demos" / "kubernetes"
CHART = DEMO / "chart" / "ovserve"
CRDS = ROOT / "tests" / "data" / "crds"
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


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def manifest_files() -> list[Path]:
    return sorted(p for d in MANIFEST_DIRS for p in (DEMO / d).glob("*.yaml") if p.name != "kustomization.yaml")


@functools.cache
def all_documents() -> tuple[tuple[str, dict[str, Any]], ...]:
    out = []
    for path in manifest_files():
        for doc in load_all(path.read_text(encoding="utf-8")):
            out.append((f"{path.relative_to(DEMO)}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}", doc))
    return tuple(out)


def documents(folder: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        copy.deepcopy(doc)
        for where, doc in all_documents()
        if (folder is None or where.startswith(folder + "/")) and (kind is None or doc["kind"] == kind)
    ]


def one(folder: str, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents(folder, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {folder}/, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------- schemas


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        schemas[(f"{data['group']}/{data['version']}", data["kind"])] = strict(data["openAPIV3Schema"])
    return schemas


def strict(schema: Any) -> Any:
    """As the API server's strict field validation: a field no schema declares is an error.

    Only structural nodes (properties, items, additionalProperties) are closed; anyOf/allOf/oneOf
    branches only constrain values in structural schemas, so they are left as they are.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {key: strict(value) for key, value in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    return out


@functools.cache
def has_core_schema(api_version: str, kind: str) -> bool:
    try:
        kubernetes_validate.validate({"apiVersion": api_version, "kind": kind}, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError:
        pass
    return True


def is_core(doc: dict[str, Any]) -> bool:
    return has_core_schema(doc["apiVersion"], doc["kind"])


def validate_core(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)  # it is the jsonschema error, re-classed
        pytest.fail(f"{doc['kind']} {doc['metadata'].get('name')}: {where}: {exc.message}")


def validate_custom(doc: dict[str, Any]) -> None:
    schema = crd_schemas()[(doc["apiVersion"], doc["kind"])]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        pytest.fail("\n".join(f"{doc['kind']}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors))
    # metadata is a bare `type: object` in CRD schemas: hold it to the real ObjectMeta schema.
    validate_core({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]})


def validate(doc: dict[str, Any]) -> None:
    (validate_core if is_core(doc) else validate_custom)(doc)


# --------------------------------------------------------------------------- helpers for cross-references


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def ovserve_containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for container in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        if OVSERVE_IMAGE.match(container["image"]):
            yield container


def server_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in pod_spec(workload)["containers"] if OVSERVE_IMAGE.match(c["image"])]
    return container


def parse_args(args: list[str]) -> Any:
    # KServe fills {{.Name}} with the InferenceService's name.
    args = [a.replace("{{.Name}}", "qwen3-8b") for a in args]
    try:
        return build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"ovserve's CLI rejects these args: {args}")


def port_numbers(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def mount_for(pod_spec: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volumeMount (and its volume) that holds `path` in `container`."""
    mounts = [m for m in container.get("volumeMounts", []) if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mounts, f"{container['name']}: nothing is mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def check_probe(container: dict[str, Any], probe_name: str, path: str, rest_port: int) -> None:
    probe = container[probe_name]["httpGet"]
    assert probe["path"] == path, f"{probe_name} path"
    port = probe["port"]
    number = port_numbers(container)[port] if isinstance(port, str) else port
    assert number == rest_port, f"{probe_name} is not on the REST port"


def metric_family(spec: str) -> str:
    match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?", spec.strip())
    assert match, f"not a metric selector: {spec!r}"
    return match.group(1)


# --------------------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and not line.startswith("#")]


def dockerfile_user() -> int:
    users = [arg for op, arg in dockerfile() if op == "USER"]
    return int(users[-1].split(":")[0])


# --------------------------------------------------------------------------- the Helm chart


@functools.cache
def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
