"""How far plain supervision gets the model on a GRPO recipe's task: SFT on an oracle's
answers for as many training problems as the GRPO run sees, then the same held-out check.

    python benchmarks/supervised_ceiling.py recipes/r1_zero_countdown_smollm2.yaml \
        [--problems 400] [--epochs 3] [--out runs/supervised_ceiling]

A ceiling for a reward-only run of that size: if the model given the right answer for every
problem does not pass a bar, GRPO's exploration is not what stands between them. Built-in
tasks only (countdown, arithmetic): their oracle is exact. Writes OUT/traces.jsonl (the
training stream's first N rows, curriculum off, in the recipe's template) and
OUT/distill.yaml, runs `r1kit distill` on it, and prints the held-out pass@1 before and
after; for Countdown also the equation forms of the right answers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from r1kit.data import load_data
from r1kit.recipe import CurriculumConfig, Recipe, load_recipe
from rewards.countdown import equation_form, judge

SHAPES = ("{} {} {} {} {}", "{} {} ({} {} {})")  # left to right, or the last two first


def countdown_solution(numbers: list[int], target: int) -> str | None:
    """The simplest equation of the numbers that makes the target: fewest * and /, then
    no brackets, then the numbers in the given order; None when there is none. Three
    numbers (the CPU recipe's), in the two shapes of SHAPES."""
    found = []
    for ops in itertools.product("+-*/", repeat=len(numbers) - 1):
        for order in itertools.permutations(numbers):
            for bracketed, shape in enumerate(SHAPES):
                text = shape.format(order[0], ops[0], order[1], ops[1], order[2])
                if judge(text, numbers, target) == "solved":  # the reward's own exact check
                    cost = sum(op in "*/" for op in ops)
                    found.append((cost, bracketed, list(order) != numbers, text))
    return min(found)[3] if found else None


def oracle_completion(row: dict, task: str) -> str | None:
    """The completion an oracle writes after `<think>`: the solving equation, then the answer
    the task's reward checks (the equation for Countdown, the number for arithmetic)."""
    if task == "countdown":
        equation = countdown_solution(row["nums"], row["target"])
        if equation is None:
            return None
        solved = f"{equation} = {row['target']}"
        return f"<think> {solved} </think> <answer> {solved} </answer>"
    expression = row["prompt"].removeprefix("What is ").removesuffix("?")
    return f"<think> {expression} = {row['answer']} </think> <answer> {row['answer']} </answer>"


def write_inputs(recipe_path: str, recipe: Recipe, problems: int, epochs: int, out: Path) -> Path:
    """OUT/traces.jsonl and OUT/distill.yaml for the recipe's task; the distill recipe's path."""
    task = recipe.data.source
    data = recipe.data.model_copy(update={"curriculum": CurriculumConfig()})  # none: levels 0
    stream, _ = load_data(data, recipe.seed)
    out.mkdir(parents=True, exist_ok=True)
    traces = out / "traces.jsonl"
    with traces.open("w") as f:
        for row in stream.take(problems):
            completion = oracle_completion(row, task)
            if completion is not None:
                f.write(json.dumps({"prompt": row["prompt"], "completion": completion}) + "\n")
    distill = {
        "description": f"SFT on oracle answers for {problems} problems of {recipe_path}",
        "seed": recipe.seed,
        "traces": {"source": str(traces)},
        "student": {"name": recipe.model.name},
        "data": data.model_dump(exclude_defaults=True, exclude={"curriculum"}),
        "template": recipe.template.model_dump(exclude_defaults=True),
        "sft": {
            "epochs": epochs,
            "lr": 5e-5,
            "schedule": "cosine",
            "warmup_steps": 5,
            "batch_size": 8,
            "micro_batch_size": 8,
            "save_every": 0,
        },
        "eval": {"max_new_tokens": recipe.rollout.max_new_tokens, "stop": recipe.rollout.stop},
        "output": {"dir": str(out), "name": "sft"},
    }
    path = out / "distill.yaml"
    path.write_text(yaml.safe_dump(distill, sort_keys=False))
    return path


def report(run: Path, task: str) -> None:
    """Held-out pass@1 before and after the SFT, and (Countdown) the forms of right answers."""
    for stage in ("before", "after"):
        s = json.loads((run / "eval" / stage / "summary.json").read_text())
        print(f"{stage}: held-out pass@1 {s['pass@1']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
    if task == "countdown":
        samples = (run / "eval" / "after" / "samples.jsonl").read_text().splitlines()
        answers = [json.loads(line) for line in samples]
        forms = Counter(
            equation_form(a["completion"].split("<answer>")[-1].split("</answer>")[0])
            for a in answers
            if a["correct"]
        )
        print(f"forms of the right answers ({len(forms)}): {dict(forms.most_common())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--problems", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/supervised_ceiling"))
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    data = recipe.data
    if data.source not in ("countdown", "arithmetic"):
        parser.error(f"data.source: {data.source}: only countdown and arithmetic have an oracle")
    if data.source == "countdown" and data.countdown.numbers != 3:
        parser.error(f"data.countdown.numbers: {data.countdown.numbers}: the oracle solves 3")
    distill = write_inputs(args.recipe, recipe, args.problems, args.epochs, args.out)
    command = [sys.executable, "-m", "r1kit.cli", "distill", str(distill), "--overwrite"]
    subprocess.run(command, check=True)
    report(args.out / "sft", data.source)


if __name__ == "__main__":
    main()
