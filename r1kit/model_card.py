"""Model cards: the README.md of every final/, with the front matter the Hugging Face Hub reads
(base model, license, tags, datasets) and the recipe, training summary and held-out results.

`render` turns plain data into the card's text; GRPO (grpo/card.py) and distillation
(distill/card.py) gather that data from their run, and `save_model` writes the card inside
final/'s own atomic write, so final/ never exists without it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from r1kit import durable
from r1kit.recipe import TemplateConfig
from r1kit.templates import R1_SYSTEM_PROMPT

CARD = "README.md"
FENCE = "---"


@dataclass
class Card:
    """What a card says, as plain data; `results` are (label, held-out summary) pairs whose
    summaries hold `pass@1`, `ci_low`, `ci_high` and `format_rate` (r1kit.evaluation)."""

    name: str
    kind: Literal["grpo", "distillation"]
    about: str  # one paragraph: what made the model
    description: str  # the recipe's
    base_model: str
    license: str | None
    recipe: str  # the run's config.yaml
    template: TemplateConfig
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids only
    lora: bool = False
    adapter: bool = False  # final/ holds a PEFT adapter, not a whole model
    summary: dict[str, object] = field(default_factory=dict)
    results: list[tuple[str, dict]] = field(default_factory=list)


def render(card: Card) -> str:
    """The card's text: YAML front matter, then what made the model, how to use it, its
    held-out results, the training summary and the full recipe."""
    return "\n".join(
        [
            f"{FENCE}\n{yaml.safe_dump(metadata(card), sort_keys=False)}{FENCE}\n",
            f"# {card.name}\n\n{card.about}\n{_paragraph(card.description)}",
            f"## How to use\n\n{usage(card.template)}",
            f"## Held-out results\n\n{results_table(card.results)}",
            "## Training\n\n"
            + "".join(f"- {k}: {_value(v)}\n" for k, v in card.summary.items() if v is not None),
            f"## Recipe\n\nThe run's resolved recipe (`config.yaml`):\n\n```yaml\n{card.recipe}```",
        ]
    )


def metadata(card: Card) -> dict:
    """The front matter: the keys the Hub reads; `license` and `datasets` only when known."""
    tags = ["r1kit", card.kind, "reasoning"] + (["lora"] if card.lora else [])
    meta: dict[str, object] = {"base_model": card.base_model}
    if card.license is not None:
        meta["license"] = card.license
    meta["tags"] = tags
    if card.datasets:
        meta["datasets"] = card.datasets
    meta["library_name"] = "peft" if card.adapter else "transformers"
    meta["pipeline_tag"] = "text-generation"
    return meta


def usage(template: TemplateConfig) -> str:
    """A transformers snippet that prompts the model as it was trained (its template)."""
    system = R1_SYSTEM_PROMPT if template.system_prompt is None else template.system_prompt
    lines = [_prompt_lines(template.name, system)]
    if template.prefill_think and template.name != "raw":  # as r1kit.templates.render does
        lines.append(f'prompt += "{" " if template.name == "r1_zero" else ""}<think>"')
    return (
        f"Prompt it as it was trained: the `{template.name}` template with "
        f"{_system_words(template)}. The R1 system prompt asks for the reasoning inside "
        "`<think> </think>` and the answer inside `<answer> </answer>`.\n\n"
        "```python\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        'path = "path/to/final"  # this directory, or its Hub id once pushed\n'
        "model = AutoModelForCausalLM.from_pretrained(path)\n"
        "tokenizer = AutoTokenizer.from_pretrained(path)\n"
        'question = "What is 3 + 6?"\n' + "\n".join(lines) + "\n"
        'inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)\n'
        "output = model.generate(**inputs, max_new_tokens=256, do_sample=False)\n"
        'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :]))\n'
        "```\n"
    )


def _system_words(template: TemplateConfig) -> str:
    if template.name == "raw":
        return "no system prompt (the question alone)"
    if template.system_prompt is None:
        return "the R1 system prompt"
    return "its own system prompt" if template.system_prompt else "no system prompt"


def _prompt_lines(name: str, system: str) -> str:
    """Python lines that build `prompt` from `question` as r1kit.templates renders it."""
    if name == "raw":
        return "prompt = question"
    if name == "r1_zero":
        return f'system = {system!r}\nprompt = f"{{system}}\\nUser: {{question}}\\nAssistant:"'
    user = '{"role": "user", "content": question}'
    messages = (
        f'system = {system!r}\nmessages = [{{"role": "system", "content": system}}, {user}]'
        if system
        else f"messages = [{user}]"
    )
    return (
        f"{messages}\nprompt = tokenizer.apply_chat_template(\n"
        "    messages, add_generation_prompt=True, tokenize=False\n)"
    )


def results_table(results: list[tuple[str, dict]]) -> str:
    """Greedy pass@1 with its 95% bootstrap interval and the format rate, one row each."""
    if not results:
        return "No held-out evaluation was run.\n"
    rows = "".join(
        f"| {label} | {r['pass@1']:.3f} | {r['ci_low']:.3f} - {r['ci_high']:.3f} "
        f"| {r.get('format_rate', float('nan')):.2f} | {r.get('problems', '-')} |\n"
        for label, r in results
    )
    return (
        "| | pass@1 | 95% CI | `<think>`/`<answer>` format | problems |\n"
        "|---|---|---|---|---|\n" + rows
    )


def front_matter(text: str) -> dict:
    """The YAML mapping between a card's opening `---` lines; {} when there is none."""
    if not text.startswith(FENCE + "\n"):
        return {}
    head, fence, _ = text.removeprefix(FENCE + "\n").partition("\n" + FENCE)
    if not fence:
        return {}
    try:
        data = yaml.safe_load(head)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def last_metric(records: list[dict], key: str) -> float | None:
    """`key` in the last metrics.jsonl record that has it; None if none does."""
    return next((record[key] for record in reversed(records) if key in record), None)


def step_minutes(records: list[dict]) -> str | None:
    """The time the logged steps took (`time/step`), as a card says it; None if unlogged."""
    times = [record["time/step"] for record in records if "time/step" in record]
    return f"{sum(times) / 60:.1f} min (the sum of its steps' times)" if times else None


def write_card(directory: Path, text: str) -> None:
    """`directory`/README.md, atomically."""
    durable.write_text(directory / CARD, text)


def _paragraph(text: str) -> str:
    """`text` (the recipe's description) as a Markdown paragraph: tags such as <think>
    escaped, else the Hub's renderer takes them for HTML and hides them."""
    return f"\n{html.escape(text.strip(), quote=False)}\n" if text.strip() else ""


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
