"""The KServe manifests (demos/kubernetes/kserve/): the ServingRuntime's args through our CLI parser."""

from __future__ import annotations

from tests.helpers.kubernetes import check_probe, one, parse_args


def test_kserve_runtime_serves_mnt_models_on_both_protocols() -> None:
    runtime = one("kserve", "ServingRuntime")
    isvc = one("kserve", "InferenceService")
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])
    (container,) = runtime["spec"]["containers"]
    args = parse_args(container["args"])
    assert str(args.model_path) == "/mnt/models"
    assert args.rest_bind_address == "0.0.0.0"
    ports = [p["containerPort"] for p in container["ports"]]
    assert ports == [args.rest_port, args.port]  # KServe's Service: port 80 -> the first, the others as they are
    assert args.rest_port == 8080  # KServe's default HTTP port
    check_probe(container, "readinessProbe", "/v2/health/ready", args.rest_port)
    check_probe(container, "livenessProbe", "/v2/health/live", args.rest_port)
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
