"""Groups: one prompt and its G sampled completions, generated and scored together.

The trainer, `r1kit eval` and `r1kit generate` all go through `generate_groups` and
`score_groups`, so rewards always see the prompt exactly as the model saw it (template
applied, `<think>` pre-filled) and the row's columns, as in TRL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerBase

from r1kit.errors import UserError
from r1kit.recipe import TemplateConfig
from r1kit.templates import render, tokenize
from rewards.registry import RewardError, RewardFn
from rewards.scoring import RewardPool, Scores, WeightedReward, score
from rollout.types import Completion, Engine, Pending, SamplingParams, SubmittingEngine


@dataclass
class Group:
    """A row, its prompt as rendered for the model, its completions and (once scored) each
    reward's values and their weighted total, one per completion."""

    row: dict
    prompt: str
    completions: list[Completion]
    per_reward: dict[str, list[float | None]] = field(default_factory=dict)
    total: list[float] = field(default_factory=list)

    def rewards(self) -> torch.Tensor:
        """The total rewards as the float32 tensor advantages are computed from."""
        return torch.tensor(self.total, dtype=torch.float)

    def is_flat(self) -> bool:
        """All completions scored the same: zero advantage, no learning signal."""
        rewards = self.rewards()
        return bool((rewards == rewards[0]).all())


def generate_groups(
    engine: Engine,
    tokenizer: PreTrainedTokenizerBase,
    template: TemplateConfig,
    rows: list[dict],
    sampling: SamplingParams,
) -> list[Group]:
    """Render each row's question with the template and sample `sampling.n` completions."""
    prompts, token_ids = _render(tokenizer, template, rows)
    completions = engine.generate(token_ids, sampling)
    return _groups(rows, prompts, completions)


@dataclass
class PendingGroups:
    """Groups whose completions are being sampled elsewhere; `result()` waits for them."""

    rows: list[dict]
    prompts: list[str]
    pending: Pending

    def result(self) -> list[Group]:
        return _groups(self.rows, self.prompts, self.pending.result())


def submit_groups(
    engine: SubmittingEngine,
    tokenizer: PreTrainedTokenizerBase,
    template: TemplateConfig,
    rows: list[dict],
    sampling: SamplingParams,
) -> PendingGroups:
    """`generate_groups` without waiting: sampling runs on the engine's workers meanwhile."""
    prompts, token_ids = _render(tokenizer, template, rows)
    pending = engine.submit(token_ids, sampling)
    return PendingGroups(rows, prompts, pending)


def _render(
    tokenizer: PreTrainedTokenizerBase, template: TemplateConfig, rows: list[dict]
) -> tuple[list[str], list[list[int]]]:
    """Each row's question as the model sees it: the rendered text and its token ids."""
    prompts = [render(template, tokenizer, row["prompt"]) for row in rows]
    return prompts, [tokenize(tokenizer, p) for p in prompts]


def _groups(
    rows: list[dict], prompts: list[str], completions: list[list[Completion]]
) -> list[Group]:
    return [
        Group(row, prompt, group)
        for row, prompt, group in zip(rows, prompts, completions, strict=True)
    ]


def score_groups(
    groups: list[Group], rewards: list[WeightedReward], pool: RewardPool | None = None
) -> Scores:
    """Score every completion with every reward; fills each group's `per_reward` and
    `total` and returns the batch's `Scores`. Rewards get the rendered prompt, the row's
    columns (but `prompt`) and `completion_ids`. A misbehaving reward is a UserError."""
    scores = _score(groups, rewards, pool)
    start = 0
    for group in groups:
        end = start + len(group.completions)
        group.per_reward = {name: values[start:end] for name, values in scores.per_reward.items()}
        group.total = scores.total[start:end]
        start = end
    return scores


def solved(
    groups: list[Group], correctness: RewardFn, pool: RewardPool | None = None
) -> list[list[bool]]:
    """Per group, which completions `correctness` (a reward whose 1 means correct) accepts,
    scored as every reward is: in `pool`'s workers, under a deadline, failures counted."""
    scores = _score(groups, [WeightedReward("correctness", correctness)], pool)
    values = iter(scores.per_reward["correctness"])
    return [[next(values) == 1 for _ in group.completions] for group in groups]


def _score(groups: list[Group], rewards: list[WeightedReward], pool: RewardPool | None) -> Scores:
    """`rewards.scoring.score` over every completion of `groups`, in group order. Rewards read
    each completion's own text; with tools, the trajectory and its calls come as columns."""
    flat = [(group, completion) for group in groups for completion in group.completions]
    keys = dict.fromkeys(key for group in groups for key in group.row if key != "prompt")
    columns = {key: [group.row.get(key) for group, _ in flat] for key in keys}
    columns["completion_ids"] = [completion.token_ids for _, completion in flat]
    completions = [completion for _, completion in flat]
    if any(completion.model_tokens is not None for completion in completions):
        columns |= trajectory_columns(completions)
    prompts = [group.prompt for group, _ in flat]
    # The model's own text: a tool's output (which may hold `<answer>`) is never the answer.
    texts = [completion.model_text for completion in completions]
    try:
        return score(rewards, prompts, texts, columns, pool=pool)
    except RewardError as err:
        raise UserError(str(err)) from err


def trajectory_columns(completions: list[Completion]) -> dict[str, list]:
    """The columns a batch with tool calls adds for rewards: each completion's whole
    `trajectory` (observations included), its `tool_calls` (the code of each call) and their
    `tool_outputs` (what came back, as the model saw it)."""
    return {
        "trajectory": [c.text for c in completions],
        "tool_calls": [[call.code for call in c.tool_calls] for c in completions],
        "tool_outputs": [[call.output for call in c.tool_calls] for c in completions],
    }
