"""Every document in demos/kubernetes/ against the real schemas (tests/helpers/kubernetes.py says
which), and every file listed by its folder's kustomization. No network: a few seconds.
"""

from __future__ import annotations

import pytest
import yaml

from tests.helpers.kubernetes import DEMO, MANIFEST_DIRS, all_documents, crd_schemas, is_core, one, validate
from tests.kubernetes.chart_render import render

DOCUMENT_IDS = [where for where, _ in all_documents()]


@pytest.mark.parametrize("where", DOCUMENT_IDS)
def test_every_document_matches_its_schema(where: str) -> None:
    doc = dict(all_documents())[where]
    assert {"apiVersion", "kind", "metadata"} <= doc.keys()
    validate(doc)


def test_every_custom_resource_has_a_stored_crd_schema() -> None:
    """The manifests' custom kinds and the chart's (its Prometheus Operator monitors, when on)."""
    monitors = render({"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}})
    custom = {(d["apiVersion"], d["kind"]) for d in [doc for _, doc in all_documents()] + monitors if not is_core(d)}
    assert custom == set(crd_schemas()), "a kind kubernetes-validate lacks and tests/data/crds too (or a stored schema nothing uses)"


def test_schemas_catch_breakage() -> None:
    """The validators do reject: an unknown field, a wrong type, in a core kind and in a CRD."""
    deployment = one("manifests", "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(pytest.fail.Exception, match="pathh"):
        validate(deployment)
    service = one("manifests", "Service")
    service["spec"]["ports"][0]["port"] = "eight thousand"
    with pytest.raises(pytest.fail.Exception):
        validate(service)
    pool = one("inference-gateway", "InferencePool")
    pool["spec"]["endpointPickerRef"]["failMode"] = "FailOpen"
    with pytest.raises(pytest.fail.Exception, match="failMode"):
        validate(pool)
    isvc = one("kserve", "InferenceService")
    isvc["spec"]["predictor"]["model"]["storageURI"] = "pvc://x"
    with pytest.raises(pytest.fail.Exception, match="storageURI"):
        validate(isvc)
    route = one("inference-gateway", "HTTPRoute", "ovserve-pool")
    route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    with pytest.raises(pytest.fail.Exception):
        validate(route)


def test_kustomizations_list_every_file() -> None:
    for folder in MANIFEST_DIRS:
        kustomization = yaml.safe_load((DEMO / folder / "kustomization.yaml").read_text(encoding="utf-8"))
        files = sorted(p.name for p in (DEMO / folder).glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(kustomization["resources"]) == files, folder
