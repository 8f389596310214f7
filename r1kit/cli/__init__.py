"""The `r1kit` commands: train, distill, pipeline, eval, generate, plot, recipes; one module each.

This package sits on top: it imports `grpo/`, `distill/` and the shared floor (`r1kit/`),
and nothing below imports it.
"""

from r1kit.cli import distill, eval, generate, pipeline, plot, recipes, report, train  # noqa: F401  (registers commands)
from r1kit.cli.app import RECIPES_DIR, app

__all__ = ["RECIPES_DIR", "app", "main"]


def main() -> None:
    app(prog_name="r1kit")
