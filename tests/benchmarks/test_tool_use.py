"""benchmarks/tool_use.py: a fair pair of recipes, and its report of two runs."""

import json
import sys
from pathlib import Path

from r1kit.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import tool_use  # noqa: E402


def test_the_baseline_differs_from_the_tool_recipe_only_in_tools_prompt_and_schedule():
    tools, baseline = (load_recipe(ROOT / path).model_dump() for path in tool_use.RECIPES.values())
    assert tools["tools"]["enabled"] and not baseline["tools"]["enabled"]
    for recipe in (tools, baseline):
        for key in ("tools", "description", "output"):
            recipe.pop(key)
        recipe["template"].pop("system_prompt")
        for key in ("steps", "eval_every", "save_every"):  # its steps fill the same wall time
            recipe["train"].pop(key)
    assert tools == baseline


def _run(path: Path, accuracies: list[float]) -> Path:
    path.mkdir()
    lines = [
        {
            "step": 2 * i,
            "eval/pass@1": a,
            "eval/ci_low": a / 2,
            "eval/ci_high": a,
            "eval/format_rate": a,
        }
        for i, a in enumerate(accuracies)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    return path


def test_the_report_tabulates_both_runs_and_plots_them(tmp_path, capsys):
    runs = {
        "tools": _run(tmp_path / "a", [0.0, 0.5, 1.0]),
        "no tools": _run(tmp_path / "b", [0.0, 0.01]),
    }
    tool_use.report(runs, {"tools": (600.0, 4.0)}, tmp_path / "curves.png")
    said = capsys.readouterr().out
    assert "1.00 [0.50, 1.00]" in said and "0.01 [0.01, 0.01]" in said and "10.0 min" in said
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
