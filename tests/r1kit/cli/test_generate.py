from typer.testing import CliRunner

from r1kit.cli import app

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
