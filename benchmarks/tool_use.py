"""Tool use against none, one run after the other (issue 34): the tool recipe and its no-tool
baseline on the same task, with wall time, peak RSS and held-out pass@1 (95% intervals).

    python benchmarks/tool_use.py [--out runs/tool_use]          # trains both, then reports
    python benchmarks/tool_use.py --runs RUN_TOOL RUN_NO_TOOL     # reports runs already made

Prints the load average before each run (measure on an idle machine), a table, and writes
held-out accuracy per step of both runs to OUT/tool_curves.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

RECIPES = {
    "tools": "recipes/r1_tool_arithmetic_smollm2.yaml",
    "no tools": "recipes/r1_notool_arithmetic_smollm2.yaml",
}


# Runs a command and writes its peak RSS (KiB, the largest process it waited for) to argv[1].
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def train(recipe: str, out: Path) -> tuple[float, float]:
    """Run `r1kit train` on `recipe` under `out`; its wall seconds and peak RSS (GiB)."""
    print(f"{recipe}: load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    peak = out / f"{Path(recipe).stem}.peak_kib"
    command = [sys.executable, "-m", "r1kit.cli", "train", recipe, "--overwrite"]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(peak), *command, "--set", f"output.dir={out}"],
        check=True,
    )
    return time.perf_counter() - started, int(peak.read_text()) / 2**20


def evals(run: Path) -> list[dict]:
    """A run's held-out evaluations, in step order."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [m for m in map(json.loads, lines) if "eval/pass@1" in m]


def interval(m: dict) -> str:
    return f"{m['eval/pass@1']:.2f} [{m['eval/ci_low']:.2f}, {m['eval/ci_high']:.2f}]"


def report(runs: dict[str, Path], measured: dict[str, tuple[float, float]], png: Path) -> None:
    """The table of both runs, and their held-out curves in `png`."""
    table = Table("run", "wall", "peak RSS", "before", "after", "format", "tool calls")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, run in runs.items():
        points = evals(run)
        first, last = points[0], points[-1]
        wall, rss = measured.get(name, (None, None))
        calls = last.get("eval/tools/calls_per_completion")
        table.add_row(
            name,
            "-" if wall is None else f"{wall / 60:.1f} min",
            "-" if rss is None else f"{rss:.2f} GiB",
            interval(first),
            interval(last),
            f"{first['eval/format_rate']:.2f} -> {last['eval/format_rate']:.2f}",
            "-" if calls is None else f"{calls:.2f}",
        )
        ax.plot([m["step"] for m in points], [m["eval/pass@1"] for m in points], "o-", label=name)
    Console(width=140).print(table)
    ax.set(xlabel="step", ylabel="held-out pass@1", ylim=(-0.02, 1.02))
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"curves: {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/tool_use")
    parser.add_argument("--runs", nargs=2, metavar=("TOOL_RUN", "NO_TOOL_RUN"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    measured: dict[str, tuple[float, float]] = {}
    if args.runs:
        runs = dict(zip(RECIPES, map(Path, args.runs), strict=True))
    else:
        runs = {name: out / Path(recipe).stem for name, recipe in RECIPES.items()}
        for name, recipe in RECIPES.items():
            measured[name] = train(recipe, out)
    report(runs, measured, out / "tool_curves.png")


if __name__ == "__main__":
    main()
