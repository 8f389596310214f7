"""Reading a traces file: the `messages` layout (a list of {role, content} whose last,
assistant, message holds the reasoning in <think>) or prompt/completion columns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from distill.recipe import TracesConfig
from r1kit.errors import UserError
from r1kit.tasks import read_jsonl

Message = dict[str, str]


class TracesError(UserError):
    """A traces file that cannot be read as traces; the message names the file and row."""


@dataclass
class Trace:
    """One worked example: the conversation up to the answer, and the assistant's answer."""

    prompt: list[Message]
    completion: str


def load_traces(cfg: TracesConfig) -> list[Trace]:
    """Every row of the traces file as a Trace, in file order; TracesError (or DataError, for
    a line of a .jsonl that is not JSON) naming the file and the row for anything else."""
    path = Path(cfg.source)
    rows = read_jsonl(path) if path.suffix == ".jsonl" else _dataset_rows(path)
    if not rows:
        raise TracesError(f"{path}: no traces in it (the file is empty)")
    columns = set().union(*rows)
    if cfg.messages_column in columns:
        read = _from_messages
    elif {cfg.prompt_column, cfg.completion_column} <= columns:
        read = _from_prompt_completion
    else:
        raise TracesError(
            f"{path}: needs a {cfg.messages_column!r} column, or {cfg.prompt_column!r} and "
            f"{cfg.completion_column!r}; it has {', '.join(sorted(columns))}"
        )
    return [read(row, cfg, f"{path}: row {i + 1}") for i, row in enumerate(rows)]


def _dataset_rows(path: Path) -> list[dict]:
    """The rows of a .json or .parquet file, read by `datasets`."""
    if path.stat().st_size == 0:
        return []
    builder = "parquet" if path.suffix == ".parquet" else "json"
    try:
        rows = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as err:  # datasets raises many types for an unreadable file
        raise TracesError(f"{path}: cannot read it as a dataset ({err})") from None
    return [dict(row) for row in rows]


def _from_messages(row: dict, cfg: TracesConfig, where: str) -> Trace:
    messages = _checked(row.get(cfg.messages_column), where)
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise TracesError(f"{where}: {cfg.messages_column} must end in an assistant message")
    return Trace(messages[:-1], messages[-1]["content"])


def _from_prompt_completion(row: dict, cfg: TracesConfig, where: str) -> Trace:
    prompt, completion = row.get(cfg.prompt_column), row.get(cfg.completion_column)
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(completion, list):  # TRL's conversational layout: [{"role": "assistant", ...}]
        completion = _checked(completion, where)[-1]["content"]
    if not isinstance(completion, str):
        raise TracesError(f"{where}: {cfg.completion_column} must be text or messages")
    return Trace(_checked(prompt, where), completion)


def _checked(messages: object, where: str) -> list[Message]:
    """Messages as plain {role, content} dicts; TracesError if they are anything else."""
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    )
    if not ok or not messages:
        raise TracesError(f"{where}: expected a list of {{role, content}} messages")
    return [{"role": m["role"], "content": m["content"]} for m in messages]
