"""The entry point of the spawned engine worker process: it builds the loop the spec's
pipeline type asks for (LM_CB, VLM_CB: cb_loop.py; LM, VLM: stateful_loop.py), says READY (or FATAL) and runs it.
A module-level function, so multiprocessing's spawn can find it by name."""

from __future__ import annotations

import logging
from multiprocessing.connection import Connection
from pathlib import Path

from calculators.llm.engine.base import NO_STRUCTURED_OUTPUT, EngineBase, WorkerSpec, structured_output_problem
from calculators.llm.engine.cb_loop import ContinuousBatchingEngine
from calculators.llm.engine.protocol import Fatal, Ready, encode
from calculators.llm.engine.stateful_loop import StatefulEngine
from calculators.llm.pipeline_type import resolve_pipeline


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Entry point of the spawned engine process."""
    from graphs.logfmt import formatter

    handler = logging.StreamHandler()
    handler.setFormatter(formatter())  # the server's --log_format, through the environment
    logging.basicConfig(level=spec.log_level, handlers=[handler])
    engine_class: type[EngineBase] = StatefulEngine if spec.pipeline in ("LM", "VLM") else ContinuousBatchingEngine
    try:
        # The LLM resource has resolved it already; a spec built by hand (tests, benchmarks) gets
        # the same clear refusal instead of steps failing on the wrong kind of input.
        resolve_pipeline(spec.pipeline, spec.device, Path(spec.models_path))
        engine = engine_class(spec, conn)
    except Exception as exc:
        conn.send_bytes(encode(Fatal(f"{type(exc).__name__}: {exc}")))
        return
    problem = structured_output_problem(engine.pipe)
    engine.send(Ready({**engine.info(), **({NO_STRUCTURED_OUTPUT: problem} if problem else {})}))
    try:
        engine.run()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the server went away: nothing left to serve
