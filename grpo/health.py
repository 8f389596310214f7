"""Run health: rules over the metric history that say when training is going wrong.

    flags = check(history)   # history: metrics.jsonl records so far, oldest first

Three failures a reward curve hides: held-out accuracy falling while the training reward or
the format rate rises (the reward is being hacked, as on issue 19's two-digit run); most
groups flat for several steps (no advantage, no gradient); policy entropy collapsing (the
model stops exploring). Each rule is a pure function of the history that tests call directly.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCURACY, FORMAT, REWARD = "eval/pass@1", "eval/format_rate", "reward/total/mean"


@dataclass(frozen=True)
class Thresholds:
    accuracy_drop: float = 0.05  # held-out accuracy this far below its best so far...
    reward_rise: float = 0.05  # ...while training reward or format rate rose this much
    window: int = 3  # training steps averaged for "the reward then" and "the reward now"
    flat_frac: float = 0.75  # share of groups with equal rewards that counts as "most"
    flat_steps: int = 3  # ...for this many steps in a row
    entropy_frac: float = 0.1  # entropy below this share of the first step's...
    entropy_steps: int = 3  # ...for this many steps in a row


def check(history: list[dict], t: Thresholds = Thresholds()) -> dict[str, str]:
    """The rules raised by the latest record of `history`: name -> what is wrong."""
    found = {
        "reward_hacking": reward_hacking(history, t),
        "flat_groups": flat_groups(history, t),
        "entropy_collapse": entropy_collapse(history, t),
    }
    return {name: message for name, message in found.items() if message}


class Monitor:
    """The trainer's watch: holds the history, returns each step's `health/*` metrics and
    the rules that were not raised at the step before (to warn once per episode)."""

    def __init__(self, history: list[dict], t: Thresholds = Thresholds()):
        self.history, self.t = list(history), t
        self.raised = set(check(self.history, t)) if self.history else set()

    def observe(self, step: int, metrics: dict[str, float]) -> tuple[dict[str, float], list[str]]:
        self.history.append({"step": step, **metrics})
        flags = check(self.history, self.t)
        new = [f"{name}: {message}" for name, message in flags.items() if name not in self.raised]
        self.raised = set(flags)
        return as_metrics(flags), new


def as_metrics(flags: dict[str, str]) -> dict[str, float]:
    """`health/<rule>`: 1.0 raised, 0.0 not, for metrics.jsonl and the plot."""
    return {f"health/{name}": float(name in flags) for name in RULES}


def reward_hacking(history: list[dict], t: Thresholds = Thresholds()) -> str | None:
    """The last held-out accuracy is `accuracy_drop` below the best earlier one while the
    training reward (mean of `window` steps) or the held-out format rate rose since then."""
    evals = [r for r in history if ACCURACY in r]
    if len(evals) < 2 or evals[-1] is not history[-1]:
        return None
    best, now = max(evals[:-1], key=lambda r: r[ACCURACY]), evals[-1]
    if now[ACCURACY] > best[ACCURACY] - t.accuracy_drop:
        return None
    format_rise = now.get(FORMAT, 0.0) - best.get(FORMAT, now.get(FORMAT, 0.0))
    rewards = [r for r in history if REWARD in r]
    then = [r[REWARD] for r in rewards if r["step"] <= best["step"]][-t.window :]
    then = then or [r[REWARD] for r in rewards if r["step"] > best["step"]][: t.window]
    recent = [r[REWARD] for r in rewards][-t.window :]
    reward_rise = _mean(recent) - _mean(then) if then else 0.0
    if max(format_rise, reward_rise) < t.reward_rise:
        return None
    return (
        f"held-out accuracy fell {best[ACCURACY]:.3f} (step {best['step']}) -> "
        f"{now[ACCURACY]:.3f} while training reward rose {reward_rise:+.3f} and format rate "
        f"{format_rise:+.3f}: the rewards pay for something other than correctness"
    )


def flat_groups(history: list[dict], t: Thresholds = Thresholds()) -> str | None:
    """`zero_variance_frac` at or above `flat_frac` on each of the last `flat_steps` steps."""
    last = [r["zero_variance_frac"] for r in history if "zero_variance_frac" in r][-t.flat_steps :]
    if (
        len(last) < t.flat_steps
        or min(last) < t.flat_frac
        or "zero_variance_frac" not in history[-1]
    ):
        return None
    return (
        f"{min(last):.0%}+ of groups were flat for {t.flat_steps} steps: little gradient; "
        "try dynamic sampling, a curriculum, a larger group or a less sparse reward"
    )


def entropy_collapse(history: list[dict], t: Thresholds = Thresholds()) -> str | None:
    """Entropy below `entropy_frac` of the first step's on each of the last `entropy_steps`."""
    values = [r["entropy"] for r in history if "entropy" in r]
    last = values[-t.entropy_steps :]
    if len(values) <= t.entropy_steps or "entropy" not in history[-1]:
        return None
    if max(last) >= t.entropy_frac * values[0]:
        return None
    return (
        f"entropy collapsed {values[0]:.3g} -> {last[-1]:.3g}: the policy has stopped "
        "exploring; lower the learning rate or raise the temperature"
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


RULES = ("reward_hacking", "flat_groups", "entropy_collapse")
