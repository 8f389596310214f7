"""`r1kit plot RUN`: a run's curves as one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from r1kit.cli.app import command, console
from r1kit.errors import UserError


@command("plot")
def plot(run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/NAME).")]) -> None:
    """Plot a run's curves to RUN_DIR/curves.png."""
    from r1kit.plot import plot_run  # matplotlib is slow to import

    if not (run_dir / "metrics.jsonl").is_file():
        raise UserError(f"{run_dir}: no metrics.jsonl; is it a run directory?")
    console.print(f"wrote {plot_run(run_dir)}")
