"""A checkpoint restores everything a step depends on, and is written whole or not at all."""

import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from grpo.components import Components
from grpo.trainer import Trainer
from r1kit import durable
from r1kit.errors import UserError
from r1kit.learner.checkpoint import load_checkpoint, save_checkpoint, save_model
from r1kit.recipe import validate
from r1kit.rundir import RunDir


@pytest.fixture
def trained(tiny_recipe):
    """Components after one GRPO step (non-trivial optimizer state), and their recipe."""
    recipe = validate(tiny_recipe())
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    parts = Components.build(recipe)
    Trainer(recipe, run, parts).step(1)
    return recipe, run, parts


def _optimizer_tensors(parts: Components) -> list[torch.Tensor]:
    state = parts.learner.optimizer.state_dict()["state"]
    return [t for s in state.values() for t in s.values() if isinstance(t, torch.Tensor)]


def test_round_trip_restores_weights_optimizer_schedule_and_data(trained):
    recipe, run, parts = trained
    save_checkpoint(run.checkpoint_dir(1), parts, step=1)
    fresh = Components.build(recipe)
    assert load_checkpoint(run.checkpoint_dir(1), fresh) == 1
    assert all(
        torch.equal(a, b)
        for (_, a), (_, b) in zip(
            parts.learner.named_weights(), fresh.learner.named_weights(), strict=True
        )
    )
    before, after = _optimizer_tensors(parts), _optimizer_tensors(fresh)
    assert before and all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert fresh.learner.scheduler.state_dict() == parts.learner.scheduler.state_dict()
    assert fresh.stream.state_dict() == parts.stream.state_dict() != {"epoch": 0, "index": 0}


def test_restored_rng_gives_the_same_draws(trained):
    recipe, run, parts = trained
    save_checkpoint(run.checkpoint_dir(1), parts, step=1)
    draws = (random.random(), torch.rand(4))
    random.seed(999)
    torch.manual_seed(999)
    load_checkpoint(run.checkpoint_dir(1), parts)
    again = (random.random(), torch.rand(4))
    assert draws[0] == again[0] and torch.equal(draws[1], again[1])


def test_checkpoint_carries_a_verified_manifest_and_loads_in_transformers(trained):
    _, run, parts = trained
    save_checkpoint(run.checkpoint_dir(1), parts, step=1)
    manifest, problems = durable.verify_dir(run.checkpoint_dir(1))
    assert problems == [] and manifest["step"] == 1
    assert {"model.safetensors", "trainer_state.pt", "config.json"} <= set(manifest["files"])
    AutoModelForCausalLM.from_pretrained(run.checkpoint_dir(1))


def test_saving_the_same_step_twice_swaps_safely(trained):
    """The landed trainer saves the last step twice when steps % save_every == 0."""
    _, run, parts = trained
    save_checkpoint(run.checkpoint_dir(1), parts, step=1)
    save_checkpoint(run.checkpoint_dir(1), parts, step=1)
    assert run.recover_checkpoint() == (run.checkpoint_dir(1), [])
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["step-1"]


def test_final_model_is_written_whole(trained):
    _, run, parts = trained
    save_model(run.final, parts)
    save_model(run.final, parts)
    assert durable.verify_dir(run.final)[1] == []
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith("final")) == ["final"]


def test_a_checkpoint_copies_the_run_s_config_in(trained):
    _, run, parts = trained
    save_checkpoint(run.checkpoint_dir(1), parts, step=1, config=run.config)
    assert (run.checkpoint_dir(1) / "config.yaml").read_text() == run.config
    assert "config.yaml" in durable.verify_dir(run.checkpoint_dir(1))[0]["files"]


def test_a_verified_but_unloadable_state_file_is_a_user_error_naming_it(tmp_path):
    """Its manifest vouches for it (written by hand, or by another version of torch)."""
    path = tmp_path / "step-1"
    with durable.replace_dir(path, step=1) as scratch:
        (scratch / "trainer_state.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match=r"step-1/trainer_state.pt: unreadable .*delete .*step-1"):
        load_checkpoint(path, parts=None)
