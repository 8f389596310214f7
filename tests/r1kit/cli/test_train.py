import os
import re
import shlex
import signal
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from r1kit import durable
from r1kit.cli import RECIPES_DIR, app
from r1kit.cli.train import _resumed_recipe
from r1kit.recipe import RESUMABLE_FIELDS, validate
from r1kit.rundir import RunDir

runner = CliRunner()


def _run_recipe(tmp_path, recipe: dict, *extra: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"output": {"dir": str(tmp_path / "runs")}, **recipe}))
    return runner.invoke(app, ["train", str(path), *extra])


@pytest.mark.parametrize(
    ("recipe", "field", "words"),
    [
        ({"learner": {"lrr": 1e-5}}, "learner.lrr", "did you mean 'lr'"),
        ({"rollout": {"group_size": "many"}}, "rollout.group_size", "valid integer"),
        ({"data": {"source": "missing.jsonl"}}, "data.source", "not found"),
        ({"rewards": [{"name": "mathh"}]}, "rewards.0.name", "math"),
        ({"rewards": [{"name": "nowhere.py:fn"}]}, "rewards.0.name", "nowhere.py"),
        ({"model": {"name": "smollm2-135m"}}, "model.name", "did you mean 'smollm2-135m-instruct'"),
        ({"model": {"name": "missing/model.gguf"}}, "model.name", "not found"),
        ({"learner": {"strategy": "zero3"}}, "learner.strategy", "'ddp' or 'fsdp'"),
        ({"learner": {"loss": "gspo"}}, "learner.loss", "learner.ratio_level: sequence"),
        ({"learner": {"policy_loss": "ppo"}}, "learner.policy_loss", "registered: cispo, clip"),
        (
            {"learner": {"world_size": 2}, "model": {"dtype": "float16"}},
            "model.dtype",
            "strategy fsdp",
        ),
        (
            {"learner": {"world_size": 2}, "ray": {"gpus_per_rank": 0.5}},
            "ray.gpus_per_rank",
            "NCCL",
        ),
    ],
)
def test_bad_recipe_exits_2_naming_the_field_and_writes_nothing(tmp_path, recipe, field, words):
    result = _run_recipe(tmp_path, recipe)
    assert result.exit_code == 2, result.output
    assert field in result.output and words in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_recipe_file_exits_2(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "recipe file not found" in result.output


def test_bad_override_exits_2(tmp_path):
    result = _run_recipe(tmp_path, {}, "--set", "learner.loss=ppo")
    assert result.exit_code == 2 and "learner.loss" in result.output


OTHER_COMMANDS = {*RECIPES_DIR.glob("distill_*.yaml"), *RECIPES_DIR.glob("r1_pipeline_*.yaml")}
GRPO_RECIPES = sorted(set(RECIPES_DIR.glob("*.yaml")) - OTHER_COMMANDS)


@pytest.mark.parametrize("recipe", GRPO_RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_passes_dry_run(recipe: Path, tmp_path):
    result = runner.invoke(
        app, ["train", str(recipe), "--dry-run", "--set", f"output.dir={tmp_path}"]
    )
    assert result.exit_code == 0, result.output
    assert "plan" in result.output and not any(tmp_path.iterdir())


def test_resume_of_a_non_run_directory_exits_2(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "config.yaml" in result.output


def _saved_run(tmp_path, **sections) -> Path:
    """A run directory holding only its resolved recipe (enough for the resume checks)."""
    recipe = validate({"output": {"dir": str(tmp_path / "runs"), "name": "r"}, **sections})
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    return run.path


@pytest.mark.parametrize(
    "change",
    [
        "rollout.group_size=4",
        "learner.loss=grpo",
        "model.name=tiny-llama",
        "data.source=countdown",
        "seed=3",
    ],
)
def test_resume_refuses_a_change_that_would_alter_what_was_learned(tmp_path, change):
    run = _saved_run(tmp_path)
    result = runner.invoke(app, ["train", "--resume", str(run), "--set", change])
    field = change.partition("=")[0]
    assert result.exit_code == 2
    assert f"--set {field}: cannot change" in " ".join(result.output.split())
    assert "learner.lr" in result.output  # says what can change


ALLOWED = {
    "train.steps": 20,
    "train.eval_every": 5,
    "train.save_every": 3,
    "train.keep_last": 4,
    "train.save_best": True,
    "train.samples_per_step": 2,
    "train.threads": 1,
    "learner.lr": 3e-6,
    "learner.world_size": 2,
    "learner.strategy": "ddp",
    "ray.cpus_per_rank": 2.0,
    "ray.gpus_per_rank": 1.0,
    "ray.placement": "spread",
    "scoring.workers": 1,
    "output.report_to": [],
}


def test_every_resumable_field_is_tested():
    assert set(ALLOWED) == set(RESUMABLE_FIELDS)


@pytest.mark.parametrize(("field", "value"), ALLOWED.items())
def test_resume_accepts_and_records_each_field_that_may_change(tmp_path, field, value):
    recipe = _resumed_recipe(None, [f"{field}={value}"], RunDir(_saved_run(tmp_path)))
    assert [(c.step, c.field, c.value) for c in recipe.changes] == [(0, field, value)]


def test_resume_records_an_allowed_change_with_its_step(tmp_path):
    run = _saved_run(tmp_path)
    recipe = _resumed_recipe(None, ["learner.lr=3e-6", "train.steps=7"], RunDir(run))
    assert recipe.learner.lr == 3e-6 and recipe.train.steps == 7
    assert [(c.step, c.field, c.value) for c in recipe.changes] == [
        (0, "learner.lr", 3e-6),
        (0, "train.steps", 7),
    ]


def test_resume_with_a_recipe_other_than_the_runs_is_refused(tmp_path):
    run = _saved_run(tmp_path, learner={"lr": 1e-6})
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"learner": {"lr": 2e-6}}))
    result = runner.invoke(app, ["train", str(other), "--resume", str(run)])
    assert result.exit_code == 2 and "differ in learner" in result.output


def test_resume_with_the_runs_own_recipe_is_accepted(tmp_path):
    run = _saved_run(tmp_path, learner={"lr": 1e-6})
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({"learner": {"lr": 1e-6}}))
    assert _resumed_recipe(same, [], RunDir(run)).learner.lr == 1e-6


def test_a_new_run_over_an_existing_one_says_how_to_resume_or_overwrite(tmp_path):
    run = _saved_run(tmp_path)
    RunDir(run).log_metrics(0, {"eval/pass@1": 0.1})  # it has started: results to lose
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"output": {"dir": str(tmp_path / "runs"), "name": "r"}}))
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 2
    assert f"--resume {run}" in " ".join(result.output.split()) and "--overwrite" in result.output


def _tiny_run(tmp_path, tiny_recipe, **sections) -> tuple[Path, Path]:
    """A tiny recipe's file, and its run directory holding only config.yaml (not started)."""
    raw = tiny_recipe(**sections)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    run = RunDir(validate(raw).run_dir())
    run.create(validate(raw))
    return path, run.path


@pytest.mark.parametrize("how", ["--resume", "--overwrite"])
def test_a_second_writer_of_a_live_run_exits_2_naming_the_first(
    tmp_path, tiny_recipe, lock_holder, how
):
    recipe, run = _tiny_run(tmp_path, tiny_recipe)
    holder, _ = lock_holder(run)
    args = ["--resume", str(run)] if how == "--resume" else [str(recipe), "--overwrite"]
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"{run} is being written by pid {holder.pid}" in message and "stop it" in message
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.yaml"]  # nothing touched


def test_resuming_a_run_that_is_only_starting_names_its_writer(tmp_path, lock_holder):
    run = tmp_path / "starting"  # locked, config.yaml not written yet
    holder, _ = lock_holder(run)
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    assert f"being written by pid {holder.pid}" in " ".join(result.output.split())


def test_a_sigkilled_run_never_blocks_its_resume(tmp_path, tiny_recipe, lock_holder):
    _, run = _tiny_run(tmp_path, tiny_recipe, train={"steps": 1})
    holder, child = lock_holder(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    os.kill(child, 0)  # its orphan child lives on
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert [m["step"] for m in RunDir(run).metrics()] == [0, 1]


def _cli(*args: str) -> str:
    """A shell command running the r1kit CLI (a real process, as a user runs it)."""
    return shlex.join([sys.executable, "-m", "r1kit.cli", *args])


@pytest.mark.slow
def test_a_full_disk_stops_with_exit_2_and_the_run_resumes_once_there_is_room(
    tmp_path, tiny_recipe, small_disk
):
    """60 MiB holds the step-2 checkpoint (~42 MiB) but not step-4 beside it."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    out.mkdir()
    recipe, _ = _tiny_run(tmp_path, tiny_recipe, output={"dir": str(disk)})
    run = disk / "tiny"
    script = (
        f"{_cli('train', str(recipe))} > {out}/full.txt 2>&1; echo $? > {out}/full.rc; "
        f"cp -a {run} {out}/after; mount -o remount,size=200m {disk}; "
        f"{_cli('train', '--resume', str(run))} > {out}/resumed.txt 2>&1; "
        f"echo $? > {out}/resumed.rc; cp -a {run} {out}/resumed"
    )
    assert small_disk(disk, "60m", script).returncode == 0
    message = " ".join((out / "full.txt").read_text().split())
    assert (out / "full.rc").read_text() == "2\n", message
    assert f"cannot write {run}/checkpoints/step-4: No space left on device" in message
    assert (
        "it needs about" in message
        and f"r1kit train --resume {run} (from step-2, intact)" in message
    )
    assert sorted(p.name for p in (out / "after/checkpoints").iterdir()) == ["step-2"]
    assert RunDir(out / "after").recover_checkpoint()[1] == []  # step-2 whole
    step_2 = sum(f.stat().st_size for f in (out / "after/checkpoints/step-2").rglob("*"))
    needs = float(re.search(r"needs about ([\d.]+) MiB", message)[1])
    assert needs >= round(step_2 / (1 << 20), 1)  # what a checkpoint takes, tokenizer and all
    assert (out / "resumed.rc").read_text() == "0\n", (out / "resumed.txt").read_text()
    assert [m["step"] for m in RunDir(out / "resumed").metrics()] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_resume_removes_a_killed_save_s_scratch_before_it_writes(tmp_path, tiny_recipe, small_disk):
    """A save killed on a full disk left checkpoints/step-4.tmp filling it: `--resume --set`
    must free that before it writes config.yaml, else it fails every time."""
    recipe, _ = _tiny_run(tmp_path, tiny_recipe, train={"steps": 2})
    assert runner.invoke(app, ["train", str(recipe), "--overwrite"]).exit_code == 0
    disk, out = tmp_path / "disk", tmp_path / "out"
    out.mkdir()
    run = disk / "tiny"
    resume = _cli(
        "train", "--resume", str(run), "--set", "train.steps=4", "--set", "train.keep_last=1"
    )
    script = (
        f"cp -a {tmp_path}/runs/tiny {run} && mkdir {run}/checkpoints/step-4.tmp && "
        f"(dd if=/dev/zero of={run}/checkpoints/step-4.tmp/model.safetensors bs=1M || true) && "
        f"{resume} > {out}/resumed.txt 2>&1; echo $? > {out}/resumed.rc; cp -a {run} {out}/resumed"
    )
    assert small_disk(disk, "110m", script).returncode == 0
    assert (out / "resumed.rc").read_text() == "0\n", (out / "resumed.txt").read_text()
    resumed = RunDir(out / "resumed")
    assert [m["step"] for m in resumed.metrics()] == [0, 1, 2, 3, 4]
    assert [
        c["field"] for c in yaml.safe_load((out / "resumed/config.yaml").read_text())["changes"]
    ] == ["train.steps", "train.keep_last"]


@pytest.mark.slow
def test_a_read_only_checkpoint_directory_exits_2_before_a_step(tmp_path, tiny_recipe, small_disk):
    _, run = _tiny_run(tmp_path, tiny_recipe)
    checkpoints = run / "checkpoints"
    script = (
        f"mount -o remount,ro {checkpoints} && {_cli('train', '--resume', str(run))}"
        f" > {tmp_path}/out.txt 2>&1; echo $? > {tmp_path}/rc"
    )
    assert small_disk(checkpoints, "1m", script).returncode == 0
    message = " ".join((tmp_path / "out.txt").read_text().split())
    assert (tmp_path / "rc").read_text() == "2\n", message
    assert f"cannot write {checkpoints}: Read-only file system" in message
    assert not (run / "metrics.jsonl").exists()  # not even the step-0 evaluation was spent


def test_a_config_yaml_that_is_not_yaml_exits_2_naming_its_line(tmp_path, tiny_recipe):
    _, run = _tiny_run(tmp_path, tiny_recipe)
    lines = (run / "config.yaml").read_text().splitlines()
    lines[6] = "  lr: [0.03"  # an edit cut short
    (run / "config.yaml").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"{run}/config.yaml:8: not YAML" in message and "--overwrite" in message


@pytest.mark.parametrize("log", ["metrics.jsonl", "samples.jsonl"])
def test_a_corrupt_log_line_exits_2_naming_file_and_line(tmp_path, tiny_recipe, log):
    _, run = _tiny_run(tmp_path, tiny_recipe)
    (run / log).write_text('{"step": 0}\n{"step": 1, "lo\n{"step": 2}\n')
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"{run / log}:2: not a JSON line" in message and "delete that line" in message


def _checkpointed(tmp_path, tiny_recipe, edit: str = "") -> Path:
    """A run whose step-2 checkpoint holds its config.yaml, then `edit` (`old -> new`), if
    any, made to config.yaml by hand."""
    _, path = _tiny_run(tmp_path, tiny_recipe)
    run = RunDir(path)
    with durable.replace_dir(run.checkpoint_dir(2), step=2) as checkpoint:
        (checkpoint / "config.yaml").write_text((path / "config.yaml").read_text())
    if edit:
        old, new = edit.split(" -> ")
        text = (path / "config.yaml").read_text()
        assert old in text
        (path / "config.yaml").write_text(text.replace(old, new))
    return path


def test_a_hand_edit_of_a_resumable_field_is_recorded_as_a_change(tmp_path, tiny_recipe):
    run = _checkpointed(tmp_path, tiny_recipe, "lr: 0.03 -> lr: 0.001")
    recipe = _resumed_recipe(None, [], RunDir(run))
    assert recipe.learner.lr == 0.001
    assert [(c.step, c.field, c.value) for c in recipe.changes] == [(2, "learner.lr", 0.001)]


def test_a_hand_edit_of_what_the_run_learned_from_exits_2_naming_it(tmp_path, tiny_recipe):
    run = _checkpointed(tmp_path, tiny_recipe, "group_size: 4 -> group_size: 8")
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"{run}/config.yaml: edited by hand since checkpoint step-2" in message
    assert "rollout.group_size (was 4, now 8)" in message and "restore it" in message
    assert "with --set" in message and "learner.lr" in message


def test_a_set_on_resume_stopped_before_its_checkpoint_is_recorded_once(tmp_path, tiny_recipe):
    run = _checkpointed(tmp_path, tiny_recipe)
    first = _resumed_recipe(None, ["learner.lr=0.001"], RunDir(run))
    RunDir(run).write_config(first)  # then stopped before a checkpoint copied it in
    again = _resumed_recipe(None, [], RunDir(run))
    assert [(c.field, c.value) for c in again.changes] == [("learner.lr", 0.001)]


def test_the_colocated_recipe_s_dry_run_shows_the_colocated_plan(tmp_path):
    recipe = RECIPES_DIR / "r1_zero_gsm8k_qwen2.5-1.5b_colocate.yaml"
    result = runner.invoke(
        app, ["train", str(recipe), "--dry-run", "--set", f"output.dir={tmp_path}"]
    )
    assert result.exit_code == 0, result.output
    plan = " ".join(result.output.split())  # the console wraps long lines
    assert "engine vllm, in-process (colocated with the learner), 30% of the GPU" in plan
    assert "sleeps while the learner trains" in plan
    assert "weights LoRA adapter only, as peft files in /dev/shm" in plan


def test_the_dry_run_shows_the_native_route_a_gpu_would_take(tmp_path):
    recipe = RECIPES_DIR / "r1_zero_gsm8k_qwen2.5-1.5b_colocate.yaml"
    result = runner.invoke(
        app,
        [
            "train",
            str(recipe),
            "--dry-run",
            "--set",
            f"output.dir={tmp_path}",
            "--set",
            "model.lora=null",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = " ".join(result.output.split())
    assert "on a GPU: CUDA IPC (CUDA, engine in the learner's process)" in plan
