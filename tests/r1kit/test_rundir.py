"""Run directories after kills: resume finds the newest whole checkpoint, logs are cut exactly."""

import json

import pytest

from r1kit import durable
from r1kit.recipe import RecipeError
from r1kit.rundir import CHECKPOINT_NAME, RunDir


def _save(run: RunDir, step: int) -> None:
    """A stand-in checkpoint, written the way r1kit/learner/checkpoint.py writes one."""
    with durable.replace_dir(run.checkpoint_dir(step), step=step) as scratch:
        (scratch / "model.safetensors").write_bytes(bytes([step]) * 64)
        (scratch / "trainer_state.pt").write_bytes(b"state" * step)


def _run(tmp_path, *steps: int) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    for step in steps:
        _save(run, step)
    return run


def _names(run: RunDir) -> list[str]:
    return sorted(p.name for p in run.checkpoints.iterdir())


def test_resume_picks_the_newest_checkpoint_without_warnings(tmp_path):
    run = _run(tmp_path, 2, 4, 10)
    assert run.recover_checkpoint() == (run.checkpoint_dir(10), [])


def test_a_run_without_checkpoints_resumes_from_nothing(tmp_path):
    assert RunDir(tmp_path / "run").recover_checkpoint() == (None, [])


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "model.safetensors").write_bytes(b"\0" * 10),
        lambda d: (d / "trainer_state.pt").unlink(),
        lambda d: (d / durable.MANIFEST).unlink(),
    ],
    ids=["truncated", "missing", "no-manifest"],
)
def test_a_damaged_checkpoint_falls_back_with_a_warning(tmp_path, damage):
    run = _run(tmp_path, 2, 4)
    damage(run.checkpoint_dir(4))
    path, problems = run.recover_checkpoint()
    assert path == run.checkpoint_dir(2)
    assert len(problems) == 1 and "step-4" in problems[0]
    assert _names(run) == ["step-2", "step-4.broken"]


def test_a_checkpoint_under_the_wrong_name_is_not_trusted(tmp_path):
    run = _run(tmp_path, 2, 4)
    durable.remove_dir(run.checkpoint_dir(4))
    (run.checkpoint_dir(2)).rename(run.checkpoint_dir(4))
    path, problems = run.recover_checkpoint()
    assert path is None and "manifest is for step 2" in problems[0]


def test_every_checkpoint_broken_means_start_over(tmp_path):
    run = _run(tmp_path, 1, 2)
    for step in (1, 2):
        (run.checkpoint_dir(step) / "model.safetensors").unlink()
    path, problems = run.recover_checkpoint()
    assert path is None and len(problems) == 2


def _half_written(run: RunDir, step: int) -> None:
    scratch = run.checkpoints / f"step-{step}.tmp"
    scratch.mkdir()
    (scratch / "model.safetensors").write_bytes(b"\0" * 7)


def _written_not_renamed(run: RunDir, step: int) -> None:
    _save(run, step)
    run.checkpoint_dir(step).rename(run.checkpoints / f"step-{step}.tmp")


def _set_aside_then_killed(run: RunDir, step: int) -> None:
    run.checkpoint_dir(step).rename(run.checkpoints / f"step-{step}.old")
    _half_written(run, step)


def _swapped_old_not_deleted(run: RunDir, step: int) -> None:
    run.checkpoint_dir(step).rename(run.checkpoints / f"step-{step}.old")
    _save(run, step)


def _old_copy_half_deleted(run: RunDir, step: int) -> None:
    _save(run, 99)
    old = run.checkpoints / f"step-{step}.old.tmp"
    run.checkpoint_dir(99).rename(old)
    (old / "model.safetensors").unlink()


def _pruned_half_deleted(run: RunDir, step: int) -> None:
    doomed = run.checkpoints / "step-2.tmp"
    run.checkpoint_dir(2).rename(doomed)
    (doomed / durable.MANIFEST).unlink()


@pytest.mark.parametrize(
    ("kill", "saved", "resumes_from"),
    [
        (_half_written, (2,), 2),
        (_written_not_renamed, (2,), 2),
        (_set_aside_then_killed, (2, 4), 4),
        (_swapped_old_not_deleted, (2, 4), 4),
        (_old_copy_half_deleted, (2, 4), 4),
        (_pruned_half_deleted, (2, 4), 4),
    ],
)
def test_every_state_a_killed_save_leaves_resumes_cleanly(tmp_path, kill, saved, resumes_from):
    """Saving step 4 (a new one, or again as the landed trainer does) killed at each stage."""
    run = _run(tmp_path, *saved)
    kill(run, 4)
    (run.path / "config.yaml.tmp").write_text("half")
    assert run.recover_checkpoint() == (run.checkpoint_dir(resumes_from), [])
    assert all(CHECKPOINT_NAME.fullmatch(p.name) for p in run.checkpoints.iterdir())
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints"]


def test_scratch_names_never_break_listing_or_pruning(tmp_path):
    run = _run(tmp_path, 1, 3)
    for name in ("step-3.tmp", "step-5.tmp", "step-x", "step-1.broken", "notes"):
        (run.checkpoints / name).mkdir()
    assert [step for step, _ in run.saved()] == [1, 3]
    run.prune_checkpoints(keep_last=1)
    assert "step-3" in _names(run) and "step-1" not in _names(run)


def test_prune_keeps_the_newest(tmp_path):
    run = _run(tmp_path, 1, 2, 3, 10)
    run.prune_checkpoints(keep_last=2)
    assert _names(run) == ["step-10", "step-3"]


def test_a_broken_newest_checkpoint_never_costs_the_last_good_one(tmp_path):
    """keep_last=1 after a fallback: the broken step-4 is set aside, so the new step-3
    (saved by the resumed run) is kept and pruning removes only step-2."""
    run = _run(tmp_path, 2, 4)
    (run.checkpoint_dir(4) / "trainer_state.pt").write_bytes(b"x")
    assert run.recover_checkpoint()[0] == run.checkpoint_dir(2)
    _save(run, 3)
    run.prune_checkpoints(keep_last=1)
    assert run.recover_checkpoint() == (run.checkpoint_dir(3), [])


def _log(run: RunDir, steps: range) -> None:
    for step in steps:
        run.log_metrics(step, {"loss": float(step)})
        run.log_samples(step, [{"completion": "a"}, {"completion": "b"}])


def test_discard_logs_cuts_exactly_at_the_resumed_step(tmp_path):
    run = RunDir(tmp_path)
    _log(run, range(7))
    run.discard_logs_from(5)
    assert [m["step"] for m in run.metrics()] == [0, 1, 2, 3, 4]
    samples = durable.read_jsonl(tmp_path / "samples.jsonl")
    assert [s["step"] for s in samples] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_a_restart_from_nothing_discards_every_line(tmp_path):
    run = RunDir(tmp_path)
    _log(run, range(3))
    run.discard_logs_from(0)
    assert run.metrics() == [] and durable.read_jsonl(tmp_path / "samples.jsonl") == []


def test_a_kill_mid_line_then_resume_logs_cleanly(tmp_path):
    run = RunDir(tmp_path)
    _log(run, range(4))
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 4, "lo')  # the kill
    assert [m["step"] for m in run.metrics()] == [0, 1, 2, 3]
    run.discard_logs_from(3)
    _log(run, range(3, 5))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 1, 2, 3, 4]


def test_a_run_holding_only_its_config_and_tb_has_not_started(tmp_path):
    from r1kit.recipe import validate

    run = RunDir(tmp_path / "run")
    run.create(validate({}))
    (run.path / "tb").mkdir()
    assert not run.started()
    run.log_metrics(1, {"loss": 1.0})
    assert run.started()


def test_the_lock_file_is_not_a_start_and_survives_clearing(tmp_path):
    from r1kit.recipe import validate

    run = RunDir(tmp_path / "run")
    with run.lock():
        run.create(validate({}))
        assert not run.started()
        _log(run, range(2))
        _save(run, 1)
        run.clear()
        assert [p.name for p in run.path.iterdir()] == [".lock"]


def test_a_config_yaml_that_is_not_a_mapping_names_the_file(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "config.yaml").write_text("- just\n- a list\n")
    with pytest.raises(RecipeError, match=r"config.yaml: not a recipe \(a list"):
        run.read_config()


def test_the_config_copy_of_the_newest_checkpoint_is_the_one_compared_with(tmp_path):
    run = _run(tmp_path, 1, 3)
    for step, lr in ((1, 0.1), (3, 0.3)):
        (run.checkpoint_dir(step) / "config.yaml").write_text(f"learner: {{lr: {lr}}}\n")
    _save(run, 5)  # a checkpoint of an earlier release: no copy
    assert run.checkpoint_config() == (3, {"learner": {"lr": 0.3}})


@pytest.mark.parametrize("text", ["{", '{"step": 3}', '{"step": "x", "eval/pass@1": 0.5}'])
def test_a_damaged_best_record_names_the_file_and_the_fix(tmp_path, text):
    run = RunDir(tmp_path)
    run.best.mkdir()
    (run.best / "best.json").write_text(text)
    with pytest.raises(durable.DamagedFile, match=r"best\.json: not a best-model record.*delete"):
        run.best_record()
