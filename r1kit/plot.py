"""Plots: a run's curves (`r1kit plot`) and evaluations side by side (`r1kit eval --compare`)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from r1kit.errors import UserError  # noqa: E402
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
    out = Path(run_dir) / "curves.png"
    out.write_bytes(curves_png(run_dir))
    return out


def curves_png(run_dir: Path) -> bytes:
    """A run's curves from metrics.jsonl as PNG bytes; steps where a health rule was raised
    are shaded red on every panel."""
    records = RunDir(run_dir).metrics()
    if not records:
        raise UserError(f"{run_dir}/metrics.jsonl: no step recorded yet; plot after the first step")
    flagged = health_steps(records)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (title, keys) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o" if len(points) < 30 else None, label=key)
        for step in flagged:
            ax.axvline(step, color="#c44e52", alpha=0.25, linewidth=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1 and ax.lines:
            ax.legend()
    fig.suptitle(Path(run_dir).name + (" (red: health warnings)" if flagged else ""))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def health_steps(records: list[dict]) -> list[int]:
    """Steps at which a health rule (grpo/health.py's `health/*` metrics) was raised."""
    return [r["step"] for r in records if any(v for k, v in r.items() if k.startswith("health/"))]


def plot_pass_at_1(names: list[str], summaries: list[dict], target: Path) -> None:
    """A bar per evaluation: pass@1 with its 95% bootstrap interval as the error bar."""
    means = [s["pass@1"] for s in summaries]
    errors = [
        [m - s["ci_low"] for m, s in zip(means, summaries, strict=True)],
        [s["ci_high"] - m for m, s in zip(means, summaries, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(names), 4))
    ax.bar(names, means, yerr=errors, capsize=6, color="#4c72b0")
    ax.set_ylabel("pass@1 (95% CI)")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
