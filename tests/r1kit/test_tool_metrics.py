"""Tool metrics of a batch: calls, failures, turns and tool seconds."""

import pytest

from r1kit.tool_metrics import tool_metrics
from rollout.types import Completion
from tests.trajectories import call, multi_turn


def test_a_batch_without_tools_has_no_tool_metrics():
    assert tool_metrics([Completion([1], [-1.0], "a", "stop")]) == {}


def test_calls_statuses_turns_and_seconds():
    batch = [
        multi_turn("a", call("1", seconds=0.5), "b", call("", status="error", seconds=1.0), "c"),
        multi_turn("a", call("", status="timeout", seconds=5.0), "b"),
        multi_turn("a", call("", status="skipped", seconds=0.0), "b"),
        multi_turn("no call at all"),
    ]
    metrics = tool_metrics(batch)
    assert metrics == pytest.approx(
        {
            "tools/calls_per_completion": 1.0,
            "tools/errors": 0.25,
            "tools/timeouts": 0.25,
            "tools/skipped": 0.25,
            "tools/turns": 2.0,
            "tools/seconds": 6.5,
            "tools/observation_tokens": (4 * 19 + 1) / 4,  # 4 observations: tags + "1"
        }
    )


def test_multi_turn_completions_that_made_no_call():
    metrics = tool_metrics([multi_turn("answered at once")])
    assert metrics["tools/calls_per_completion"] == 0.0 and metrics["tools/turns"] == 1.0
    assert metrics["tools/errors"] == 0.0
