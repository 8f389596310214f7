"""Where a run's Ray actors run: each rollout worker's and learner rank's node (id and IP),
printed when training starts and kept in runs/NAME/placement.json (rewritten when a lost
worker is re-placed), so a user sees, and a test checks, which nodes the run is on."""

from __future__ import annotations

from typing import Any

Where = dict[str, list[dict[str, Any]]]


def placement(engine: object, learner: object) -> Where | None:
    """The nodes of the engine's Ray workers and the learner's ranks; None when neither runs
    on Ray (an in-process engine and a one-rank learner)."""
    workers = engine.placement() if hasattr(engine, "placement") else []
    ranks = learner.placement() if hasattr(learner, "placement") else []
    if not workers and not ranks:
        return None
    return {"rollout_workers": workers, "learner_ranks": ranks}


def describe(where: Where) -> str:
    """One line: `placement: rollout workers 0 -> node 1a2b3c4d (10.0.0.1), ...; learner ...`."""
    return "placement: " + "; ".join(
        (
            f"{title} " + ", ".join(f"{item[key]} -> {_node(item)}" for item in items)
            if items
            else f"{title}: in this process"
        )
        for title, key, items in (
            ("rollout workers", "worker", where["rollout_workers"]),
            ("learner ranks", "rank", where["learner_ranks"]),
        )
    )


def _node(item: dict[str, Any]) -> str:
    return f"node {item['node'][:8]} ({item['ip']})"
