"""Which weight compression a pull applies: what `optimum-cli export openvino --weight-format F`
applies without compression flags (optimum-intel 2.2.0, optimum/commands/export/openvino.py).

int4 and int8 take optimum-intel's per-model default config when it has one for the model (looked
up by Hugging Face id, by the folder's config.json `_name_or_path` and by folder name, as
optimum's `get_default_quantization_config` does); otherwise int4 takes its generic default
(`_DEFAULT_4BIT_WQ_CONFIG`: asymmetric, group 128, ratio 1.0) and int8 per-channel asymmetric.
fp16 / fp32 compress nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

_INT8_CONFIG = {"bits": 8, "sym": False, "group_size": -1, "ratio": 1.0}


def weight_quantization(weight_format: str, model_ids: Sequence[str]) -> tuple[dict[str, Any], bool] | None:
    """(config, whether it is the model's own default) for int4 / int8; None for fp16 / fp32.
    `model_ids`: the Hugging Face id the user gave and/or the local folder, best first."""
    if weight_format not in ("int4", "int8"):
        return None
    from optimum.intel.openvino.configuration import _DEFAULT_4BIT_WQ_CONFIG, get_default_quantization_config

    for model_id in model_ids:
        found = get_default_quantization_config(model_id, weight_format)
        if found is not None:
            return copy.deepcopy(dict(found)), True
    generic = _DEFAULT_4BIT_WQ_CONFIG if weight_format == "int4" else _INT8_CONFIG
    return copy.deepcopy(dict(generic)), False


def describe(config: dict[str, Any]) -> str:
    """A short line for the progress output, e.g. `bits=4 sym=False group_size=64`."""
    return " ".join(f"{key}={value}" for key, value in config.items() if value is not None and not isinstance(value, dict)) or str(config)
