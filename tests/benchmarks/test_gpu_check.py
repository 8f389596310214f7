"""benchmarks/gpu_check.py as far as a CPU can check it: the plan, its recipes, the table."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from r1kit.cli import app

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))
import gpu_check  # noqa: E402

ROWS = [
    "hf-bf16",
    "vllm-colocated",
    "vllm-lora",
    "transfer-135m",
    "transfer-1.5b",
    "fsdp2-nccl",
    "nccl-transfer",
]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_the_dry_run_prints_every_row_with_its_route_and_exits_0():
    result = _run("--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split()[0] for line in lines if line.startswith("  ") and line[2] != " "]
    assert rows == ROWS
    assert "weights: CUDA IPC (CUDA, engine in the learner's process)" in result.stdout
    assert "weights: LoRA adapter only, as peft files in /dev/shm" in result.stdout
    assert "weights: NCCL (CUDA, engines in Ray workers)" in result.stdout
    assert "needs 2 GPUs" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_a_real_run_exits_2_saying_why():
    result = _run("--rows", "hf-bf16")
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr


@pytest.mark.parametrize("row", [r for r in gpu_check.plan() if not r.probe], ids=str)
def test_each_training_row_is_a_valid_recipe_of_the_main_job(row, tmp_path):
    sets = [*row.settings, "train.steps=4", f"output.dir={tmp_path}"]
    args = ["train", str(ROOT / gpu_check.MAIN), "--dry-run"]
    result = CliRunner().invoke(app, [*args, *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output


def test_the_table_has_a_line_per_row_with_its_figures_or_why_not():
    rows = gpu_check.plan()[:2]
    results = {"hf-bf16": {"status": "ok", "s/step": 1.23456, "tokens/s": 900.0}}
    lines = gpu_check.table(rows, results).splitlines()
    assert len(lines) == 2 + len(rows)
    assert "| hf-bf16 |" in lines[2] and "| ok | s/step 1.235, tokens/s 900 |" in lines[2]
    assert "| not run |" in lines[3]


def test_a_failed_row_says_its_exit_code_and_last_line(tmp_path):
    log = tmp_path / "row.log"
    log.write_text("starting\nRuntimeError: CUDA out of memory\n\n")
    assert gpu_check._failed(1, log) == "failed (1): RuntimeError: CUDA out of memory"
    assert gpu_check._failed(124, log) == "failed (124): time limit"


def test_an_unknown_row_is_refused_naming_the_rows():
    result = _run("--dry-run", "--rows", "hf-bf16", "nope")
    assert result.returncode == 2
    assert "unknown ['nope']" in result.stderr and "vllm-colocated" in result.stderr


def test_the_dry_run_of_chosen_rows_plans_only_those():
    result = _run("--dry-run", "--rows", "fsdp2-nccl")
    assert result.returncode == 0 and "1 rows" in result.stdout and "hf-bf16" not in result.stdout
