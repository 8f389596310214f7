"""GRPO's objective for the learner core: the clipped surrogate of grpo/loss.py with the
recipe's settings (aggregation, clip range, TIS, the KL penalty to the reference policy).

    learner.step(batch, PolicyGradient(recipe.learner), norm)

With `store_old` (the first of num_iterations > 1 passes) the pass's own pre-update log-probs
are kept in `batch.old_logprobs`: the ratio's denominator for the later passes. What needs the
whole batch before the step is computed here too, over all of it (every micro-batch and rank
then sees the same values), in one pass (`whole_batch_values`): the tokens `entropy_top_q`
keeps (`forking_tokens`) and the KL penalty `kl_in: reward` subtracts from each reward
(`kl_penalties`).
"""

from __future__ import annotations

import torch

from grpo.loss import high_entropy_mask, policy_loss, tis_weights, zero_at_zero_advantage
from r1kit.learner.batch import Batch, MicroBatch
from r1kit.learner.core import Learner
from r1kit.learner.kl import KL_ESTIMATORS, mismatch_stats
from r1kit.learner.normalisers import Normalisers
from r1kit.learner.objective import Objective
from r1kit.recipe import LearnerConfig


class PolicyGradient(Objective):
    """The clipped-surrogate loss (+ beta k3 KL) of each completion's advantage.

    `entropy_coef`: this step's entropy bonus when the trainer adapts it (`entropy_target`);
    None: the recipe's. With `kl_in: reward` the KL is in the advantages, not in the loss.
    """

    def __init__(
        self, cfg: LearnerConfig, store_old: bool = False, entropy_coef: float | None = None
    ):
        self.cfg, self.store_old = cfg, store_old
        self.entropy_coef = cfg.entropy_coef if entropy_coef is None else entropy_coef
        self.beta = cfg.beta if cfg.kl_in == "loss" else 0.0
        self.entropy_grad = self.entropy_coef > 0
        self.old: dict[int, torch.Tensor] = {}  # with store_old: sequence -> its window row

    def rows(self, batch: Batch) -> list[int]:
        """The sequences whose loss gradient is not exactly zero (all with the skip off).

        A masked or empty completion contributes nothing. With no KL in the loss and no
        entropy bonus the loss of a sequence of advantage 0 is 0 for a policy loss that says so
        (`zero_at_zero_advantage`), in every aggregation and ratio level (TIS and the top-q
        selection only scale it); its tokens still count in the batch-wide normalisers, which
        the caller computed over the whole batch. With an entropy target nothing is skipped:
        the adaptation reads the mean entropy of every token.
        """
        if not self.cfg.skip_zero_advantage:
            return list(range(len(batch)))
        return [
            i
            for i in range(len(batch))
            if batch.loss_mask[i]
            and batch.completion_ids[i]
            and (
                self.beta > 0
                or self.entropy_coef > 0
                or self.cfg.entropy_target is not None
                or not zero_at_zero_advantage(self.cfg.policy_loss)
                or batch.advantages[i].item() != 0
            )
        ]

    def loss(
        self,
        learner: Learner,
        mb: MicroBatch,
        logprobs: torch.Tensor,
        entropy: torch.Tensor,
        norm: Normalisers,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        # Before the first update the learner's own log-probs ARE the old policy's:
        # detached, they give ratio 1 and need no extra forward pass.
        old = mb.old_logprobs if mb.old_logprobs is not None else logprobs.detach()
        weights = None
        if cfg.tis.level != "none":
            weights = tis_weights(old, mb.rollout_logprobs, mb.mask, cfg.tis.level, cfg.tis.cap)
        loss, stats = policy_loss(
            logprobs,
            old,
            mb.advantages,
            mb.mask,
            norm,
            policy=cfg.policy_loss,
            aggregation=cfg.loss,
            ratio_level=cfg.ratio_level,
            epsilon_low=cfg.epsilon_low,
            epsilon_high=cfg.epsilon_high,
            clip_ratio_c=cfg.clip_ratio_c,
            beta=self.beta,
            kl_estimator=cfg.kl_estimator,
            ref_logprobs=learner.reference_logprobs(mb) if self.beta > 0 else None,
            tis_weights=weights,
            entropy=entropy,
            entropy_coef=self.entropy_coef,
            selected=mb.selected,
        )
        mismatch_kl = mismatch_stats(old, mb.rollout_logprobs, mb.mask)["kl"]
        stats["entropy_sum"] = (entropy.detach() * mb.mask).sum().item()
        stats["mismatch_kl_sum"] = mismatch_kl * mb.mask.sum().item()
        if self.store_old:
            for row, i in enumerate(mb.rows):
                self.old[i] = old[row].detach().cpu()
        return loss, stats

    def end(self, batch: Batch) -> None:
        """With store_old: each sequence's old log-probs, one per completion token (None for a
        sequence that was not run)."""
        if not self.store_old:
            return
        batch.old_logprobs = [None] * len(batch)
        for i, row in self.old.items():
            batch.old_logprobs[i] = row[row.shape[0] - len(batch.completion_ids[i]) :]

    def metrics(self, totals: dict[str, float]) -> dict[str, float]:
        """Per-token means over the tokens the learner ran (skipped sequences have none); none
        when it ran no token: an entropy of 0 logged then would read as a collapsed policy (and
        as the entropy-collapse rule's first-step reference, silence it for the whole run)."""
        tokens = totals["token_count"]
        if not tokens:
            return {}
        dual = {}
        if self.cfg.clip_ratio_c is not None:  # logged only when on: today's metrics unchanged
            dual = {"clip_frac/dual": totals["clip_dual_count"] / tokens}
        return {
            "kl": totals["kl_sum"] / tokens,
            "clip_frac/low": totals["clip_low_count"] / tokens,
            "clip_frac/high": totals["clip_high_count"] / tokens,
            "ratio": totals["ratio_sum"] / tokens,
            "entropy": totals["entropy_sum"] / tokens,
            "mismatch_kl": totals["mismatch_kl_sum"] / tokens,
        } | dual


def whole_batch_values(learner: Learner, batch: Batch, cfg: LearnerConfig) -> dict:
    """What the step needs of the whole batch before it, in one pass without a gradient (so
    every micro-batch and rank sees the same values): the policy's token entropies
    (`entropy_top_q`) and log-probs with the reference's (`kl_in: reward`); {} when neither
    is on."""
    if cfg.entropy_top_q == 1 and cfg.kl_in == "loss":
        return {}
    return learner.token_values(batch, reference=cfg.kl_in == "reward")


def forking_tokens(values: dict, batch: Batch, top_q: float) -> list[torch.Tensor] | None:
    """Per sequence, the completion tokens whose entropy (`values`, `whole_batch_values`) is
    in the top `top_q` of the whole batch's counted tokens (the model's own, of sequences in
    the loss), by the policy before the step
    (Wang et al. 2025); None at q = 1."""
    if top_q == 1:
        return None
    entropy = values["entropy"]
    width = max((len(row) for row in entropy), default=0)
    padded = torch.zeros(len(batch), width)
    valid = torch.zeros(len(batch), width, dtype=torch.bool)
    for i, row in enumerate(entropy):
        padded[i, : len(row)] = row
        valid[i, : len(row)] = batch.counted(i)
    keep = high_entropy_mask(padded, valid, top_q)
    return [keep[i, : len(row)] for i, row in enumerate(entropy)]


def kl_penalties(values: dict, batch: Batch, cfg: LearnerConfig) -> torch.Tensor:
    """[N] beta sum_t KL_t(pi_old, pi_ref) over each sequence's own tokens (a tool's
    observation is not the policy's) under `kl_estimator`, from
    `values` (`whole_batch_values`): what `kl_in: reward` subtracts from its reward before the
    advantages (verl's `use_kl_in_reward`, OpenRLHF's default; Ouyang et al. 2022, Eq. 2); 0s
    with `kl_in: loss`."""
    if cfg.kl_in == "loss":
        return torch.zeros(len(batch))
    kl = KL_ESTIMATORS.pick(cfg.kl_estimator)
    pairs = enumerate(zip(values["logprobs"], values["ref_logprobs"], strict=True))
    return torch.tensor(
        [cfg.beta * kl(logp, ref)[batch.own_tokens(i)].sum().item() for i, (logp, ref) in pairs]
    )
