import copy
import json
import math

import pytest

from grpo.components import Components
from grpo.sync_check import SyncCheckError, sync_problem
from grpo.trainer import Trainer
from r1kit.recipe import validate
from r1kit.rundir import RunDir
from rollout.hf_engine import HFEngine


def _rollout(tiny_recipe, **sync_check):
    return validate(tiny_recipe(rollout={"sync_check": sync_check})).rollout


def test_a_figure_within_the_limit_passes(tiny_recipe):
    assert sync_problem(1e-10, _rollout(tiny_recipe)) is None


def test_a_figure_over_the_limit_names_the_engine_the_figure_and_the_limit(tiny_recipe):
    message = sync_problem(0.3, _rollout(tiny_recipe, max_mismatch_kl=0.01))
    assert "hf engine (in-process)" in message and "0.3 > " in message and "0.01" in message


def test_nan_counts_as_a_failed_sync(tiny_recipe):
    assert "mismatch_kl nan" in sync_problem(math.nan, _rollout(tiny_recipe))


def test_action_off_never_trips(tiny_recipe):
    assert sync_problem(10.0, _rollout(tiny_recipe, action="off")) is None


class MissedUpdate(Trainer):
    """From step 2 on, samples with a copy of the weights taken before step 1's update: the
    engine that never received an update (the in-process HF engine otherwise shares them)."""

    def step(self, step):
        if step == 1:
            self.stale = HFEngine(copy.deepcopy(self.parts.engine.model), self.parts.tokenizer)
        if step == 2:
            self.parts.engine = self.stale
        return super().step(step)


def _broken_run(tiny_recipe, **sync_check) -> tuple[RunDir, Trainer]:
    raw = tiny_recipe(rollout={"sync_check": sync_check}, train={"steps": 3, "save_every": 1})
    recipe = validate(raw)
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    return run, MissedUpdate(recipe, run, Components.build(recipe))


def test_a_missed_update_stops_the_run_at_the_next_step_and_resumes(tiny_recipe):
    run, trainer = _broken_run(tiny_recipe)
    with pytest.raises(SyncCheckError, match=r"step 2: weight sync check failed: the hf engine"):
        trainer.fit()
    checkpoint, problems = run.recover_checkpoint()
    assert checkpoint is not None and checkpoint.name == "step-1" and not problems
    recipe = validate(tiny_recipe(train={"steps": 3, "save_every": 1}))
    resumed = Trainer(recipe, run, Components.build(recipe))
    resumed.fit(resume=True)
    assert resumed.step_done == 3


def test_action_warn_warns_once_logs_the_metric_and_goes_on(tiny_recipe):
    run, trainer = _broken_run(tiny_recipe, action="warn")
    with pytest.warns(UserWarning, match="weight sync check failed") as caught:
        trainer.fit()
    assert sum("weight sync check" in str(w.message) for w in caught) == 1
    lines = [json.loads(line) for line in run.path.joinpath("metrics.jsonl").open()]
    assert [m.get("sync_check/failed") for m in lines[1:]] == [
        None,
        1.0,
        None,
    ]  # step 2 updated the stale copy
