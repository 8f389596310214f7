"""Completions and prompts arrive as strings or as chat-message lists (as in TRL)."""

from __future__ import annotations


def as_text(item: str | list | dict) -> str:
    """The text of a string, a message, or the last message of a conversation."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("content", ""))
    return as_text(item[-1]) if item else ""


def prefilled_think(prompt: str | list | dict) -> bool:
    """The prompt already opened the reasoning: the completion starts inside <think>."""
    return as_text(prompt).rstrip().endswith("<think>")


def continued(prompt: str | list | dict, completion: str | list | dict) -> str | list | dict:
    """A prompt that ends in <think> opened the reasoning the completion continues: until it
    closes, nothing in the completion is an answer."""
    return "<think>" + as_text(completion) if prefilled_think(prompt) else completion
