"""Check a graph against the calculators it names: one pure pass that reports every problem at once.

A server must never listen with an invalid graph, and a user fixing a graph wants the whole list,
not one error per restart. Every message names its node (name and calculator) and its stream.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from graphs.calculator import Calculator, Contract, Options
from graphs.config import GraphConfig, NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.registry import Registry, default_registry

# A subgraph may expand into further subgraphs; past this depth it is surely expanding into itself.
MAX_SUBGRAPH_DEPTH = 8


@dataclass(frozen=True, slots=True)
class ValidatedNode:
    config: NodeConfig
    name: str  # unique; "<calculator>_<i>" when the config has no name
    calculator: type[Calculator]
    options: Options  # validated instance of calculator.contract.options


@dataclass(frozen=True, slots=True)
class ValidatedGraph:
    config: GraphConfig  # after subgraph expansion
    nodes: tuple[ValidatedNode, ...]


def expand_subgraphs(config: GraphConfig, registry: Registry) -> GraphConfig:
    """Replace every node whose calculator is a registered `Subgraph` by the nodes it expands into."""
    expanded, problems = _expand(config, registry)
    if problems:
        raise GraphConfigError(config.source, problems)
    return expanded


def validate(config: GraphConfig, registry: Registry = default_registry) -> ValidatedGraph:
    """Expand subgraphs and check everything; raises `GraphConfigError` listing all problems."""
    expanded, problems = _expand(config, registry)
    names = _node_names(expanded.nodes, problems)
    labels = [f'node "{name}" ({node.calculator})' for node, name in zip(expanded.nodes, names, strict=True)]
    classes: list[type[Calculator] | None] = []
    validated: list[ValidatedNode] = []
    for node, name, label in zip(expanded.nodes, names, labels, strict=True):
        cls = registry.get_calculator(node.calculator)
        classes.append(cls)
        _check_back_edges(node, label, problems)
        if cls is None:
            # A subgraph still here failed to expand, which is already reported.
            if registry.get_subgraph(node.calculator) is None:
                problems.append(_unknown_calculator(node.calculator, label, registry))
            continue
        _check_contract(node, cls.contract, label, problems)
        options = _validate_options(cls.contract.options, node.options, label, problems)
        if options is not None:
            validated.append(ValidatedNode(node, name, cls, options))
    _check_streams(expanded, labels, problems)
    _check_side_packets(expanded, labels, classes, problems)
    _check_cycles(expanded.nodes, labels, problems)
    if problems:
        raise GraphConfigError(config.source, problems)
    return ValidatedGraph(expanded, tuple(validated))


# --- subgraphs -------------------------------------------------------------------------------------


def _expand(config: GraphConfig, registry: Registry) -> tuple[GraphConfig, list[str]]:
    """Expand what can be; a node that cannot be expanded stays (unexpanded) and a problem is recorded."""
    problems: list[str] = []
    nodes: list[NodeConfig] = []
    for index, node in enumerate(config.nodes):
        label = f'node "{node.name}"' if node.name else f"node #{index + 1}"
        nodes.extend(_expand_node(node, f"{label} ({node.calculator})", registry, 0, problems))
    return dataclasses.replace(config, nodes=tuple(nodes)), problems


def _expand_node(node: NodeConfig, label: str, registry: Registry, depth: int, problems: list[str]) -> list[NodeConfig]:
    subgraph = registry.get_subgraph(node.calculator)
    if subgraph is None:
        return [node]
    options = _validate_options(subgraph.options, node.options, label, problems)
    if options is None:
        return [node]
    if depth >= MAX_SUBGRAPH_DEPTH:
        problems.append(f"{label}: subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} levels (does one expand into itself?)")
        return [node]
    try:
        children = subgraph.expand(node, options)
    except GraphConfigError as exc:
        # An expander's own problems usually name the node already; add the label only when not.
        problems.extend(p if p.startswith("node ") else f"{label}: {p}" for p in exc.problems)
        return [node]
    except ValueError as exc:
        problems.append(f"{label}: cannot expand subgraph: {exc}")
        return [node]
    expanded: list[NodeConfig] = []
    for child in children:
        child_label = f'{label} -> node "{child.name or "?"}" ({child.calculator})'
        expanded.extend(_expand_node(child, child_label, registry, depth + 1, problems))
    return expanded


# --- per node --------------------------------------------------------------------------------------


def _node_names(nodes: Iterable[NodeConfig], problems: list[str]) -> list[str]:
    nodes = list(nodes)
    explicit: dict[str, int] = defaultdict(int)
    for node in nodes:
        if node.name:
            explicit[node.name] += 1
    for name, count in explicit.items():
        if count > 1:
            problems.append(f'node name "{name}" is used by {count} nodes')
    taken = set(explicit)
    names: list[str] = []
    for index, node in enumerate(nodes):
        if node.name:
            names.append(node.name)
            continue
        name = candidate = f"{node.calculator}_{index}"
        suffix = 2
        while name in taken:  # an explicit name may already look like an automatic one
            name, suffix = f"{candidate}_{suffix}", suffix + 1
        taken.add(name)
        names.append(name)
    return names


def _unknown_calculator(calculator: str, label: str, registry: Registry) -> str:
    close = difflib.get_close_matches(calculator, registry.names(), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{label}: unknown calculator {calculator!r}{hint}"


def _tag(tag: str) -> str:
    return f'tag "{tag}"' if tag else "no tag"


def _tags(tags: frozenset[str]) -> str:
    return ", ".join(t or "(no tag)" for t in sorted(tags)) or "none"


def _check_contract(node: NodeConfig, contract: Contract, label: str, problems: list[str]) -> None:
    kinds: tuple[tuple[str, tuple[StreamRef, ...], frozenset[str], frozenset[str]], ...] = (
        ("input stream", node.input_streams, contract.inputs, contract.required_inputs),
        ("output stream", node.output_streams, contract.outputs, contract.required_outputs),
        ("input side packet", node.input_side_packets, contract.side_packets, contract.required_side_packets),
    )
    for kind, refs, accepted, required in kinds:
        seen: dict[str, StreamRef] = {}
        for ref in refs:
            if ref.tag not in accepted:
                problems.append(
                    f'{label}: {kind} "{ref}" has {_tag(ref.tag)}, which {node.calculator} does not take ({kind}s: {_tags(accepted)})'
                )
            if ref.tag_index in seen:
                problems.append(f'{label}: {kind} {ref.tag_index} is bound twice ("{seen[ref.tag_index]}", "{ref}")')
            seen.setdefault(ref.tag_index, ref)
        bound = {ref.tag for ref in refs}
        for tag in sorted(required - bound):
            what = f'{kind} tag "{tag}"' if tag else f"untagged {kind}"
            problems.append(f"{label}: required {what} is missing")
    for ref in node.output_side_packets:
        # Side packets come from the providers a contract declares, never from a node's outputs.
        problems.append(f'{label}: output side packet "{ref}": {node.calculator} produces no output side packets')


def _check_back_edges(node: NodeConfig, label: str, problems: list[str]) -> None:
    inputs = {ref.tag_index for ref in node.input_streams}
    for tag_index in sorted(node.back_edges - inputs):
        problems.append(f'{label}: input_stream_info marks "{tag_index}" as a back edge, but the node has no such input stream')


def _validate_options(model: type[Options], options: dict[str, Any], label: str, problems: list[str]) -> Options | None:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        for error in exc.errors():
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
            problems.append(f"{label}: option {where}: {error['msg']}" if where else f"{label}: options: {error['msg']}")
        return None


# --- whole graph -----------------------------------------------------------------------------------


def _check_streams(config: GraphConfig, labels: list[str], problems: list[str]) -> None:
    producers: dict[str, list[str]] = defaultdict(list)
    for ref in config.input_streams:
        producers[ref.name].append("graph input_stream")
    for node, label in zip(config.nodes, labels, strict=True):
        for ref in node.output_streams:
            producers[ref.name].append(label)
    for name, who in producers.items():
        if len(who) > 1:
            problems.append(f'stream "{name}" has {len(who)} producers: {", ".join(who)}')
    for node, label in zip(config.nodes, labels, strict=True):
        for ref in node.input_streams:
            if ref.name not in producers:
                problems.append(f'{label}: input stream "{ref}" is produced by no node and is not a graph input_stream')
    for ref in config.output_streams:
        if ref.name not in producers:
            problems.append(f'graph output_stream "{ref}" is produced by no node')


def _check_side_packets(config: GraphConfig, labels: list[str], classes: list[type[Calculator] | None], problems: list[str]) -> None:
    # A node provides side packet NAME when its contract has a provider for the tag it references NAME under.
    sources: dict[str, list[str]] = defaultdict(list)
    for ref in config.input_side_packets:
        sources[ref.name].append("graph input_side_packet")
    for node, label, cls in zip(config.nodes, labels, classes, strict=True):
        if cls is not None:
            for ref in node.input_side_packets:
                if ref.tag in cls.contract.providers:
                    sources[ref.name].append(label)
    for name, who in sources.items():
        if len(who) > 1:
            problems.append(f'side packet "{name}" has {len(who)} sources: {", ".join(who)}')
    for node, label, cls in zip(config.nodes, labels, classes, strict=True):
        if cls is None:
            continue  # unknown contract: its own provider references cannot be told apart
        for ref in node.input_side_packets:
            if ref.name not in sources:
                problems.append(
                    f'{label}: input side packet "{ref}" is neither a graph input_side_packet nor built by any node\'s provider'
                )


def _check_cycles(nodes: tuple[NodeConfig, ...], labels: list[str], problems: list[str]) -> None:
    producer: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for ref in node.output_streams:
            producer.setdefault(ref.name, index)
    # edges[i] = [(j, stream)]: node j consumes, through a non-back-edge input, a stream node i produces.
    edges: list[list[tuple[int, StreamRef]]] = [[] for _ in nodes]
    for index, node in enumerate(nodes):
        for ref in node.input_streams:
            if ref.tag_index not in node.back_edges and ref.name in producer:
                edges[producer[ref.name]].append((index, ref))

    white, grey, black = 0, 1, 2
    color = [white] * len(nodes)
    reported: set[frozenset[int]] = set()

    def visit(start: int) -> None:
        # Iterative DFS; `path` holds (node, stream that led to it) for the nodes on the current branch.
        path: list[tuple[int, StreamRef | None]] = [(start, None)]
        pending = [iter(edges[start])]
        color[start] = grey
        while pending:
            step = next(pending[-1], None)
            if step is None:
                color[path.pop()[0]] = black
                pending.pop()
                continue
            target, ref = step
            if color[target] == white:
                color[target] = grey
                path.append((target, ref))
                pending.append(iter(edges[target]))
            elif color[target] == grey:
                first = next(i for i, (n, _) in enumerate(path) if n == target)
                cycle = path[first:]
                key = frozenset(n for n, _ in cycle)
                if key not in reported:
                    reported.add(key)
                    problems.append(_describe_cycle(cycle, (target, ref), labels))

    for index in range(len(nodes)):
        if color[index] == white:
            visit(index)


def _describe_cycle(cycle: list[tuple[int, StreamRef | None]], closing: tuple[int, StreamRef], labels: list[str]) -> str:
    text = labels[cycle[0][0]]
    for node, ref in [*cycle[1:], closing]:
        text += f" -[{ref}]-> {labels[node]}"
    hint = f'input_stream_info {{ tag_index: "{closing[1].tag_index}" back_edge: true }}'
    return f"cycle without a back edge: {text}; if the last stream loops back on purpose, mark it in {labels[closing[0]]} with {hint}"
