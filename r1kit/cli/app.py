"""The `r1kit` command line and its one rule: a user's mistake is one message and exit 2.

Every subcommand is registered with `@command`, which turns a `UserError` (a bad recipe, a
missing file, an unknown model or reward) into one red line and exit code 2. Anything else is
a bug and stays a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from r1kit.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


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
