"""The graph framework: MediaPipe-style graph configs, calculators, validation and runs.

Public API for calculators and front ends; this package imports neither `calculators`
nor `serving`.
"""

from graphs.calculator import (
    Calculator,
    CalculatorContext,
    Contract,
    InputSet,
    NoOptions,
    Options,
    Resource,
    ResourceContext,
)
from graphs.config import GraphConfig, NodeConfig, StreamRef
from graphs.errors import GraphConfigError
from graphs.packet import Packet
from graphs.registry import Registry, Subgraph, default_registry

__all__ = [
    "Calculator",
    "CalculatorContext",
    "Contract",
    "GraphConfig",
    "GraphConfigError",
    "InputSet",
    "NoOptions",
    "NodeConfig",
    "Options",
    "Packet",
    "Registry",
    "Resource",
    "ResourceContext",
    "StreamRef",
    "Subgraph",
    "default_registry",
]
