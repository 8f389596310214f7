"""What `r1kit train` and `r1kit distill` share: their run options, the two rules of a run
directory (a new run never lands on an old one unasked; a resumed run reads its own
config.yaml), and how a stop signal ends them (exit 130/143, saying how to continue)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
import yaml

from r1kit import durable
from r1kit.cli.app import console
from r1kit.recipe import RecipeError, upgrade_saved
from r1kit.rundir import RunDir
from r1kit.stopping import StopNow, exit_code

SetOption = Annotated[list[str], typer.Option("--set", help="Override a field: key.sub=value.")]
ResumeOption = Annotated[Path | None, typer.Option(help="Continue a run from its last checkpoint.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Validate and print the plan only.")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Start afresh: delete what the run directory holds.")
]


def saved_config(resume: Path) -> tuple[dict, Path]:
    """The raw recipe a run directory was started with, and its path."""
    path = resume / "config.yaml"
    if not path.is_file():
        raise RecipeError(f"--resume {resume}: no config.yaml there; is it a run directory?")
    return upgrade_saved(yaml.safe_load(path.read_text()) or {}), path


def clear_for_new_run(run: RunDir, overwrite: bool) -> None:
    """Refuse to start over an existing run unless `--overwrite`, which deletes it. A run that
    stopped before it saved anything (only its config.yaml and tb/) is not one: it is replaced,
    so a retry with a fixed input starts."""
    if not run.path.exists():
        return
    if run.started() and not overwrite:
        raise RecipeError(
            f"{run.path} already holds a run: continue it with --resume {run.path}, start it "
            "afresh with --overwrite, or pick another name with --set output.name=NAME"
        )
    durable.remove_dir(run.path)


def fit_until_stopped(
    command: str, run: RunDir, fit: Callable[[], int | None], where: Callable[[], str]
) -> None:
    """Run `fit`, which returns the signal that stopped it at a safe point (after its
    checkpoint) or None; a stop prints where it stopped (`where`) and the command that
    continues, and exits 128 + the signal, so a scheduler sees a pre-empted run."""
    try:
        stopped = fit()
    except StopNow as stop:
        console.print(f"stopped at once by {stop}; the last checkpoint is intact")
        raise typer.Exit(exit_code(stop.signum)) from None
    finally:
        run.close()
    if stopped is not None:
        console.print(
            f"stopped by {signal.Signals(stopped).name} {where()}; "
            f"continue with: r1kit {command} --resume {run.path}"
        )
        raise typer.Exit(exit_code(stopped))
