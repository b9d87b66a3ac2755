"""Calculator and subgraph registry: the names a graph config may use in `calculator:`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from graphs.calculator import Calculator, NoOptions, Options
from graphs.config import NodeConfig
from graphs.options_proto import declare_options_message

C = TypeVar("C", bound=type[Calculator])

# Expands one node of a subgraph type into the nodes that implement it.
SubgraphExpander = Callable[[NodeConfig, Any], tuple[NodeConfig, ...]]


@dataclass(frozen=True, slots=True)
class Subgraph:
    name: str
    options: type[Options]
    expand: SubgraphExpander
    doc: str = ""


class Registry:
    """Maps calculator names to classes and subgraph names to expanders."""

    def __init__(self, declare_options: bool = True) -> None:
        """`declare_options`: give each calculator's options a protobuf type for graph.pbtxt
        (process-wide; see graphs.options_proto). Off for registries that never parse text."""
        self._declare_options = declare_options
        self._calculators: dict[str, type[Calculator]] = {}
        self._subgraphs: dict[str, Subgraph] = {}

    def calculator(self, name: str | None = None) -> Callable[[C], C]:
        """Class decorator: `@registry.calculator()` registers under the class name."""

        def register(cls: C) -> C:
            self.add_calculator(cls, name or cls.__name__)
            return cls

        return register

    def add_calculator(self, cls: type[Calculator], name: str) -> None:
        if name in self._calculators or name in self._subgraphs:
            if self._calculators.get(name) is cls:
                return
            raise ValueError(f"calculator name {name!r} is already registered")
        if self._declare_options and cls.contract.options is not NoOptions:
            declare_options_message(name, cls.contract.options)  # graph.pbtxt can now spell its options
        self._calculators[name] = cls

    def add_subgraph(self, subgraph: Subgraph) -> None:
        if subgraph.name in self._calculators or subgraph.name in self._subgraphs:
            raise ValueError(f"subgraph name {subgraph.name!r} is already registered")
        self._subgraphs[subgraph.name] = subgraph

    def get_calculator(self, name: str) -> type[Calculator] | None:
        return self._calculators.get(name)

    def get_subgraph(self, name: str) -> Subgraph | None:
        return self._subgraphs.get(name)

    def names(self) -> list[str]:
        return sorted([*self._calculators, *self._subgraphs])


# The process-wide default registry (like MediaPipe's REGISTER_CALCULATOR): filled at import
# time by `calculators`, read-only afterwards.
default_registry = Registry()
