"""A learner of 2 ranks (Ray actors, gloo) takes the same step as one process, DDP and FSDP2."""

import copy
import time

import pytest
import ray
import torch

from grpo.objective import PolicyGradient, forking_tokens, whole_batch_values
from r1kit.errors import NodeLost
from r1kit.learner.batch import Batch
from r1kit.learner.core import Learner
from r1kit.learner.policy import load_policy
from r1kit.learner.ranks import LearnerGroup, Ranks, split_batch, start_ranks, subset
from r1kit.recipe import validate
from tests.r1kit.learner.test_core import (
    TEMPERATURE,
    VARIANTS,
    _batch,
    _multi_turn_batch,
    _norm,
)

# AdamW's step is ~lr * sign(gradient): float noise in a near-zero gradient (another summation
# order across ranks, another CPU's kernels) moves a weight by a few percent of lr (2.3e-5 seen
# on one machine), while a shard's gradient dropped or counted twice moves many by ~lr. So the
# weights must agree to a tenth of lr, and the metrics (loss, grad norm) to 1e-5 relative.
LR = 1e-3
WEIGHT_TOLERANCE = LR / 10


def _recipe(world_size: int = 2, lora: bool = False, checkpointing: bool = False, **learner):
    model = {"name": "tiny-llama", "gradient_checkpointing": checkpointing}
    if lora:
        model["lora"] = {"r": 4, "target_modules": ["q_proj"]}
    return validate(
        {
            "model": model,
            "learner": {
                "lr": LR,
                "micro_batch_size": 3,
                "logprob_chunk": 4,
                "world_size": world_size,
                **learner,
            },
            "rollout": {"temperature": TEMPERATURE},
            "train": {"steps": 10},
        }
    )


@pytest.fixture(scope="module")
def ranks():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False)
    started = start_ranks(_recipe())
    yield started
    started.stop()


def _two_passes(learner, recipe, batch: Batch) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """num_iterations 2 over `batch`: the second pass uses the first's old log-probs (the
    top-q tokens chosen first, over the whole batch, as the trainer does)."""
    batch.selected = forking_tokens(
        whole_batch_values(learner, batch, recipe.learner), batch, recipe.learner.entropy_top_q
    )
    learner.step(batch, PolicyGradient(recipe.learner, store_old=True), _norm(batch))
    metrics = learner.step(batch, PolicyGradient(recipe.learner), _norm(batch))
    return metrics, dict(learner.named_weights())


def _settings():
    for strategy in ("ddp", "fsdp"):
        for variant in VARIANTS:
            name = " ".join(map(str, variant.values()))
            yield f"{strategy} {name}", _recipe(strategy=strategy, **variant), _batch()
        yield f"{strategy} lora", _recipe(lora=True, strategy=strategy), _batch()
        yield f"{strategy} checkpointing", _recipe(checkpointing=True, strategy=strategy), _batch()
        yield f"{strategy} beta", _recipe(strategy=strategy, beta=0.1), _batch()
        tis = {"level": "token", "cap": 2.0}  # reads the engine's log-probs of own tokens only
        yield f"{strategy} multi-turn", _recipe(strategy=strategy, tis=tis), _multi_turn_batch()
        # One prompt group: the other rank has no sequence, yet takes part in every collective.
        yield f"{strategy} idle rank", _recipe(strategy=strategy), subset(_batch(), [0, 1, 2, 3])


def test_two_ranks_update_the_weights_as_one_process_does(ranks):
    diffs, metrics = {}, {}
    keys = ("loss", "grad_norm", "entropy", "ratio", "skipped_frac")
    for name, recipe, batch in _settings():
        got_metrics, got = _two_passes(LearnerGroup(ranks, recipe), recipe, copy.deepcopy(batch))
        want_metrics, want = _two_passes(_learner(recipe), recipe, batch)
        assert got.keys() == want.keys()
        diffs[name] = max((got[n] - want[n]).abs().max().item() for n in want)
        metrics[name] = ({k: got_metrics[k] for k in keys}, {k: want_metrics[k] for k in keys})
    worst = sorted(diffs.items(), key=lambda item: -item[1])[:3]
    assert max(diffs.values()) < WEIGHT_TOLERANCE, worst
    for name, (got_metrics, want_metrics) in metrics.items():
        assert got_metrics == pytest.approx(want_metrics, rel=1e-5, abs=1e-6), name


def test_two_ranks_give_one_process_s_token_values(ranks):
    recipe = _recipe(strategy="fsdp", beta=0.1)  # the reference is sharded too
    got = LearnerGroup(ranks, recipe).token_values(_batch(), reference=True)
    want = _learner(recipe).token_values(_batch(), reference=True)
    for key, rows in want.items():
        assert (
            max((a - b).abs().max().item() for a, b in zip(got[key], rows, strict=True)) < 1e-5
        ), key


def test_fsdp_ranks_load_whole_weights_after_a_forward_only_pass(ranks):
    # FSDP2 leaves the root's parameters unsharded after a forward with no backward (a
    # log-prob pass); a resume's weights must still load into them.
    recipe = _recipe(strategy="fsdp")
    group = LearnerGroup(ranks, recipe)
    group.token_values(_batch())
    want = {n: t + 0.5 for n, t in _learner(recipe).named_weights()}
    group.load_weights(want)
    got = dict(group.named_weights())
    assert max((got[n] - want[n]).abs().max().item() for n in want) == 0.0


def test_a_batch_splits_in_whole_prompt_groups_balanced_by_tokens():
    batch = _batch()  # prompts of 5 and 3 tokens, 4 completions each
    shards = split_batch(batch, 2)
    assert sorted(shards) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert split_batch(subset(batch, [0, 1, 2, 3]), 2) == [[0, 1, 2, 3], []]


def test_a_shard_keeps_its_sequences_model_token_flags():
    batch = _multi_turn_batch()
    shard = subset(batch, [5, 2])
    assert shard.model_tokens == [batch.model_tokens[5], batch.model_tokens[2]]
    assert subset(_batch(), [5, 2]).model_tokens is None


def _learner(recipe) -> Learner:
    torch.manual_seed(recipe.seed)
    policy, _ = load_policy(recipe, "cpu")
    cfg = recipe.learner
    return Learner(policy, cfg, cfg, recipe.train.steps, recipe.rollout.temperature, cfg.beta > 0)


def _resumed(saved, resumed, recipe):
    """Step `saved`, move its weights and optimizer state to `resumed`, step that again."""
    batch = _batch()
    saved.step(batch, PolicyGradient(recipe.learner), _norm(batch))
    resumed.load_weights(dict(saved.named_weights()))
    resumed.load_state_dict(saved.state_dict())
    resumed.step(batch, PolicyGradient(recipe.learner), _norm(batch))
    return dict(resumed.named_weights())


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_checkpoint_resumes_at_another_world_size_as_if_uninterrupted(ranks, strategy):
    one = _recipe(world_size=1, strategy=strategy)
    two = _recipe(strategy=strategy)
    uninterrupted = _learner(one)
    for _ in range(2):
        uninterrupted.step(_batch(), PolicyGradient(one.learner), _norm(_batch()))
    want = dict(uninterrupted.named_weights())
    for saved, resumed in (
        (LearnerGroup(ranks, two), _learner(one)),
        (_learner(one), LearnerGroup(ranks, two)),
    ):
        got = _resumed(saved, resumed, one)
        assert max((got[n] - want[n]).abs().max().item() for n in want) < WEIGHT_TOLERANCE


def test_each_rank_s_node_is_known(ranks):
    here = ray.get_runtime_context().get_node_id()
    assert [node for node, _ in ranks.nodes] == [here, here]


@ray.remote(num_cpus=0)
class _Rank:
    def call(self, method: str, *args):
        return method


def test_a_rank_whose_actor_is_gone_is_a_node_lost_naming_it_and_its_node(ranks):
    actors = [_Rank.remote(), _Rank.remote()]
    group = LearnerGroup.__new__(LearnerGroup)  # the group's calls, without building learners
    group.ranks = actors
    group.group = Ranks(actors, None, [("a1", "10.0.0.1"), ("b2", "10.0.0.2")])
    group.set_lr(0.1)
    ray.kill(actors[1])
    _wait_until_dead(actors[1])  # ray.kill returns before the actor is gone
    with pytest.raises(NodeLost, match=r"learner rank 1 on node b2 \(10.0.0.2\) was lost: "):
        group.set_lr(0.1)


def _wait_until_dead(actor, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ray.get(actor.call.remote("ping"), timeout=seconds)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the killed actor still answers after {seconds} s")
