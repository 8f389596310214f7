"""The import rule: commands (r1kit/cli) on top, then distill/ and grpo/ side by side, then the
shared floor (the rest of r1kit/, its learner core included), with rewards/ and rollout/ as
leaves. A module may import its own package and the layers below it, never one above or beside
it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Layer of each package folder, highest first; leaves import nothing of the project.
# distill and grpo are objectives of the floor's learner core: neither imports the other.
LAYERS = {"r1kit/cli": 3, "distill": 2, "grpo": 2, "r1kit": 1, "rewards": 0, "rollout": 0}


def layer_of(module: str) -> str | None:
    """The LAYERS key a dotted module name belongs to (the longest matching folder)."""
    path = module.replace(".", "/")
    matches = [key for key in LAYERS if path == key or path.startswith(key + "/")]
    return max(matches, key=len, default=None)


def imports(file: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def violations() -> list[str]:
    found = []
    for file in sorted(ROOT.glob("*/**/*.py")):
        relative = file.relative_to(ROOT)
        source = layer_of(".".join(relative.with_suffix("").parts))
        if source is None:
            continue
        for name in imports(file):
            target = layer_of(name)
            if target is None or target == source:
                continue
            if LAYERS[target] >= LAYERS[source]:
                found.append(f"{relative} imports {name} ({source} -> {target})")
    return found


def test_imports_point_down_the_layers():
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [("r1kit.cli.train", "r1kit/cli"), ("r1kit.recipe", "r1kit"), ("grpo", "grpo"), ("os", None)],
)
def test_modules_are_placed_in_their_layer(module, layer):
    assert layer_of(module) == layer
