"""OVMS's single-node LLM graph (`HttpLLMCalculator`) as a subgraph of our chain.

OVMS runs the whole request in one C++ node that re-triggers itself via a LOOPBACK back
edge. Here that node expands into request -> tokenizer -> LLM -> detokenizer -> response,
so an OVMS graph.pbtxt serves unchanged; the LOOPBACK stream has no role in the expansion.
"""

from __future__ import annotations

from calculators.llm.options import LLMOptions
from graphs import NodeConfig, StreamRef, Subgraph, default_registry
from graphs.errors import GraphConfigError


def expand_http_llm(node: NodeConfig, options: LLMOptions) -> tuple[NodeConfig, ...]:
    request_in = node.input("HTTP_REQUEST_PAYLOAD")
    response_out = node.output("HTTP_RESPONSE_PAYLOAD")
    resources = node.side_packet("LLM_NODE_RESOURCES")
    missing = [
        what
        for what, ref in (
            ("input_stream HTTP_REQUEST_PAYLOAD", request_in),
            ("output_stream HTTP_RESPONSE_PAYLOAD", response_out),
            ("input_side_packet LLM_NODE_RESOURCES", resources),
        )
        if ref is None
    ]
    if missing or request_in is None or response_out is None or resources is None:
        label = f'node "{node.name or node.calculator}" (HttpLLMCalculator)'
        raise GraphConfigError("<subgraph>", [f"{label}: needs {m}" for m in missing])
    prefix = (node.name or "llm") + "__"
    llm = StreamRef("LLM", 0, resources.name)

    def s(tag: str, name: str) -> StreamRef:
        return StreamRef(tag, 0, prefix + name)

    return (
        NodeConfig(
            calculator="OpenAIRequestCalculator",
            name=prefix + "request",
            input_streams=(StreamRef("HTTP_REQUEST_PAYLOAD", 0, request_in.name),),
            output_streams=(s("REQUEST", "request"),),
            input_side_packets=(llm,),  # reasoning_effort meets the chat template
        ),
        NodeConfig(
            calculator="TokenizerCalculator",
            name=prefix + "tokenizer",
            input_streams=(s("REQUEST", "request"),),
            output_streams=(s("TOKENS", "prompt"),),
            input_side_packets=(llm,),
        ),
        NodeConfig(
            calculator="ContinuousBatchingLLMCalculator",
            name=prefix + "llm",
            input_streams=(s("TOKENS", "prompt"), s("STOP", "stop")),
            output_streams=(s("GENERATION", "generation"),),
            input_side_packets=(llm,),
            options=options.model_dump(exclude_unset=True),
            options_type="mediapipe.LLMCalculatorOptions",
            back_edges=frozenset({"STOP:0"}),
        ),
        NodeConfig(
            calculator="DetokenizerCalculator",
            name=prefix + "detokenizer",
            input_streams=(s("REQUEST", "request"), s("GENERATION", "generation")),
            output_streams=(s("TEXT", "text"), s("STOP", "stop")),
            input_side_packets=(llm,),
        ),
        NodeConfig(
            calculator="OpenAIResponseCalculator",
            name=prefix + "response",
            input_streams=(s("REQUEST", "request"), s("TEXT", "text")),
            output_streams=(StreamRef("HTTP_RESPONSE_PAYLOAD", 0, response_out.name),),
            input_side_packets=(llm,),
        ),
    )


default_registry.add_subgraph(
    Subgraph("HttpLLMCalculator", LLMOptions, expand_http_llm, doc="OVMS's LLM node, expanded into the stock chain")
)
