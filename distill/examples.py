"""Traces as SFT examples in the student's chat template: prompt tokens (masked out of the
loss) and target tokens (the reasoning in <think>, the answer, the template's end of turn)."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from distill.traces import Message, Trace
from r1kit.recipe import TemplateConfig
from r1kit.templates import R1_SYSTEM_PROMPT, tokenize

THINK = "<think>"


@dataclass
class Example:
    prompt_ids: list[int]
    target_ids: list[int]


def make_examples(
    traces: list[Trace], tokenizer: PreTrainedTokenizerBase, cfg: TemplateConfig, max_length: int
) -> tuple[list[Example], int]:
    """The examples of at most `max_length` tokens, and how many longer ones were left out."""
    end = end_of_turn(tokenizer)
    examples = [to_example(t, tokenizer, cfg, end) for t in traces]
    kept = [e for e in examples if len(e.prompt_ids) + len(e.target_ids) <= max_length]
    return kept, len(examples) - len(kept)


def to_example(
    trace: Trace, tokenizer: PreTrainedTokenizerBase, cfg: TemplateConfig, end: str
) -> Example:
    """Prompt and target split where generation starts; as `r1kit.templates.render` does for
    evaluation, the system prompt is added when the trace has none and, with `prefill_think`,
    the opening <think> belongs to the prompt."""
    system = R1_SYSTEM_PROMPT if cfg.system_prompt is None else cfg.system_prompt
    messages: list[Message] = list(trace.prompt)
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    target = trace.completion
    if cfg.prefill_think and target.startswith(THINK):
        prompt, target = prompt + THINK, target.removeprefix(THINK)
    return Example(tokenize(tokenizer, prompt), tokenize(tokenizer, target + end))


def end_of_turn(tokenizer: PreTrainedTokenizerBase) -> str:
    """What the chat template writes after an assistant message (e.g. `<|im_end|>`), trailing
    whitespace aside; the tokenizer's EOS when the template writes nothing there."""
    marker = "\x00reply\x00"
    chat = [{"role": "user", "content": "?"}, {"role": "assistant", "content": marker}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    return text.split(marker, 1)[1].rstrip() or tokenizer.eos_token
