"""The GRPO training loop: prompts -> rollouts -> rewards -> advantages -> learner -> weight sync.

    r1kit train recipes/r1_zero_arithmetic_smollm2.yaml      # the CLI builds a Trainer and fits

One step (`Trainer.step`), as in DeepSeekMath/DeepSeek-R1's GRPO with the DAPO refinements the
recipe turns on: sample G completions for each of P prompts with the rollout engine, score
them with rule-based rewards, turn rewards into group-relative advantages (no value model),
take `num_iterations` clipped-surrogate optimizer steps, then stream the new weights to the
engine. Departures from the paper are options: token-level loss aggregation and clip-higher
by default (DAPO), beta 0 unless set, no reference model then.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator

import torch

from grpo.advantages import group_advantages, zero_variance_groups
from grpo.batch import Batch
from grpo.checkpoint import load_checkpoint, save_checkpoint, save_model
from grpo.components import Components
from grpo.display import Display
from grpo.loss import Normalisers
from r1kit.evaluation import evaluate
from r1kit.recipe import Recipe
from r1kit.rundir import RunDir
from r1kit.templates import encode, render
from rewards.scoring import score
from rollout.types import Completion, SamplingParams


class Trainer:
    """Runs a recipe to completion, checkpointing as it goes; resumable exactly."""

    def __init__(self, recipe: Recipe, run: RunDir, parts: Components):
        self.recipe, self.run, self.parts = recipe, run, parts
        self.step_done = 0
        self._stop_signal: int | None = None

    def fit(self, resume: bool = False) -> None:
        if resume and (checkpoint := self.run.latest_checkpoint()) is not None:
            self.step_done = load_checkpoint(checkpoint, self.parts)
            self.parts.engine.update_weights(self.parts.learner.named_weights())
            self.run.truncate_after(self.step_done)
        self._catch_signals()
        total = self.recipe.train.steps
        with Display(total, self.step_done) as display:
            if self.step_done == 0:
                self.run.log_metrics(0, self.evaluate())
            while self.step_done < total and self._stop_signal is None:
                metrics = self.step(self.step_done + 1)
                self.step_done += 1
                if self._due(self.recipe.train.eval_every) or self.step_done == total:
                    metrics.update(self.evaluate())
                self.run.log_metrics(self.step_done, metrics)
                display.update(self.step_done, metrics)
                if self._due(self.recipe.train.save_every) or self._stop_signal is not None:
                    self.save()
        if self.step_done == total:
            self.save()
            save_model(self.run.final, self.parts)

    def step(self, step: int) -> dict[str, float]:
        """One GRPO step; returns its metrics."""
        cfg, timer = self.recipe, Timer()
        rows, completions, rewards, sampling_metrics = self.sample(step, timer)
        G = cfg.rollout.group_size
        with timer("learn"):
            advantages = group_advantages(rewards, G, cfg.learner.advantage_scale)
            flat = [c for group in completions for c in group]
            batch = Batch(
                prompt_ids=[c.prompt_token_ids for c in flat],
                completion_ids=[c.token_ids for c in flat],
                rollout_logprobs=[c.logprobs for c in flat],
                advantages=advantages,
                # DAPO overlong filtering: a truncated answer says nothing about its reward.
                loss_mask=[
                    not (cfg.learner.mask_truncated and c.finish_reason == "length") for c in flat
                ],
            )
            norm = Normalisers(max(batch.num_tokens(), 1), len(batch), cfg.rollout.max_new_tokens)
            for iteration in range(cfg.learner.num_iterations):
                store_old = iteration == 0 and cfg.learner.num_iterations > 1
                learn_metrics = self.parts.learner.step(batch, norm, store_old=store_old)
        with timer("sync"):
            self.parts.engine.update_weights(self.parts.learner.named_weights())
        self.run.log_samples(step, self._samples(rows, completions, rewards))
        lengths = torch.tensor([len(c.token_ids) for c in flat], dtype=torch.float)
        return {
            **sampling_metrics,
            **learn_metrics,
            "reward/total/mean": rewards.mean().item(),
            "completion_length/mean": lengths.mean().item(),
            "completion_length/max": lengths.max().item(),
            "truncated_frac": sum(c.finish_reason == "length" for c in flat) / len(flat),
            "zero_variance_frac": zero_variance_groups(rewards, G).float().mean().item(),
            "tokens_per_s": lengths.sum().item() / max(timer.total(), 1e-9),
            **timer.metrics(),
        }

    def sample(
        self, step: int, timer: Timer
    ) -> tuple[list[dict], list[list[Completion]], torch.Tensor, dict]:
        """Rollouts and rewards for `prompts_per_step` groups. With DAPO dynamic sampling,
        groups whose G rewards are all equal (zero advantage, no signal) are dropped and more
        prompts drawn, at most `max_sampling_rounds` times."""
        cfg = self.recipe
        wanted, G = cfg.train.prompts_per_step, cfg.rollout.group_size
        kept_rows, kept_completions, kept_rewards, metrics = [], [], [], {}
        for round_ in range(cfg.learner.max_sampling_rounds if cfg.learner.dynamic_sampling else 1):
            rows = self.parts.stream.take(wanted - len(kept_rows))
            with timer("generate"):
                completions = self.parts.engine.generate(
                    encode(cfg.template, self.parts.tokenizer, [r["prompt"] for r in rows]),
                    self._sampling(seed=cfg.seed * 1_000_003 + step * 97 + round_),
                )
            with timer("reward"):
                scores = self._score(rows, completions)
            rewards = torch.tensor(scores.total, dtype=torch.float)
            metrics.update(scores.stats())
            keep = ~zero_variance_groups(rewards, G) if cfg.learner.dynamic_sampling else None
            for g, row in enumerate(rows):
                if keep is None or keep[g]:
                    kept_rows.append(row)
                    kept_completions.append(completions[g])
                    kept_rewards.append(rewards[g * G : (g + 1) * G])
            if len(kept_rows) == wanted:
                break
        if not kept_rows:  # every group was flat: train on the last draw (zero advantages)
            kept_rows, kept_completions = rows, completions
            kept_rewards = list(rewards.split(G))
        metrics["sampling_rounds"] = round_ + 1
        metrics["groups_kept"] = len(kept_rows)
        return kept_rows, kept_completions, torch.cat(kept_rewards), metrics

    def evaluate(self) -> dict[str, float]:
        """Held-out accuracy (greedy by default) with the same template and verifier."""
        if not self.parts.eval_rows:
            return {}
        sampling = self._sampling(
            seed=self.recipe.seed, n=1, temperature=self.recipe.train.eval_temperature
        )
        result = evaluate(
            self.parts.engine,
            self.parts.tokenizer,
            self.recipe.template,
            self.parts.eval_rows,
            self.parts.correctness,
            sampling,
        )
        return {f"eval/{key}": value for key, value in result.summary.items()}

    def save(self) -> None:
        save_checkpoint(self.run.checkpoint_dir(self.step_done), self.parts, self.step_done)
        self.run.prune_checkpoints(self.recipe.train.keep_last)

    def _score(self, rows: list[dict], completions: list[list[Completion]]):
        """Rewards see the prompt as the model saw it (template applied), as in TRL."""
        rendered = [
            render(self.recipe.template, self.parts.tokenizer, row["prompt"]) for row in rows
        ]
        prompts = [text for text, group in zip(rendered, completions, strict=True) for _ in group]
        texts = [c.text for group in completions for c in group]
        columns = {
            k: [row[k] for row, group in zip(rows, completions, strict=True) for _ in group]
            for k in rows[0]
            if k != "prompt"
        }
        columns["completion_ids"] = [c.token_ids for group in completions for c in group]
        return score(self.parts.rewards, prompts, texts, columns)

    def _sampling(
        self, seed: int, n: int | None = None, temperature: float | None = None
    ) -> SamplingParams:
        r = self.recipe.rollout
        return SamplingParams(
            n=n or r.group_size,
            temperature=r.temperature if temperature is None else temperature,
            top_p=r.top_p,
            top_k=r.top_k,
            max_new_tokens=r.max_new_tokens,
            stop=tuple(r.stop),
            seed=seed,
        )

    def _samples(
        self, rows: list[dict], completions: list[list[Completion]], rewards: torch.Tensor
    ) -> list[dict]:
        count = self.recipe.train.samples_per_step
        G = self.recipe.rollout.group_size
        picked = range(0, len(rows) * G, max(1, len(rows) * G // max(count, 1)))
        return [
            {
                "prompt": rows[i // G]["prompt"],
                "answer": rows[i // G]["answer"],
                "completion": completions[i // G][i % G].text,
                "reward": rewards[i].item(),
            }
            for i in list(picked)[:count]
        ]

    def _due(self, every: int) -> bool:
        return every > 0 and self.step_done % every == 0

    def _catch_signals(self) -> None:
        """SIGINT/SIGTERM finish the current step, checkpoint, and stop: no work is lost."""

        def handler(signum, _frame):
            self._stop_signal = signum

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


class Timer:
    """Wall time per phase of a step (generate / reward / learn / sync)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return sum(self.seconds.values())

    def metrics(self) -> dict[str, float]:
        return {f"time/{phase}": s for phase, s in self.seconds.items()} | {
            "time/step": self.total()
        }
