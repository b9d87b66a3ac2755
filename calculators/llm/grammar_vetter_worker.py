"""The grammar vetter's process: compiles grammars on trial so the engine never stalls on one.

openvino-genai 2026.4 has no public grammar-compile call: xgrammar compiles a request's grammar
when its logit processor is built, inside the first engine step that runs it, and nothing can
interrupt that. Here a 1-token generate() on a 1-token prompt of an LLMPipeline (same model, CPU:
grammar compilation is CPU work whatever the engine's device) pays the same compilation (measured:
`((a|b){100}){100}` 4.3 s here, 4.4 s in a ContinuousBatchingPipeline step), in a process the
server can kill when a trial runs past its time limit (grammar_vetter.py).

Messages (multiprocessing.Connection frames, msgpack bodies as in engine/protocol.py: msgspec
structs, array-like, tag first): to the vetter `Trial` (`[grammar_parts]`); from it `VetterReady`
(`[0]`) once loaded, `VetterFatal` (`[3, message]`) when the model cannot load, then per trial
`Compiles` (`[1]`) or `DoesNotCompile` (`[2]`): the reason is logged here, never sent.
"""

from __future__ import annotations

import logging
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec

from calculators.llm.engine.protocol import encode
from calculators.llm.guided import Grammar, structured_output
from calculators.llm.pipeline_type import is_vlm_folder

log = logging.getLogger("ovserve.grammar")


class Trial(msgspec.Struct, array_like=True):
    """Compile this grammar (to the vetter)."""

    parts: Grammar


class VetterReady(msgspec.Struct, array_like=True, tag=0):
    pass


class Compiles(msgspec.Struct, array_like=True, tag=1):
    pass


class DoesNotCompile(msgspec.Struct, array_like=True, tag=2):
    pass


class VetterFatal(msgspec.Struct, array_like=True, tag=3):
    message: str  # the exception's type name (the details are logged in the vetter)


FromVetter = VetterReady | Compiles | DoesNotCompile | VetterFatal
decode_trial = msgspec.msgpack.Decoder(Trial).decode
decode_from_vetter = msgspec.msgpack.Decoder(FromVetter).decode


class _Trials:
    def __init__(self, models_path: str) -> None:
        import numpy as np
        import openvino as ov
        import openvino_genai as ov_genai  # only this process needs it

        self.ov_genai = ov_genai
        self.vision = is_vlm_folder(Path(models_path))
        if self.vision:  # a vision-language model: its language model takes no token ids
            self.pipe = ov_genai.VLMPipeline(models_path, "CPU")
        else:
            self.pipe = ov_genai.LLMPipeline(models_path, "CPU")
        self.prompt = ov.Tensor(np.zeros((1, 1), dtype=np.int64))  # one token: the prefill is nothing
        # Before READY (outside any trial's limit): the first generate() pays the model's first
        # inference and the vocabulary's grammar tables (SmolLM2: 0.8-1.6 s, past 2 s on a busy
        # machine), which would otherwise count against the first grammar and refuse it for good.
        self.compiles([["json", '{"type": "object"}']])

    def compiles(self, parts: Grammar) -> bool:
        config = self.ov_genai.GenerationConfig(max_new_tokens=1, ignore_eos=True)
        try:
            config.structured_output_config = structured_output(self.ov_genai, parts)
            if self.vision:
                config.apply_chat_template = False
                self.pipe.generate("0", generation_config=config)  # a one-token prompt (no images)
            else:
                self.pipe.generate(self.prompt, config)
        except Exception as exc:  # genai's check text (build paths): logged, not returned
            log.warning("a grammar failed to compile for structured output: %s", exc)
            return False
        return True  # the pipeline stays usable after a failed grammar (checked on genai 2026.4)


def vetter_main(models_path: str, log_level: str, conn: Connection) -> None:
    """Entry point of the spawned vetter process."""
    from graphs.logfmt import formatter

    handler = logging.StreamHandler()
    handler.setFormatter(formatter())  # the server's --log_format, through the environment
    logging.basicConfig(level=log_level, handlers=[handler])
    try:
        trials = _Trials(models_path)
    except Exception as exc:
        log.error("the grammar vetter could not load %s: %s", models_path, exc)
        conn.send_bytes(encode(VetterFatal(type(exc).__name__)))
        return
    conn.send_bytes(encode(VetterReady()))
    try:
        while True:
            trial = decode_trial(conn.recv_bytes())
            conn.send_bytes(encode(Compiles() if trials.compiles(trial.parts) else DoesNotCompile()))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection: nothing left to vet
