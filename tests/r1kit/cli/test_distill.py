import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from r1kit.cli import RECIPES_DIR, app
from r1kit.model_card import front_matter
from tests.distill.conftest import arithmetic_messages, write_jsonl
from tests.r1kit.cli import stop_script

runner = CliRunner()


def recipe_file(tmp_path, **sections) -> str:
    traces = write_jsonl(tmp_path / "traces.jsonl", arithmetic_messages(6))
    recipe = {
        "student": {"name": "tiny-llama"},
        "traces": {"source": str(traces)},
        "data": {"source": "arithmetic", "eval_size": 3},
        "sft": {"epochs": 2, "lr": 1e-3, "batch_size": 4, "micro_batch_size": 2, "save_every": 1},
        "eval": {"max_new_tokens": 6},
        "output": {"dir": str(tmp_path / "runs"), "name": "tiny", "report_to": []},
    }
    recipe.update(sections)
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_a_messages_file_from_another_tool_trains_a_student_end_to_end(tmp_path):
    result = runner.invoke(app, ["distill", recipe_file(tmp_path)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny"
    model = AutoModelForCausalLM.from_pretrained(run / "final")
    assert model.config.num_hidden_layers == 2
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # 6 traces in batches of 4, twice
    for stage in ("before", "after"):
        summary = json.loads((run / "eval" / stage / "summary.json").read_text())
        assert summary["problems"] == 3
    assert (run / "eval.png").is_file()
    assert "after: held-out pass@1" in result.output
    card = (run / "final" / "README.md").read_text()
    assert front_matter(card)["base_model"] == "tiny-llama" and "| after distillation |" in card


def test_resume_of_a_finished_run_keeps_its_steps(tmp_path):
    assert runner.invoke(app, ["distill", recipe_file(tmp_path)]).exit_code == 0
    run = tmp_path / "runs" / "tiny"
    result = runner.invoke(app, ["distill", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"sft": {"lrr": 1}}, "sft.lrr: unknown field (did you mean 'lr'?)"),
        ({"traces": {"source": "missing.jsonl"}}, "traces file not found"),
        ({"student": {"name": "smollm2-135m"}}, "student.name: unknown model"),
        ({"student": {"from": "teacher", "keep_layers": "every_other"}}, "needs a teacher"),
        ({"template": {"name": "r1_zero"}}, "chat template"),
    ],
)
def test_a_bad_recipe_exits_2_naming_the_field(tmp_path, change, words):
    result = runner.invoke(app, ["distill", recipe_file(tmp_path, **change)])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


def _bad_traces(tmp_path) -> dict:
    rows = arithmetic_messages(3)
    rows[1]["messages"] = rows[1]["messages"][:1]  # no assistant reply
    return {"source": str(write_jsonl(tmp_path / "bad.jsonl", rows))}


def _empty_traces(tmp_path) -> dict:
    (tmp_path / "empty.jsonl").write_text("")
    return {"source": str(tmp_path / "empty.jsonl")}


def _bad_data(tmp_path) -> dict:
    rows = [{"question": "1 + 1", "answer": "2"}, {"question": "", "answer": "3"}] * 2
    return {"source": str(write_jsonl(tmp_path / "data.jsonl", rows)), "eval_size": 1}


# case -> (the section, its bad value, what the message says)
BAD_INPUTS = {
    "unknown-filter-reward": (
        "filter",
        lambda tmp: {"rewards": [{"name": "nope"}]},
        "filter.rewards.0.name: unknown reward 'nope'",
    ),
    "missing-teacher": ("teacher", lambda tmp: str(tmp / "gone"), "teacher: unknown model"),
    "missing-traces-file": (
        "traces",
        lambda tmp: {"source": str(tmp / "gone.jsonl")},
        "traces file not found",
    ),
    "empty-traces-file": ("traces", _empty_traces, "empty.jsonl: no traces in it"),
    "bad-traces-rows": ("traces", _bad_traces, "bad.jsonl: row 2: messages must end"),
    "bad-data-rows": ("data", _bad_data, "data.jsonl:2: column 'question'"),
    "traces-too-long": (
        "sft",
        lambda tmp: {"max_length": 8},
        "none of its 6 traces fits in sft.max_length=8",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_bad_input_exits_2_naming_it_and_the_fixed_retry_starts(tmp_path, case, monkeypatch):
    section, bad, words = BAD_INPUTS[case]
    good = yaml.safe_load(Path(recipe_file(tmp_path, eval={"before": False})).read_text())
    if section in ("filter", "teacher"):  # used when a teacher generates the traces
        good |= {"traces": None, "teacher": "tiny-llama", "filter": {"rewards": [{"name": "math"}]}}
    recipe = tmp_path / "distill.yaml"
    recipe.write_text(yaml.safe_dump({**good, section: bad(tmp_path)}))
    result = runner.invoke(app, ["distill", str(recipe)])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    run = tmp_path / "runs" / "tiny"
    assert not run.exists()
    recipe.write_text(yaml.safe_dump(good))  # fixed: the retry is not refused, and starts
    monkeypatch.setattr("distill.pipeline.Distillation.fit", lambda self, resume: None)
    assert runner.invoke(app, ["distill", str(recipe)]).exit_code == 0
    assert (run / "config.yaml").is_file()


def test_a_run_dir_left_without_results_does_not_block_a_new_run(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "tiny"
    (run / "tb").mkdir(parents=True)
    (run / "config.yaml").write_text("{}")  # what a run stopped before its first result holds
    monkeypatch.setattr("distill.pipeline.Distillation.fit", lambda self, resume: None)
    result = runner.invoke(app, ["distill", recipe_file(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "student" in yaml.safe_load((run / "config.yaml").read_text())  # the new run's


def test_generated_traces_that_do_not_fit_name_the_run_s_traces_file(tmp_path):
    result = runner.invoke(
        app,
        [
            "distill",
            teacher_recipe(tmp_path, require_think_close=False),
            "--set",
            "sft.max_length=8",
        ],
    )
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "traces/traces.jsonl: none of its 3 traces fits in sft.max_length=8" in message
    assert "traces.source" in message and "--overwrite" in message


def teacher_recipe(tmp_path, **filter_options) -> str:
    reward = tmp_path / "anything.py"
    reward.write_text(
        "def anything(prompts, completions, **kw):\n    return [1.0] * len(completions)\n"
    )
    return recipe_file(
        tmp_path,
        traces=None,
        teacher="tiny-llama",
        generate={"problems": 3, "samples": 2, "max_new_tokens": 6},
        filter={"rewards": [{"name": f"{reward}:anything"}], **filter_options},
        eval={"before": False, "max_new_tokens": 4},
    )


def test_traces_generated_by_a_teacher_are_filtered_stored_and_learned(tmp_path):
    result = runner.invoke(app, ["distill", teacher_recipe(tmp_path, require_think_close=False)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny"
    assert len((run / "generated.jsonl").read_text().splitlines()) == 6
    assert len((run / "traces" / "traces.jsonl").read_text().splitlines()) == 3  # 1 per problem
    assert "teacher: `tiny-llama`" in (run / "traces" / "README.md").read_text()
    assert "6/6 accepted" in result.output
    assert (run / "final" / "config.json").is_file()


def test_no_accepted_trace_exits_2_saying_what_to_loosen(tmp_path):
    result = runner.invoke(app, ["distill", teacher_recipe(tmp_path, min_tokens=100)])
    assert result.exit_code == 2, result.output
    assert "accepted none" in result.output


def test_generate_workers_ray_cannot_place_exit_2_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr("rollout.ray_pool.connect", lambda address: {"CPU": 1.0})
    recipe = yaml.safe_load(Path(teacher_recipe(tmp_path)).read_text())
    recipe["generate"] |= {"workers": 2}
    recipe["ray"] = {"cpus_per_worker": 1}
    (tmp_path / "distill.yaml").write_text(yaml.safe_dump(recipe))
    result = runner.invoke(app, ["distill", str(tmp_path / "distill.yaml")])
    assert result.exit_code == 2, result.output
    assert "generate.workers: 2 workers x ray.cpus_per_worker 1" in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("recipe", sorted(RECIPES_DIR.glob("distill_*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_distill_recipe_passes_dry_run(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where `make train` left its run: the recipes' teacher
    (tmp_path / "runs" / "r1_zero_arithmetic_smollm2").mkdir(parents=True)
    out = tmp_path / "out"
    result = runner.invoke(app, ["distill", str(recipe), "--dry-run", "--set", f"output.dir={out}"])
    assert result.exit_code == 0, result.output
    assert not out.exists()


def on_policy_recipe(tmp_path, teacher: str = "tiny-llama") -> str:
    return recipe_file(
        tmp_path,
        mode="on_policy",
        traces=None,
        teacher=teacher,
        on_policy={"steps": 2, "prompts_per_step": 2, "samples": 2, "max_new_tokens": 4},
        eval={"before": False, "max_new_tokens": 4},
    )


def test_on_policy_distillation_runs_and_logs_the_reverse_kl(tmp_path):
    result = runner.invoke(app, ["distill", on_policy_recipe(tmp_path)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2] and all("reverse_kl" in m for m in metrics)
    assert (run / "final" / "config.json").is_file()
    assert front_matter((run / "final" / "README.md").read_text())["base_model"] == "tiny-llama"


def test_a_teacher_of_another_vocabulary_is_refused_with_exit_2(tmp_path):
    from r1kit.models import tiny_model

    model, tokenizer = tiny_model()
    tokenizer.add_tokens(["<only-in-this-teacher>"])
    model.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    result = runner.invoke(app, ["distill", on_policy_recipe(tmp_path, str(tmp_path / "teacher"))])
    assert result.exit_code == 2, result.output
    assert "different vocabularies" in " ".join(result.output.split())


def test_a_killed_on_policy_run_resumes_to_the_same_final_weights(tmp_path, monkeypatch):
    from r1kit.learner.core import Learner
    from r1kit.models import tiny_model

    model, tokenizer = tiny_model(seed=1)  # a teacher unlike the student: the KL is not 0
    model.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    recipe = recipe_file(
        tmp_path,
        mode="on_policy",
        traces=None,
        teacher=str(tmp_path / "teacher"),
        on_policy={"steps": 4, "prompts_per_step": 2, "samples": 2, "max_new_tokens": 4},
        sft={"lr": 1e-2, "save_every": 2},
        eval={"before": False, "after": False},
    )
    assert runner.invoke(app, ["distill", recipe, "--set", "output.name=straight"]).exit_code == 0
    real_step, calls = Learner.step, []

    def dies_at_step_3(*args):
        calls.append(1)
        if len(calls) == 3:  # after the step-2 checkpoint
            raise RuntimeError("killed")
        return real_step(*args)

    monkeypatch.setattr(Learner, "step", dies_at_step_3)
    runner.invoke(app, ["distill", recipe, "--set", "output.name=killed"])
    monkeypatch.setattr(Learner, "step", real_step)
    killed = tmp_path / "runs" / "killed"
    assert not (killed / "final").exists()
    result = runner.invoke(app, ["distill", "--resume", str(killed)])
    assert result.exit_code == 0, result.output
    steps = [
        json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4]
    straight = load_file(tmp_path / "runs" / "straight" / "final" / "model.safetensors")
    resumed = load_file(killed / "final" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for name, tensor in straight.items():
        assert torch.equal(tensor, resumed[name]), name


def test_a_teacher_run_not_trained_yet_exits_2_saying_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here: `make train` has not run
    result = runner.invoke(app, ["distill", str(RECIPES_DIR / "distill_arithmetic_smollm2.yaml")])
    assert result.exit_code == 2, result.output
    assert "runs/r1_zero_arithmetic_smollm2 not found" in result.output


def test_sigterm_during_sft_exits_143_with_a_checkpoint_that_resumes_exactly(tmp_path):
    recipe = recipe_file(
        tmp_path,
        sft={"epochs": 2, "lr": 1e-3, "batch_size": 2, "save_every": 0},
        eval={"before": False, "after": False},
    )
    assert runner.invoke(app, ["distill", recipe, "--set", "output.name=whole"]).exit_code == 0
    command = [
        sys.executable,
        stop_script.__file__,
        "distill",
        recipe,
        "--set",
        "output.name=stopped",
    ]
    env = {**os.environ, "STOP_AT": "2"}  # SFT step 2
    proc = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 143, proc.stdout + proc.stderr
    run = tmp_path / "runs" / "stopped"
    assert f"--resume {run}" in " ".join(proc.stdout.split())
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-2"]  # save_every: 0
    assert not (run / "final").exists()
    result = runner.invoke(app, ["distill", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    whole = load_file(tmp_path / "runs" / "whole" / "final" / "model.safetensors")
    resumed = load_file(run / "final" / "model.safetensors")
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)


def test_sigterm_during_on_policy_distillation_exits_143_with_a_checkpoint(tmp_path, monkeypatch):
    from r1kit.learner.core import Learner

    real_step = Learner.step

    def terminated(*args):
        os.kill(os.getpid(), signal.SIGTERM)  # lands during step 1: it ends, then the run stops
        return real_step(*args)

    monkeypatch.setattr(Learner, "step", terminated)
    recipe = recipe_file(
        tmp_path,
        mode="on_policy",
        traces=None,
        teacher="tiny-llama",
        on_policy={"steps": 3, "prompts_per_step": 2, "samples": 2, "max_new_tokens": 4},
        sft={"save_every": 0},
        eval={"before": False, "after": False},
    )
    result = runner.invoke(app, ["distill", recipe])
    assert result.exit_code == 143, result.output
    run = tmp_path / "runs" / "tiny"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-1"]
    assert not (run / "final").exists()


def _distill_run(tmp_path) -> Path:
    """A distill run directory holding only its config.yaml, with a step-1 checkpoint that
    copied it in."""
    from distill.recipe import load_distill_recipe
    from r1kit import durable
    from r1kit.rundir import RunDir

    recipe = load_distill_recipe(recipe_file(tmp_path))
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    with durable.replace_dir(run.checkpoint_dir(1), step=1) as checkpoint:
        (checkpoint / "config.yaml").write_text(run.config)
    return run.path


def test_a_live_distill_run_makes_a_second_writer_exit_2(tmp_path, lock_holder):
    run = _distill_run(tmp_path)
    holder, _ = lock_holder(run)
    result = runner.invoke(app, ["distill", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    assert f"is being written by pid {holder.pid}" in " ".join(result.output.split())


def test_a_hand_edited_distill_config_is_refused_naming_the_field(tmp_path):
    run = _distill_run(tmp_path)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.001", "lr: 0.01"))
    result = runner.invoke(app, ["distill", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "edited by hand since checkpoint step-1: sft.lr (was 0.001, now 0.01)" in message
