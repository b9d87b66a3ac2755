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
from graphs.errors import (
    GraphConfigError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    OvserveError,
    UnavailableError,
)
from graphs.packet import Packet
from graphs.registry import Registry, Subgraph, default_registry

__all__ = [
    "Calculator",
    "CalculatorContext",
    "Contract",
    "GraphConfig",
    "GraphConfigError",
    "InputSet",
    "InvalidRequestError",
    "NoOptions",
    "NodeConfig",
    "NotFoundError",
    "Options",
    "OverloadedError",
    "OvserveError",
    "Packet",
    "Registry",
    "Resource",
    "ResourceContext",
    "StreamRef",
    "Subgraph",
    "UnavailableError",
    "default_registry",
]
