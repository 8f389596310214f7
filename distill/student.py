"""The student: a given model, or the teacher cut down in depth (Minitron/DistilBERT-style
initialisation), saved as a plain HF model of the smaller config; and the vocabulary check."""

from __future__ import annotations

import copy
import re
from pathlib import Path

from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from distill.recipe import DistillRecipe
from r1kit.errors import UserError
from r1kit.learner.policy import with_lora
from r1kit.models import load_model

LAYER_KEY = re.compile(r"^(.*\.layers\.)(\d+)(\..*)$")


def teacher_model_name(name: str) -> str:
    """A GRPO run directory stands for its final model; anything else is a model name."""
    final = Path(name) / "final"
    if (final / "config.json").is_file():
        return str(final)
    if (Path(name) / "config.yaml").is_file() and not (Path(name) / "config.json").is_file():
        raise UserError(
            f"teacher: the run {name} has no final model yet; finish it "
            f"(r1kit train --resume {name}) or name one of its checkpoints ({name}/checkpoints/)"
        )
    return name


def load_student(
    recipe: DistillRecipe, device: str
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The student as the recipe says, LoRA-wrapped if asked, in train-ready dtype."""
    cfg = recipe.student
    if cfg.from_ == "teacher":
        teacher, tokenizer = load_model(teacher_model_name(recipe.teacher), cfg.dtype, device)
        model = prune_depth(teacher, cfg.keep_layers)
    else:
        model, tokenizer = load_model(cfg.name, cfg.dtype, device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora is not None:
        model = with_lora(model, cfg.lora)
    return model, tokenizer


def kept_layers(keep: list[int] | str, depth: int) -> list[int]:
    """The layer indices to keep of `depth`: `every_other` is 0, 2, 4, ...; a list is checked."""
    layers = list(range(0, depth, 2)) if keep == "every_other" else list(keep)
    if not layers or sorted(set(layers)) != layers or not 0 <= layers[0] <= layers[-1] < depth:
        raise UserError(
            f"student.keep_layers: {keep} must be increasing layer indices in 0..{depth - 1}"
        )
    return layers


def prune_depth(model: PreTrainedModel, keep: list[int] | str) -> PreTrainedModel:
    """A fresh model of the config with only the `keep` decoder layers, their weights copied
    (renumbered 0..k-1); per-layer config lists (e.g. layer_types) follow."""
    config = copy.deepcopy(model.config)
    layers = kept_layers(keep, config.num_hidden_layers)
    config.num_hidden_layers = len(layers)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in layers]
    renumber = {old: new for new, old in enumerate(layers)}
    weights = {}
    for key, tensor in model.state_dict().items():
        match = LAYER_KEY.match(key)
        if match is None:
            weights[key] = tensor
        elif int(match[2]) in renumber:
            weights[f"{match[1]}{renumber[int(match[2])]}{match[3]}"] = tensor
    dtype = next(model.parameters()).dtype
    smaller = AutoModelForCausalLM.from_config(config, dtype=dtype)
    smaller.load_state_dict(weights, strict=True)
    return smaller.to(model.device).eval()


def check_same_vocabulary(
    teacher: PreTrainedTokenizerBase, student: PreTrainedTokenizerBase, names: tuple[str, str]
) -> None:
    """Scoring the student's own tokens with the teacher needs one vocabulary: refuse otherwise."""
    if teacher.get_vocab() != student.get_vocab():
        only_teacher = len(set(teacher.get_vocab()) - set(student.get_vocab()))
        raise UserError(
            f"teacher {names[0]!r} and student {names[1]!r} have different vocabularies "
            f"({len(teacher)} vs {len(student)} tokens, {only_teacher} of the teacher's not in "
            "the student's): on-policy distillation scores the student's tokens with the "
            "teacher, so both need the same tokenizer; pick a student of the teacher's family "
            "or prune the teacher (student: {from: teacher, keep_layers: every_other})"
        )
