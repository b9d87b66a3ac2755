"""Building the continuous-batching worker's ContinuousBatchingPipeline from its WorkerSpec: the
scheduler (with KV-cache eviction), a draft model, LoRA adapters. The same call builds a text
model's (openvino_model.xml) and a vision-language model's (VLM_CB) pipeline: genai tells them
apart by the folder."""

from __future__ import annotations

from typing import Any

from calculators.llm.engine.base import WorkerSpec


def build_pipeline(ov_genai: Any, spec: WorkerSpec, adapters: list[Any]) -> Any:
    """`adapters`: genai `Adapter`s the pipeline holds (requests take turns by adapter)."""
    scheduler = ov_genai.SchedulerConfig()
    fields = dict(spec.scheduler)
    if (eviction := fields.pop("cache_eviction_config", None)) is not None:
        from calculators.llm.kv_cache import genai_eviction

        scheduler.use_cache_eviction = True
        scheduler.cache_eviction_config = genai_eviction(ov_genai, eviction)
    for key, value in fields.items():
        setattr(scheduler, key, value)
    properties = dict(spec.properties)  # {"prompt_lookup": true} stays in: genai reads it there
    if (draft := spec.draft) is not None:
        draft_scheduler = ov_genai.SchedulerConfig()
        for key, value in draft["scheduler"].items():
            setattr(draft_scheduler, key, value)
        properties["draft_model"] = ov_genai.draft_model(draft["models_path"], draft["device"], scheduler_config=draft_scheduler)
    if adapters:
        properties["adapters"] = ov_genai.AdapterConfig(adapters)
        # A cached prefix's KV depends on the adapter that computed it: no sharing across adapters.
        scheduler.enable_prefix_caching = False
    return ov_genai.ContinuousBatchingPipeline(spec.models_path, scheduler, spec.device, properties)
