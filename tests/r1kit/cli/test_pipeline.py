import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from r1kit.cli import RECIPES_DIR, app
from tests.r1kit.cli import stop_script

runner = CliRunner()

ANYTHING = "def anything(prompts, completions, **kw):\n    return [1.0] * len(completions)\n"


@pytest.fixture
def pipeline_file(tmp_path, tiny_recipe):
    """A factory of tiny three-stage pipelines written to a file: GRPO teacher -> traces + SFT
    of its pruned student -> GRPO of the student; `changes` go into the stages by name."""
    (tmp_path / "anything.py").write_text(ANYTHING)

    def make(**changes) -> str:
        train = tiny_recipe(train={"steps": 2, "save_every": 0})
        for section in ("output",):
            train.pop(section)
        distill = {
            "teacher": "stages.teacher.final",
            "student": {"from": "teacher", "keep_layers": "every_other"},
            "data": train["data"],
            "generate": {"problems": 3, "samples": 2, "max_new_tokens": 6},
            "filter": {
                "rewards": [{"name": f"{tmp_path}/anything.py:anything"}],
                "require_think_close": False,
            },
            "sft": {"epochs": 2, "lr": 1e-3, "batch_size": 2, "save_every": 0},
            "eval": {"max_new_tokens": 4},
        }
        stages = [
            {"name": "teacher", "kind": "train", "recipe": train},
            {"name": "distill", "kind": "distill", "recipe": distill},
            {
                "name": "student",
                "kind": "train",
                "recipe": train,
                "set": {"model.name": "stages.distill.final"},
            },
        ]
        for stage in stages:
            stage.update(changes.get(stage["name"], {}))
        path = tmp_path / "pipeline.yaml"
        output = {"dir": str(tmp_path / "runs"), "name": "chain", "report_to": []}
        path.write_text(yaml.safe_dump({"stages": stages, "output": output}))
        return str(path)

    return make


def test_a_pipeline_runs_its_stages_in_order_and_summarises_them(tmp_path, pipeline_file):
    result = runner.invoke(app, ["pipeline", pipeline_file()])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "chain"
    for stage in ("teacher", "distill", "student"):
        assert (run / stage / "final" / "config.json").is_file(), stage
    assert yaml.safe_load((run / "student" / "config.yaml").read_text())["model"]["name"] == str(
        run / "distill" / "final"
    )
    state = json.loads((run / "pipeline.json").read_text())["stages"]
    assert all(state[name]["finished"] for name in ("teacher", "distill", "student"))
    rows = json.loads((run / "summary.json").read_text())
    assert [row["stage"] for row in rows] == ["teacher", "distill", "student"]
    assert all(row[when]["problems"] == 4 for row in rows for when in ("before", "after"))
    assert (run / "summary.png").is_file()
    assert "| distill | distill |" in (run / "summary.md").read_text()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"distill": {"set": {"teacher": "stages.student.final"}}},
            "stages.1 (distill): teacher: stages.student.final names a later stage",
        ),
        (
            {"distill": {"set": {"teacher": "stages.nobody.final"}}},
            "stages.1 (distill): teacher: stages.nobody.final names no such stage",
        ),
        (
            {"student": {"set": {"model.name": "stages.teacher.traces"}}},
            "stages.2 (student): model.name: stages.teacher.traces: stage teacher (train) "
            "makes no 'traces'",
        ),
        (
            {"student": {"set": {"learner.lrr": 1}}},
            "stages.2 (student): invalid recipe learner.lrr: unknown field",
        ),
        (
            {"student": {"set": {"data.eval_size": 3}}},
            "stages.2 (student): data: differs from stages.0 (teacher)'s",
        ),
        (
            {"distill": {"set": {"filter.rewards": [{"name": "nope"}]}}},
            "stages.1 (distill): filter.rewards.0.name: unknown reward 'nope'",
        ),
    ],
)
def test_a_bad_stage_exits_2_naming_it_before_anything_runs(
    tmp_path, pipeline_file, changes, words
):
    result = runner.invoke(app, ["pipeline", pipeline_file(**changes)])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def test_traces_of_a_distill_stage_that_generates_are_a_reference_later_stages_can_use(
    tmp_path, pipeline_file
):
    path = pipeline_file(student={"set": {"model.name": "stages.distill.traces"}})
    result = runner.invoke(app, ["pipeline", path, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"model.name: {tmp_path}/runs/chain/distill/traces/traces.jsonl" in "".join(
        result.output.split("\n")
    )


def test_dry_run_prints_every_stage_and_its_references_and_writes_nothing(tmp_path, pipeline_file):
    result = runner.invoke(app, ["pipeline", pipeline_file(), "--dry-run"])
    assert result.exit_code == 0, result.output
    text = "".join(result.output.split("\n"))
    for label in ("stages.0 (teacher)", "stages.1 (distill)", "stages.2 (student)"):
        assert label in text
    assert f"teacher: {tmp_path}/runs/chain/teacher/final" in text
    assert not (tmp_path / "runs").exists()


def test_a_stage_override_on_the_command_line_reaches_that_stage_only(tmp_path, pipeline_file):
    path = pipeline_file()
    result = runner.invoke(app, ["pipeline", path, "--dry-run", "--set", "student.learner.lrr=1"])
    assert result.exit_code == 2, result.output
    assert "stages.2 (student)" in result.output


def test_sigterm_in_stage_2_of_3_then_resume_gives_the_uninterrupted_final_weights(
    tmp_path, pipeline_file
):
    path = pipeline_file()
    whole = ["pipeline", path, "--set", "output.name=whole"]
    assert runner.invoke(app, whole).exit_code == 0
    command = [
        sys.executable,
        stop_script.__file__,
        "pipeline",
        path,
        "--set",
        "output.name=stopped",
    ]
    env = {**os.environ, "STOP_AT": "4"}  # the teacher's 2 steps, then SFT step 2 of stage 2
    proc = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 143, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "stopped"
    assert f"r1kit pipeline --resume {run}" in " ".join(proc.stdout.split())
    assert (run / "teacher" / "final").is_dir()  # teacher: 2 steps; SFT stopped at its step 2
    assert [p.name for p in (run / "distill" / "checkpoints").iterdir()] == ["step-2"]
    assert not (run / "distill" / "final").exists() and not (run / "student").exists()
    result = runner.invoke(app, ["pipeline", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    steps = [json.loads(line)["step"] for line in (run / "distill" / "metrics.jsonl").open()]
    assert steps == [1, 2, 3, 4]
    for stage in ("distill", "student"):
        straight = load_file(tmp_path / "runs" / "whole" / stage / "final" / "model.safetensors")
        resumed = load_file(run / stage / "final" / "model.safetensors")
        assert straight.keys() == resumed.keys()
        assert all(torch.equal(straight[name], resumed[name]) for name in straight), stage


def test_resume_refuses_a_finished_stage_whose_recipe_changed_naming_it(tmp_path, pipeline_file):
    assert runner.invoke(app, ["pipeline", pipeline_file()]).exit_code == 0
    run = tmp_path / "runs" / "chain"
    changed = pipeline_file(distill={"set": {"sft.lr": 0.01}})
    result = runner.invoke(app, ["pipeline", changed, "--resume", str(run)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert (
        "stages.1 (distill): finished already, and its recipe has changed since (sft.lr)" in message
    )


def test_resume_of_a_finished_pipeline_runs_nothing_again(tmp_path, pipeline_file):
    assert runner.invoke(app, ["pipeline", pipeline_file()]).exit_code == 0
    run = tmp_path / "runs" / "chain"
    before = (run / "student" / "final" / "model.safetensors").stat().st_mtime_ns
    result = runner.invoke(app, ["pipeline", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "student" / "final" / "model.safetensors").stat().st_mtime_ns == before
    assert "| student | train |" in result.output


def test_a_new_pipeline_over_an_existing_one_is_refused(tmp_path, pipeline_file):
    assert runner.invoke(app, ["pipeline", pipeline_file()]).exit_code == 0
    result = runner.invoke(app, ["pipeline", pipeline_file()])
    assert result.exit_code == 2, result.output
    assert "--resume" in result.output and "--overwrite" in result.output


@pytest.mark.parametrize(
    "recipe", sorted(RECIPES_DIR.glob("r1_pipeline_*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_pipeline_passes_dry_run(recipe, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["pipeline", str(recipe), "--dry-run", "--set", f"output.dir={out}"]
    )
    assert result.exit_code == 0, result.output
    assert not out.exists()
