"""`ovserve graph check FILE…` validates graph.pbtxt files without serving them (for users' CI);
`ovserve graph calculators` lists what a graph can use; `ovserve graph show FILE [--format
mermaid|dot|svg|png]` draws one: nodes (calculator and
name), the streams between them with their tags, side packets, back edges dashed, and OVMS
subgraphs (e.g. HttpLLMCalculator) expanded into the nodes that really run. Mermaid and DOT are
text; svg and png need Graphviz's `dot` program. Users' calculators come in as when serving:
installed `ovserve.calculators` entry points always, `--calculator_module` and a config.json's
`calculator_modules` (`--config_path`) on request.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import subprocess
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import calculators  # noqa: F401 - registers the stock calculators
from graphs.calculator import NoOptions, Options
from graphs.config import GraphConfig, NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.options_proto import options_type_name
from graphs.pbtxt import load_graph
from graphs.registry import Registry, default_registry
from graphs.validate import validate
from serving.config_file import ConfigFileError
from serving.loading import load_user_calculators


@dataclass(frozen=True, slots=True)
class Edge:
    source: str  # a node id, or "graph_in" / "graph_out" / a side-packet id
    target: str
    label: str
    back_edge: bool = False
    side_packet: bool = False


def node_ids(config: GraphConfig) -> list[str]:
    return [f"n{i}" for i in range(len(config.nodes))]


def _label(node: NodeConfig) -> str:
    return f"{node.calculator}\\n{node.name}" if node.name else node.calculator


def edges(config: GraphConfig) -> list[Edge]:
    """Every stream from its producer (a node or the graph's input) to each consumer, and every
    side packet from the graph or the node providing it to each node that takes it."""
    ids = node_ids(config)
    producers: dict[str, tuple[str, StreamRef]] = {ref.name: ("graph_in", ref) for ref in config.input_streams}
    for node_id, node in zip(ids, config.nodes, strict=True):
        for ref in node.output_streams:
            producers[ref.name] = (node_id, ref)
    found: list[Edge] = []
    for node_id, node in zip(ids, config.nodes, strict=True):
        for ref in node.input_streams:
            source, _ = producers.get(ref.name, ("graph_in", ref))
            found.append(Edge(source, node_id, str(ref), ref.tag_index in node.back_edges))
        for ref in node.input_side_packets:
            found.append(Edge(f"side_{ref.name}", node_id, ref.tag or ref.name, side_packet=True))
    for ref in config.output_streams:
        source, _ = producers.get(ref.name, ("graph_in", ref))
        found.append(Edge(source, "graph_out", ref.name))
    return found


def side_packets(config: GraphConfig) -> list[str]:
    return sorted({ref.name for node in config.nodes for ref in node.input_side_packets})


def to_mermaid(config: GraphConfig) -> str:
    lines = ["flowchart TD", '  graph_in(["graph inputs"])', '  graph_out(["graph outputs"])']
    for node_id, node in zip(node_ids(config), config.nodes, strict=True):
        lines.append(f'  {node_id}["{_label(node).replace(chr(92) + "n", "<br/>")}"]')
    for name in side_packets(config):
        lines.append(f'  side_{name}[("{name}")]')
    for edge in edges(config):
        arrow = "-.->" if edge.back_edge or edge.side_packet else "-->"
        lines.append(f'  {edge.source} {arrow}|"{edge.label}"| {edge.target}')
    return "\n".join(lines) + "\n"


def to_dot(config: GraphConfig) -> str:
    lines = [
        "digraph graph_config {",
        "  rankdir=TB;",
        '  node [shape=box, fontname="Helvetica"];',
        '  graph_in [label="graph inputs", shape=oval];',
        '  graph_out [label="graph outputs", shape=oval];',
    ]
    for node_id, node in zip(node_ids(config), config.nodes, strict=True):
        lines.append(f'  {node_id} [label="{_label(node)}"];')
    for name in side_packets(config):
        lines.append(f'  side_{name} [label="{name}", shape=cylinder];')
    for edge in edges(config):
        style = ", style=dashed" if edge.back_edge or edge.side_packet else ""
        lines.append(f'  {edge.source} -> {edge.target} [label="{edge.label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def check(paths: list[Path]) -> int:
    """Validate each file; one line per file, every problem listed; exit 0 when all are valid."""
    failed = 0
    for path in paths:
        try:
            graph = validate(load_graph(path))
        except (GraphConfigError, OSError) as exc:
            failed += 1
            print(f"{path}: invalid\n{exc}" if isinstance(exc, GraphConfigError) else f"{path}: {exc}", file=sys.stderr)
            continue
        print(f"{path}: valid ({len(graph.nodes)} nodes after subgraph expansion)")
    return 1 if failed else 0


def show(path: Path, kind: str, output: Path | None) -> int:
    try:
        config = validate(load_graph(path)).config
    except (GraphConfigError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    text = to_mermaid(config) if kind == "mermaid" else to_dot(config)
    if kind in ("mermaid", "dot"):
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text)
        return 0
    dot = shutil.which("dot")
    if dot is None:
        print(f"--format {kind} needs Graphviz's `dot` program; use --format mermaid or dot for text", file=sys.stderr)
        return 2
    rendered = subprocess.run([dot, f"-T{kind}"], input=text.encode(), capture_output=True, check=True).stdout
    if output is None:
        sys.stdout.buffer.write(rendered)
    else:
        output.write_bytes(rendered)
    return 0


def _type_name(annotation: Any) -> str:
    """A short, readable spelling: `int | None`, `list[Rule]`, `'LM' | 'LM_CB'`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list[{_type_name(next(a for a in args if a is not Ellipsis))}]"
    if origin is dict:
        return f"dict[{_type_name(args[0])}, {_type_name(args[1])}]"
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def _summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph."""
    paragraph = " ".join((inspect.cleandoc(doc or "").split("\n\n") or [""])[0].split())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + dot.strip()


def describe_calculators(registry: Registry = default_registry) -> list[dict[str, object]]:
    """Every registered calculator and subgraph: tags (required ones marked), options with their
    types and defaults, the options type for graph.pbtxt, and the first line of its doc."""
    found: list[dict[str, object]] = []
    for name in registry.names():
        cls = registry.get_calculator(name)
        if cls is None:
            subgraph = registry.get_subgraph(name)
            assert subgraph is not None
            found.append({"name": name, "kind": "subgraph", "doc": _summary(subgraph.doc), "options": _options(subgraph.options)})
            continue
        contract = cls.contract
        entry: dict[str, object] = {
            "name": name,
            "kind": "calculator",
            "module": cls.__module__,
            "doc": _summary(cls.__dict__.get("__doc__")),  # its own, not the base class's
            "inputs": _tags(contract.inputs, contract.required_inputs),
            "outputs": _tags(contract.outputs, contract.required_outputs),
            "side_packets": _tags(contract.side_packets, contract.required_side_packets),
            "inline": cls.inline,
            "options": _options(contract.options),
        }
        if contract.options is not NoOptions:
            entry["options_type"] = options_type_name(name)
        found.append(entry)
    return found


def _tags(tags: frozenset[str], required: frozenset[str]) -> list[str]:
    return [tag if tag in required else f"{tag}?" for tag in sorted(tags)]


def _options(options: type[Options]) -> dict[str, str]:
    described = {}
    for field_name, info in options.model_fields.items():
        default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
        described[field_name] = f"{_type_name(info.annotation)} = {default}"
    return described


def list_calculators(as_json: bool) -> int:
    described = describe_calculators()
    if as_json:
        print(json.dumps(described, indent=2))
        return 0
    for entry in described:
        print(f"{entry['name']} ({entry['kind']}{', inline' if entry.get('inline') else ''}): {entry['doc']}")
        for key in ("inputs", "outputs", "side_packets"):
            if entry.get(key):
                print(f"  {key}: {' '.join(entry[key])}")  # type: ignore[arg-type]
        if entry.get("options_type"):
            print(f"  options ({entry['options_type']}):")
            for field_name, text in entry["options"].items():  # type: ignore[attr-defined]
                print(f"    {field_name}: {text}")
    return 0


def _add_plugin_args(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--calculator_module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module of your calculators first: a dotted name or a .py file (repeatable)",
    )
    command.add_argument("--config_path", type=Path, help="import the calculator_modules of this config.json first")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ovserve graph", description="Validate or draw graph.pbtxt files.")
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="validate without serving (exit 1 if any file is invalid)")
    check_cmd.add_argument("files", nargs="+", type=Path)
    _add_plugin_args(check_cmd)
    show_cmd = commands.add_parser("show", help="draw the graph (subgraphs expanded)")
    show_cmd.add_argument("file", type=Path)
    show_cmd.add_argument("--format", choices=["mermaid", "dot", "svg", "png"], default="mermaid", help="[mermaid]")
    show_cmd.add_argument("--output", "-o", type=Path, help="write here instead of standard output")
    _add_plugin_args(show_cmd)
    list_cmd = commands.add_parser("calculators", help="list every calculator and subgraph: tags (? = optional) and options")
    list_cmd.add_argument("--json", action="store_true", help="as JSON")
    _add_plugin_args(list_cmd)
    args = parser.parse_args(argv)
    try:
        load_user_calculators(args.config_path, args.calculator_module)
    except ConfigFileError as exc:
        print(f"ovserve graph: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        return check(args.files)
    if args.command == "calculators":
        return list_calculators(args.json)
    return show(args.file, args.format, args.output)
