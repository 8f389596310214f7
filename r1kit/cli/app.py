"""The `r1kit` command line and its one rule: a user's mistake is one message and exit 2.

Every subcommand is registered with `@command`, which turns a `UserError` (a bad recipe, a
missing file, an unknown model or reward) into one red line and exit code 2. Anything else is
a bug and stays a traceback.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from r1kit.errors import UserError
from r1kit.recipe import RECIPES_DIR  # noqa: F401  (the CLI's name for it)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()


def _print_version(value: bool) -> None:
    """`--version`: the installed package's version (pyproject's, through its metadata)."""
    if value:
        console.print(f"r1kit {importlib.metadata.version('r1kit')}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print version."),
    ] = False,
) -> None:
    """Turn a base language model into an R1-style reasoner (GRPO, distillation)."""


def command(name: str) -> Callable[[Callable], Callable]:
    """Register a subcommand whose UserErrors end in one message and exit 2."""

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as err:
                fail(str(err))

        app.command(name)(run)
        return fn

    return register


def fail(message: str) -> None:
    """Print a user-facing error and exit 2."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)
