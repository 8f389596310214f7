import os
import subprocess
import sys
from pathlib import Path

import pytest
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


def said(result) -> str:
    """The command's output as one line of words (without the error panel's borders)."""
    return " ".join(result.output.replace("│", " ").split())


BAD_OPTIONS = [
    ("--n", "0", "greater than or equal to 1"),
    ("--prompts", "0", "greater than or equal to 1"),
    ("--prompts", "-1", "greater than or equal to 1"),
    ("--max-new-tokens", "-3", "greater than or equal to 1"),
    ("--temperature", "-1", "greater than or equal to 0"),
    ("--seed", "-1", "greater than or equal to 0"),
    ("--n", "two", "valid integer"),
]


@pytest.mark.parametrize("option, value, allowed", BAD_OPTIONS)
def test_a_bad_option_exits_2_naming_it_before_any_model_is_loaded(
    tmp_path, option, value, allowed
):
    # A model that cannot load: an error about the option proves it was checked first.
    args = ["generate", "--model", str(tmp_path / "no-model"), option, value]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in said(result) and allowed in said(result)


def test_an_unknown_task_exits_2_before_any_model_is_loaded(tmp_path):
    result = runner.invoke(app, ["generate", "--model", str(tmp_path / "no-model"), "--task", "x"])
    assert result.exit_code == 2 and "unknown task 'x'; choose one of" in said(result)


def test_a_task_file_with_a_blank_answer_exits_2_naming_file_and_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "1+1?", "answer": "2"}\n{"prompt": "2+2?", "answer": ""}\n')
    result = runner.invoke(app, ["generate", "--model", "tiny-llama", "--task", str(path)])
    assert result.exit_code == 2 and "t.jsonl:2: `answer` is empty or missing" in said(result)


@pytest.mark.slow  # a fresh interpreter imports torch and transformers: ~7 s idle, more when busy
def test_prompts_0_in_a_real_process_exits_2_without_a_traceback(tmp_path):
    command = [sys.executable, "-m", "r1kit.cli", "generate", "--model", "none", "--prompts", "0"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "'--prompts'" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_a_benchmark_task_is_read_from_data_dir(tmp_path):
    (tmp_path / "gsm8k_test.jsonl").write_text('{"question": "What is 40 + 2?", "answer": "42"}\n')
    args = ["generate", "--model", "tiny-llama", "--task", "gsm8k", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--n", "1", "--prompts", "1", "--max-new-tokens", "2"])
    assert result.exit_code == 0, result.output
    assert "40 + 2" in result.output and "over 1 completions" in result.output
