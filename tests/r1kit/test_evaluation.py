import pytest

from r1kit.evaluation import (
    EvalError,
    bootstrap_ci,
    evaluate,
    majority_answer,
    majority_correct,
    pass_at_k,
    sample_counts,
    summarise,
)
from r1kit.recipe import TemplateConfig
from rewards.registry import load_reward
from rollout.types import Completion, SamplingParams
from tests.trajectories import call, multi_turn

RAW = TemplateConfig(name="raw", prefill_think=False)


class CharTokenizer:
    """One token per character: enough for the raw template."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [ord(ch) for ch in text]}


class ScriptedEngine:
    """Answers each prompt with the completions scripted for it (texts, or whole completions)."""

    def __init__(self, script: dict[str, list[str | Completion]], max_new_tokens: int = 40):
        self.script = script
        self.max_new_tokens = max_new_tokens

    def generate(self, prompt_token_ids, sampling):
        prompts = ["".join(map(chr, ids)) for ids in prompt_token_ids]
        return [[self._completion(text) for text in self.script[p]] for p in prompts]

    def _completion(self, text: str | Completion) -> Completion:
        if isinstance(text, Completion):
            return text
        tokens = list(range(len(text)))
        finish = "length" if len(tokens) >= self.max_new_tokens else "stop"
        return Completion(tokens, [0.0] * len(tokens), text, finish)


def evaluate_scripted(script: dict[str, list[str | Completion]], rows: list[dict], **options):
    """`evaluate` with the math reward over scripted completions (n per prompt)."""
    n = len(next(iter(script.values())))
    return evaluate(
        ScriptedEngine(script),
        CharTokenizer(),
        RAW,
        rows,
        load_reward("math"),
        SamplingParams(n=n, seed=0),
        **options,
    )


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(5, 2, 1, 0.4), (5, 2, 2, 0.7), (5, 0, 3, 0.0), (5, 4, 2, 1.0), (10, 3, 5, 1 - 21 / 252)],
)
def test_pass_at_k_matches_the_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(EvalError, match="1 <= k <= n"):
        pass_at_k(4, 1, 8)


@pytest.mark.parametrize(("n", "ks"), [(1, [1]), (2, [1, 2]), (5, [1, 2, 4]), (8, [1, 2, 4, 8])])
def test_reported_k_are_one_and_powers_of_two_up_to_n(n, ks):
    assert sample_counts(n) == ks


def test_majority_vote_tie_goes_to_the_answer_seen_first():
    assert majority_answer(["4", "3", "3", "4"]) == "4"


def test_majority_vote_ignores_missing_answers():
    assert majority_answer([None, None, "5"]) == "5"
    assert majority_answer([None, None]) is None


def test_majority_correct_follows_the_winning_answer():
    assert majority_correct(["3", "4", "3"], [True, False, True])
    assert not majority_correct(["4", "3", "3", "4"], [False, True, True, False])
    assert not majority_correct([None, None], [False, False])


def test_bootstrap_interval_contains_the_mean():
    low, high = bootstrap_ci([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0], seed=1)
    assert low < 0.5 < high


def test_bootstrap_interval_is_seeded():
    values = [(i * 37 % 101) / 101 for i in range(50)]
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


def test_summary_reports_pass_and_majority_at_powers_of_two():
    summary = summarise(
        correct=[[True, False, False, False], [False, False, False, False]],
        answers=[["1", "2", "2", "3"], ["5", "5", "6", "7"]],
        lengths=[10] * 8,
        truncated=[False] * 7 + [True],
        formatted=[True] * 4 + [False] * 4,
    )
    assert summary["pass@1"] == 0.125 and summary["pass@2"] == 0.25 and summary["pass@4"] == 0.5
    assert summary["maj@2"] == 0.5 and summary["maj@4"] == 0.0
    assert summary["truncation_rate"] == 0.125 and summary["format_rate"] == 0.5


def test_summary_without_answers_has_no_majority_vote():
    summary = summarise([[True, False]], None, [3, 3], [False, False], [False, False])
    assert "pass@2" in summary and not any(key.startswith("maj@") for key in summary)


def test_summary_of_no_problems_is_an_error():
    with pytest.raises(EvalError, match="no problems"):
        summarise([], [], [], [], [])


def test_evaluate_scores_samples_with_the_given_reward():
    script = {
        "What is 2+2?": ["<think>2+2</think> <answer>4</answer>", "<answer>5</answer>"],
        "What is 3*3?": ["The answer is 9.", "<think>" + "x" * 60],
    }
    rows = [{"prompt": "What is 2+2?", "answer": "4"}, {"prompt": "What is 3*3?", "answer": "9"}]
    result = evaluate_scripted(script, rows)
    assert [s["correct"] for s in result.samples] == [True, False, True, False]
    assert [s["extracted"] for s in result.samples][:2] == ["4", "5"]
    assert result.summary["pass@1"] == 0.5 and result.summary["pass@2"] == 1.0
    assert result.summary["maj@2"] == 1.0
    assert result.summary["format_rate"] == 0.25 and result.summary["truncation_rate"] == 0.25


def test_evaluate_without_vote_leaves_out_majority():
    rows = [{"prompt": "What is 1+1?", "answer": "2"}]
    result = evaluate_scripted({"What is 1+1?": ["2", "3"]}, rows, vote=False)
    assert "maj@2" not in result.summary and result.samples[0]["extracted"] is None


def test_evaluate_in_chunks_reports_progress_and_keeps_problem_order():
    rows = [{"prompt": f"What is {i}+0?", "answer": str(i)} for i in range(5)]
    script = {row["prompt"]: [f"<answer>{row['answer']}</answer>"] for row in rows}
    finished: list[int] = []
    result = evaluate_scripted(script, rows, progress=finished.append, chunk=2)
    assert finished == [2, 2, 1]
    assert [s["extracted"] for s in result.samples] == ["0", "1", "2", "3", "4"]
    assert result.summary["pass@1"] == 1.0


def test_held_out_accuracy_reads_the_models_own_text_and_shows_the_turns():
    tools = [
        multi_turn("<python>x</python>", call("<answer>7</answer>", "x"), "maybe 5"),
        multi_turn("<python>y</python>", call("7", "y", status="error"), "<answer>7</answer>"),
    ]
    result = evaluate_scripted({"What is 3+4?": tools}, [{"prompt": "What is 3+4?", "answer": "7"}])
    assert [s["correct"] for s in result.samples] == [False, True]
    assert [s["extracted"] for s in result.samples] == ["5", "7"]
    first = result.samples[0]
    assert first["completion"] == tools[0].text  # the whole trajectory, to read
    assert [turn["model"] for turn in first["turns"]] == ["<python>x</python>", "maybe 5"]
    assert first["turns"][0]["output"] == "<answer>7</answer>"
    assert result.summary["tools/calls_per_completion"] == 1.0
    assert result.summary["tools/errors"] == 0.5


def test_an_evaluation_without_tools_has_no_turns_or_tool_metrics():
    result = evaluate_scripted({"What is 1+1?": ["2"]}, [{"prompt": "What is 1+1?", "answer": "2"}])
    assert "turns" not in result.samples[0]
    assert not [key for key in result.summary if key.startswith("tools/")]
