"""A real two-node Ray cluster on this machine, and the tiny recipe trained on it.

    python benchmarks/cluster.py [--node-loss] [--port 6414] [--dashboard-port 8414]

Starts a head (`ray start --head`: token authentication, Ray's default; 4 logical CPUs, the
dashboard) and a second node joining it (2 logical CPUs), then runs the tiny recipe (the tests'
tiny random model and learnable reward) with `ray.address: auto` and `ray.placement: spread`:
two rollout workers and two learner ranks, once with `r1kit train` and once through
`ray job submit`. `--node-loss` adds the two lost-node cases: the second node stopped once
step 1 is logged, with the learner in the driver (the lost rollout worker is re-placed and the
run goes on), then, once step 2 is logged (step 1 checkpointed), with a learner rank on it (the
run stops, exit 3; `--resume` finishes on the head; its final weights are compared with an
uninterrupted run's; DDP ranks).
Prints each run's placement, exit code, wall time and what it said about the loss. The nodes
are stopped at the end by their own processes' ids (never `ray stop`: other clusters on the
machine are left alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from safetensors.torch import load_file

from tests.conftest import tiny_recipe_factory
from tests.ray_nodes import Cluster, Node, head, on_cluster, stop_node_after_step

TWO_BY_TWO = {"rollout": {"workers": 2}, "learner": {"world_size": 2}, "train": {"steps": 3}}
CLI = (sys.executable, "-m", "r1kit.cli", "train")


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory(prefix="r1kit-cluster-") as work, head(
        args.port, cpus=4, dashboard_port=args.dashboard_port
    ) as cluster:  # fmt: skip
        node = cluster.add_node(cpus=2)
        print(f"cluster: head {cluster.address} (4 CPUs) + node {node.id[:8]} (2 CPUs)")
        directory, recipe = Path(work), tiny_recipe_factory(Path(work))
        path = on_cluster(recipe, directory, "train", **TWO_BY_TWO)
        _report(
            "r1kit train, ray.address auto",
            directory / "runs" / "train",
            lambda: cluster.train(str(path)),
        )
        path = on_cluster(recipe, directory, "job", **TWO_BY_TWO)
        _report(
            "ray job submit", directory / "runs" / "job", lambda: cluster.submit(*CLI, str(path))
        )
        if args.node_loss:
            _lose_a_worker(cluster, recipe, directory)
            _lose_a_rank(cluster, recipe, directory)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-loss", action="store_true", help="also stop the second node")
    parser.add_argument("--port", type=int, default=6414, help="the head's GCS port")
    parser.add_argument("--dashboard-port", type=int, default=8414)
    return parser.parse_args()


def _report(title: str, run: Path, go: Callable[[], subprocess.CompletedProcess]) -> str:
    """Run `go`, print its exit code, wall time and placement; what it said."""
    start = time.monotonic()
    result = go()
    said = result.stdout + (result.stderr or "")
    print(f"\n== {title}: exit {result.returncode}, {time.monotonic() - start:.0f} s wall")
    for line in said.splitlines():
        if line.startswith("placement:") or "error:" in line or "re-placing" in line:
            print("  " + line.strip())
    placement = run / "placement.json"
    if placement.exists():
        where = json.loads(placement.read_text())
        for kind, items in where.items():
            print(f"  {kind}: " + ", ".join(item["node"][:8] for item in items))
    if result.returncode not in (0, 3):
        print(said[-3000:])
    return said


def _lose_a_worker(cluster: Cluster, recipe: Callable[..., dict], directory: Path) -> None:
    """The learner in the driver; the second node stopped after step 1: the run goes on."""
    node = cluster.nodes[-1]
    path = on_cluster(recipe, directory, "lose-worker", rollout={"workers": 2}, train={"steps": 4})
    _report(
        "node lost, rollout workers",
        directory / "runs" / "lose-worker",
        lambda: _losing(cluster, node, path, 1),
    )
    cluster.add_node(cpus=2)  # the next case loses a node again


def _lose_a_rank(cluster: Cluster, recipe: Callable[..., dict], directory: Path) -> None:
    """A learner rank on the second node, stopped after step 2: exit 3; `--resume` finishes on
    the head, compared with an uninterrupted run of the same recipe."""
    node, runs = cluster.nodes[-1], directory / "runs"
    learner = {"world_size": 2, "strategy": "ddp"}
    sections = {**TWO_BY_TWO, "learner": learner, "train": {"steps": 4, "save_every": 1}}
    path = on_cluster(recipe, directory, "lose-rank", **sections)
    _report(
        "node lost, a learner rank", runs / "lose-rank", partial(_losing, cluster, node, path, 2)
    )
    _report(
        "--resume on the head",
        runs / "lose-rank",
        lambda: cluster.train("--resume", str(runs / "lose-rank")),
    )
    reference = on_cluster(recipe, directory, "reference", **sections)
    _report("uninterrupted, on the head", runs / "reference", lambda: cluster.train(str(reference)))
    got, want = (
        load_file(runs / name / "final" / "model.safetensors")
        for name in ("lose-rank", "reference")
    )
    same = got.keys() == want.keys() and all(got[k].equal(want[k]) for k in want)
    print(f"  resumed final weights {'equal' if same else 'DIFFER from'} the uninterrupted run's")


def _losing(cluster: Cluster, node: Node, path: Path, step: int) -> subprocess.CompletedProcess:
    """`r1kit train PATH`, `node` stopped once `step` is logged."""
    run = path.parent / "runs" / path.stem
    proc = cluster.train(str(path), wait=False)
    try:
        stop_node_after_step(cluster, node, run, step, proc)
        output, _ = proc.communicate(timeout=900)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, output, "")


if __name__ == "__main__":
    main()
