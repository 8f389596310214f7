"""Checkpoints: a Hugging Face model directory plus everything needed to resume exactly.

checkpoints/step-N/  model.safetensors, config.json, tokenizer files  (loads in transformers)
                     trainer_state.pt: optimizer, scheduler, LoRA adapter, data position, RNG
                     config.yaml: the run's config.yaml it was trained with (a hand edit of
                     the run's own is found by comparing the two on `--resume`)
                     manifest.json: step, and each file's size and sha256
final/               the same model directory with its card (README.md) and manifest
Both it and final/ are written under a scratch name, fsynced and renamed (r1kit/durable.py):
a kill mid-save never leaves a half checkpoint, nor deletes the last complete one, and a full
or read-only disk is a DiskFault saying how much space a save needs.
"""

from __future__ import annotations

import functools
import random
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file

from r1kit import durable
from r1kit.errors import UserError
from r1kit.model_card import write_card
from r1kit.rundir import CHECKPOINT_NAME, CONFIG, RunDir


class Parts(Protocol):
    """What a checkpoint holds: a learner, the tokenizer saved beside the weights, and the
    data position (a stream with `state_dict`/`load_state_dict`)."""

    learner: Any
    tokenizer: Any
    stream: Any


def save_model(
    path: Path, parts: Parts, card: str | None = None, extra: dict[str, str] | None = None
) -> None:
    """A plain Hugging Face model directory (LoRA merged) that transformers and vLLM load;
    `card`, its README.md (r1kit/model_card.py), and `extra` ({file name: text}) are written
    inside the same atomic write."""
    with durable.replace_dir(path, needed=lambda: _weight_bytes(parts)) as tmp:
        _write_model(tmp, parts)
        if card is not None:
            write_card(tmp, card)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)


def save_checkpoint(
    path: Path,
    parts: Parts,
    step: int,
    config: str | None = None,
    trainer: dict | None = None,
) -> None:
    """The model plus trainer state; saving a step that exists replaces it safely. `config`:
    the text of the run's config.yaml, copied in; `trainer`: the loop's own state (GRPO's
    adaptive entropy coefficient, async rounds in flight)."""
    state = {
        "step": step,
        "trainer": trainer or {},
        "learner": parts.learner.state_dict(),
        "adapter": parts.learner.adapter_state() if parts.learner.is_lora else None,
        "data": parts.stream.state_dict(),
        "rng": {"python": random.getstate(), "torch": torch.get_rng_state()},
    }
    needed = functools.partial(_save_bytes, path, parts, state)  # asked only on a disk fault
    with durable.replace_dir(path, needed=needed, step=step) as tmp:
        _write_model(tmp, parts)
        with (tmp / "trainer_state.pt").open("wb") as f:
            torch.save(state, f)  # to a file, not a path: a failed write keeps its OSError
        if config is not None:
            (tmp / CONFIG).write_text(config)


def _save_bytes(path: Path, parts: Parts, state: dict) -> int:
    """What saving a checkpoint at `path` takes on disk: its tensors' bytes, or the size of a
    checkpoint beside it (tokenizer files and all) when larger."""
    beside = [p for p in path.parent.iterdir() if CHECKPOINT_NAME.fullmatch(p.name) and p != path]
    sizes = [sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in beside]
    return max([_weight_bytes(parts) + _bytes(state), *sizes])


def _weight_bytes(parts: Parts) -> int:
    return sum(_bytes(tensor) for _, tensor in parts.learner.named_weights())


def _bytes(obj: Any) -> int:
    """The bytes of the tensors in nested dicts and lists: what writing them takes on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_bytes(value) for value in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_bytes(value) for value in obj)
    return 0


def _write_model(path: Path, parts: Parts) -> None:
    model = parts.learner.model
    # The live tensors (merged ones with LoRA), not clones: a clone is a whole second copy of
    # the model held while the file is written.
    weights = dict(parts.learner.named_weights())
    base = model.get_base_model() if parts.learner.is_lora else model
    base.save_pretrained(path, state_dict=weights)
    parts.tokenizer.save_pretrained(path)


def load_checkpoint(path: Path, parts: Parts, trainer: dict | None = None) -> int:
    """Restore weights, optimizer, schedule, data position and RNG (and fill `trainer` with
    the loop's own state); return the step."""
    state = _read(path / "trainer_state.pt", lambda file: torch.load(file, weights_only=False))
    model = parts.learner.model
    if state["adapter"] is not None:
        parts.learner.load_weights(state["adapter"])
    else:
        weights = _read(path / "model.safetensors", load_file)
        try:
            missing, unexpected = parts.learner.load_weights(weights)
        except RuntimeError as err:  # shapes differ: a checkpoint of another model
            raise UserError(f"checkpoint {path} does not match the model: {err}") from None
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        if unexpected or set(missing) - tied - {"lm_head.weight"}:
            raise UserError(
                f"checkpoint {path} does not match the model: missing {missing}, "
                f"unexpected {unexpected}"
            )
    parts.learner.load_state_dict(state["learner"])
    parts.stream.load_state_dict(state["data"])
    random.setstate(state["rng"]["python"])
    torch.set_rng_state(state["rng"]["torch"])
    if trainer is not None:
        trainer.update(state.get("trainer", {}))  # none in checkpoints of earlier releases
    return state["step"]


def _read(file: Path, load: Any) -> Any:
    """`load(file)`; a file it cannot read (one its manifest vouches for, yet of another
    version or written by hand) is a UserError saying how to go on."""
    try:
        return load(file)
    except Exception as err:
        raise UserError(
            f"{file}: unreadable ({type(err).__name__}: {err}); delete {file.parent} to resume "
            "from the checkpoint before it, or start afresh with --overwrite"
        ) from None


def resume_from(run: RunDir, parts: Parts, trainer: dict | None = None) -> int | None:
    """Load the newest checkpoint of `run` that verifies into `parts` (the loop's own state
    into `trainer`) and cut the logs of the steps that will run again; a warning names each
    broken checkpoint set aside. Returns the checkpoint's step, None when there is none (the
    run starts over)."""
    checkpoint, problems = run.recover_checkpoint()
    for problem in problems:
        warnings.warn(f"resume: {problem}", stacklevel=2)
    step = load_checkpoint(checkpoint, parts, trainer) if checkpoint is not None else None
    run.discard_logs_from(0 if step is None else step + 1)
    return step
