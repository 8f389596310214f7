"""GRPO alone on the depth-pruned student of a distill recipe: the baseline its SFT is
compared with (issue 20), from the same initialisation, on the same held-out rows.

    python benchmarks/pruned_student_grpo.py \
        [--distill recipes/distill_pruned_arithmetic_smollm2.yaml] \
        [--recipe recipes/r1_zero_arithmetic_smollm2.yaml] [--out runs/pruned_student_grpo]

Writes the student the distill recipe starts from (e.g. every other layer of the GRPO teacher)
as a Hugging Face directory, trains it with the GRPO recipe (`r1kit train --set
model.name=DIR`), then prints GRPO's held-out pass@1 and format rate (first and last
evaluation) next to the distill run's eval/before and eval/after when that run exists.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distill.recipe import load_distill_recipe
from distill.student import load_student


def write_student(distill: str, target: Path) -> None:
    """The distill recipe's initial student, saved as a plain HF model with its tokenizer."""
    model, tokenizer = load_student(load_distill_recipe(distill), "cpu")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def grpo_evals(run: Path) -> list[dict]:
    """The GRPO run's held-out evaluations, in step order."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [m for m in map(json.loads, lines) if "eval/pass@1" in m]


def row(name: str, summary: dict, keys: tuple[str, str, str, str]) -> list[str]:
    pass_at_1, low, high, fmt = (summary[k] for k in keys)
    return [name, f"{pass_at_1:.2f} [{low:.2f}, {high:.2f}]", f"{fmt:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distill", default="recipes/distill_pruned_arithmetic_smollm2.yaml")
    parser.add_argument("--recipe", default="recipes/r1_zero_arithmetic_smollm2.yaml")
    parser.add_argument("--out", default="runs/pruned_student_grpo")
    args = parser.parse_args()
    out = Path(args.out)
    student = out / "student"
    write_student(args.distill, student)
    started = time.perf_counter()
    sets = [f"model.name={student}", f"output.dir={out}", "output.name=grpo"]
    command = [sys.executable, "-m", "r1kit.cli", "train", args.recipe, "--overwrite"]
    subprocess.run([*command, *(a for s in sets for a in ("--set", s))], check=True)
    seconds = time.perf_counter() - started
    table = Table(title=f"the pruned student ({args.distill})")
    for column in ("run", "held-out pass@1 [95% CI]", "format"):
        table.add_column(column)
    evals = grpo_evals(out / "grpo")
    keys = ("eval/pass@1", "eval/ci_low", "eval/ci_high", "eval/format_rate")
    table.add_row(*row("before (GRPO's first eval)", evals[0], keys))
    table.add_row(*row(f"after GRPO alone ({seconds / 60:.1f} min)", evals[-1], keys))
    distilled = load_distill_recipe(args.distill).run_dir() / "eval"
    for stage in ("before", "after"):
        summary = distilled / stage / "summary.json"
        if summary.is_file():
            keys = ("pass@1", "ci_low", "ci_high", "format_rate")
            table.add_row(*row(f"distill {stage}", json.loads(summary.read_text()), keys))
    Console().print(table)


if __name__ == "__main__":
    main()
