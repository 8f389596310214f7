"""Registries for the maths: name -> function, filled by a decorator where each function lives.

The recipe (on this floor) checks `learner.*` names against them without importing `grpo/`
above it: `registered(field)` first imports the module that registers that field's built-ins.
A user module that registers more before the recipe is validated adds to the allowed names.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

# Recipe field -> the module whose import registers its built-in functions.
HOMES = {
    "learner.policy_loss": "grpo.loss",
    "learner.loss": "grpo.loss",
    "learner.ratio_level": "grpo.loss",
    "learner.advantage": "r1kit.advantages",
    "learner.advantage_scale": "r1kit.advantages",
    "learner.kl_estimator": "r1kit.learner.kl",
}
REGISTRIES: dict[str, Registry] = {}


class Registry(dict[str, Callable]):
    """Functions by name for one recipe field; `pick` raises `error` for an unknown name."""

    def __init__(self, field: str, error: type[Exception]):
        super().__init__()
        self.field, self.error = field, error
        REGISTRIES[field] = self

    def register(self, name: str) -> Callable[[Callable], Callable]:
        """Decorator: file the function under `name` (a second function of one name raises)."""

        def add(fn: Callable) -> Callable:
            if name in self:
                raise ValueError(f"{self.field}: {name!r} is already registered")
            self[name] = fn
            return fn

        return add

    def pick(self, name: str) -> Callable:
        if name not in self:
            raise self.error(f"{self.field}: {unknown(self.field, name)}")
        return self[name]


def registered(field: str) -> list[str]:
    """The names registered for a recipe field, its built-ins included."""
    import_module(HOMES[field])
    return sorted(REGISTRIES[field])


def unknown(field: str, name: str) -> str:
    """The one message for a name no function of `field` is registered under."""
    return f"unknown {name!r}; registered: {', '.join(registered(field))}"
