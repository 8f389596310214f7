from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from r1kit.cli import RECIPES_DIR, app

runner = CliRunner()


def _run_recipe(tmp_path, recipe: dict, *extra: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"output": {"dir": str(tmp_path / "runs")}, **recipe}))
    return runner.invoke(app, ["train", str(path), *extra])


@pytest.mark.parametrize(
    ("recipe", "field", "words"),
    [
        ({"learner": {"lrr": 1e-5}}, "learner.lrr", "did you mean 'lr'"),
        ({"rollout": {"group_size": "many"}}, "rollout.group_size", "valid integer"),
        ({"data": {"source": "missing.jsonl"}}, "data.source", "not found"),
        ({"rewards": [{"name": "mathh"}]}, "rewards.0.name", "math"),
        ({"rewards": [{"name": "nowhere.py:fn"}]}, "rewards.0.name", "nowhere.py"),
        ({"model": {"name": "smollm2-135m"}}, "model.name", "did you mean 'smollm2-135m-instruct'"),
        ({"model": {"name": "missing/model.gguf"}}, "model.name", "not found"),
    ],
)
def test_bad_recipe_exits_2_naming_the_field_and_writes_nothing(tmp_path, recipe, field, words):
    result = _run_recipe(tmp_path, recipe)
    assert result.exit_code == 2, result.output
    assert field in result.output and words in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_recipe_file_exits_2(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "recipe file not found" in result.output


def test_bad_override_exits_2(tmp_path):
    result = _run_recipe(tmp_path, {}, "--set", "learner.loss=ppo")
    assert result.exit_code == 2 and "learner.loss" in result.output


@pytest.mark.parametrize("recipe", sorted(RECIPES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_passes_dry_run(recipe: Path, tmp_path):
    result = runner.invoke(
        app, ["train", str(recipe), "--dry-run", "--set", f"output.dir={tmp_path}"]
    )
    assert result.exit_code == 0, result.output
    assert "plan" in result.output and not any(tmp_path.iterdir())


def test_resume_of_a_non_run_directory_exits_2(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "config.yaml" in result.output
