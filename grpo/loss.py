"""GRPO's policy losses, loss aggregations and ratio levels, each a registry of functions by
name; the docs' table of variants (`variants_table`); truncated importance sampling.

`policy_loss` returns a micro-batch's *contribution* to the batch loss: it divides by the
batch-wide normalisers the caller passes (`Normalisers`), never by its own size, so summing
over micro-batches (and ranks) gives exactly the full-batch loss and gradient.
A new loss is one function under `@register_policy_loss(name, zero_at_zero_advantage=...)`.
Formulas and sources: docs/grpo_losses.md, whose table of variants is `variants_table()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import get_args

import torch

from r1kit.advantages import ADVANTAGES, ESTIMATORS
from r1kit.choices import TISLevel
from r1kit.learner.kl import KL_ESTIMATORS
from r1kit.learner.normalisers import LossInputError, Normalisers
from r1kit.registry import HOMES, Registry

POLICY_LOSSES = Registry("learner.policy_loss", LossInputError)
AGGREGATIONS = Registry("learner.loss", LossInputError)
RATIO_LEVELS = Registry("learner.ratio_level", LossInputError)
# Whether each policy loss is exactly 0 at advantage 0 (beta 0): the learner may skip such rows.
_ZERO_AT_ZERO: dict[str, bool] = {}
register_aggregation = AGGREGATIONS.register
register_ratio_level = RATIO_LEVELS.register


def register_policy_loss(name: str, *, zero_at_zero_advantage: bool) -> Callable:
    """Decorator: file a per-token loss `fn(ratio [B, T], adv [B, 1], epsilon_low,
    epsilon_high) -> [B, T]` under `name`, saying whether it is exactly 0 where adv is 0."""

    def add(fn: Callable) -> Callable:
        POLICY_LOSSES.register(name)(fn)
        _ZERO_AT_ZERO[name] = zero_at_zero_advantage
        return fn

    return add


def zero_at_zero_advantage(name: str) -> bool:
    """Whether the policy loss `name` is exactly 0 (no gradient) for a sequence of advantage 0."""
    POLICY_LOSSES.pick(name)
    return _ZERO_AT_ZERO[name]


@register_policy_loss("clip", zero_at_zero_advantage=True)
def clipped_surrogate(
    ratio: torch.Tensor, adv: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A): PPO's clip, DAPO's clip-higher."""
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    return -torch.min(ratio * adv, clipped * adv)


@register_policy_loss("cispo", zero_at_zero_advantage=True)
def clipped_is_weight(
    ratio: torch.Tensor, adv: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """-sg(clip(r, 1 - eps_low, 1 + eps_high)) A log pi: CISPO (MiniMax-M1, 2025).

    The importance weight is clipped and detached, so no token loses its gradient (PPO's clip
    drops it). Written as -sg(clip(r) / r) r A: the same gradient, -clip(r) A grad log pi,
    with the value -clip(r) A.
    """
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    return -(clipped / ratio).detach() * ratio * adv


# SAPO's temperatures for positive and negative advantages (the paper's defaults).
SAPO_TAU_POS, SAPO_TAU_NEG = 1.0, 1.05


@register_policy_loss("sapo", zero_at_zero_advantage=True)
def soft_gate(
    ratio: torch.Tensor, adv: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """-(4 / tau) sigmoid(tau (r - 1)) A: SAPO (Qwen, Gao et al. 2025), a soft clip.

    The gradient weight 4 sigmoid(x)(1 - sigmoid(x)), x = tau (r - 1), is 1 on-policy and
    decays smoothly as r leaves 1 instead of dropping to 0; tau is 1.0 for A > 0 and 1.05
    (a faster decay) for A < 0. The clip range is not used.
    """
    tau = torch.where(adv > 0, SAPO_TAU_POS, SAPO_TAU_NEG)
    return -(4 / tau) * torch.sigmoid(tau * (ratio - 1)) * adv


@register_aggregation("grpo")
def sequence_mean(per_token: torch.Tensor, valid: torch.Tensor, norm: Normalisers) -> torch.Tensor:
    """Mean per sequence, summed / num_sequences (DeepSeekMath's GRPO; GSPO's)."""
    per_sequence = per_token.sum(-1) / valid.sum(-1).clamp(min=1)
    return per_sequence.sum() / norm.num_sequences


@register_aggregation("dapo")
def token_sum(per_token: torch.Tensor, valid: torch.Tensor, norm: Normalisers) -> torch.Tensor:
    """Token sum / the whole batch's token count (DAPO's token-level loss)."""
    return per_token.sum() / norm.num_tokens


register_aggregation("bnpo")(token_sum)  # BNPO: DAPO's formula with batch-wide normalisers


@register_aggregation("dr_grpo")
def constant_normaliser(
    per_token: torch.Tensor, valid: torch.Tensor, norm: Normalisers
) -> torch.Tensor:
    """Token sum / (num_sequences * max_completion_len) (Dr. GRPO: no length bias)."""
    return per_token.sum() / (norm.num_sequences * norm.max_completion_len)


@register_ratio_level("token")
def token_log_ratio(
    log_ratio: torch.Tensor, logprobs: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Each token's own ratio pi / pi_old (PPO, GRPO, DAPO)."""
    return log_ratio


@register_ratio_level("sequence")
def sequence_log_ratio(
    log_ratio: torch.Tensor, logprobs: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """The sequence's length-normalised ratio exp(mean_t log r_t) on every token (GSPO)."""
    # GSPO-token: log s_i + logp_t - sg[logp_t]. Equal to log s_i in value, and its gradient
    # with the per-sequence mean is exactly GSPO's sequence-level gradient.
    lengths = valid.sum(-1).clamp(min=1)
    seq_log_ratio = (log_ratio.sum(-1) / lengths).detach()
    return torch.where(valid, seq_log_ratio[:, None] + logprobs - logprobs.detach(), 0.0)


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    norm: Normalisers,
    *,
    policy: str = "clip",
    aggregation: str = "dapo",
    ratio_level: str = "token",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    clip_ratio_c: float | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    ref_logprobs: torch.Tensor | None = None,
    tis_weights: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    selected: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The named policy loss (+ beta * KL) over [B, T] tokens; returns (loss, summed stats).

    Per token, with ratio r = pi / pi_old (or its sequence's, `ratio_level`) and the
    advantage A of its sequence, e.g. "clip": -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A);
    `aggregation` turns the per-token losses into the micro-batch's share of the batch loss.
    `clip_ratio_c` (dual-clip, Ye et al. 2020; verl's `clip_ratio_c`): for A < 0 the per-token
    loss is at most -c A, so a huge ratio on a bad token cannot blow the update up.
    `entropy_coef` (the entropy bonus, as TRL's / verl's `entropy_coeff`): - coef * H_t per
    token, aggregated like the surrogate; it needs `entropy` [B, T] with its graph.
    `selected` [B, T] bool (`high_entropy_mask`): only these tokens keep their surrogate (not
    their KL or entropy term); the others still count in every normaliser.
    """
    _check_inputs(logprobs, old_logprobs, advantages, mask, ref_logprobs, tis_weights, selected)
    _check_settings(epsilon_low, epsilon_high, clip_ratio_c, beta, ref_logprobs)
    loss_fn, aggregate = POLICY_LOSSES.pick(policy), AGGREGATIONS.pick(aggregation)
    level, kl_fn = RATIO_LEVELS.pick(ratio_level), KL_ESTIMATORS.pick(kl_estimator)
    valid = mask.bool()
    # Masked positions may hold garbage (padding, -inf): select them away before any exp.
    log_ratio = level(torch.where(valid, logprobs - old_logprobs, 0.0), logprobs, valid)
    ratio = torch.exp(log_ratio)
    adv = advantages[:, None]
    per_token = loss_fn(ratio, adv, epsilon_low, epsilon_high)
    dual_clipped = torch.zeros_like(valid)
    if clip_ratio_c is not None:
        dual_clipped = valid & (adv < 0) & (per_token > -clip_ratio_c * adv)
        per_token = torch.where(adv < 0, torch.minimum(per_token, -clip_ratio_c * adv), per_token)
    if tis_weights is not None:
        per_token = per_token * (tis_weights if tis_weights.dim() == 2 else tis_weights[:, None])
    if selected is not None:
        per_token = torch.where(selected, per_token, 0.0)
    kl = torch.zeros_like(per_token)
    if beta > 0:
        kl = kl_fn(torch.where(valid, logprobs, 0.0), torch.where(valid, ref_logprobs, 0.0))
        per_token = per_token + beta * kl
    if entropy_coef > 0:
        if entropy is None or entropy.shape != logprobs.shape:
            raise LossInputError("entropy_coef > 0 needs the [B, T] entropy of each token")
        per_token = per_token - entropy_coef * torch.where(valid, entropy, 0.0)
    loss = aggregate(torch.where(valid, per_token, 0.0), valid, norm)
    stats = {
        "token_count": valid.sum().item(),
        "clip_low_count": (valid & (ratio < 1 - epsilon_low) & (adv < 0)).sum().item(),
        "clip_high_count": (valid & (ratio > 1 + epsilon_high) & (adv > 0)).sum().item(),
        "clip_dual_count": dual_clipped.sum().item(),
        "kl_sum": kl.sum().item(),
        "ratio_sum": torch.where(valid, ratio, 0.0).sum().item(),
    }
    return loss, stats


def high_entropy_mask(entropy: torch.Tensor, mask: torch.Tensor, top_q: float) -> torch.Tensor:
    """The valid tokens whose entropy is in the top `top_q` of all valid tokens of the batch:
    I[H_t >= tau_q] ("Beyond the 80/20 Rule", Wang et al. 2025; their q is 0.2).

    tau_q is the ceil(q M)-th largest of the M valid entropies; ties with it are kept too.
    Pass the whole batch (every micro-batch and rank), so each sees the same threshold.
    """
    if not 0 < top_q <= 1:
        raise LossInputError(f"entropy_top_q must be in (0, 1], got {top_q}")
    valid = mask.bool()
    values = entropy[valid]
    if values.numel() == 0:
        return valid
    k = max(1, math.ceil(top_q * values.numel() - 1e-9))  # 0.07 * 100 is 7.000000000000001
    threshold = torch.topk(values, k).values[-1]
    return valid & (entropy >= threshold)


def adapt_entropy_coef(
    coef: float, entropy: float, target: float, step: float, max_coef: float | None
) -> float:
    """Skywork-OR1's adaptive entropy control (He et al. 2025, Sec. 3.2): c_{k+1} = c_k + delta
    if the step's mean entropy e_k < target, else c_k - delta, clamped to [0, max_coef]."""
    moved = coef + step if entropy < target else coef - step
    return min(max(moved, 0.0), math.inf if max_coef is None else max_coef)


def variants_table() -> str:
    """The markdown table of the built-in variants (those registered in their registry's home
    module, not a user's), as docs/grpo_losses.md shows it."""
    registries = (POLICY_LOSSES, AGGREGATIONS, RATIO_LEVELS, ESTIMATORS, ADVANTAGES, KL_ESTIMATORS)
    rows = ["| recipe field | name | what | zero at A = 0 |", "|---|---|---|---|"]
    for registry in registries:
        for name in sorted(registry):
            if registry[name].__module__ != HOMES[registry.field]:
                continue
            summary = (registry[name].__doc__ or "").strip().splitlines()[0]
            zero = ("no", "yes")[_ZERO_AT_ZERO[name]] if registry is POLICY_LOSSES else ""
            rows.append(f"| `{registry.field}` | `{name}` | {summary} | {zero} |")
    return "\n".join(rows) + "\n"


def _check_inputs(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    tis_weights: torch.Tensor | None,
    selected: torch.Tensor | None,
) -> None:
    """Raise LossInputError unless every tensor matches logprobs' [B, T]."""
    if logprobs.dim() != 2:
        raise LossInputError(f"logprobs must be [B, T], got shape {tuple(logprobs.shape)}")
    shape, batch = logprobs.shape, logprobs.shape[:1]
    expected = {"old_logprobs": shape, "mask": shape, "advantages": batch}
    given = {"old_logprobs": old_logprobs, "mask": mask, "advantages": advantages}
    if ref_logprobs is not None:
        expected["ref_logprobs"], given["ref_logprobs"] = shape, ref_logprobs
    if tis_weights is not None:
        expected["tis_weights"] = shape if tis_weights.dim() == 2 else batch
        given["tis_weights"] = tis_weights
    if selected is not None:
        expected["selected"], given["selected"] = shape, selected
    for name, tensor in given.items():
        if tensor.shape != expected[name]:
            raise LossInputError(
                f"{name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name])} "
                f"to match logprobs {tuple(shape)}"
            )


def _check_settings(
    epsilon_low: float,
    epsilon_high: float,
    clip_ratio_c: float | None,
    beta: float,
    ref_logprobs: torch.Tensor | None,
) -> None:
    """Raise LossInputError for out-of-range coefficients."""
    if not 0 <= epsilon_low <= 1 or epsilon_high < 0:
        raise LossInputError(
            f"need 0 <= epsilon_low <= 1 and epsilon_high >= 0, got {epsilon_low}, {epsilon_high}"
        )
    if clip_ratio_c is not None and clip_ratio_c <= 1:
        raise LossInputError(f"clip_ratio_c (dual-clip) must be > 1, got {clip_ratio_c}")
    if beta < 0:
        raise LossInputError(f"beta (the KL coefficient) must be >= 0, got {beta}")
    if beta > 0 and ref_logprobs is None:
        raise LossInputError("beta > 0 needs ref_logprobs (the reference policy's log-probs)")


def tis_weights(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    mask: torch.Tensor,
    level: TISLevel,
    cap: float,
) -> torch.Tensor:
    """Truncated importance weights min(pi_learner / pi_rollout, cap), detached.

    The rollout engine's numerics differ from the learner's, so "on-policy" samples are
    slightly off-policy (Yao et al., 2025). Token level: [B, T]; sequence level: [B], the
    product of the token ratios, capped once.
    """
    active = [name for name in get_args(TISLevel) if name != "none"]
    if level not in active:
        raise LossInputError(f"unknown TIS level {level!r}; use one of {active}")
    if cap <= 0:
        raise LossInputError(f"TIS cap must be positive, got {cap}")
    if old_logprobs.shape != rollout_logprobs.shape or old_logprobs.shape != mask.shape:
        raise LossInputError(
            f"old_logprobs {tuple(old_logprobs.shape)}, rollout_logprobs "
            f"{tuple(rollout_logprobs.shape)} and mask {tuple(mask.shape)} must have one shape"
        )
    log_w = torch.where(mask.bool(), old_logprobs - rollout_logprobs, 0.0).detach()
    if level == "sequence":
        log_w = log_w.sum(-1)
    return torch.exp(log_w).clamp(max=cap)
