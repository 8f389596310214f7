"""The model card of a run's final/: r1kit/model_card.py's data, gathered from the run and the
model it started from (GRPO's grpo/card.py and distillation's distill/card.py add the rest)."""

from __future__ import annotations

from collections.abc import Callable

from r1kit.model_card import Card, render
from r1kit.models import model_origin
from r1kit.recipe import Section
from r1kit.rundir import RunDir


def run_card(
    run: RunDir,
    recipe: Section,
    model: str,
    about: Callable[[str], str],
    dataset: str | None,
    **rest,
) -> str:
    """The card of `run`'s final/, trained from `model` (its Hub id and license looked up) by
    `recipe`: `about(base)` says what made it; `rest` are Card's remaining fields."""
    base, license_ = model_origin(model)
    card = Card(
        name=run.path.name,
        about=about(base),
        description=recipe.description,
        base_model=base,
        license=license_,
        recipe=run.config or "",
        template=recipe.template,
        datasets=[dataset] if dataset else [],
        **rest,
    )
    return render(card)
