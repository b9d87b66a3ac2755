"""The KServe manifests (demos/kubernetes/kserve/): the ServingRuntime's args through our CLI parser,
the model formats KServe's OVMS runtimes use, and the chart's probes and security context.
"""

from __future__ import annotations

from tests.helpers.kubernetes import chart_values, check_probe, dockerfile_user, mount_for, one, parse_args


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
    check_probe(container, "startupProbe", "/v2/health/live", args.rest_port)
    check_probe(container, "readinessProbe", "/v2/health/ready", args.rest_port)
    check_probe(container, "livenessProbe", "/v2/health/live", args.rest_port)
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]


def test_runtime_takes_the_model_formats_kserve_names_for_openvino() -> None:
    """KServe's kserve-ovms says `openvino` "1"; OVMS's ModelMesh / OpenShift AI runtimes say
    `openvino_ir` (opset1, opset13), and InferenceServices written for OVMS ask for `openvino_ir`."""
    runtime = one("kserve", "ServingRuntime")
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert {("openvino", "1"), ("openvino_ir", "opset1"), ("openvino_ir", "opset13")} <= formats
    assert all(f.get("autoSelect") for f in runtime["spec"]["supportedModelFormats"])
    wanted = one("kserve", "InferenceService")["spec"]["predictor"]["model"]["modelFormat"]
    assert wanted["name"] == "openvino_ir"
    # KServe matches a format without a version on its name, one with a version on both.
    assert (wanted["name"], wanted["version"]) in formats if "version" in wanted else wanted["name"] in {n for n, _ in formats}


def test_runtime_has_the_charts_probes_and_security_context() -> None:
    values = chart_values()
    runtime = one("kserve", "ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    for probe in ("startup", "liveness", "readiness"):
        assert {k: v for k, v in container[f"{probe}Probe"].items() if k != "httpGet"} == values["probes"][probe], probe
    security = container["securityContext"]
    # A ServingRuntime has no pod securityContext: the container's holds the chart's pod-level rules too.
    assert values["securityContext"].items() <= security.items()
    pod_level = {k: v for k, v in values["podSecurityContext"].items() if k != "fsGroup"}
    assert pod_level.items() <= security.items()
    assert security["runAsUser"] == dockerfile_user()
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    _, tmp = mount_for(runtime["spec"], container, "/tmp")
    assert tmp["emptyDir"] == {}
    pod = one("kserve", "InferenceService")["spec"]["predictor"]["securityContext"]
    assert pod["fsGroup"] == values["podSecurityContext"]["fsGroup"]
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"} and pod["runAsNonRoot"] is True
