"""Live progress for a training run: a rich progress bar with the latest metrics under it."""

from __future__ import annotations

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

SHOWN = {
    "reward/total/mean": "reward",
    "eval/pass@1": "held-out acc",
    "eval/format_rate": "held-out format",
    "completion_length/mean": "length",
    "truncated_frac": "truncated",
    "zero_variance_frac": "flat groups",
    "kl": "kl",
    "nll": "target nll",
    "entropy": "entropy",
    "grad_norm": "grad norm",
    "tools/calls_per_completion": "tool calls",  # with tools (r1kit/tool_metrics.py)
    "tools/errors": "tool errors",
    "tokens_per_s": "tokens/s",
    "time/step": "s/step",
}


class Display:
    """`with Display(total, start) as d: d.update(step, metrics)`. Where the output is not a
    terminal (a log file, CI) it prints a line per step instead of redrawing."""

    def __init__(self, total: int, start: int, label: str = "GRPO"):
        self.progress = Progress(
            TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self.task = self.progress.add_task("train", total=total, completed=start)
        self.latest: dict[str, float] = {}
        self.live = Live(self._render(), refresh_per_second=2)

    def __enter__(self) -> Display:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def update(self, step: int, metrics: dict[str, float]) -> None:
        self.latest.update(metrics)
        self.progress.update(self.task, completed=step)
        self.live.update(self._render())
        if not self.live.console.is_terminal:
            shown = ", ".join(f"{label} {value}" for label, value in _shown(metrics))
            total = self.progress.tasks[0].total
            self.live.console.print(f"step {step}/{total:g}: {shown}", soft_wrap=True)

    def _render(self) -> Group:
        table = Table(box=None, show_header=False)
        for label, value in _shown(self.latest):
            table.add_row(label, value)
        return Group(self.progress, table)


def _shown(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """(label, formatted value) of the SHOWN metrics present, in SHOWN's order, then the
    health rules raised (grpo/health.py), if any."""
    shown = [(label, f"{metrics[key]:.4g}") for key, label in SHOWN.items() if key in metrics]
    raised = [
        key.removeprefix("health/") for key, v in metrics.items() if key.startswith("health/") and v
    ]
    return shown + ([("WARNING", " ".join(raised))] if raised else [])
