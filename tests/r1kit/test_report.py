import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1kit.cli import app
from r1kit.report import build_report

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert(1)</script> and </script><b>bold</b>"
runner = CliRunner()


def make_run(path: Path, completions: list[str]) -> Path:
    """A run directory as training leaves it: config, metrics with two evaluations, samples."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("seed: 0\nmodel:\n  name: tiny-llama\n")
    metrics = [
        {"step": 0, "eval/pass@1": 0.1, "eval/ci_low": 0.05, "eval/ci_high": 0.2},
        {"step": 1, "reward/total/mean": 0.3, "health/flat": 0.0},
        {
            "step": 2,
            "reward/total/mean": 0.6,
            "eval/pass@1": 0.4,
            "eval/ci_low": 0.3,
            "eval/ci_high": 0.5,
        },
    ]
    samples = [
        {
            "step": 1 + i % 2,
            "prompt": f"What is {i} + 1?",
            "answer": str(i + 1),
            "completion": text,
            "reward": i / 2,
            "rewards": {"math": float(i % 2), "format": None},
            "advantage": i - 1.0,
        }
        for i, text in enumerate(completions)
    ]
    for name, lines in (("metrics.jsonl", metrics), ("samples.jsonl", samples)):
        (path / name).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


COMPLETIONS = [" 1 + 1 = 2 </think> <answer>2</answer>", HOSTILE, "thinking-at-step-1-only"]


def embedded(page: str) -> list[dict]:
    """The runs' data the page embeds."""
    return json.loads(
        re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)[1]
    )


def test_report_is_self_contained(tmp_path):
    page = build_report(make_run(tmp_path / "run", COMPLETIONS), []).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    assert "data:image/png;base64," in page


def test_report_embeds_the_completions_rewards_and_advantages(tmp_path):
    runs = embedded(build_report(make_run(tmp_path / "run", COMPLETIONS), []).read_text())
    assert [s["completion"] for s in runs[0]["samples"]] == COMPLETIONS
    assert (
        runs[0]["samples"][2]["advantage"] == 1.0
        and runs[0]["samples"][1]["rewards"]["math"] == 1.0
    )


def test_report_shows_before_and_after_evaluation_and_the_recipe(tmp_path):
    run = embedded(build_report(make_run(tmp_path / "run", COMPLETIONS), []).read_text())[0]
    assert [(e["step"], e["pass@1"], e["ci_high"]) for e in run["evaluations"]] == [
        (0, 0.1, 0.2),
        (2, 0.4, 0.5),
    ]
    assert "tiny-llama" in run["config"]


def test_model_output_cannot_close_the_data_script(tmp_path):
    page = build_report(make_run(tmp_path / "run", COMPLETIONS), []).read_text()
    assert "alert(1)" in page and "<script>alert(1)" not in page and "<b>bold" not in page


def test_report_compare_holds_both_runs(tmp_path):
    first, second = make_run(tmp_path / "a", COMPLETIONS), make_run(tmp_path / "b", ["other"])
    out = tmp_path / "both.html"
    result = runner.invoke(app, ["report", str(first), "--compare", str(second), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [run["name"] for run in embedded(out.read_text())] == ["a", "b"]


def test_report_of_a_non_run_exits_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_report_of_a_run_without_a_step_exits_2(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "metrics.jsonl").write_text("")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no step recorded yet" in result.output


def test_report_compare_of_a_missing_run_exits_2(tmp_path):
    run = make_run(tmp_path / "run", COMPLETIONS)
    result = runner.invoke(app, ["report", str(run), "--compare", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "--compare" in result.output


sys.path.insert(0, str(ROOT / "scripts"))
from report_screenshot import chromium, headless, screenshot  # noqa: E402


def rendered(url: str) -> str:
    """The DOM after the page's script ran, less the embedded data (which holds every sample)."""
    dom = headless(url, "--dump-dom", "--virtual-time-budget=5000")
    return dom.split('<script id="data"')[0] + dom.split("</script>", 1)[1]


@pytest.mark.slow
@pytest.mark.skipif(
    chromium() is None, reason="no chromium on PATH (scripts/setup.sh installs it as root)"
)
def test_report_renders_in_chromium_and_filters(tmp_path):
    page = build_report(make_run(tmp_path / "run", COMPLETIONS), [])
    dom = rendered(page.as_uri())
    assert 'data-ready="1"' in dom and 'id="report-error"' not in dom
    assert "1 + 1 = 2" in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    filtered = rendered(page.as_uri() + "#step=2")
    assert "thinking-at-step-1-only" in dom and "thinking-at-step-1-only" not in filtered
    assert "alert(1)" in filtered
    math_paid = rendered(page.as_uri() + "#reward=math%201.000")
    assert "alert(1)" in math_paid and "1 + 1 = 2" not in math_paid
    by_advantage = rendered(page.as_uri() + "#sort=desc")
    assert by_advantage.index("thinking-at-step-1-only") < by_advantage.index("1 + 1 = 2")
    png = screenshot(page, tmp_path / "report.png")
    assert png.stat().st_size > 10_000
    if os.environ.get("R1KIT_ARTIFACTS"):
        shutil.copy(png, Path(os.environ["R1KIT_ARTIFACTS"]) / "report.png")


def test_screenshot_script_writes_a_png(tmp_path):
    if chromium() is None:
        pytest.skip("no chromium on PATH (scripts/setup.sh installs it as root)")
    run = make_run(tmp_path / "run", COMPLETIONS)
    png = tmp_path / "shot.png"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/report_screenshot.py"), str(run), str(png)], check=True
    )
    assert png.stat().st_size > 10_000


TOOL_SAMPLE = {
    "step": 1,
    "prompt": "What is 6 * 7?",
    "answer": "42",
    "completion": "compute<python>print(6*7)</python><output>42</output>so 42",
    "reward": 1.0,
    "rewards": {"math": 1.0},
    "advantage": 0.5,
    "turns": [
        {
            "model": "compute<python>print(6*7)</python>",
            "code": "print(6*7)",
            "output": "42-from-the-tool " + HOSTILE,
            "status": "error",
            "seconds": 0.25,
        },
        {"model": "so 42</think><answer>42</answer>"},
    ],
}


def make_tool_run(path: Path) -> Path:
    """A run whose samples.jsonl holds a completion that called a tool."""
    run = make_run(path, COMPLETIONS[:1])
    with (run / "samples.jsonl").open("a") as out:
        out.write(json.dumps(TOOL_SAMPLE) + "\n")
    return run


def test_report_embeds_a_tool_using_completions_turns(tmp_path):
    runs = embedded(build_report(make_tool_run(tmp_path / "run"), []).read_text())
    assert runs[0]["samples"][1]["turns"] == TOOL_SAMPLE["turns"]


@pytest.mark.slow
@pytest.mark.skipif(
    chromium() is None, reason="no chromium on PATH (scripts/setup.sh installs it as root)"
)
def test_report_renders_the_turns_with_code_and_tool_output_apart(tmp_path):
    page = build_report(make_tool_run(tmp_path / "run"), [])
    dom = rendered(page.as_uri())
    assert 'data-ready="1"' in dom and 'id="report-error"' not in dom
    assert '<span class="code">print(6*7)</span>' in dom
    observation = re.search(r'<span class="observation failed">(.*?)</span></span>', dom, re.S)
    assert "tool output · error · 0.250 s" in observation[1]
    assert "42-from-the-tool &lt;script&gt;alert(1)" in observation[1]
    assert '<span class="answer">42</span>' in dom  # the model's own answer, after the call
    assert "&lt;output&gt;" not in dom  # the turns are shown, not the flat trajectory
