"""Prompt templates: how a question becomes the text the model continues.

- `r1_zero`: DeepSeek-R1-Zero's plain-text template (reasoning in <think>, answer in <answer>);
- `chat`:    the tokenizer's chat template, with an R1-style system prompt by default;
- `raw`:     the question as it is (no prefill).
With `prefill_think` the prompt ends in "<think>", so sampling starts inside the reasoning
(the format reward knows this and does not ask the completion to open the tag again).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from r1kit.recipe import TemplateConfig

R1_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think> <answer> answer here </answer>."
)


def render(cfg: TemplateConfig, tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    """The prompt text for one question."""
    system = R1_SYSTEM_PROMPT if cfg.system_prompt is None else cfg.system_prompt
    if cfg.name == "raw":
        return question
    if cfg.name == "r1_zero":
        text = f"{system}\nUser: {question}\nAssistant:"
    else:
        messages = [{"role": "user", "content": question}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if cfg.prefill_think:
        text += " <think>" if cfg.name == "r1_zero" else "<think>"
    return text


def encode(
    cfg: TemplateConfig, tokenizer: PreTrainedTokenizerBase, questions: list[str]
) -> list[list[int]]:
    """Token ids of each rendered prompt (special tokens come from the template itself)."""
    return [tokenize(tokenizer, render(cfg, tokenizer, question)) for question in questions]


def tokenize(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """Token ids of a rendered prompt; its special tokens come from the template itself."""
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]
