import json
import shutil

import pytest
from typer.testing import CliRunner

from r1kit.cli import app


def run(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    """One tiny-model evaluation shared by the tests that read its output."""
    out = tmp_path_factory.mktemp("evals") / "tiny"
    args = ["--model", "tiny-llama", "--task", "arithmetic", "--limit", "4", "--n", "2"]
    result = run(*args, "--temperature", "1", "--max-new-tokens", "8", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    return out, result.output


def test_eval_writes_summary_and_samples(tiny_eval):
    out, _ = tiny_eval
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 4 and summary["model"] == "tiny-llama"
    assert {"pass@1", "pass@2", "maj@2", "ci_low", "ci_high", "format_rate"} <= set(summary)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8
    assert {"prompt", "completion", "extracted", "correct"} <= set(samples[0])


def test_json_flag_prints_the_summary(tiny_eval):
    out, output = tiny_eval
    assert json.loads(output) == json.loads((out / "summary.json").read_text())


def test_compare_prints_a_table_and_plots_pass_at_1(tiny_eval, tmp_path):
    out, _ = tiny_eval
    result = run("--compare", str(out), str(out), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "pass@1" in result.output and (tmp_path / "compare.png").stat().st_size > 0


def test_compare_without_a_summary_exits_2(tmp_path):
    result = run("--compare", str(tmp_path))
    assert result.exit_code == 2 and "summary.json not found" in result.output


def test_unknown_engine_exits_2_naming_the_choices():
    result = run("--model", "tiny-llama", "--engine", "tgi", "--limit", "1")
    assert result.exit_code == 2 and "'tgi' is not one of" in result.output


def test_unknown_task_exits_2():
    result = run("--model", "tiny-llama", "--task", "nope")
    assert result.exit_code == 2 and "unknown task 'nope'" in result.output


def test_recipe_sets_template_length_and_held_out_rows(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "data: {source: arithmetic, eval_size: 3}\n"
        "template: {name: raw}\n"
        "rollout: {max_new_tokens: 5}\n"
        "rewards: [{name: math}]\n"
    )
    out = tmp_path / "ev"
    result = run("--model", "tiny-llama", "--recipe", str(recipe), "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 3 and summary["template"] == "raw"
    assert summary["max_new_tokens"] == 5


def test_unknown_template_exits_2():
    result = run("--model", "tiny-llama", "--template", "alpaca")
    assert result.exit_code == 2 and "'alpaca' is not one of" in result.output


def said(result) -> str:
    """The command's output as one line of words (without the error panel's borders)."""
    return " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(
    "option, value, allowed",
    [
        ("--n", "0", "greater than or equal to 1"),
        ("--temperature", "-0.5", "greater than or equal to 0"),
        ("--max-new-tokens", "0", "greater than or equal to 1"),
        ("--limit", "-2", "greater than or equal to 1"),
        ("--seed", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_option_exits_2_naming_it_before_any_model_is_loaded(
    tmp_path, option, value, allowed
):
    result = run("--model", str(tmp_path / "no-model"), option, value)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in said(result) and allowed in said(result)


def test_out_naming_a_file_exits_2_saying_so(tmp_path):
    (tmp_path / "f").write_text("mine")
    result = run("--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and f"--out {tmp_path / 'f'}: is a file" in said(result)
    assert (tmp_path / "f").read_text() == "mine"


def test_out_under_a_file_exits_2_naming_the_file(tmp_path):
    (tmp_path / "f").write_text("mine")
    result = run("--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "f" / "ev"))
    assert result.exit_code == 2 and f"lies under {tmp_path / 'f'}, which is a file" in said(result)


def test_out_holding_an_evaluation_is_refused_without_overwrite(tiny_eval, tmp_path):
    out = tmp_path / "ev"
    shutil.copytree(tiny_eval[0], out)
    before = (out / "summary.json").read_text()
    result = run("--model", str(tmp_path / "no-model"), "--out", str(out))
    assert result.exit_code == 2 and "already holds an evaluation" in said(result)
    assert "--overwrite" in said(result) and (out / "summary.json").read_text() == before


def test_overwrite_replaces_an_earlier_evaluation(tiny_eval, tmp_path):
    out = tmp_path / "ev"
    shutil.copytree(tiny_eval[0], out)
    args = ["--model", "tiny-llama", "--limit", "1", "--max-new-tokens", "2", "--out", str(out)]
    result = run(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["problems"] == 1


@pytest.mark.parametrize(
    "text, problem",
    [("{oops", "summary.json:1: not valid JSON"), ('{"n": 1}', "not an evaluation summary")],
)
def test_compare_of_a_damaged_summary_exits_2_naming_it(tmp_path, text, problem):
    (tmp_path / "summary.json").write_text(text)
    result = run("--compare", str(tmp_path))
    assert result.exit_code == 2 and problem in said(result)


def test_compare_out_naming_a_file_exits_2(tiny_eval, tmp_path):
    (tmp_path / "f").write_text("")
    result = run("--compare", str(tiny_eval[0]), "--out", str(tmp_path / "f"))
    assert result.exit_code == 2 and "is a file; give a folder" in said(result)
