from typer.testing import CliRunner

from r1kit.cli import app
from r1kit.data import load_data
from r1kit.evaluation import evaluate
from r1kit.models import load_model
from r1kit.recipe import DataConfig, TemplateConfig
from rewards.registry import load_reward
from rollout.types import Completion, SamplingParams

runner = CliRunner()


def test_generate_prints_per_sample_rewards_and_accuracy():
    args = [
        "generate",
        "--model",
        "tiny-llama",
        "--task",
        "arithmetic",
        "--n",
        "2",
        "--prompts",
        "2",
        "--max-new-tokens",
        "6",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "accuracy (math)" in result.output and "format" in result.output


class TemplatedEngine:
    """Answers every prompt in the R1 format after a pre-filled `<think>`."""

    def generate(self, prompt_token_ids, sampling):
        text = " 2 + 2 = 4 </think> <answer> 4 </answer>"
        return [
            [Completion([1, 2], [0.0, 0.0], text, "stop")] * sampling.n for _ in prompt_token_ids
        ]


def test_generate_reports_the_format_rate_the_trainers_evaluation_reports(monkeypatch):
    monkeypatch.setattr("r1kit.cli.generate.open_engine", lambda spec, model: TemplatedEngine())
    args = ["generate", "--model", "tiny-llama", "--template", "r1_zero", "--n", "1"]
    result = runner.invoke(app, [*args, "--prompts", "3", "--temperature", "0"])
    assert result.exit_code == 0, result.output

    _, tokenizer = load_model("tiny-llama")
    _, rows = load_data(DataConfig(source="arithmetic", eval_size=3), 0)
    template = TemplateConfig(name="r1_zero")
    sampling = SamplingParams(n=1, temperature=0, seed=0)
    summary = evaluate(TemplatedEngine(), tokenizer, template, rows, load_reward("math"), sampling)
    assert summary.summary["format_rate"] == 1.0
    assert "format: 100.0%" in result.output
