"""A tool-using completion turn by turn, for samples.jsonl and the run report: what the model
wrote up to each call, the call's code, what came back, and the model's last turn."""

from __future__ import annotations

from rollout.types import Completion


def turns(completion: Completion) -> list[dict]:
    """The model's own text cut where each call's turn ended, each piece with its call's
    code, output, status and seconds; then the text after the last call. The pieces' `model`
    texts joined are the model's own text exactly."""
    own, cursor, out = completion.model_text, 0, []
    for call in completion.tool_calls:
        out.append(
            {
                "model": own[cursor : call.end],
                "code": call.code,
                "output": call.output,
                "status": call.status,
                "seconds": call.seconds,
            }
        )
        cursor = call.end
    if own[cursor:]:
        out.append({"model": own[cursor:]})
    return out


def sample_turns(completion: Completion) -> dict[str, list[dict]]:
    """`{"turns": [...]}` for a sample record of a completion that called tools, else {}."""
    return {"turns": turns(completion)} if completion.tool_calls else {}


def own_completion(sample: dict) -> str:
    """The model's own text of a sample record (its turns joined; else its completion)."""
    if "turns" in sample:
        return "".join(turn["model"] for turn in sample["turns"])
    return sample["completion"]
