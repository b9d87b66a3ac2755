"""The error vocabulary shared by the graph framework, calculators and front ends.

Errors say what went wrong in terms of meaning; the front end maps each kind to a status
code in one place (`serving.errors`). Calculators raise these; anything else escaping a
calculator is a bug and is reported as an internal error.
"""

from __future__ import annotations


class OvserveError(Exception):
    """Base of every error that is meant to reach a client."""

    kind = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequestError(OvserveError):
    """The request is malformed or asks for something this servable cannot do."""

    kind = "invalid_request_error"


class NotFoundError(OvserveError):
    kind = "not_found_error"


class OverloadedError(OvserveError):
    """Too much work right now; the client may retry later."""

    kind = "overloaded_error"


class UnavailableError(OvserveError):
    """The servable is not (or no longer) able to serve: not loaded, engine crashed, draining."""

    kind = "unavailable_error"


class EngineError(OvserveError):
    """The inference engine failed on this request."""

    kind = "engine_error"


class GraphConfigError(Exception):
    """A graph config cannot be parsed or is invalid; `problems` lists every finding."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        joined = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid graph {source}:\n{joined}")
