from typer.testing import CliRunner

from r1kit.cli import app

runner = CliRunner()


def test_recipes_lists_the_main_job():
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0 and "r1_zero_arithmetic_smollm2" in result.output
