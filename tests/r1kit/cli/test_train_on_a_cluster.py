"""`r1kit train` on a real two-node Ray cluster on this machine (`ray start --head` with token
authentication, a second node joining it): placement on both nodes, `ray job submit`, and a
node lost mid-run. Every test starts its own nodes and always stops them, by their own ids."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from r1kit.errors import NODE_LOST_EXIT
from tests.ray_nodes import (
    head,
    on_cluster,
    stop_node_after_step,
)

pytest.importorskip("ray", reason="Ray is not installed (scripts/setup.sh installs it)")
pytestmark = pytest.mark.slow
PORT, DASHBOARD = 6413, 8413


@pytest.fixture
def cluster():
    """A head of 4 logical CPUs (with the dashboard, for `ray job submit`) and a second node of
    2 (`cluster.nodes[0]`)."""
    with head(PORT, cpus=4, dashboard_port=DASHBOARD) as started:
        started.add_node(cpus=2)
        yield started


def _said(result) -> str:
    """What the user saw, on one line (rich wraps long lines)."""
    return " ".join((result.stdout + (result.stderr or "")).split())


def _placement(run: Path) -> dict:
    return json.loads((run / "placement.json").read_text())


def _nodes(items: list[dict]) -> set[str]:
    return {item["node"] for item in items}


def test_workers_and_ranks_are_placed_on_both_nodes(tmp_path, tiny_recipe, cluster):
    path = on_cluster(
        tiny_recipe, tmp_path, "two", rollout={"workers": 2}, learner={"world_size": 2},
        train={"steps": 2},
    )  # fmt: skip
    result = cluster.train(str(path))
    assert result.returncode == 0, _said(result)[-3000:]
    where = _placement(tmp_path / "runs" / "two")
    assert len(_nodes(where["rollout_workers"])) == 2, where
    assert len(_nodes(where["learner_ranks"])) == 2, where
    said = _said(result)
    assert "placement: rollout workers 0 -> node" in said and "learner ranks 0 -> node" in said


def test_the_run_goes_through_ray_job_submit(tmp_path, tiny_recipe, cluster):
    path = on_cluster(tiny_recipe, tmp_path, "job", rollout={"workers": 2}, train={"steps": 2})
    submitted = cluster.submit(sys.executable, "-m", "r1kit.cli", "train", str(path))
    said = _said(submitted)
    assert submitted.returncode == 0, said[-3000:]
    assert "succeeded" in said and "placement: rollout workers 0 -> node" in said
    assert len(_nodes(_placement(tmp_path / "runs" / "job")["rollout_workers"])) == 2


def test_a_lost_node_s_rollout_workers_are_replaced_and_the_run_goes_on(
    tmp_path, tiny_recipe, cluster
):
    path = on_cluster(
        tiny_recipe, tmp_path, "lose", rollout={"workers": 2, "max_new_tokens": 32},
        train={"steps": 5},
    )  # fmt: skip
    run = tmp_path / "runs" / "lose"
    proc = cluster.train(str(path), wait=False)
    try:
        stop_node_after_step(cluster, cluster.nodes[0], run, 1, proc)
        before = _placement(run)
        output, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    said = " ".join(output.split())
    assert proc.returncode == 0, said[-3000:]
    lost = cluster.nodes[0].id
    assert lost in _nodes(before["rollout_workers"])  # spread: a worker was on the lost node
    assert f"died on node {lost}" in said and "re-placing it on the nodes that remain" in said
    assert lost not in _nodes(_placement(run)["rollout_workers"])  # re-placed, and recorded
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 5 and last["rollout/restarts"] >= 1


def test_a_lost_learner_rank_stops_the_run_and_resume_continues_exactly(
    tmp_path, tiny_recipe, cluster
):
    # ddp here; fsdp ranks resuming at world_size 2: tests/r1kit/learner/test_ranks_train.py
    sections = {
        "rollout": {"workers": 2},
        "learner": {"world_size": 2, "strategy": "ddp"},
        "train": {"steps": 4, "save_every": 1},
    }
    run = tmp_path / "runs" / "rank"
    proc = cluster.train(str(on_cluster(tiny_recipe, tmp_path, "rank", **sections)), wait=False)
    try:
        stop_node_after_step(cluster, cluster.nodes[0], run, 2, proc)  # step-1 saved by then
        output, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    said = " ".join(output.split())
    assert proc.returncode == NODE_LOST_EXIT, said[-3000:]
    assert re.search(r"\(from step-[12], intact\)", said), said[-3000:]
    rank = next(
        r["rank"] for r in _placement(run)["learner_ranks"] if r["node"] == cluster.nodes[0].id
    )
    assert f"learner rank {rank} on node {cluster.nodes[0].id}" in said and "was lost" in said
    assert f"continue on the nodes that remain with: r1kit train --resume {run}" in said
    resumed = cluster.train("--resume", str(run))
    assert resumed.returncode == 0, _said(resumed)[-3000:]
    assert len(_nodes(_placement(run)["learner_ranks"])) == 1  # the node that remains
    # The same recipe, uninterrupted, on the same ranks: the same final weights, exactly.
    reference = cluster.train(str(on_cluster(tiny_recipe, tmp_path, "reference", **sections)))
    assert reference.returncode == 0, _said(reference)[-3000:]
    got, want = (
        load_file(r / "final" / "model.safetensors") for r in (run, run.parent / "reference")
    )
    assert got.keys() == want.keys()
    assert all(got[k].equal(want[k]) for k in want)
