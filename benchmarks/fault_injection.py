"""Fault injection: SIGKILL a tiny training run at random instants, resume it, compare.

    python benchmarks/fault_injection.py [--n 50] [--steps 4] [--kills-per-run 1] [--seed 0]
                                         [--cases kill,second-writer,disk-full]
                                         [--async [--max-staleness K]]

One uninterrupted run gives the reference final weights. Then, n times: a fresh run of the
same recipe (save_every 1) is killed at a uniformly random instant of the reference's wall
time, `--kills-per-run` times (each resume can be killed again), then resumed to the end. A run
counts as resumed exactly when the resume exits 0, its final weights equal the reference's
bit for bit, and metrics.jsonl / samples.jsonl hold each step exactly once. "Lost steps" are
steps logged before a kill that the resume had to redo (at most 1 each with save_every 1).

Two more cases, n times each: a second writer (`--resume`, or the recipe with `--overwrite`)
started at a random instant of a live run must exit 2 naming the live run's pid, and the live
run end exactly; a run on a disk (a tmpfs, in namespaces of its own: needs `unshare -rm`) of a
random size below what it needs must stop with exit 2 saying what it cannot write, then,
the disk made large enough, resume exactly.

`--async` runs every case with async rollouts (HF engine on one Ray worker, rounds up to
`--max-staleness` versions behind): a checkpoint holds the rounds in flight, so those runs too
must end with the reference's weights bit for bit.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
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
    cases_exact: dict[str, int] = field(default_factory=dict)  # second-writer, disk-full
    failures: list[str] = field(default_factory=list)


def recipe(work: Path, name: str, steps: int, rollout: dict, out: Path | None = None) -> Path:
    """A tiny recipe (tiny random model, a learnable reward) that checkpoints every step;
    `rollout`, settings added to its rollout section."""
    (work / "even.py").write_text(EVEN_TOKENS)
    raw = {
        "seed": 0,
        "model": {"name": "tiny-llama"},
        "data": {"source": "arithmetic", "eval_size": 4},
        "template": {"name": "raw"},
        "rollout": {"group_size": 4, "max_new_tokens": 8, "temperature": 1.0, **rollout},
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
        "output": {"dir": str(out or work / "runs"), "name": name, "report_to": []},
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
    recipe_path, run = recipe(work, name, args.steps, args.rollout), work / "runs" / name
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


def second_writer(
    index: int, work: Path, duration: float, reference, steps: int, rollout: dict
) -> str | None:
    """A run, and at a random instant of it a second writer; what went wrong (None: nothing).
    Whichever took the lock first must end exactly, the other exit 2 naming its pid."""
    name = f"second-{index}"
    recipe_path, run = recipe(work, name, steps, rollout), work / "runs" / name
    first = launch(recipe_path, run, work / f"{name}.log")
    time.sleep(random.uniform(0, duration))
    how = random.choice(["--resume", "--overwrite"])
    args = ["--resume", str(run)] if how == "--resume" else [str(recipe_path), "--overwrite"]
    second = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    said = " ".join(second.communicate()[1].decode().split())
    overlapped = first.poll() is None  # the first lived through all of the second
    code = first.wait()
    first_said = " ".join((work / f"{name}.log").read_text().split())
    if code == 2 and f"being written by pid {second.pid}" in first_said:
        code = 0  # the second took the lock first: the first was refused, and it ran
    elif overlapped and (second.returncode != 2 or f"being written by pid {first.pid}" not in said):
        return f"second writer ({how}) exited {second.returncode} during the run: {said[-300:]}"
    if code or second.returncode not in (0, 2):
        return f"exits {code} and {second.returncode}: {first_said[-300:]} {said[-300:]}"
    return check(run, reference, steps)


def disk_full(
    index: int, work: Path, footprint: int, reference, steps: int, rollout: dict
) -> str | None:
    """A fresh run on a disk of a random size below `footprint` (what the whole run wrote),
    then that disk made large enough and the run resumed; what went wrong (None: nothing)."""
    name, disk = f"full-{index}", work / f"disk-{index}"
    disk.mkdir()
    run, logs = disk / name, work / name
    fresh = shlex.join([*CLI, str(recipe(work, name, steps, rollout, out=disk))])
    resume = shlex.join([*CLI, "--resume", str(run)])
    script = (
        f"mount -t tmpfs -o size={int(footprint * random.uniform(0.1, 1.0))} tmpfs {disk} && "
        f"{fresh} >/dev/null 2>{logs}.full; echo $? > {logs}.full.rc; "
        f"mount -o remount,size={3 * footprint} {disk}; "
        f"{resume} >/dev/null 2>{logs}.resumed; echo $? > {logs}.resumed.rc; "
        f"cp -a {run} {work / 'runs' / name}"
    )
    if subprocess.run(["unshare", "-rm", "sh", "-c", script]).returncode:
        return "could not run on a small disk (needs `unshare -rm` and tmpfs mounts)"
    said = " ".join(Path(f"{logs}.full").read_text().split())
    code, resumed = (int(Path(f"{logs}.{stage}.rc").read_text()) for stage in ("full", "resumed"))
    if code not in (0, 2) or (code == 2 and "cannot write" not in said):
        return f"the run on a full disk exited {code}: {said[-300:]}"
    if resumed:
        return f"the resume exited {resumed}: {Path(f'{logs}.resumed').read_text()[-300:]}"
    return check(work / "runs" / name, reference, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="runs to kill and resume")
    parser.add_argument("--steps", type=int, default=4, help="training steps per run")
    parser.add_argument("--kills-per-run", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temp one)")
    parser.add_argument(
        "--cases", default="kill,second-writer,disk-full", help="comma-separated cases to run"
    )
    parser.add_argument(
        "--async",
        dest="async_",
        action="store_true",
        help="async rollouts (HF engine, one Ray worker)",
    )
    parser.add_argument("--max-staleness", type=int, default=1, help="with --async: k")
    args = parser.parse_args()
    args.rollout = (
        {"engine": "hf", "workers": 1, "async": True, "max_staleness": args.max_staleness}
        if args.async_
        else {}
    )
    cases = args.cases.split(",")
    random.seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        whole = subprocess.run(
            [*CLI, str(recipe(work, "whole", args.steps, args.rollout))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if whole.returncode:
            sys.exit(f"the uninterrupted run failed:\n{whole.stderr}")
        duration = time.perf_counter() - start
        reference = load_file(work / "runs" / "whole" / "final" / "model.safetensors")
        footprint = sum(f.stat().st_size for f in (work / "runs" / "whole").rglob("*"))
        tally = Tally()
        others = {
            "second-writer": lambda i: second_writer(
                i, work, duration, reference, args.steps, args.rollout
            ),
            "disk-full": lambda i: disk_full(
                i, work, footprint, reference, args.steps, args.rollout
            ),
        }
        for index in range(args.n):
            if "kill" in cases:
                print(trial(index, work, args, duration, reference, tally), flush=True)
            for case in (case for case in others if case in cases):
                problem = others[case](index)
                if problem:
                    tally.failures.append(f"{case}-{index}: {problem}")
                else:
                    tally.cases_exact[case] = tally.cases_exact.get(case, 0) + 1
                print(f"{case}-{index}: {problem or 'ended exactly'}", flush=True)
    for case in (case for case in others if case in cases):
        print(f"{case}: ended exactly {tally.cases_exact.get(case, 0)}/{args.n}")
    if "kill" in cases:
        print(f"kills tried: {tally.kills} ({tally.before_start} before the run wrote anything)")
        print(f"resumed exactly: {tally.exact}/{args.n}")
        print(f"lost steps (logged, then redone after a kill): {tally.lost_steps}")
    for failure in tally.failures:
        print(f"FAILED {failure}")
    sys.exit(1 if tally.failures else 0)


if __name__ == "__main__":
    main()
