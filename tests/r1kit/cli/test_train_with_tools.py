"""`r1kit train` of the shipped tool recipe, end to end on the built-in model: the model calls
Python in the sandbox, the step logs the calls, samples show the turns, and bad tool settings
exit 2 naming the field."""

import json

import pytest
from typer.testing import CliRunner

from r1kit.cli import RECIPES_DIR, app

runner = CliRunner()
RECIPE = str(RECIPES_DIR / "r1_tool_arithmetic_smollm2.yaml")


@pytest.mark.parametrize(
    "change, words",
    [
        ("rollout.stop=[</python>]", "rollout.stop"),
        ("tools.max_turns=0", "tools.max_turns"),
        ("tools.call=[<python>,<python>]", "tools"),
    ],
)
def test_bad_tool_settings_exit_2_naming_the_field(tmp_path, change, words):
    result = runner.invoke(
        app, ["train", RECIPE, "--dry-run", "--set", change, "--set", f"output.dir={tmp_path}"]
    )
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_the_dry_run_shows_what_a_call_may_do(tmp_path):
    result = runner.invoke(app, ["train", RECIPE, "--dry-run", "--set", f"output.dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "tools <python>code</python> in the code sandbox, up to 2 calls per completion" in said


@pytest.mark.slow
def test_a_step_with_tools_calls_python_and_logs_the_calls(tmp_path):
    sets = {
        "train.steps": 1,
        "train.eval_every": 0,
        "train.prompts_per_step": 2,
        "data.eval_size": 2,
        "output.dir": tmp_path,
        "output.report_to": "[]",
    }
    args = [a for key, value in sets.items() for a in ("--set", f"{key}={value}")]
    result = runner.invoke(app, ["train", RECIPE, *args])
    assert result.exit_code == 0, result.output
    run = tmp_path / "r1_tool_arithmetic_smollm2"
    step = json.loads((run / "metrics.jsonl").read_text().splitlines()[1])
    assert step["tools/calls_per_completion"] > 0.5  # the prompt's example is enough to start
    assert step["tools/errors"] < 0.5 and step["tools/seconds"] > 0
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    called = [s for s in samples if "turns" in s]
    assert called and called[0]["turns"][0]["status"] in ("ok", "error", "timeout")
