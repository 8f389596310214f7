"""A tool-using completion turn by turn, for samples.jsonl and the run report: what the model
wrote up to each call, the call's code, what came back, and the model's last turn."""

from __future__ import annotations

from rollout.types import Completion


def turns(completion: Completion, call_end: str) -> list[dict]:
    """The model's own text cut after each call's closing tag `call_end` (generation stops
    there), each piece with its call's code, output, status and seconds; then the text after
    the last call. The pieces' `model` texts joined are the model's own text exactly."""
    own, cursor, out = completion.model_text, 0, []
    for call in completion.tool_calls:
        found = own.find(call_end, cursor)
        end = len(own) if found < 0 else found + len(call_end)  # no tag: the call ends it
        out.append(
            {
                "model": own[cursor:end],
                "code": call.code,
                "output": call.output,
                "status": call.status,
                "seconds": call.seconds,
            }
        )
        cursor = end
    if own[cursor:]:
        out.append({"model": own[cursor:]})
    return out


def sample_turns(completion: Completion, call_end: str) -> dict[str, list[dict]]:
    """`{"turns": [...]}` for a sample record of a completion that called tools, else {}."""
    return {"turns": turns(completion, call_end)} if completion.tool_calls else {}


def own_completion(sample: dict) -> str:
    """The model's own text of a sample record (its turns joined; else its completion)."""
    if "turns" in sample:
        return "".join(turn["model"] for turn in sample["turns"])
    return sample["completion"]
