"""`r1kit report RUN`: one self-contained HTML page to look at a run (curves, evaluation, recipe,
completions). No network: CSS/JS inline, plots as base64 PNG, data embedded as JSON."""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

from r1kit import durable
from r1kit.errors import UserError
from r1kit.rundir import RunDir

EVAL_PREFIX = "eval/"


def check_run(run_dir: Path, option: str = "RUN") -> None:
    """A UserError unless `run_dir` is a run directory with at least one step of metrics."""
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{option} {run_dir}: not a run directory (no config.yaml)")
    if not RunDir(run_dir).metrics():
        raise UserError(f"{option} {run_dir}/metrics.jsonl: no step recorded yet; report later")


def evaluations(records: list[dict]) -> list[dict]:
    """The held-out evaluations metrics.jsonl holds, each as {step, pass@1, ci_low, ...}."""
    return [
        {"step": r["step"]}
        | {k[len(EVAL_PREFIX) :]: v for k, v in r.items() if k.startswith(EVAL_PREFIX)}
        for r in records
        if f"{EVAL_PREFIX}pass@1" in r
    ]


def run_data(run_dir: Path) -> dict:
    """Everything the page shows about one run, as JSON-ready data."""
    from r1kit.plot import curves_png  # matplotlib is slow to import

    samples_path = run_dir / "samples.jsonl"
    samples = durable.read_jsonl(samples_path, keys=("step",)) if samples_path.is_file() else []
    return {
        "name": run_dir.name,
        "curves": base64.b64encode(curves_png(run_dir)).decode(),
        "evaluations": evaluations(RunDir(run_dir).metrics()),
        "config": (run_dir / "config.yaml").read_text(),
        "samples": samples,
    }


def embed(data: object) -> str:
    """JSON safe inside a <script> element: `<`, `>` and `&` escaped so model output holding
    `</script>` cannot end it."""
    text = json.dumps(data)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def build_report(run_dir: Path, compare: list[Path], out: Path | None = None) -> Path:
    """Write the report of `run_dir` (and the `compare` runs beside it); return its path."""
    check_run(run_dir)
    for other in compare:
        check_run(other, "--compare")
    runs = [run_data(path) for path in [run_dir, *compare]]
    template = resources.files("r1kit").joinpath("report_template.html").read_text()
    title = html.escape(" vs ".join(run["name"] for run in runs))
    page = template.replace("{{TITLE}}", title).replace("{{DATA}}", embed(runs))
    target = out or run_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page)
    return target
