"""RayPool over HF engines on tiny-llama: order, balance, weights, a killed actor replaced."""

import os
import signal

import pytest
import torch

from r1kit.models import load_model
from rollout.engines import EngineSpec
from rollout.hf_engine import HFEngine
from rollout.ray_pool import PoolError, RayPool, RolloutWorker, balance
from rollout.types import SamplingParams
from tests.rollout.conftest import perturbed

ray = pytest.importorskip("ray", reason="Ray is not installed (scripts/setup.sh installs it)")

GREEDY = SamplingParams(n=2, temperature=0.0, max_new_tokens=6)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


@pytest.fixture(scope="module")
def prompts(tiny):
    texts = ["hello", "a much longer prompt with more words", "2 + 2 =", "the cat", "why"]
    return [tiny[1](t)["input_ids"] for t in texts]


@pytest.fixture(scope="module")
def pool(tiny_dir):
    pool = RayPool(EngineSpec("hf", workers=2, options={"batch_size": 8}), tiny_dir)
    yield pool
    pool.close()
    ray.shutdown()


def _token_ids(groups):
    return [[c.token_ids for c in group] for group in groups]


def _reference(model, tokenizer, prompts):
    return _token_ids(HFEngine(model, tokenizer).generate(prompts, GREEDY))


@pytest.mark.parametrize("costs", [[5] * 7, [1, 2, 3, 4, 5, 6, 7, 8], [100, 1, 1, 1, 1]])
def test_balance_assigns_every_prompt_once_and_evens_the_load(costs):
    shards = dict(balance(costs, 3))
    assert sorted(i for shard in shards.values() for i in shard) == list(range(len(costs)))
    loads = [sum(costs[i] for i in shard) for shard in shards.values()]
    assert max(loads) - min(loads) <= max(costs)


def test_balance_leaves_out_workers_without_prompts():
    assert [w for w, _ in balance([3, 3], 4)] == [0, 1]


def test_results_come_back_in_prompt_order(pool, tiny, prompts):
    groups = pool.generate(prompts, GREEDY)
    assert _token_ids(groups) == _reference(*tiny, prompts)
    assert all(c.prompt_token_ids == p for p, g in zip(prompts, groups, strict=True) for c in g)


def test_update_reaches_every_actor_with_its_version(pool, tiny, prompts):
    new = perturbed(tiny[0], seed=1)
    pool.update_weights(new.named_parameters())
    groups = pool.generate(prompts, GREEDY)
    assert _token_ids(groups) == _reference(new, tiny[1], prompts)
    assert {c.policy_version for g in groups for c in g} == {pool.version}


def test_killed_actor_is_replaced_with_the_current_weights(pool, tiny, prompts, caplog):
    new = perturbed(tiny[0], seed=2)
    pool.update_weights(new.named_parameters())
    restarts = pool.restarts
    os.kill(ray.get(pool.actors[0].pid.remote()), signal.SIGKILL)
    groups = pool.generate(prompts, GREEDY)
    assert pool.restarts == restarts + 1
    assert "rollout worker 0 died" in caplog.text
    assert _token_ids(groups) == _reference(new, tiny[1], prompts)
    assert {c.policy_version for g in groups for c in g} == {pool.version}


def test_actor_found_dead_by_sleep_is_replaced_and_sampling_goes_on(pool, tiny, prompts):
    """The lost node of CI: a worker died between sampling and the learner step's sleep."""
    new = perturbed(tiny[0], seed=3)
    pool.update_weights(new.named_parameters())
    restarts = pool.restarts
    os.kill(ray.get(pool.actors[1].pid.remote()), signal.SIGKILL)
    pool.sleep()
    pool.wake_up()
    assert pool.restarts == restarts + 1
    assert _token_ids(pool.generate(prompts, GREEDY)) == _reference(new, tiny[1], prompts)


def test_weights_are_put_once_for_all_actors(pool, tiny, monkeypatch):
    puts = []
    original = ray.put
    monkeypatch.setattr(ray, "put", lambda value: puts.append(1) or original(value))
    pool.update_weights((n, torch.zeros_like(p)) for n, p in tiny[0].named_parameters())
    assert len(puts) == 1


def test_weights_sent_while_a_submitted_rollout_runs_reach_the_next_one(pool, tiny, prompts):
    """Async: the running rollout keeps its weights; the update queues behind it."""
    old, new = perturbed(tiny[0], seed=5), perturbed(tiny[0], seed=6)
    pool.update_weights(old.named_parameters())
    running = pool.submit(prompts, GREEDY)
    pool.update_weights(new.named_parameters())
    stale = running.result()
    assert _token_ids(stale) == _reference(old, tiny[1], prompts)
    assert {c.policy_version for g in stale for c in g} == {pool.version - 1}
    fresh = pool.generate(prompts, GREEDY)
    assert _token_ids(fresh) == _reference(new, tiny[1], prompts)


def test_actor_dying_under_a_submitted_rollout_resamples_with_the_queued_weights(
    pool, tiny, prompts
):
    new = perturbed(tiny[0], seed=7)
    restarts = pool.restarts
    os.kill(ray.get(pool.actors[0].pid.remote()), signal.SIGKILL)  # dead before it samples
    running = pool.submit(prompts, GREEDY)
    pool.update_weights(new.named_parameters())
    groups = running.result()
    assert pool.restarts == restarts + 1
    # The replaced actor's prompts were sampled again with the newest weights.
    worker_0 = dict(balance([len(p) + GREEDY.max_new_tokens for p in prompts], pool.size))[0]
    resampled = [groups[i] for i in worker_0]
    assert {c.policy_version for g in resampled for c in g} == {pool.version}
    assert _token_ids(resampled) == _reference(new, tiny[1], [prompts[i] for i in worker_0])


class DiesOnGenerate(RolloutWorker):
    def generate(self, prompts, sampling):
        os._exit(1)


def test_same_work_dying_twice_raises(pool, prompts, monkeypatch):  # leaves a dead actor: last
    monkeypatch.setattr(pool, "_actor_cls", ray.remote(num_cpus=1)(DiesOnGenerate))
    os.kill(ray.get(pool.actors[1].pid.remote()), signal.SIGKILL)
    with pytest.raises(PoolError, match="died twice"):
        pool.generate(prompts, GREEDY)


@pytest.mark.slow
def test_vllm_actor_whose_engine_dies_is_replaced_and_cleaned(tiny_dir, tiny, prompts):
    """vLLM in a Ray actor: its engine process killed -> the actor exits, is replaced with the
    current weights, and the dead engine's shared-memory files are removed."""
    pytest.importorskip("vllm")
    from tests.rollout.conftest import logprob_gap

    sampling = SamplingParams(n=2, temperature=0.7, max_new_tokens=8, seed=0)
    vllm_pool = RayPool(EngineSpec("vllm", workers=1, options={"kv_cache_gb": 0.25}), tiny_dir)
    try:
        new = perturbed(tiny[0], seed=4)
        vllm_pool.update_weights(new.named_parameters())
        left = vllm_pool._leftovers[0][0]
        assert left.processes and left.shm_files
        for pid, _ in left.processes:  # the engine's processes, not the actor
            os.kill(pid, signal.SIGKILL)
        groups = vllm_pool.generate(prompts, sampling)
        assert vllm_pool.restarts == 1
        assert logprob_gap(new, groups, 0.7) < 1e-4
        assert not any(os.path.exists(f) for f in left.shm_files)
    finally:
        vllm_pool.close()


def test_workers_that_cannot_start_raise_a_pool_error(tmp_path, pool):
    with pytest.raises(PoolError, match="failed to start"):
        RayPool(EngineSpec("hf", workers=1), str(tmp_path / "no-model"))
