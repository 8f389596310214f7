"""Multi-turn rollouts with tools: the real model calling Python in the real sandbox, calls cut
at their timeout and the step's budget, and the turn loop's bounds (on a scripted engine)."""

from __future__ import annotations

import time

import pytest

from r1kit.models import load_model, model_dir
from r1kit.recipe import EngineConfig, ToolsConfig
from r1kit.tool_use import ToolEngine, Trajectory
from rollout import ModelSource, open_engine
from rollout.types import Completion, SamplingParams

GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=40, stop=("\nQ:",))
# Two worked examples: the built-in model then writes a call for the next question itself.
FEW_SHOT = (
    "Compute with Python.\nQ: 6*7\n<python>print(6*7)</python>\n<output>\n42\n</output>\nA: 42\n"
    "Q: 12+5\n<python>print(12+5)</python>\n<output>\n17\n</output>\nA: 17\n"
)
OBSERVATION = "\n<output>\n527\n</output>\n"


MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm2():
    return load_model(MODEL)


def _tools(**values) -> ToolsConfig:
    return ToolsConfig(enabled=True, **values)


def test_the_model_s_call_runs_and_its_output_is_context_out_of_its_own_tokens(smollm2):
    model, tokenizer = smollm2
    engine = ToolEngine(
        open_engine(EngineConfig().spec(), ModelSource.live(model, tokenizer)),
        tokenizer,
        _tools(max_turns=1),
    )
    prompt = tokenizer(FEW_SHOT + "Q: 31*17\n")["input_ids"]
    [[completion]] = engine.generate([prompt], GREEDY)
    [call] = completion.tool_calls
    assert (call.code, call.output, call.status) == ("print(31*17)", "527", "ok")
    assert completion.own_text[: call.end] == "<python>print(31*17)</python>"  # its turn
    observed = [
        t for t, own in zip(completion.token_ids, completion.model_tokens, strict=True) if not own
    ]
    assert tokenizer.decode(observed) == OBSERVATION
    assert all(
        lp == 0.0
        for lp, own in zip(completion.logprobs, completion.model_tokens, strict=True)
        if not own
    )
    assert OBSERVATION in completion.text and "527\n</output>" not in completion.own_text
    assert completion.own_text == completion.text.replace(OBSERVATION, "")
    assert completion.own_text.startswith("<python>print(31*17)</python>")
    assert "A: 527" in completion.own_text  # the model read the output and used it


def _trajectory(tokenizer) -> Trajectory:
    return Trajectory(tokenizer("Q:")["input_ids"])


def test_a_hanging_call_is_cut_at_its_timeout_and_the_observation_says_so(smollm2):
    tokenizer = smollm2[1]
    engine = ToolEngine(None, tokenizer, _tools(timeout_s=1))
    trajectory = _trajectory(tokenizer)
    start = time.monotonic()
    engine._run_calls([(trajectory, "while True: pass")], max_new_tokens=64)
    assert time.monotonic() - start < 4
    [call] = trajectory.calls
    assert call.status == "timeout" and call.output == "timed out after 1 s"
    assert "timed out after 1 s" in trajectory.text and not any(trajectory.model_tokens)


def test_calls_past_the_step_s_tool_time_are_skipped_and_say_so(smollm2):
    tokenizer = smollm2[1]
    engine = ToolEngine(None, tokenizer, _tools(timeout_s=5, step_budget_s=1))
    first, second = _trajectory(tokenizer), _trajectory(tokenizer)
    engine._run_calls([(first, "import time; time.sleep(3)")], max_new_tokens=64)
    engine._run_calls([(second, "print(1)")], max_new_tokens=64)
    assert first.calls[0].status == "timeout"  # cut by the budget, before its own timeout
    assert second.calls[0].status == "skipped" and "not run" in second.calls[0].output


def test_an_error_shows_its_last_line(smollm2):
    tokenizer = smollm2[1]
    engine = ToolEngine(None, tokenizer, _tools())
    trajectory = _trajectory(tokenizer)
    engine._run_calls([(trajectory, "print(1 / 0)")], max_new_tokens=64)
    [call] = trajectory.calls
    assert call.status == "error" and call.output == "ZeroDivisionError: division by zero"


class ScriptedEngine:
    """Plays `turns` in order: the k-th turn after k observations in the context; records each
    call's sampling."""

    def __init__(self, tokenizer, turns: list[str]):
        self.tokenizer, self.turns, self.calls = tokenizer, turns, []

    def generate(self, prompts, sampling):
        self.calls.append(sampling)
        return [[self._turn(prompt, sampling) for _ in range(sampling.n)] for prompt in prompts]

    def _turn(self, prompt, sampling) -> Completion:
        text = self.turns[self.tokenizer.decode(prompt).count("</output>")]
        cut = [text.find(s) + len(s) for s in sampling.stop if s in text]
        text = text[: min(cut)] if cut else text
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        reason = "stop" if cut else "length"
        ids, reason = (ids, reason) if len(ids) <= sampling.max_new_tokens else (
            ids[: sampling.max_new_tokens], "length"
        )  # fmt: skip
        return Completion(ids, [-0.5] * len(ids), self.tokenizer.decode(ids), reason, prompt)


TWO_CALLS = ["a <python>print(2)</python>", " b <python>print(3)</python>", " c <answer>5</answer>"]


def test_a_call_past_max_turns_ends_the_trajectory_unrun(smollm2):
    tokenizer = smollm2[1]
    engine = ToolEngine(ScriptedEngine(tokenizer, TWO_CALLS), tokenizer, _tools(max_turns=1))
    sampling = SamplingParams(n=2, max_new_tokens=100, seed=7)
    groups = engine.generate([tokenizer("Q:")["input_ids"]], sampling)
    for completion in groups[0]:
        assert [c.status for c in completion.tool_calls] == ["ok", "skipped"]
        assert completion.text.endswith("b <python>print(3)</python>")
        assert completion.finish_reason == "stop"


def test_every_turn_is_sampled_with_its_own_seed_and_the_room_left(smollm2):
    tokenizer = smollm2[1]
    scripted = ScriptedEngine(tokenizer, TWO_CALLS)
    engine = ToolEngine(scripted, tokenizer, _tools(max_turns=2))
    [[completion]] = engine.generate([[1, 2]], SamplingParams(max_new_tokens=100, seed=7))
    assert [c.output for c in completion.tool_calls] == ["2", "3"]
    assert completion.own_text == "".join(TWO_CALLS)
    seeds = [s.seed for s in scripted.calls]
    assert len(set(seeds)) == 3 and seeds[0] == 7
    rooms = [s.max_new_tokens for s in scripted.calls]
    assert rooms[0] == 100 and rooms[2] < rooms[1] < rooms[0]  # what the turns before used


def test_the_token_budget_bounds_the_whole_trajectory(smollm2):
    tokenizer = smollm2[1]
    engine = ToolEngine(ScriptedEngine(tokenizer, TWO_CALLS), tokenizer, _tools(max_turns=2))
    first = len(tokenizer(TWO_CALLS[0], add_special_tokens=False)["input_ids"])
    for budget in (first + 3, first + 12):  # cut inside the observation / in the next turn
        [[completion]] = engine.generate([[1, 2]], SamplingParams(max_new_tokens=budget))
        assert len(completion.token_ids) == budget == len(completion.model_tokens)
        assert completion.finish_reason == "length"


def _structure(completion: Completion) -> tuple:
    """What must not depend on the engine: the calls, their outputs, where observations are."""
    calls = [(c.code, c.output, c.status) for c in completion.tool_calls]
    return calls, completion.own_text, completion.text, completion.finish_reason


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [{"engine": "vllm"}, {"engine": "hf", "workers": 1}, {"engine": "vllm", "workers": 1}],
    ids=["vllm", "hf-on-ray", "vllm-on-ray"],
)
def test_every_engine_builds_the_same_trajectories(smollm2, settings):
    if settings["engine"] == "vllm":
        pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs it)")
    if settings.get("workers"):
        pytest.importorskip("ray", reason="Ray is not installed (scripts/setup.sh installs it)")
    model, tokenizer = smollm2
    prompts = [tokenizer(FEW_SHOT + f"Q: {q}\n")["input_ids"] for q in ("31*17", "40+2")]
    tools = _tools(max_turns=1)
    here = ToolEngine(
        open_engine(EngineConfig().spec(), ModelSource.live(model, tokenizer)), tokenizer, tools
    )
    other = ToolEngine(
        open_engine(EngineConfig(**settings).spec(), ModelSource(model_dir(MODEL))),
        tokenizer,
        tools,
    )
    try:
        expected = [_structure(g[0]) for g in here.generate(prompts, GREEDY)]
        assert [_structure(g[0]) for g in other.generate(prompts, GREEDY)] == expected
    finally:
        other.close()
