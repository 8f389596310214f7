"""`r1kit recipes`: the shipped recipes, a line each."""

from __future__ import annotations

import yaml
from rich.table import Table

from r1kit.cli.app import RECIPES_DIR, command, console


@command("recipes")
def recipes() -> None:
    """List the built-in recipes with a line each (`r1kit train NAME` runs one; `distill_*`
    are `r1kit distill`'s, `r1_pipeline_*` are `r1kit pipeline`'s)."""
    table = Table("recipe", "what it does")
    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        table.add_row(
            path.stem,
            description.strip().splitlines()[0] if description else "",
        )
    console.print(table)
