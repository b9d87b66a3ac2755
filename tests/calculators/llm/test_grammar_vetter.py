"""The grammar vetter with its real process on the tiny model (no mocks): trials under a time
limit, a slow grammar's process killed and replaced, verdicts cached (issue 23, defect 2)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from calculators.llm.grammar_vetter import GrammarVetter, Verdict
from calculators.llm.guided import Grammar
from graphs.errors import InvalidRequestError

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMIT_S = 0.5
SLOW_PATTERN = "((a|b){100}){100}"  # ~4.3 s of compilation on this machine (over the budget too)
NATIVE = ("Check", "/home/", "jenkins", ".cc", "xgrammar")


def schema_grammar(schema: object) -> Grammar:
    return [["json", json.dumps(schema)]]


def pattern_grammar(pattern: str) -> Grammar:
    return schema_grammar({"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}, "required": ["a"]})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def vetter(tiny_model_dir: Path) -> AsyncIterator[GrammarVetter]:
    vetter = GrammarVetter(str(tiny_model_dir), limit_s=LIMIT_S, cache_size=8)
    yield vetter
    pid = vetter.pid
    await vetter.aclose()
    assert pid is None or not alive(pid)


async def test_a_new_grammar_is_tried_once_then_answered_from_the_cache(vetter: GrammarVetter) -> None:
    assert vetter.pid is None  # nothing started before the first grammar
    grammar = schema_grammar({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]})
    await vetter.vet(grammar, "response_format")
    trials = vetter.trials
    assert trials >= 1 and vetter.pid is not None
    for _ in range(3):
        await vetter.vet(grammar, "response_format")
    assert vetter.trials == trials


async def test_a_slow_grammar_is_refused_at_the_limit_and_its_process_replaced(vetter: GrammarVetter) -> None:
    await vetter.vet(schema_grammar({"type": "object"}), "response_format")  # process loaded
    first_pid, starts = vetter.pid, vetter.starts
    assert first_pid is not None
    # Cut at the limit of the vetter's CPU time (several compiler threads; wall time depends on the
    # load): had it run to the end (~4 s), it would have compiled and been accepted.
    with pytest.raises(InvalidRequestError) as refused:
        await vetter.vet(pattern_grammar(SLOW_PATTERN), "tools")
    assert refused.value.kind == "invalid_request_error" and refused.value.param == "tools"
    assert "took longer than 0.5 s to compile" in str(refused.value)
    assert vetter.pid is None and not alive(first_pid)  # killed mid-compilation, and reaped

    # The verdict is kept: the same grammar is refused again with no trial.
    trials = vetter.trials
    with pytest.raises(InvalidRequestError):
        await vetter.vet(pattern_grammar(SLOW_PATTERN), "response_format")
    assert vetter.trials == trials and vetter.pid is None

    # A normal grammar then starts a fresh process and is accepted.
    await vetter.vet(pattern_grammar("(a|b){4}"), "response_format")
    assert vetter.starts == starts + 1 and vetter.pid not in (None, first_pid)


async def test_a_grammar_the_compiler_refuses_is_a_generic_400(vetter: GrammarVetter) -> None:
    await vetter.vet(schema_grammar({"type": "boolean"}), "response_format")
    pid = vetter.pid
    with pytest.raises(InvalidRequestError) as refused:
        await vetter.vet([["json", '{"type": "strin"}']], "response_format")
    message = str(refused.value)
    assert message == "the JSON schema cannot be used for structured output: the grammar compiler refused it"
    assert not any(native in message for native in NATIVE)
    assert vetter.pid == pid  # the process goes on
    assert await vetter.verdict([["json", '{"type": "strin"}']]) is Verdict.FAILED  # cached


async def test_concurrent_requests_share_one_trial_and_queue_behind_it(vetter: GrammarVetter) -> None:
    trials = vetter.trials
    same = pattern_grammar("(c|d){3}")
    other = pattern_grammar("(e|f){3}")
    verdicts = await asyncio.gather(vetter.verdict(same), vetter.verdict(same), vetter.verdict(other), vetter.verdict(same))
    assert verdicts == [Verdict.OK] * 4
    assert vetter.trials == trials + 2


async def test_a_trial_under_way_finishes_for_the_next_request_when_its_own_goes_away(vetter: GrammarVetter) -> None:
    await vetter.vet(schema_grammar({"type": "null"}), "response_format")  # process loaded
    grammar = pattern_grammar("(g|h){5}")
    trials = vetter.trials
    waiter = asyncio.ensure_future(vetter.verdict(grammar))
    while vetter.trials == trials:  # the trial has started
        await asyncio.sleep(0)
    waiter.cancel()
    assert await vetter.verdict(grammar) is Verdict.OK  # the same trial's verdict
    assert vetter.trials == trials + 1
    assert waiter.cancelled()


async def test_queued_grammars_whose_requests_went_away_are_not_tried(vetter: GrammarVetter) -> None:
    await vetter.vet(schema_grammar({"type": "string"}), "response_format")  # process loaded
    trials = vetter.trials
    first = asyncio.ensure_future(vetter.verdict(pattern_grammar("(i|j){5}")))
    abandoned = [asyncio.ensure_future(vetter.verdict(pattern_grammar(f"(k|l){{{n}}}"))) for n in range(2, 12)]
    while vetter.trials == trials:  # the first trial holds the vetter; the others queue
        await asyncio.sleep(0)
    for waiter in abandoned:
        waiter.cancel()
    assert await first is Verdict.OK
    assert await vetter.verdict(pattern_grammar("(k|l){2}")) is Verdict.OK  # asked again: tried then
    assert vetter.trials == trials + 2


async def test_the_cache_is_bounded(vetter: GrammarVetter) -> None:
    grammars = [pattern_grammar(f"x{{{i}}}") for i in range(1, vetter.cache_size + 2)]
    for grammar in grammars:
        await vetter.vet(grammar, "response_format")
    trials = vetter.trials
    await vetter.vet(grammars[-1], "response_format")  # recent: cached
    assert vetter.trials == trials
    await vetter.vet(grammars[0], "response_format")  # the oldest was dropped: tried again
    assert vetter.trials == trials + 1


async def test_cpu_seconds_counts_this_process_work_not_its_waiting() -> None:
    """The trial limit is CPU time (a busy machine must not turn cheap grammars into cached
    refusals): the reading grows with work and stands still while the process sleeps."""
    from calculators.llm.grammar_vetter import cpu_seconds

    before = cpu_seconds(os.getpid())
    assert before is not None
    time.sleep(0.3)
    slept = cpu_seconds(os.getpid())
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    worked = cpu_seconds(os.getpid())
    assert slept is not None and worked is not None
    assert slept - before < 0.1 <= 0.2 <= worked - slept
    assert cpu_seconds(2**22 + 12345) is None  # no such process
