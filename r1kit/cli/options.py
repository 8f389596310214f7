"""Option bounds taken from the recipe schema: an option that sets a schema field gets that
field's limits from the one place they are defined, so a bad value stops the command while
its options are parsed (exit 2, naming the option and the range), before anything is loaded."""

from __future__ import annotations

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel


def schema_range(section: type[BaseModel], field: str) -> dict[str, float]:
    """typer's `min`/`max` for an option that sets `section.field`, from the field's bounds."""
    bounds: dict[str, float] = {}
    for rule in section.model_fields[field].metadata:
        if isinstance(rule, Ge):
            bounds["min"] = rule.ge
        elif isinstance(rule, Gt) and isinstance(rule.gt, int):
            bounds["min"] = rule.gt + 1
        elif isinstance(rule, Le):
            bounds["max"] = rule.le
        else:  # click has no open float bound: such an option needs a check of its own
            raise TypeError(f"{section.__name__}.{field}: no typer range for {rule!r}")
    return bounds
