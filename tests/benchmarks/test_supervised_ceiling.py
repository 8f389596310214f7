"""benchmarks/supervised_ceiling.py: an exact oracle, and inputs `r1kit distill` accepts."""

import json
import sys
from pathlib import Path

from distill.recipe import load_distill_recipe
from r1kit.recipe import load_recipe
from rewards.countdown import countdown_reward

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import supervised_ceiling  # noqa: E402


def test_the_countdown_oracle_prefers_the_simplest_equation_and_divides_exactly():
    assert supervised_ceiling.countdown_solution([2, 5, 6], 13) == "2 + 5 + 6"
    assert supervised_ceiling.countdown_solution([2, 5, 6], 9) == "5 + 6 - 2"
    assert supervised_ceiling.countdown_solution([6, 4, 8], 3) == "6 * 4 / 8"
    assert supervised_ceiling.countdown_solution([1, 1, 1], 30) is None


def test_every_countdown_trace_is_paid_in_full_by_the_task_reward(tmp_path):
    path = ROOT / "recipes/r1_zero_countdown_smollm2.yaml"
    recipe = supervised_ceiling.write_inputs(str(path), load_recipe(path), 60, 1, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    numbers = [json.loads(r["prompt"].split("numbers ")[1].split("]")[0] + "]") for r in rows]
    targets = [int(r["prompt"].split("equals ")[1].split(".")[0]) for r in rows]
    prompts = [r["prompt"] + " <think>" for r in rows]  # the template pre-fills <think>
    completions = [r["completion"].removeprefix("<think>") for r in rows]
    scores = countdown_reward(prompts, completions, nums=numbers, target=targets)
    assert len(rows) >= 55 and scores == [1.0] * len(rows)
    distill = load_distill_recipe(recipe)
    assert distill.traces.source == str(tmp_path / "traces.jsonl")
    assert distill.data.curriculum.levels == 0 and distill.template.prefill_think
