import json

from typer.testing import CliRunner

from r1kit.cli import app

runner = CliRunner()


def test_plot_writes_a_png(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = [
        {"step": 0, "eval/pass@1": 0.2},
        {"step": 1, "reward/total/mean": 0.5, "eval/pass@1": 0.4},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = runner.invoke(app, ["plot", str(run)])
    assert result.exit_code == 0 and (run / "curves.png").stat().st_size > 10_000


def test_plot_of_a_non_run_exits_2(tmp_path):
    assert runner.invoke(app, ["plot", str(tmp_path)]).exit_code == 2


def test_plot_of_a_run_without_a_step_exits_2_saying_so(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and "no step recorded yet" in result.output
