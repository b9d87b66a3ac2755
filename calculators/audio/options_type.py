"""OVMS's `mediapipe.S2tCalculatorOptions`, so its graph.pbtxt's node_options parse unchanged."""

from __future__ import annotations

from calculators.audio.resource import S2tOptions
from graphs.options_proto import declare_message

S2T_OPTIONS_TYPE = "mediapipe.S2tCalculatorOptions"


def declare_s2t_options() -> str:
    return declare_message(S2T_OPTIONS_TYPE, S2tOptions)
