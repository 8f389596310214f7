"""What `r1kit train` and `r1kit distill` share: their run options, the rules of a run
directory (one writer at a time; a new run never lands on an old one unasked; a resumed run
reads its own config.yaml, and refuses one edited by hand where that would change what the run
has learned), and how a stop signal, a full disk or a lost node ends them (saying how to
continue)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from r1kit.cli.app import console
from r1kit.durable import DiskFault
from r1kit.errors import NODE_LOST_EXIT, NodeLost
from r1kit.recipe import RecipeError, Section, dotted_fields, upgrade_saved, validate
from r1kit.rundir import CONFIG, RunDir
from r1kit.stopping import StopNow, exit_code

SetOption = Annotated[list[str], typer.Option("--set", help="Override a field: key.sub=value.")]
ResumeOption = Annotated[Path | None, typer.Option(help="Continue a run from its last checkpoint.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Validate and print the plan only.")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Start afresh: delete what the run directory holds.")
]


def saved_config(run: RunDir) -> dict:
    """The raw recipe in the config.yaml of the run `--resume` continues."""
    return upgrade_saved(run.read_config())


def hand_edits(run: RunDir, saved: Section, allowed: tuple[str, ...]) -> list[str]:
    """The fields of config.yaml (validated: `saved`) edited by hand since the newest
    checkpoint copied it in, all in `allowed`; a RecipeError naming any other, which would
    change what the run has learned."""
    copy = run.checkpoint_config()
    if copy is None:
        return []
    step, raw = copy
    try:
        before = validate(upgrade_saved(raw, type(saved)), schema=type(saved))
    except RecipeError:  # a copy this release cannot read: nothing to compare with
        return []
    now, then = (
        dotted_fields(r.model_dump(mode="json", exclude={"changes"})) for r in (saved, before)
    )
    edited = [key for key in sorted(now.keys() | then.keys()) if now.get(key) != then.get(key)]
    refused = [key for key in edited if key not in allowed]
    if refused:
        fields = ", ".join(
            f"{key} (was {then.get(key)!r}, now {now.get(key)!r})" for key in refused
        )
        how = f"; change what may change with --set ({', '.join(allowed)})" if allowed else ""
        raise RecipeError(
            f"{run.path / CONFIG}: edited by hand since checkpoint step-{step}: {fields}; "
            "restore it: a resumed run cannot change that (it would change what the run has "
            f"learned){how}"
        )
    return edited


def _kept(run: RunDir) -> str:
    """What `--resume` continues from: the newest checkpoint, or the start."""
    saved = run.saved()
    return f"from step-{saved[-1][0]}, intact" if saved else "from the start: none was saved"


def make_ready(run: RunDir, resume: bool, overwrite: bool) -> None:
    """Before anything is written: a resumed run undoes what a kill or a failed write left half
    done (on a full disk, that frees the space it failed on); a new run never lands on an old
    one unasked (`clear_for_new_run`)."""
    if resume:
        run.recover()
    elif run.path.exists():
        clear_for_new_run(run, overwrite)


def clear_for_new_run(run: RunDir, overwrite: bool) -> None:
    """Refuse to start over an existing run unless `--overwrite`, which deletes it. A run that
    stopped before it saved anything (only its config.yaml and tb/) is not one: it is replaced,
    so a retry with a fixed input starts."""
    if run.started() and not overwrite:
        raise RecipeError(
            f"{run.path} already holds a run: continue it with --resume {run.path}, start it "
            "afresh with --overwrite, or pick another name with --set output.name=NAME"
        )
    run.clear()


def fit_until_stopped(
    resume_with: str, run: RunDir, fit: Callable[[], int | None], where: Callable[[], str]
) -> None:
    """Run `fit`, which returns the signal that stopped it at a safe point (after its
    checkpoint) or None; a stop prints where it stopped (`where`) and the command that
    continues (`resume_with`), and exits 128 + the signal, so a scheduler sees a pre-empted
    run. A full or read-only disk says the same command, once the disk is fixed; a node lost
    with a learner rank says it, and exits NODE_LOST_EXIT."""
    try:
        stopped = fit()
    except DiskFault as fault:
        raise DiskFault(
            f"{fault}; then continue with: {resume_with} ({_kept(run)})",
            fault.errno,
        ) from None
    except NodeLost as lost:
        console.print(
            f"[bold red]error:[/] {lost}; the run stopped with its last checkpoint; continue on "
            f"the nodes that remain with: {resume_with} ({_kept(run)})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(NODE_LOST_EXIT) from None
    except StopNow as stop:
        console.print(f"stopped at once by {stop}; the last checkpoint is intact")
        raise typer.Exit(exit_code(stop.signum)) from None
    finally:
        run.close()
    if stopped is not None:
        console.print(
            f"stopped by {signal.Signals(stopped).name} {where()}; continue with: {resume_with}"
        )
        raise typer.Exit(exit_code(stopped))
