"""`r1kit report RUN`: a run's self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from r1kit.cli.app import command, console


@command("report")
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/NAME).")],
    compare: Annotated[
        list[Path] | None, typer.Option("--compare", help="Another run to show beside it.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The HTML file (default RUN/report.html).")
    ] = None,
) -> None:
    """Write one HTML page (curves, evaluation, recipe, completions) that opens offline."""
    from r1kit.report import build_report  # matplotlib is slow to import

    console.print(f"wrote {build_report(run_dir, compare or [], out)}")
