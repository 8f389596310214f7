"""`r1kit plot`: a run's curves as one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from r1kit.rundir import RunDir  # noqa: E402

PANELS = [
    ("held-out accuracy", ["eval/pass@1"]),
    ("held-out format", ["eval/format_rate"]),
    ("training reward", ["reward/total/mean"]),
    ("completion length", ["completion_length/mean"]),
    ("entropy / kl", ["entropy", "kl"]),
    ("seconds per step", ["time/step"]),
]


def plot_run(run_dir: Path) -> Path:
    """Write RUN_DIR/curves.png from metrics.jsonl and return its path."""
    records = RunDir(run_dir).metrics()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (title, keys) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o" if len(points) < 30 else None, label=key)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1 and ax.lines:
            ax.legend()
    fig.suptitle(Path(run_dir).name)
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
