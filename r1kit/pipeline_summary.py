"""A pipeline's summary: each stage's held-out pass@1 (95% interval) and format rate before
and after it, on the same held-out rows, as summary.json, summary.md and summary.png."""

from __future__ import annotations

import json
from pathlib import Path

from r1kit import durable
from r1kit.plot import plot_pass_at_1

HEADER = (
    "| stage | kind | before: pass@1 [95% CI] | format | after: pass@1 [95% CI] | format "
    "| wall | peak RSS |\n|---|---|---|---|---|---|---|---|\n"
)


def write_summary(run_dir: Path, rows: list[dict]) -> str:
    """Write the summary of `rows` ({"stage", "kind", "before", "after"}: an evaluation
    summary or None each; "wall_s", "peak_rss_gib": the process's peak by the stage's end)
    into `run_dir`; return its markdown table."""
    table = HEADER + "".join(_row(row) for row in rows)
    durable.write_text(run_dir / "summary.json", json.dumps(rows, indent=2))
    durable.write_text(run_dir / "summary.md", table)
    bars = [(f"{r['stage']}\n{when}", r[when]) for r in rows for when in ("before", "after")]
    bars = [(name, summary) for name, summary in bars if summary is not None]
    if bars:
        names, summaries = zip(*bars, strict=True)
        plot_pass_at_1(list(names), list(summaries), run_dir / "summary.png")
    return table


def _row(row: dict) -> str:
    cells = f"{_cells(row['before'])} | {_cells(row['after'])}"
    wall = "-" if row.get("wall_s") is None else f"{row['wall_s'] / 60:.1f} min"
    rss = "-" if row.get("peak_rss_gib") is None else f"{row['peak_rss_gib']:.2f} GiB"
    return f"| {row['stage']} | {row['kind']} | {cells} | {wall} | {rss} |\n"


def _cells(summary: dict | None) -> str:
    if summary is None:
        return "- | -"
    return (
        f"{summary['pass@1']:.2f} [{summary['ci_low']:.2f}, {summary['ci_high']:.2f}] | "
        f"{summary['format_rate']:.2f}"
    )
