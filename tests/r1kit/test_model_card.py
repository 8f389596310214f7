import re

import pytest
import yaml

from r1kit.model_card import Card, front_matter, last_metric, render, step_minutes
from r1kit.models import load_tokenizer
from r1kit.recipe import TemplateConfig
from r1kit.templates import render as render_prompt

RECIPE = "seed: 0\nmodel:\n  name: smollm2-135m-instruct\ntrain:\n  steps: 12\n"
BEFORE = {"pass@1": 0.11, "ci_low": 0.05, "ci_high": 0.18, "format_rate": 0.0, "problems": 100}
AFTER = {"pass@1": 0.72, "ci_low": 0.63, "ci_high": 0.81, "format_rate": 1.0, "problems": 100}


def card(**fields) -> Card:
    values = dict(
        name="tiny",
        kind="grpo",
        about="Trained with GRPO.",
        description="A recipe's <think>/<answer> description.\n",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        license="apache-2.0",
        recipe=RECIPE,
        template=TemplateConfig(),
        datasets=["openai/gsm8k"],
        lora=True,
        summary={"steps": 12, "last mean reward": 1.23456789, "training time": None},
        results=[("before training (step 0)", BEFORE), ("after step 12", AFTER)],
    )
    return Card(**(values | fields))


def test_the_front_matter_is_yaml_with_the_keys_the_hub_reads():
    text = render(card())
    head = text.split("---\n")[1]
    assert yaml.safe_load(head) == front_matter(text)
    assert front_matter(text) == {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "license": "apache-2.0",
        "tags": ["r1kit", "grpo", "reasoning", "lora"],
        "datasets": ["openai/gsm8k"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
    }


def test_an_unknown_license_and_local_data_are_left_out_not_guessed():
    meta = front_matter(render(card(license=None, datasets=[], lora=False)))
    assert "license" not in meta and "datasets" not in meta
    assert meta["tags"] == ["r1kit", "grpo", "reasoning"]


def test_an_adapter_is_a_peft_model():
    meta = front_matter(render(card(kind="distillation", adapter=True)))
    assert meta["library_name"] == "peft" and "distillation" in meta["tags"]


def test_the_results_table_shows_each_result_with_its_95_percent_interval():
    text = render(card())
    assert "| before training (step 0) | 0.110 | 0.050 - 0.180 | 0.00 | 100 |" in text
    assert "| after step 12 | 0.720 | 0.630 - 0.810 | 1.00 | 100 |" in text
    assert "No held-out evaluation" in render(card(results=[]))


def test_the_description_is_a_paragraph_whose_tags_stay_visible():
    assert "\nA recipe's &lt;think&gt;/&lt;answer&gt; description.\n\n## How" in render(card())


def test_the_summary_leaves_out_what_is_unknown():
    text = render(card())
    assert "- steps: 12\n- last mean reward: 1.235\n" in text and "training time" not in text


def test_the_full_recipe_is_embedded_as_a_yaml_block():
    text = render(card())
    (block,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert block == RECIPE


@pytest.mark.parametrize(
    "template",
    [
        TemplateConfig(),
        TemplateConfig(name="chat"),
        TemplateConfig(name="chat", system_prompt="", prefill_think=False),
        TemplateConfig(name="raw"),
    ],
    ids=["r1_zero", "chat", "chat-without-system", "raw"],
)
def test_the_usage_snippet_builds_the_prompt_the_model_was_trained_on(template):
    (snippet,) = re.findall(r"```python\n(.*?)```", render(card(template=template)), re.S)
    lines = snippet.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("question ="))
    end = next(i for i, line in enumerate(lines) if line.startswith("inputs ="))
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    scope = {"tokenizer": tokenizer}
    exec("\n".join(lines[start:end]), scope)  # the lines between loading and generating
    assert scope["prompt"] == render_prompt(template, tokenizer, scope["question"])


def test_front_matter_of_a_text_without_one_is_empty():
    assert front_matter("# A card\n\nNo metadata.\n") == {}
    assert front_matter("---\nlicense: [unclosed\n---\n") == {}


def test_summary_helpers_read_the_logged_metrics():
    records = [{"step": 1, "time/step": 30.0, "loss": 2.0}, {"step": 2, "time/step": 60.0}]
    assert last_metric(records, "loss") == 2.0 and last_metric(records, "nll") is None
    assert step_minutes(records).startswith("1.5 min") and step_minutes([]) is None
