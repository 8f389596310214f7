import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from grpo.components import Components
from grpo.trainer import Trainer, answer_forms, prompts_to_draw
from r1kit import durable
from r1kit.errors import UserError
from r1kit.model_card import front_matter
from r1kit.recipe import validate
from r1kit.rundir import RunDir
from rollout.types import Completion
from tests.trajectories import call, multi_turn


def _train(raw: dict) -> RunDir:
    recipe = validate(raw)
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    Trainer(recipe, run, Components.build(recipe)).fit()
    return run


def test_grpo_raises_a_learnable_reward(tiny_recipe):
    run = _train(
        tiny_recipe(
            learner={"lr": 0.1, "micro_batch_size": 16}, train={"steps": 15, "save_every": 0}
        )
    )
    rewards = [m["reward/total/mean"] for m in run.metrics() if "reward/total/mean" in m]
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3 + 0.3, rewards


def test_run_directory_has_the_documented_layout(tiny_recipe):
    run = _train(tiny_recipe())
    assert (run.path / "config.yaml").is_file() and (run.path / "samples.jsonl").is_file()
    assert [p.name for p in sorted(run.checkpoints.iterdir())] == ["step-2", "step-4"]
    assert (run.final / "model.safetensors").is_file() and (run.final / "tokenizer.json").is_file()
    card = (run.final / "README.md").read_text()
    assert front_matter(card)["base_model"] == "tiny-llama" and "| after step 4 |" in card
    metrics = run.metrics()
    assert metrics[0]["step"] == 0 and "eval/pass@1" in metrics[0]
    assert {"time/generate", "time/learn", "clip_frac/high", "entropy"} <= set(metrics[1])


def test_samples_carry_each_reward_and_the_advantage(tiny_recipe):
    recipe = tiny_recipe(train={"steps": 1, "save_every": 0, "samples_per_step": 4})
    name = recipe["rewards"][0]["name"]
    run = _train(recipe)
    samples = durable.read_jsonl(run.path / "samples.jsonl", keys=("step",))
    assert len(samples) == 4 and all(list(s["rewards"]) == [name] for s in samples)
    # one reward of weight 1: the total is that reward's value, and some advantage is nonzero
    assert all(s["reward"] == s["rewards"][name] for s in samples)
    assert any(s["advantage"] != 0.0 for s in samples)


def test_moe_model_trains_with_its_router_loss(tiny_recipe):
    run = _train(
        tiny_recipe(model={"name": "tiny-deepseek-v3"}, train={"steps": 2, "save_every": 0})
    )
    assert all(m["aux_loss"] > 0 for m in run.metrics()[1:])


def test_lora_leaves_the_base_weights_untouched(tiny_recipe):
    recipe = validate(
        tiny_recipe(
            model={"name": "tiny-llama", "lora": {"r": 4, "alpha": 8}},
            train={"steps": 2, "save_every": 0},
        )
    )
    parts = Components.build(recipe)
    base = {n: p.clone() for n, p in parts.learner.model.named_parameters() if "lora_" not in n}
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    Trainer(recipe, run, parts).fit()
    after = dict(parts.learner.model.named_parameters())
    assert all(torch.equal(base[n], after[n]) for n in base)
    merged = load_file(run.final / "model.safetensors")
    assert any(
        not torch.equal(
            merged[n], base[f"base_model.model.{n}".replace(".weight", ".base_layer.weight")]
        )
        for n in merged
        if f"base_model.model.{n}".replace(".weight", ".base_layer.weight") in base
    )


def test_kl_penalty_with_reference_model_is_logged(tiny_recipe):
    run = _train(
        tiny_recipe(
            learner={"beta": 0.1, "lr": 3e-2, "micro_batch_size": 8},
            train={"steps": 2, "save_every": 0},
        )
    )
    assert run.metrics()[2]["kl"] > 0


def test_dynamic_sampling_and_tis_run(tiny_recipe):
    run = _train(
        tiny_recipe(
            learner={
                "tis": {"level": "token", "cap": 2.0},
                "num_iterations": 2,
                "micro_batch_size": 8,
                "lr": 3e-3,
            },
            train={"steps": 2, "save_every": 0, "dynamic_sampling": True},
        )
    )
    step = run.metrics()[1]
    assert step["sampling_rounds"] >= 1 and step["mismatch_kl"] < 1e-3


def _cli_train(args: list[str], cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "r1kit.cli", "train", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_identical_weights(tiny_recipe, tmp_path):
    steps = {"steps": 6, "save_every": 2}
    whole = tmp_path / "whole.yaml"
    whole.write_text(yaml.safe_dump(tiny_recipe(train=steps, output={"name": "whole"})))
    killed = tmp_path / "killed.yaml"
    killed.write_text(yaml.safe_dump(tiny_recipe(train=steps, output={"name": "killed"})))
    assert _cli_train([str(whole)], tmp_path).wait(timeout=300) == 0

    proc = _cli_train([str(killed)], tmp_path)
    checkpoint = tmp_path / "runs/killed/checkpoints/step-2/trainer_state.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "runs/killed/final").exists()
    resumed = _cli_train(["--resume", str(tmp_path / "runs/killed")], tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()

    a = load_file(tmp_path / "runs/whole/final/model.safetensors")
    b = load_file(tmp_path / "runs/killed/final/model.safetensors")
    assert all(torch.equal(a[name], b[name]) for name in a)
    lines = (tmp_path / "runs/killed/metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(7))


def test_a_reward_failing_on_the_batch_stops_the_run_with_a_checkpoint(tiny_recipe, tmp_path):
    nan_reward = tmp_path / "nan.py"
    nan_reward.write_text(
        "def nan(prompts, completions, **_):\n    return [float('nan')] * len(completions)\n"
    )
    raw = tiny_recipe(rewards=[{"name": f"{nan_reward}:nan"}], train={"steps": 3, "save_every": 0})
    recipe = validate(raw)
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    with pytest.raises(UserError, match=r"reward .*nan.*invalid"):
        Trainer(recipe, run, Components.build(recipe)).fit()
    checkpoint, problems = run.recover_checkpoint()
    assert checkpoint is not None and checkpoint.name == "step-0" and not problems
    weights = load_file(checkpoint / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


STALLING = '''
import os, pathlib, time

def even_tokens(prompts, completions, completion_ids, **kwargs):
    """The learnable reward; its second call stalls when STALL_DIR is set, so that a stop
    signal lands while the trainer is scoring."""
    stall = os.environ.get("STALL_DIR")
    if stall:
        calls = pathlib.Path(stall, "calls")
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        if len(calls.read_text()) == 2:
            pathlib.Path(stall, "stalled").write_text("")
            time.sleep(120)
    return [sum(t % 2 == 0 for t in ids) / max(len(ids), 1) for ids in completion_ids]
'''


@pytest.fixture(scope="module")
def stall_runs(tmp_path_factory):
    """The recipe (one reward worker, so one reward call per step) and an uninterrupted run."""
    root = tmp_path_factory.mktemp("stall")
    (root / "even.py").write_text(STALLING)

    def recipe(name: str) -> Path:
        raw = {
            "model": {"name": "tiny-llama"},
            "data": {"source": "arithmetic", "eval_size": 2},
            "template": {"name": "raw"},
            "rollout": {"group_size": 4, "max_new_tokens": 6},
            "rewards": [{"name": f"{root / 'even.py'}:even_tokens"}],
            "scoring": {"workers": 1},
            "learner": {"lr": 3e-2, "micro_batch_size": 8},
            "train": {"steps": 3, "prompts_per_step": 2, "eval_every": 0, "save_every": 0},
            "output": {"dir": str(root / "runs"), "name": name, "report_to": []},
        }
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    assert _cli_train([str(recipe("whole"))], root).wait(timeout=300) == 0
    return root, recipe


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_while_scoring_exits_non_zero_and_resumes_exactly(stall_runs, signum):
    root, recipe = stall_runs
    name = signum.name
    stall = root / f"stall-{name}"
    stall.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "r1kit.cli", "train", str(recipe(name))],
        cwd=root,
        env={**os.environ, "STALL_DIR": str(stall)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 240
    while not (stall / "stalled").exists() and time.time() < deadline:
        time.sleep(0.2)
    sent = time.time()
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum  # 143 for SIGTERM, 130 for SIGINT
    assert time.time() - sent < 30  # the stalled reward (120 s) was cut, not waited for
    assert f"--resume {root / 'runs' / name}" in " ".join(out.decode().split())
    run = root / "runs" / name
    assert (run / "checkpoints/step-1/trainer_state.pt").is_file()
    assert not (run / "final").exists()

    resumed = _cli_train(["--resume", str(run)], root)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    a = load_file(root / "runs/whole/final/model.safetensors")
    b = load_file(run / "final/model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]


def test_a_learning_rate_set_on_resume_reaches_the_optimizer(tiny_recipe):
    raw = tiny_recipe(train={"steps": 2, "save_every": 1})
    _train(raw)
    raw["train"]["steps"] = 3
    raw["learner"]["lr"] = 1e-4
    recipe = validate(raw)
    parts = Components.build(recipe)
    Trainer(recipe, RunDir(recipe.run_dir()), parts).fit(resume=True)
    assert parts.learner.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_grpo_runs_on_two_vllm_workers_whose_weights_follow_the_learner(tiny_recipe):
    run = _train(
        tiny_recipe(
            rollout={"engine": "vllm", "workers": 2, "vllm": {"kv_cache_gb": 0.25}},
            train={"steps": 2, "save_every": 0},
        )
    )
    steps = run.metrics()[1:]
    assert [m["step"] for m in steps] == [1, 2]
    # Step 2 samples from the weights step 1 produced (lr 3e-2 moves them far): a small
    # engine/learner mismatch means the update reached both vLLM engines.
    assert steps[1]["mismatch_kl"] < 1e-3, steps[1]


def test_a_lora_policy_on_vllm_sends_its_adapter_alone_and_the_engine_follows(tiny_recipe):
    recipe = validate(
        tiny_recipe(
            model={"name": "tiny-llama", "lora": {"r": 4}},
            rollout={"engine": "vllm", "vllm": {"kv_cache_gb": 0.25}},
            learner={"lr": 0.1, "micro_batch_size": 8},
            train={"steps": 2, "save_every": 0},
        )
    )
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    parts = Components.build(recipe)
    assert parts.adapter_only
    Trainer(recipe, run, parts).fit()
    steps = run.metrics()[1:]
    # Step 2 samples after step 1's update (lr 0.1 moves the adapter far): a small mismatch
    # means the engine applied the new adapter, not the old one or the base model.
    assert steps[1]["mismatch_kl"] < 1e-3, steps[1]
    assert parts.engine.lora_request.lora_int_id == 3  # the start's adapter, then each step's


ASYNC = {"engine": "hf", "workers": 1, "async": True}


@pytest.mark.parametrize(("k", "behind"), [(1, [0, 1, 1]), (2, [0, 1, 2])])
def test_async_with_a_still_policy_gives_the_sync_run_s_maths(tiny_recipe, k, behind):
    """lr 1e-12: the policy does not move (steps below float32 resolution), so samples up to
    k steps off are the sync run's (same rows, same seeds) and the loss with the engine's
    log-probs as old is the same."""
    still = {"lr": 1e-12, "micro_batch_size": 8}
    train = {"steps": 3, "save_every": 0}
    sync = _train(tiny_recipe(rollout={"engine": "hf", "workers": 1}, learner=still, train=train))
    rollout = {**ASYNC, "max_staleness": k}
    fast = _train(tiny_recipe(rollout=rollout, learner=still, train=train, output={"name": "a"}))
    a, b = sync.metrics()[1:], fast.metrics()[1:]
    assert [m["reward/total/mean"] for m in a] == [m["reward/total/mean"] for m in b]
    assert [m["completion_length/mean"] for m in a] == [m["completion_length/mean"] for m in b]
    for x, y in zip(a, b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
    assert [m["rollout/staleness/max"] for m in b] == behind
    assert [m["rollout/dropped_rounds"] for m in b] == [0, 0, 0]


def test_async_staleness_is_logged_and_the_ratio_uses_the_engine_s_log_probs(tiny_recipe):
    run = _train(tiny_recipe(rollout=ASYNC, train={"steps": 4, "save_every": 0}))
    steps = run.metrics()[1:]
    assert [m["rollout/staleness/max"] for m in steps] == [0, 1, 1, 1]
    assert all(m["rollout/staleness/mean"] <= 1 for m in steps)
    # Step 1 samples from the learner's weights: ratio 1. Later steps sample one version
    # behind (lr 3e-2 moves the policy far): against the engine's log-probs the ratio is
    # off 1; against the learner's own detached log-probs it would be exactly 1.
    assert steps[0]["ratio"] == pytest.approx(1.0, abs=1e-5)
    assert all(m["ratio"] != pytest.approx(1.0, abs=1e-4) for m in steps[1:]), steps


@pytest.mark.parametrize("k", [1, 2])
def test_an_async_run_resumed_from_its_checkpoint_ends_as_the_uninterrupted_one(tiny_recipe, k):
    """The checkpoint holds the rounds in flight (sampled from older weights): a resumed run
    takes them as the uninterrupted run did, and ends with the same weights bit for bit."""
    raw = tiny_recipe(
        rollout={**ASYNC, "max_staleness": k}, train={"steps": 4, "save_every": 2, "keep_last": 4}
    )
    run = _train(raw)
    whole, logged = load_file(run.final / "model.safetensors"), run.metrics()
    saved = torch.load(run.path / "checkpoints/step-2/trainer_state.pt", weights_only=False)
    rounds = saved["trainer"]["prefetched"]["rounds"]
    assert [r["step"] for r in rounds] == list(range(3, 3 + k))

    for late in ("checkpoints/step-4", "final"):
        shutil.rmtree(run.path / late)
    recipe = validate(raw)
    Trainer(recipe, RunDir(recipe.run_dir()), Components.build(recipe)).fit(resume=True)
    resumed = load_file(run.final / "model.safetensors")
    assert all(torch.equal(whole[key], resumed[key]) for key in whole)
    assert [m["step"] for m in run.metrics()] == [0, 1, 2, 3, 4]
    for before, after in zip(logged[3:], run.metrics()[3:], strict=True):
        for key in ("loss", "reward/total/mean", "rollout/staleness/max", "ratio"):
            assert before[key] == after[key], key


class KillsAWorker(Trainer):
    """Kills rollout actor 0 (SIGKILL) just before step 2 samples."""

    def step(self, step):
        if step == 2:
            import ray

            pid = ray.get(self.parts.engine.actors[0].pid.remote())
            os.kill(pid, signal.SIGKILL)
        return super().step(step)


def test_a_rollout_actor_killed_mid_run_restarts_with_the_current_weights(tiny_recipe, caplog):
    recipe = validate(tiny_recipe(rollout={"workers": 2}, train={"steps": 2, "save_every": 0}))
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    parts = Components.build(recipe)
    KillsAWorker(recipe, run, parts).fit()
    assert parts.engine.restarts == 1
    assert "rollout worker 0 died" in caplog.text
    steps = run.metrics()[1:]
    assert [m["step"] for m in steps] == [1, 2]
    # Step 2 samples after step 1's update (lr 3e-2 moves the weights far): a restarted actor
    # with the base weights would give a large engine/learner mismatch.
    assert steps[1]["mismatch_kl"] < 1e-4, steps[1]


class StopsWhileWaiting(Trainer):
    """Step 2's prefetched round: a SIGINT arrives while the trainer waits for it."""

    def _prefetch(self, step):
        super()._prefetch(step)
        pending = self.prefetch.rounds[-1].pending.pending

        class Stalls:
            def result(self):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(60)
                return pending.result()

        self.prefetch.rounds[-1].pending.pending = Stalls()


def test_a_stop_while_waiting_for_a_prefetched_round_cuts_it_and_rewinds_the_stream(
    tiny_recipe,
):
    train = {"steps": 3, "save_every": 0}
    sync = _train(tiny_recipe(rollout={"workers": 1}, train={**train, "steps": 1}))
    recipe = validate(tiny_recipe(rollout=ASYNC, train=train, output={"name": "a"}))
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    start = time.time()
    assert StopsWhileWaiting(recipe, run, Components.build(recipe)).fit() == signal.SIGINT
    assert time.time() - start < 50  # the 60 s wait was cut
    assert [m["step"] for m in run.metrics()] == [0, 1]
    data = "checkpoints/step-1/trainer_state.pt"
    saved = torch.load(run.path / data, weights_only=False)["data"]
    assert saved == torch.load(sync.path / data, weights_only=False)["data"]


class FormatOrAnswerEngine:
    """A stub policy with two completions: the right number, or issue 19's hack (the system
    prompt's placeholder with a wrong number). GRPO's pressure is kept: after each learner step
    p(hack) moves towards whichever the advantages favoured. The real learner still steps; the
    stub makes held-out accuracy fall for sure, which a tiny random model cannot be made to do."""

    HACK = "<think>reasoning process here</think> <answer>1000</answer>"

    def __init__(self, tokenizer):
        self.tokenizer, self.p_hack = tokenizer, 0.3

    def generate(self, prompt_token_ids, sampling):
        rng = random.Random(sampling.seed)
        return [
            [self._sample(ids, sampling, rng) for _ in range(sampling.n)]
            for ids in prompt_token_ids
        ]

    def _sample(self, ids, sampling, rng) -> Completion:
        question = re.search(r"What is (.*)\?", self.tokenizer.decode(ids)).group(1)
        greedy = sampling.temperature == 0
        hack = self.p_hack > 0.5 if greedy else rng.random() < self.p_hack
        text = self.HACK if hack else str(eval(question))
        tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Completion(tokens, [-0.5] * len(tokens), text, "stop", list(ids))

    def learn(self, batch) -> None:
        hack = self.tokenizer(self.HACK, add_special_tokens=False)["input_ids"]
        pairs = zip(batch.completion_ids, batch.advantages.tolist(), strict=True)
        push = sum(advantage for ids, advantage in pairs if ids == hack)
        if push != 0:
            self.p_hack = min(0.9, max(0.1, self.p_hack + 0.2 * math.copysign(1, push)))

    def update_weights(self, named_tensors) -> None:
        for _ in named_tensors:
            pass

    def sleep(self) -> None:
        pass

    def wake_up(self, tags=None) -> None:
        pass

    def close(self) -> None:
        pass


def _train_against_stub(raw: dict) -> RunDir:
    # the scripted engine's log-probabilities are made up, so the weight sync check is off
    raw["rollout"]["sync_check"] = {"action": "off"}
    recipe = validate(raw)
    parts = Components.build(recipe)
    parts.engine = engine = FormatOrAnswerEngine(parts.tokenizer)
    learner_step = parts.learner.step

    def step(batch, objective, norm):
        metrics = learner_step(batch, objective, norm)
        engine.learn(batch)
        return metrics

    parts.learner.step = step
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    Trainer(recipe, run, parts).fit()
    return run


def test_a_reward_paying_only_for_format_drives_accuracy_down_and_is_flagged(tiny_recipe):
    raw = tiny_recipe(
        rewards=[{"name": "format"}],
        rollout={"max_new_tokens": 32},
        train={"steps": 4, "eval_every": 1, "save_every": 0},
    )
    with pytest.warns(UserWarning, match="reward_hacking: held-out accuracy fell"):
        run = _train_against_stub(raw)
    metrics = run.metrics()
    assert metrics[0]["eval/pass@1"] == 1.0 and metrics[-1]["eval/pass@1"] == 0.0
    assert metrics[-1]["eval/format_rate"] == 1.0
    assert any(m.get("health/reward_hacking") == 1.0 for m in metrics)


def test_a_reward_paying_for_correctness_raises_no_hacking_flag(tiny_recipe):
    raw = tiny_recipe(
        rewards=[{"name": "math"}],
        rollout={"max_new_tokens": 32},
        train={"steps": 4, "eval_every": 1, "save_every": 0},
    )
    run = _train_against_stub(raw)
    metrics = run.metrics()
    assert all(m["eval/pass@1"] == 1.0 for m in metrics)
    assert all(m.get("health/reward_hacking", 0.0) == 0.0 for m in metrics)


def test_the_engine_sleeps_while_the_learner_trains_and_wakes_to_take_the_weights(tiny_recipe):
    recipe = validate(tiny_recipe(train={"steps": 2, "eval_every": 0, "save_every": 0}))
    parts = Components.build(recipe)
    calls: list[str] = []
    for part, name in [(parts.engine, "sleep"), (parts.engine, "update_weights")] + [
        (parts.learner, "step")
    ]:
        real = getattr(part, name)
        setattr(part, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    Trainer(recipe, run, parts).fit()
    assert calls == ["sleep", "step", "update_weights"] * 2


def test_dynamic_sampling_draws_more_prompts_when_most_groups_are_flat():
    assert prompts_to_draw(8, drawn=0, kept=0, max_oversample=4) == 8  # first round
    assert prompts_to_draw(6, drawn=8, kept=2, max_oversample=4) == 24  # keep rate 1/4
    assert prompts_to_draw(4, drawn=8, kept=4, max_oversample=4) == 8  # keep rate 1/2
    assert prompts_to_draw(7, drawn=8, kept=1, max_oversample=4) == 28  # capped at 4x
    assert prompts_to_draw(8, drawn=8, kept=0, max_oversample=2) == 16  # nothing kept yet


def test_curriculum_level_is_logged_and_resumed_from_the_checkpoint(tiny_recipe):
    raw = tiny_recipe(
        data={"arithmetic": {"digits": 2}, "curriculum": {"levels": 1, "window": 4}},
        train={"steps": 2, "save_every": 1},
    )
    run = _train(raw)
    assert all("curriculum/level" in m for m in run.metrics()[1:])
    state = torch.load(run.checkpoint_dir(2) / "trainer_state.pt", weights_only=False)
    assert state["data"]["curriculum"]["level"] == run.metrics()[-1]["curriculum/level"]


@pytest.mark.parametrize(
    "learner",
    [
        {"policy_loss": "cispo", "advantage": "reinforce_pp", "clip_ratio_c": 3.0},
        {"policy_loss": "sapo", "advantage": "grpo_passk", "passk": 2},
        {"advantage": "rloo", "entropy_coef": 0.01},
        {"beta": 0.1, "kl_in": "reward", "kl_estimator": "k1"},
        {"entropy_top_q": 0.2, "micro_batch_size": 4},
        {"entropy_coef": 0.01, "entropy_target": 0.5},
    ],
)
def test_the_new_variants_train_a_step_with_finite_metrics(tiny_recipe, learner):
    recipe = validate(tiny_recipe(learner=learner, train={"steps": 1, "save_every": 0}))
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    Trainer(recipe, run, Components.build(recipe)).fit()
    step = run.metrics()[1]
    assert all(math.isfinite(v) for v in step.values() if isinstance(v, float)), step
    assert ("clip_frac/dual" in step) == ("clip_ratio_c" in learner)
    assert ("kl_penalty" in step) == ("kl_in" in learner)
    assert ("entropy_coef" in step) == ("entropy_target" in learner)
    if "kl_in" in learner:
        assert step["kl"] == 0.0  # the KL is in the reward, not in the loss


def test_the_adaptive_entropy_coef_is_checkpointed_and_a_resume_is_bit_identical(tiny_recipe):
    # Target far above the tiny model's entropy (~ln 1000): the coef grows every step.
    learner = {"entropy_coef": 0.01, "entropy_target": 100.0, "entropy_coef_step": 0.05}
    raw = tiny_recipe(learner=learner, train={"steps": 4, "save_every": 2, "keep_last": 4})
    run = _train(raw)
    coefs = [m["entropy_coef"] for m in run.metrics()[1:]]
    assert coefs == pytest.approx([0.01, 0.06, 0.11, 0.16])
    state = torch.load(run.checkpoint_dir(2) / "trainer_state.pt", weights_only=False)
    assert state["trainer"]["entropy_coef"] == pytest.approx(0.11)  # what step 3 uses
    want = load_file(run.path / "final/model.safetensors")

    for late in ("checkpoints/step-4", "final"):
        shutil.rmtree(run.path / late)
    recipe = validate(raw)
    Trainer(recipe, RunDir(recipe.run_dir()), Components.build(recipe)).fit(resume=True)
    assert [m["entropy_coef"] for m in run.metrics()[1:]] == coefs
    got = load_file(run.path / "final/model.safetensors")
    assert all(torch.equal(got[name], want[name]) for name in want)


def test_eval_pass_k_logs_sampled_pass_at_k_next_to_pass_at_one(tiny_recipe):
    run = _train(tiny_recipe(train={"steps": 1, "save_every": 0, "eval_pass_k": 4}))
    first = run.metrics()[0]
    assert {"eval/pass@1", "eval/sampled/pass@1", "eval/sampled/pass@4"} <= set(first)
    assert (
        first["eval/sampled/pass@1"] <= first["eval/sampled/pass@2"] <= first["eval/sampled/pass@4"]
    )


def test_eval_pass_k_is_off_by_default(tiny_recipe):
    assert not any(key.startswith("eval/sampled/") for key in _train(tiny_recipe()).metrics()[0])


def test_answer_forms_count_the_distinct_forms_of_correct_answers():
    def sample(answer: str, correct: bool = True) -> dict:
        return {"completion": f"try</think> <answer>{answer}</answer>", "correct": correct}

    samples = [sample("3 + 5 - 2"), sample("9 + 1 - 4"), sample("(2 * 6) / 3")]
    samples += [sample("2 * 6 - 1", correct=False)]
    assert answer_forms(samples) == 2


class ToolTrajectoryEngine(FormatOrAnswerEngine):
    """Answers every prompt with hand-built trajectories that called the code tool: one call
    that worked, or one that failed and then one that worked."""

    def _sample(self, ids, sampling, rng) -> Completion:
        ok, failed = call("12", "print(3*4)"), call("", "print(3*4)", status="error")
        calls = [ok] if rng.random() < 0.5 else [failed, ok]
        parts = [p for c in calls for p in (f"<python>{c.code}</python>", c)]
        completion = multi_turn("<think>compute", *parts, "</think><answer>12</answer>")
        completion.prompt_token_ids = list(ids)
        return completion


def test_a_step_with_tool_calls_logs_tool_metrics_and_samples_show_the_turns(tiny_recipe):
    raw = tiny_recipe(train={"steps": 1, "eval_every": 1, "save_every": 0, "samples_per_step": 2})
    raw["rollout"]["sync_check"] = {"action": "off"}  # the stub's log-probs are made up
    recipe = validate(raw)
    parts = Components.build(recipe)
    parts.engine = ToolTrajectoryEngine(parts.tokenizer)
    run = RunDir(recipe.run_dir())
    run.create(recipe)
    Trainer(recipe, run, parts).fit()
    before, step = run.metrics()[:2]
    assert step["tools/turns"] == step["tools/calls_per_completion"] + 1
    assert 1 < step["tools/calls_per_completion"] < 2 and 0 < step["tools/errors"] < 0.5
    assert step["tools/seconds"] == pytest.approx(0.1 * step["tools/calls_per_completion"] * 16)
    assert before["eval/tools/calls_per_completion"] >= 1
    samples = durable.read_jsonl(run.path / "samples.jsonl", keys=("step",))
    assert all(s["turns"][-1] == {"model": "</think><answer>12</answer>"} for s in samples)
    assert all(t["code"] == "print(3*4)" for s in samples for t in s["turns"][:-1])


def test_answer_forms_read_the_models_own_answer_not_a_tools():
    # The model answered, then called a tool whose output holds another answer.
    turns = [
        {"model": "</think> <answer>3 + 5 - 2</answer><python>x</python>", "output": "9 * 9"},
        {"model": "done"},
    ]
    observation = "<output><answer>9 * 9</answer></output>"
    text = turns[0]["model"] + observation + turns[1]["model"]
    sample = {"completion": text, "turns": turns, "correct": True}
    own = {"completion": "try</think> <answer>1 + 2 - 3</answer>", "correct": True}
    assert answer_forms([sample, own]) == 1


class _ScriptedEval(Trainer):
    """Held-out pass@1 from a script: one value per evaluation, by step."""

    def __init__(self, recipe, run, parts, scores: list[float]):
        super().__init__(recipe, run, parts)
        self.scores = scores

    def evaluate(self) -> dict[str, float]:
        score = self.scores[self.step_done]
        return {"eval/pass@1": score, "eval/ci_low": score, "eval/ci_high": score}


def _train_scripted(raw: dict, scores: list[float], resume: bool = False) -> RunDir:
    recipe = validate(raw)
    run = RunDir(recipe.run_dir())
    if not resume:
        run.create(recipe)
    _ScriptedEval(recipe, run, Components.build(recipe), scores).fit(resume=resume)
    return run


def test_save_best_keeps_the_model_of_the_first_highest_held_out_accuracy(tiny_recipe):
    train = {"steps": 4, "eval_every": 1, "save_every": 1, "keep_last": 4, "save_best": True}
    run = _train_scripted(tiny_recipe(train=train), [0.1, 0.3, 0.2, 0.3, 0.0])
    assert run.best_record() == {"step": 1, "eval/pass@1": 0.3}  # not step 3's tie
    best = load_file(run.best / "model.safetensors")
    step_1 = load_file(run.checkpoint_dir(1) / "model.safetensors")
    final = load_file(run.final / "model.safetensors")
    assert all(torch.equal(best[name], step_1[name]) for name in step_1)
    assert not all(torch.equal(best[name], final[name]) for name in final)
    assert "| after step 1 |" in (run.best / "README.md").read_text()


def test_a_resumed_run_keeps_best_until_an_evaluation_beats_it(tiny_recipe):
    raw = tiny_recipe(train={"steps": 2, "eval_every": 1, "save_every": 1, "save_best": True})
    scores = [0.1, 0.3, 0.2, 0.25, 0.4]
    run = _train_scripted(raw, scores)
    raw["train"]["steps"] = 3
    _train_scripted(raw, scores, resume=True)
    assert run.best_record() == {"step": 1, "eval/pass@1": 0.3}  # 0.25 at step 3 is below
    raw["train"]["steps"] = 4
    _train_scripted(raw, scores, resume=True)
    assert run.best_record() == {"step": 4, "eval/pass@1": 0.4}


def test_save_best_is_off_by_default(tiny_recipe):
    run = _train_scripted(tiny_recipe(train={"eval_every": 1}), [0.1, 0.2, 0.3, 0.4, 0.5])
    assert not run.best.exists() and run.best_record() is None
