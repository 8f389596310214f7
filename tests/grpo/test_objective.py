"""GRPO's objective: the clipped surrogate on hand-computed values, the rows it lets the core
skip, the old log-probs its first pass stores, and its metrics."""

import math

import pytest
import torch

from grpo.objective import PolicyGradient, forking_tokens, kl_penalties
from r1kit.learner.batch import Batch
from r1kit.learner.normalisers import Normalisers
from r1kit.recipe import LearnerConfig
from tests.r1kit.learner.test_core import _batch


def _two_sequences() -> Batch:
    """Completions of 2 and 1 tokens, advantages +1 / -1, old log-probs -1 and -2."""
    return Batch(
        prompt_ids=[[1, 2], [1, 2]],
        completion_ids=[[5, 6], [7]],
        rollout_logprobs=[[-1.0, -1.0], [-2.0]],
        advantages=torch.tensor([1.0, -1.0]),
        loss_mask=[True, True],
        old_logprobs=[torch.tensor([-1.0, -1.0]), torch.tensor([-2.0])],
    )


def _with_observations(garbage: float) -> Batch:
    """`_two_sequences` as tool-use trajectories: two observation tokens inside the first
    completion and one before the second's token, `garbage` in every per-token value there."""
    batch = _two_sequences()
    batch.completion_ids = [[5, 90, 91, 6], [92, 7]]
    batch.model_tokens = [[True, False, False, True], [False, True]]
    batch.rollout_logprobs = [[-1.0, garbage, garbage, -1.0], [garbage, -2.0]]
    batch.old_logprobs = [torch.tensor(row) for row in batch.rollout_logprobs]
    return batch


def _loss(objective: PolicyGradient, batch: Batch, logprobs, entropy):
    """`objective`'s loss of `batch` as one micro-batch, the per-token inputs given per
    sequence (right-aligned) and put in the micro-batch's order."""
    mb = next(batch.micro_batches(8))
    logprobs, entropy = torch.tensor(logprobs)[mb.rows], torch.tensor(entropy)[mb.rows]
    return objective.loss(None, mb, logprobs, entropy, Normalisers(3, 2, 4))


def test_the_dapo_loss_clips_each_token_s_ratio_and_divides_by_the_batch_tokens():
    # Ratios: e^0.5 (clipped to 1.28, A = +1), 1, and e^-0.5 (clipped to 0.8, A = -1).
    loss, stats = _loss(
        PolicyGradient(LearnerConfig()),
        _two_sequences(),
        [[-0.5, -1.0], [0.0, -2.5]],
        [[1.0, 2.0], [9.0, 3.0]],
    )
    assert loss.item() == pytest.approx((-1.28 - 1.0 + 0.8) / 3)
    assert stats["token_count"] == 3
    assert (stats["clip_high_count"], stats["clip_low_count"]) == (1, 1)
    assert stats["ratio_sum"] == pytest.approx(math.exp(0.5) + 1 + math.exp(-0.5))
    assert stats["entropy_sum"] == pytest.approx(6.0)  # the padding's 9 does not count
    assert stats["mismatch_kl_sum"] == pytest.approx(0.0)  # old == the engine's


OBSERVATION_VARIANTS = [
    {},
    {"loss": "grpo", "ratio_level": "sequence"},  # GSPO: the mean log-ratio of own tokens
    {"tis": {"level": "token", "cap": 2.0}},
    {"tis": {"level": "sequence", "cap": 2.0}},
    {"entropy_coef": 0.1},
]


@pytest.mark.parametrize("garbage", [0.0, 40.0])
@pytest.mark.parametrize("options", OBSERVATION_VARIANTS)
def test_observation_tokens_add_nothing_to_the_loss_or_its_statistics(options, garbage):
    # The learner's own log-probs differ from the engine's (-1, -1 | -2), so TIS and the
    # mismatch KL are not trivially 1 and 0; observation positions hold `garbage` everywhere.
    objective = PolicyGradient(LearnerConfig(**options))
    alone = _loss(objective, _two_sequences(), [[-0.5, -1.0], [0.0, -2.5]], [[1.0, 2.0]] * 2)
    g = garbage
    with_tool = _loss(
        objective,
        _with_observations(g),
        [[-0.5, g, g, -1.0], [0.0, 0.0, g, -2.5]],
        [[1.0, g, g, 2.0], [0.0, 0.0, g, 2.0]],
    )
    assert with_tool[0].item() == pytest.approx(alone[0].item(), rel=1e-6)
    assert with_tool[1] == pytest.approx(alone[1], rel=1e-6)


def test_skipped_rows_are_the_zero_advantage_and_masked_ones():
    assert PolicyGradient(LearnerConfig()).rows(_batch()) == [0, 1, 3, 6]


def test_nothing_is_skipped_with_a_kl_penalty_except_masked_rows():
    assert PolicyGradient(LearnerConfig(beta=0.1)).rows(_batch()) == [0, 1, 2, 3, 4, 5, 6]


def test_nothing_is_skipped_with_an_entropy_bonus_except_masked_rows():
    objective = PolicyGradient(LearnerConfig(entropy_coef=0.01))
    assert objective.entropy_grad and objective.rows(_batch()) == [0, 1, 2, 3, 4, 5, 6]


def test_a_kl_in_the_reward_leaves_the_loss_and_the_skip_as_with_beta_zero():
    objective = PolicyGradient(LearnerConfig(beta=0.1, kl_in="reward"))
    assert objective.beta == 0.0 and objective.rows(_batch()) == [0, 1, 3, 6]


def test_nothing_is_skipped_with_an_entropy_target_even_once_its_coef_is_zero():
    cfg = LearnerConfig(entropy_coef=0.01, entropy_target=0.5)
    objective = PolicyGradient(cfg, entropy_coef=0.0)
    assert not objective.entropy_grad and objective.rows(_batch()) == [0, 1, 2, 3, 4, 5, 6]


def test_the_coef_the_trainer_passes_replaces_the_recipe_s():
    cfg = LearnerConfig(entropy_coef=0.01, entropy_target=0.5)
    entropy = [[1.0, 2.0], [9.0, 3.0]]  # right-aligned: seq1's one token has H = 3
    loss, _ = _loss(
        PolicyGradient(cfg, entropy_coef=0.1), _two_sequences(), [[-1.0] * 2, [-2.0] * 2], entropy
    )
    # on-policy: per-token -A - 0.1 H = [-1.1, -1.2], [1 - 0.3]; dapo over 3 tokens
    assert loss.item() == pytest.approx((-1.1 - 1.2 + 0.7) / 3)


def _values(**values) -> dict:
    """Whole-batch token values as `whole_batch_values` gives them (per sequence, per token)."""
    return {key: [torch.tensor(row) for row in rows] for key, rows in values.items()}


def test_the_kl_in_the_reward_is_beta_times_each_sequence_s_token_sum():
    # k1 = logp - ref per token: seq0 (-1 + 1.5) + (-1 + 0.5) = 0, seq1 -2 + 1 = -1; k3 with
    # d = ref - logp: seq0 (e^-0.5 + 0.5 - 1) + (e^0.5 - 0.5 - 1), seq1 e^1 - 1 - 1
    values = _values(logprobs=[[-1.0, -1.0], [-2.0]], ref_logprobs=[[-1.5, -0.5], [-1.0]])
    cfg = LearnerConfig(beta=0.1, kl_in="reward", kl_estimator="k1")
    assert kl_penalties(values, _two_sequences(), cfg).tolist() == pytest.approx([0.0, -0.1])
    k3 = [math.exp(-0.5) - 0.5 + math.exp(0.5) - 1.5, math.e - 2]
    penalty = kl_penalties(values, _two_sequences(), cfg.model_copy(update={"kl_estimator": "k3"}))
    assert penalty.tolist() == pytest.approx([0.1 * k for k in k3])
    assert kl_penalties(values, _two_sequences(), LearnerConfig(beta=0.1)).tolist() == [0, 0]


def test_the_kl_in_the_reward_sums_the_model_s_own_tokens_only():
    cfg = LearnerConfig(beta=0.1, kl_in="reward", kl_estimator="k1")
    values = _values(
        logprobs=[[-1.0, 0.0, 0.0, -1.0], [0.0, -2.0]],
        ref_logprobs=[[-1.5, -9.0, -9.0, -0.5], [-9.0, -1.0]],  # the observations' k1 is 9
    )
    assert kl_penalties(values, _with_observations(0.0), cfg).tolist() == pytest.approx([0, -0.1])


def test_forking_tokens_are_never_observation_tokens_nor_counted_among_the_candidates():
    # Own tokens' entropies 0.1 0.5 | 0.3; q = 0.4 of those 3 keeps ceil(1.2) = 2: 0.5 and 0.3.
    values = _values(entropy=[[0.1, 9.0, 9.0, 0.5], [9.0, 0.3]])
    keep = forking_tokens(values, _with_observations(0.0), 0.4)
    assert [row.tolist() for row in keep] == [[False, False, False, True], [False, True]]


def test_forking_tokens_are_chosen_over_the_whole_batch_s_valid_tokens():
    # entropies 0.1 0.9 0.5 | 0.7 0.3 | (masked row) 5: q = 0.4 of the 5 valid keeps 0.9 and 0.7
    batch = _two_sequences()
    batch.prompt_ids.append([1, 2])
    batch.completion_ids.append([8])
    batch.rollout_logprobs.append([-1.0])
    batch.loss_mask.append(False)
    batch.completion_ids[:2] = [[5, 6, 7], [7, 8]]
    values = _values(entropy=[[0.1, 0.9, 0.5], [0.7, 0.3], [5.0]])
    keep = forking_tokens(values, batch, 0.4)
    assert [row.tolist() for row in keep] == [[False, True, False], [True, False], [False]]
    assert forking_tokens(values, batch, 1.0) is None


def test_nothing_is_skipped_with_the_skip_off():
    cfg = LearnerConfig(skip_zero_advantage=False)
    assert PolicyGradient(cfg).rows(_batch()) == list(range(8))


def test_the_first_pass_stores_its_own_logprobs_per_completion_token():
    batch = _two_sequences()
    batch.old_logprobs = None
    objective = PolicyGradient(LearnerConfig(), store_old=True)
    _loss(objective, batch, [[-0.5, -1.0], [0.0, -2.5]], [[0.0] * 2] * 2)
    objective.end(batch)
    assert [t.tolist() for t in batch.old_logprobs] == [[-0.5, -1.0], [-2.5]]


def test_metrics_are_per_token_means_of_the_summed_statistics():
    totals = {
        "token_count": 4.0,
        "kl_sum": 2.0,
        "clip_low_count": 1.0,
        "clip_high_count": 3.0,
        "ratio_sum": 4.0,
        "entropy_sum": 8.0,
        "mismatch_kl_sum": 0.4,
    }
    assert PolicyGradient(LearnerConfig()).metrics(totals) == pytest.approx(
        {
            "kl": 0.5,
            "clip_frac/low": 0.25,
            "clip_frac/high": 0.75,
            "ratio": 1.0,
            "entropy": 2.0,
            "mismatch_kl": 0.1,
        }
    )


def test_an_all_skipped_step_logs_no_per_token_means():
    """Nothing ran, so nothing was measured: no entropy of 0 for the collapse rule to read."""
    totals = dict.fromkeys(
        ("token_count", "kl_sum", "clip_low_count", "clip_high_count", "ratio_sum"), 0.0
    )
    metrics = PolicyGradient(LearnerConfig()).metrics(
        totals | {"entropy_sum": 0.0, "mismatch_kl_sum": 0.0}
    )
    assert metrics == {}
