"""OVMS command-line flags that have no role here, accepted so OVMS scripts, container args and
Kubernetes manifests start ovserve unchanged; one warning at start-up names the ones given.

OVMS's own parameters (docs/parameters.md of the model server): gRPC server tuning (ovserve's
gRPC front end runs in the one asyncio loop), the sequence and custom-node cleaners (no stateful
models or custom nodes here), OpenVINO CPU extensions, and the per-model options of its
single-model mode that apply to classic (non-generative) models.
"""

from __future__ import annotations

import argparse

# flag -> what it did in OVMS, for --help (each takes one value, as in OVMS)
NO_EFFECT = {
    "grpc_workers": "gRPC server instances",
    "grpc_max_threads": "gRPC server threads",
    "grpc_memory_quota": "gRPC memory quota",
    "grpc_channel_arguments": "gRPC channel arguments",
    "sequence_cleaner_poll_wait_minutes": "stateful models' sequence cleaner interval",
    "custom_node_resources_cleaner_interval_seconds": "custom nodes' resource cleaner interval",
    "cpu_extension": "a library of custom OpenVINO layers",
    "nireq": "a classic model's inference request queue",
    "model_version_policy": "which model versions are served",
    "batch_size": "a classic model's batch size",
    "shape": "a classic model's input shapes",
    "layout": "a classic model's input/output layouts",
    "stateful": "a classic model as stateful",
    "idle_sequence_cleanup": "stateful models' idle sequence cleanup",
    "max_sequence_number": "stateful models' concurrent sequences",
    "low_latency_transformation": "stateful models' low-latency transformation",
}
# --log_level values OVMS has and we map onto ours
LOG_LEVELS = {"TRACE": "DEBUG"}


def add_ovms_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("OVMS flags accepted with no effect here (one warning names them)")
    for name, what in NO_EFFECT.items():
        group.add_argument(f"--{name}", metavar="VALUE", help=f"OVMS: {what}")


def accept_ovms_flags(args: argparse.Namespace) -> list[str]:
    """The OVMS-only flags given (as `--name value`), with --log_level mapped onto ours."""
    given = [f"--{name} {value}" for name in NO_EFFECT if (value := getattr(args, name, None)) is not None]
    if args.log_level in LOG_LEVELS:
        given.append(f"--log_level {args.log_level} (logs as {LOG_LEVELS[args.log_level]})")
        args.log_level = LOG_LEVELS[args.log_level]
    return given


def warning(given: list[str]) -> str:
    return f"OVMS flags accepted for compatibility; they have no effect here: {', '.join(given)}"
