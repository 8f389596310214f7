"""`r1kit train` with a learner of 2 ranks, end to end, and its resumption on one."""

import json

import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from r1kit.cli import app


def test_train_on_two_ranks_then_resume_on_one(tiny_recipe, tmp_path):
    recipe = tiny_recipe(
        learner={"world_size": 2, "strategy": "fsdp"},
        train={"steps": 2, "save_every": 1},
        scoring={"workers": 0},
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "tiny"
    AutoModelForCausalLM.from_pretrained(run / "final")  # one consolidated HF directory
    resumed = runner.invoke(
        app,
        ["train", "--resume", str(run), "--set", "train.steps=3", "--set", "learner.world_size=1"],
    )
    assert resumed.exit_code == 0, resumed.output
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]


def test_train_on_two_fsdp_ranks_resumes_on_two_as_if_uninterrupted(tiny_recipe, tmp_path):
    runner = CliRunner()
    finals = []
    for name, stops in (("whole", [3]), ("resumed", [2, 3])):
        recipe = tiny_recipe(
            learner={"world_size": 2, "strategy": "fsdp"},
            train={"steps": stops[0], "save_every": 1},
            scoring={"workers": 0},
            output={"dir": str(tmp_path / "runs"), "name": name, "report_to": []},
        )
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe))
        result = runner.invoke(app, ["train", str(path)])
        assert result.exit_code == 0, result.output
        run = tmp_path / "runs" / name
        for steps in stops[1:]:
            result = runner.invoke(
                app, ["train", "--resume", str(run), "--set", f"train.steps={steps}"]
            )
            assert result.exit_code == 0, result.output
        finals.append(load_file(run / "final" / "model.safetensors"))
    whole, resumed = finals
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
