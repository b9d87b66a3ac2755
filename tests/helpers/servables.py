"""Servable folders and config.json files for a real server: the stock LLM graph on a model,
OVMS-style servables, the three-servable config."""

from __future__ import annotations

import json
from pathlib import Path


def llm_graph(model_dir: Path, extra_options: str = "") -> str:
    """The stock LLM graph on `model_dir`, with extra LLM node options (pbtxt lines)."""
    from importlib import resources

    graph = resources.files("graphs.stock").joinpath("llm.pbtxt").read_text(encoding="utf-8")
    return graph.replace('models_path: "./"', f"models_path: {json.dumps(str(model_dir))}\n      {extra_options}")


def write_config(root: Path, graphs: dict[str, str]) -> Path:
    for name, graph in graphs.items():
        (root / name).mkdir(parents=True)
        (root / name / "graph.pbtxt").write_text(graph)
    config = {"model_config_list": [{"config": {"name": name, "base_path": name}} for name in graphs]}
    (root / "config.json").write_text(json.dumps(config))
    return root / "config.json"


# As OVMS's export tool writes it for a plain text-generation model (models_path "./": the
# model files sit beside graph.pbtxt).
OVMS_GRAPH = """# File created with: OpenVINO Model Server 2026.0.0
# OVMS_GRAPH_QUEUE_MAX_SIZE: 8
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"

node: {
  name: "LLMExecutor"
  calculator: "HttpLLMCalculator"
  input_stream: "LOOPBACK:loopback"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  input_side_packet: "LLM_NODE_RESOURCES:llm"
  output_stream: "LOOPBACK:loopback"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  input_stream_info: {
    tag_index: 'LOOPBACK:0',
    back_edge: true
  }
  node_options: {
      [type.googleapis.com / mediapipe.LLMCalculatorOptions]: {
          models_path: "./",
          plugin_config: '{ }',
          enable_prefix_caching: false,
          cache_size: 1,
          max_num_seqs: 256,
          device: "CPU",
      }
  }
  input_stream_handler {
    input_stream_handler: "SyncSetInputStreamHandler",
    options {
      [mediapipe.SyncSetInputStreamHandlerOptions.ext] {
        sync_set {
          tag_index: "LOOPBACK:0"
        }
      }
    }
  }
}
"""


def ovms_servable(folder: Path, model_dir: Path, graph: str = OVMS_GRAPH) -> None:
    """An OVMS servable folder: the model's files (linked) plus graph.pbtxt."""
    folder.mkdir(parents=True)
    for item in model_dir.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "graph.pbtxt").write_text(graph)


STOCK = Path(__file__).resolve().parents[2] / "graphs" / "stock"


def servable_folder(folder: Path, model_dir: Path, graph: str) -> None:
    """A config.json servable: the model's files (linked) plus a stock graph."""
    folder.mkdir(parents=True)
    for item in model_dir.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "graph.pbtxt").write_text((STOCK / graph).read_text())


def three_servables(root: Path, tiny: Path, minilm: Path, reranker: Path) -> Path:
    """A config.json serving `tiny` (text generation), `minilm` (embeddings) and `rerank` on the
    stock graphs; its path."""
    servable_folder(root / "tiny", tiny, "llm.pbtxt")
    servable_folder(root / "minilm", minilm, "embeddings.pbtxt")
    servable_folder(root / "rerank", reranker, "rerank.pbtxt")
    config = {"mediapipe_config_list": [{"name": name, "base_path": name} for name in ("tiny", "minilm", "rerank")]}
    (root / "config.json").write_text(json.dumps(config))
    return root / "config.json"
