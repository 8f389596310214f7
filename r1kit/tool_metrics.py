"""What the tools did in a batch of completions: calls, failures, turns and time (issue 34).

tool_metrics(completions) -> {"tools/calls_per_completion": ..., ...}   ({} without tools)
"""

from __future__ import annotations

from rollout.types import Completion

PREFIX = "tools/"


def tool_metrics(completions: list[Completion]) -> dict[str, float]:
    """Tool calls per completion, the fractions of calls that failed (error), ran out of time
    (timeout) or were not run (skipped: past tools.max_turns, or the tool time budget spent),
    model turns per completion (calls + 1), the tool seconds of the batch summed over its
    calls, and the observation tokens per completion (in the context, not in
    `completion_length`, which counts the tokens the model sampled).
    {} when no completion is multi-turn, so single-turn runs log nothing new."""
    if not any(c.model_tokens is not None for c in completions):
        return {}
    calls = [call for c in completions for call in c.tool_calls]
    per_completion = len(calls) / len(completions)

    def share(status: str) -> float:
        return sum(call.status == status for call in calls) / len(calls) if calls else 0.0

    return {
        f"{PREFIX}calls_per_completion": per_completion,
        f"{PREFIX}errors": share("error"),
        f"{PREFIX}timeouts": share("timeout"),
        f"{PREFIX}skipped": share("skipped"),
        f"{PREFIX}turns": per_completion + 1.0,
        f"{PREFIX}seconds": sum(call.seconds for call in calls),
        f"{PREFIX}observation_tokens": sum(
            len(c.token_ids) - c.model_token_count for c in completions
        )
        / len(completions),
    }
