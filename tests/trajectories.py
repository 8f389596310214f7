"""Hand-built multi-turn completions (tool use, issue 34), as the tool driver returns them:
model turns and tool observations in one token sequence, one fake token per character."""

from __future__ import annotations

from dataclasses import replace

from rollout.types import Completion, ToolCall

OUTPUT_TAGS = ("<output>\n", "\n</output>")


def multi_turn(*parts: str | ToolCall, finish_reason: str = "stop") -> Completion:
    """A trajectory from model texts and tool calls in order: each call's observation (its
    output between the output tags) follows the model text before it."""
    pieces = [
        (part, True) if isinstance(part, str) else (part.output.join(OUTPUT_TAGS), False)
        for part in parts
    ]
    text = "".join(piece for piece, _ in pieces)
    own = [piece for piece, model in pieces if model]
    calls, written = [], 0  # each call ends its turn where the model's text stood
    for part in parts:
        if isinstance(part, str):
            written += len(part)
        else:
            calls.append(replace(part, end=written))
    mask = [model for piece, model in pieces for _ in piece]
    return Completion(
        token_ids=[ord(ch) % 256 for ch in text],
        logprobs=[-0.5 if model else 0.0 for model in mask],
        text=text,
        finish_reason=finish_reason,
        prompt_token_ids=[1, 2],
        model_tokens=mask,
        tool_calls=calls,
        own_text="".join(own),
    )


def call(output: str, code: str = "print(6*7)", status: str = "ok", seconds: float = 0.1):
    """A tool call that returned `output`."""
    return ToolCall(code, output, status, seconds)
