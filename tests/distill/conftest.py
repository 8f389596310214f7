"""Traces files in the layouts other tools publish, written by the tests themselves."""

import json

import pytest


def arithmetic_messages(count: int) -> list[dict]:
    """OpenR1-Math-style rows: a `messages` list, the reasoning inside <think>."""
    rows = []
    for i in range(count):
        a, b = 10 + i, 3 + 2 * i
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {
                        "role": "assistant",
                        "content": f"<think>{a} plus {b} is {a + b}.</think> "
                        f"<answer>{a + b}</answer>",
                    },
                ],
                "source": "another-tool",
            }
        )
    return rows


def write_jsonl(path, rows: list[dict]):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def messages_file(tmp_path):
    return write_jsonl(tmp_path / "traces.jsonl", arithmetic_messages(6))
