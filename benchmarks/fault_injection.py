"""Fault injection: SIGKILL a tiny training run at random instants, resume it, compare.

    python benchmarks/fault_injection.py [--n 50] [--steps 4] [--kills-per-run 1] [--seed 0]

One uninterrupted run gives the reference final weights. Then, n times: a fresh run of the
same recipe (save_every 1) is killed at a uniformly random instant of the reference's wall
time, `--kills-per-run` times (each resume can be killed again), then resumed to the end. A run
counts as resumed exactly when the resume exits 0, its final weights equal the reference's
bit for bit, and metrics.jsonl / samples.jsonl hold each step exactly once. "Lost steps" are
steps logged before a kill that the resume had to redo (at most 1 each with save_every 1).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from r1kit import durable
from r1kit.rundir import RunDir

# How the run is started; the one place to change if the CLI module moves.
CLI = (sys.executable, "-m", "r1kit.cli", "train")

EVEN_TOKENS = """
def even_tokens(prompts, completions, completion_ids, **kwargs):
    return [sum(t % 2 == 0 for t in ids) / max(len(ids), 1) for ids in completion_ids]
"""


@dataclass
class Tally:
    kills: int = 0
    before_start: int = 0  # killed before config.yaml existed: the run is simply started again
    exact: int = 0
    lost_steps: int = 0
    failures: list[str] = field(default_factory=list)


def recipe(work: Path, name: str, steps: int) -> Path:
    """A tiny recipe (tiny random model, a learnable reward) that checkpoints every step."""
    (work / "even.py").write_text(EVEN_TOKENS)
    raw = {
        "seed": 0,
        "model": {"name": "tiny-llama"},
        "data": {"source": "arithmetic", "eval_size": 4},
        "template": {"name": "raw"},
        "rollout": {"group_size": 4, "max_new_tokens": 8, "temperature": 1.0},
        "rewards": [{"name": f"{work / 'even.py'}:even_tokens", "weight": 1.0}],
        "learner": {"lr": 3e-2, "micro_batch_size": 8},
        "train": {
            "steps": steps,
            "prompts_per_step": 4,
            "eval_every": 0,
            "save_every": 1,
            "keep_last": 2,
            "samples_per_step": 2,
        },
        "output": {"dir": str(work / "runs"), "name": name, "tensorboard": False},
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def launch(recipe_path: Path, run: Path, log: Path) -> subprocess.Popen:
    """Start the run, or resume it when it got as far as writing its config."""
    args = ["--resume", str(run)] if (run / "config.yaml").is_file() else [str(recipe_path)]
    with log.open("a") as stderr:
        return subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=stderr)


def checkpointed_step(run: Path) -> int:
    """The step a resume will continue from, judged without touching the directory."""
    steps = [0]
    for path in (run / "checkpoints").glob("step-*"):
        manifest, problems = durable.verify_dir(path)
        if not problems and path.name.removesuffix(durable.PREVIOUS) == f"step-{manifest['step']}":
            steps.append(manifest["step"])
    return max(steps)


def logged_step(run: Path) -> int:
    return max((m["step"] for m in durable.read_jsonl(run / "metrics.jsonl")), default=0)


def check(run: Path, reference: dict[str, torch.Tensor], steps: int) -> str | None:
    """What differs from an uninterrupted run (None: nothing)."""
    weights = load_file(run / "final" / "model.safetensors")
    if weights.keys() != reference.keys() or not all(
        torch.equal(weights[k], reference[k]) for k in reference
    ):
        return "final weights differ from the uninterrupted run"
    metric_steps = [m["step"] for m in RunDir(run).metrics()]
    if metric_steps != list(range(steps + 1)):
        return f"metrics.jsonl steps {metric_steps}"
    sample_steps = sorted({s["step"] for s in durable.read_jsonl(run / "samples.jsonl")})
    if sample_steps != list(range(1, steps + 1)):
        return f"samples.jsonl steps {sample_steps}"
    return None


def trial(index: int, work: Path, args, duration: float, reference, tally: Tally) -> str:
    """Kill one fresh run `--kills-per-run` times, resume it to the end; a line saying how."""
    name = f"killed-{index}"
    recipe_path, run = recipe(work, name, args.steps), work / "runs" / name
    log = work / f"{name}.log"
    kills = []
    for _ in range(args.kills_per_run):
        proc = launch(recipe_path, run, log)
        time.sleep(random.uniform(0, duration))
        if proc.poll() is not None:
            continue  # finished before the kill: nothing to kill
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        tally.kills += 1
        if not (run / "config.yaml").is_file():
            tally.before_start += 1
            kills.append("before anything was written")
            continue
        logged, saved = logged_step(run), checkpointed_step(run)
        tally.lost_steps += max(0, logged - saved)
        kills.append(f"step {logged} logged, {saved} saved")
    proc = launch(recipe_path, run, log)
    problem = (
        f"resume exited {code}: {log.read_text().strip()[-400:]}"
        if (code := proc.wait())
        else check(run, reference, args.steps)
    )
    if problem is None:
        tally.exact += 1
    else:
        tally.failures.append(f"{name}: {problem}")
    landed = "; ".join(kills) or "none (it finished first)"
    return f"{name}: kills: {landed} -> {problem or 'resumed exactly'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="runs to kill and resume")
    parser.add_argument("--steps", type=int, default=4, help="training steps per run")
    parser.add_argument("--kills-per-run", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temp one)")
    args = parser.parse_args()
    random.seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        whole = subprocess.run(
            [*CLI, str(recipe(work, "whole", args.steps))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if whole.returncode:
            sys.exit(f"the uninterrupted run failed:\n{whole.stderr}")
        duration = time.perf_counter() - start
        reference = load_file(work / "runs" / "whole" / "final" / "model.safetensors")
        tally = Tally()
        for index in range(args.n):
            print(trial(index, work, args, duration, reference, tally), flush=True)
    print(f"kills tried: {tally.kills} ({tally.before_start} before the run wrote anything)")
    print(f"resumed exactly: {tally.exact}/{args.n}")
    print(f"lost steps (logged, then redone after a kill): {tally.lost_steps}")
    for failure in tally.failures:
        print(f"FAILED {failure}")
    sys.exit(1 if tally.failures else 0)


if __name__ == "__main__":
    main()
