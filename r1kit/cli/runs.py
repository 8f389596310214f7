"""What `r1kit train` and `r1kit distill` share: their run options, and the two rules of a
run directory (a new run never lands on an old one unasked; a resumed run reads its own
config.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from r1kit import durable
from r1kit.recipe import RecipeError, upgrade_saved
from r1kit.rundir import RunDir

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
    """Refuse to start over an existing run unless `--overwrite`, which deletes it."""
    if not run.path.exists():
        return
    if not overwrite:
        raise RecipeError(
            f"{run.path} already holds a run: continue it with --resume {run.path}, start it "
            "afresh with --overwrite, or pick another name with --set output.name=NAME"
        )
    durable.remove_dir(run.path)
