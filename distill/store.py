"""Accepted traces on disk as a `datasets`-loadable jsonl in the `messages` layout, with a
small dataset card (teacher, counts, acceptance, lengths) and the full filter report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from r1kit import durable
from r1kit.recipe import TemplateConfig

TRACES = "traces.jsonl"


def as_messages(record: dict, template: TemplateConfig) -> dict:
    """A kept record as an OpenR1-Math-style row; a pre-filled <think> is put back in."""
    opening = "<think>" if template.prefill_think else ""
    reply = opening + record["completion"]
    return {
        "messages": [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": reply},
        ],
        "answer": record["answer"],
        "problem": record["problem"],
        "tokens": record["tokens"],
    }


def write_traces(
    directory: Path, kept: list[dict], report: dict, teacher: str, template: TemplateConfig
) -> Path:
    """traces.jsonl, report.json and README.md under `directory`; returns the traces file."""
    directory.mkdir(parents=True, exist_ok=True)
    durable.rewrite_jsonl(directory / TRACES, [as_messages(r, template) for r in kept])
    durable.write_text(directory / "report.json", json.dumps(report, indent=1))
    durable.write_text(directory / "README.md", card(kept, report, teacher))
    return directory / TRACES


def card(kept: list[dict], report: dict, teacher: str) -> str:
    """The dataset card: where the traces come from and what the filter let through."""
    lengths = [r["tokens"] for r in kept] or [0]
    return (
        "# Distillation traces\n\n"
        f"- teacher: `{teacher}`\n"
        f"- problems: {report['problems']}, generated: {report['generated']}, "
        f"accepted: {report['accepted']} ({report['acceptance']:.1%}), kept: {report['kept']}\n"
        f"- problems with no accepted trace: {len(report['problems_without_accepted'])}\n"
        f"- kept trace length (tokens): mean {statistics.mean(lengths):.1f}, "
        f"min {min(lengths)}, max {max(lengths)}\n\n"
        f"Load with `datasets.load_dataset('json', data_files='{TRACES}')`: a `messages` column "
        "(user question, assistant reply with the reasoning in <think>).\n"
    )
