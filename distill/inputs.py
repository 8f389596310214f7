"""What a distill run reads before it writes anything (`prepare`): data rows, the traces file
turned into SFT examples that must fit sft.max_length, the student's and teacher's tokenizers,
their chat templates and (on-policy) one vocabulary. A bad one is a UserError naming it, and
no run directory is left behind."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from distill.examples import Example, make_examples
from distill.recipe import DistillRecipe
from distill.student import check_same_vocabulary, teacher_model_name
from distill.traces import Trace, TracesError, load_traces
from r1kit.data import PromptStream, load_data
from r1kit.models import ModelError, load_tokenizer
from r1kit.recipe import RecipeError


@dataclass
class SFTData:
    """The SFT examples of a traces file, and how many traces it held and were too long."""

    traces: int
    examples: list[Example]
    too_long: int


@dataclass
class Inputs:
    """What a run reads before it writes anything; `sft` is None when the run generates its
    traces (or distills on-policy)."""

    stream: PromptStream
    eval_rows: list[dict]
    tokenizer: PreTrainedTokenizerBase  # the student's
    sft: SFTData | None


def prepare(recipe: DistillRecipe) -> Inputs:
    """Every input the recipe names, read and checked: a bad data or traces row, traces that
    do not fit sft.max_length, a model without the template it needs or of another
    vocabulary raise a UserError naming it, before the run directory exists."""
    stream, eval_rows = load_data(recipe.data, recipe.seed)
    student = teacher_model_name(recipe.teacher) if recipe.student.from_ else recipe.student.name
    field = "teacher" if recipe.student.from_ else "student.name"
    tokenizer = named_tokenizer(student, field, chat=True)
    if recipe.mode == "on_policy":
        teacher = named_tokenizer(teacher_model_name(recipe.teacher), "teacher")
        check_same_vocabulary(teacher, tokenizer, (recipe.teacher, student))
    elif recipe.traces is None:
        chat = recipe.generate.template.name == "chat"
        named_tokenizer(teacher_model_name(recipe.teacher), "teacher", chat)
    sft = None
    if recipe.mode == "sft" and recipe.traces is not None:
        sft = sft_data(load_traces(recipe.traces), tokenizer, recipe, recipe.traces.source)
    return Inputs(stream, eval_rows, tokenizer, sft)


def named_tokenizer(name: str, field: str, chat: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer of the model `field` names (with a chat template when `chat`); a
    RecipeError naming the field when it cannot be had."""
    try:
        tokenizer = load_tokenizer(name)
    except ModelError as err:
        raise RecipeError(f"{field}: {err}") from None
    if chat and tokenizer.chat_template is None:
        raise RecipeError(
            f"{field}: {name} has no chat template, and the prompts are written in it "
            "(template.name: chat); pick a chat model"
        )
    return tokenizer


def sft_data(
    traces: list[Trace],
    tokenizer: PreTrainedTokenizerBase,
    recipe: DistillRecipe,
    source: str,
    fix: str = "raise sft.max_length",
) -> SFTData:
    """The traces as examples in the student's template; TracesError saying how to `fix` it
    when none fits."""
    max_length = recipe.sft.max_length
    examples, too_long = make_examples(traces, tokenizer, recipe.template, max_length)
    if not examples:
        raise TracesError(
            f"{source}: none of its {len(traces)} traces fits in sft.max_length={max_length} "
            f"tokens (prompt + reply); {fix}"
        )
    return SFTData(len(traces), examples, too_long)
