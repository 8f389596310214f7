"""Rollout engines on one recipe: `r1kit train` once per configuration, one after the other.

    python benchmarks/rollout_engines.py [--recipe recipes/r1_zero_arithmetic_smollm2.yaml]
        [--steps 6] [--runs hf vllm ray-1 ray-2 ray-1-async ray-2-async] [--set key=value ...]

hf / vllm: the engine in the trainer's process; ray-N: N Ray actors each owning a vLLM engine;
-async: with `rollout.async: true` (step t+1 samples while step t learns). Each run is its own
process (a fresh Ray cluster, fresh engines) on the same recipe, evaluation and checkpoints
off. Per run: completion tokens/s and seconds per step (medians over the steps, the first left
out: it loads and warms the engines), the peak RSS of the whole process tree (Ray actors and
vLLM engine processes included) and the load average just before it started.
Not `rollout.py`: run as a script, that name would shadow the `rollout` package.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from r1kit.recipe import load_recipe
from r1kit.rundir import RunDir

CLI = (sys.executable, "-m", "r1kit.cli", "train")
RUNS = ("hf", "vllm", "ray-1", "ray-2", "ray-1-async", "ray-2-async")


def overrides(run: str) -> list[str]:
    """The recipe fields a run name stands for."""
    if run in ("hf", "vllm"):
        return [f"rollout.engine={run}", "rollout.workers=0", "rollout.async=false"]
    workers, _, mode = run.removeprefix("ray-").partition("-")
    return ["rollout.engine=vllm", f"rollout.workers={workers}", f"rollout.async={mode == 'async'}"]


def train(recipe: str, sets: list[str], out: Path, name: str) -> tuple[int, float]:
    """Run `r1kit train` to its end; its exit code and its process tree's peak RSS (GB)."""
    args = [*CLI, recipe, "--overwrite"]
    for field in [*sets, f"output.dir={out}", f"output.name={name}", "output.report_to=[]"]:
        args += ["--set", field]
    with (out / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.2)
    return proc.returncode, peak


def tree_rss(pid: int) -> float:
    """RSS (GB) of a process and all its descendants, 0 once it has ended."""
    total = 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # ended between listing and reading
                total += process.memory_info().rss
    return total / 2**30


def per_step(run_dir: Path, group_size: int) -> tuple[float, float]:
    """Median completion tokens/s and seconds per step, the first step left out."""
    steps = [m for m in RunDir(run_dir).metrics() if m["step"] > 1 and "time/step" in m]
    if not steps:
        return float("nan"), float("nan")
    tokens = [m["completion_length/mean"] * m["groups_kept"] * group_size for m in steps]
    seconds = [m["time/step"] for m in steps]
    rates = [t / s for t, s in zip(tokens, seconds, strict=True)]
    return statistics.median(rates), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/r1_zero_arithmetic_smollm2.yaml")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--set", dest="sets", action="append", default=[], help="key=value")
    args = parser.parse_args()
    common = [f"train.steps={args.steps}", "train.eval_every=0", "train.save_every=0", *args.sets]
    group_size = load_recipe(args.recipe, common).rollout.group_size
    out = Path(tempfile.mkdtemp(prefix="r1kit-rollout-bench-"))
    table = Table(
        "run",
        "exit",
        "tok/s",
        "s/step",
        "peak RSS GB",
        "load avg before",
        title=f"{args.recipe}, {args.steps} steps (medians of steps 2..{args.steps})",
    )
    for run in args.runs:
        load = os.getloadavg()[0]
        code, peak = train(args.recipe, [*common, *overrides(run)], out, run)
        rate, seconds = per_step(out / run, group_size)
        table.add_row(run, str(code), f"{rate:.1f}", f"{seconds:.2f}", f"{peak:.2f}", f"{load:.2f}")
    Console(width=120).print(table)
    print(f"this machine: {os.cpu_count()} cores; logs in {out}")


if __name__ == "__main__":
    main()
