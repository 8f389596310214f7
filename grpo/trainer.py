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
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace

import torch

from grpo.card import grpo_card
from grpo.components import Components
from grpo.health import ACCURACY, Monitor
from grpo.loss import adapt_entropy_coef
from grpo.objective import PolicyGradient, forking_tokens, kl_penalties, whole_batch_values
from grpo.prefetch import Prefetch, staleness
from grpo.sync_check import SyncCheckError, sync_problem
from r1kit.advantages import group_advantages
from r1kit.display import Display
from r1kit.durable import DiskFault
from r1kit.errors import UserError
from r1kit.evaluation import EvalResult, evaluate
from r1kit.groups import Group, generate_groups, score_groups, solved, submit_groups
from r1kit.learner.batch import to_batch
from r1kit.learner.checkpoint import resume_from, save_checkpoint, save_model
from r1kit.placement import Where, placement
from r1kit.recipe import Recipe
from r1kit.rundir import RunDir
from r1kit.stopping import Stopper, StopRequested
from r1kit.tool_metrics import tool_metrics
from r1kit.turns import own_completion, sample_turns
from rewards.countdown import equation_form
from rewards.math import extract_answer
from rollout.types import Completion, SamplingParams


class Trainer:
    """Runs a recipe to completion, checkpointing as it goes; resumable exactly."""

    def __init__(self, recipe: Recipe, run: RunDir, parts: Components):
        self.recipe, self.run, self.parts = recipe, run, parts
        self.step_done = 0
        self.stopper = Stopper()
        self.prefetch = Prefetch(parts.stream)  # rollout.async: the next steps' first rounds
        self._saved_step: int | None = None
        self._sync_warned = False
        self._restarts = 0  # rollout workers replaced so far (placement.json rewritten on each)
        self.entropy_coef = recipe.learner.entropy_coef  # adapted each step with entropy_target
        self.best: float | None = None  # held-out pass@1 of best/ (train.save_best)

    def fit(self, resume: bool = False) -> int | None:
        """Train until `train.steps` or a stop signal, checkpointing on the way; return the
        signal that stopped the run early (after its checkpoint), or None. A user's mistake
        found mid-run (a reward failing on too much of a batch) is checkpointed first; a disk
        fault is not (the disk that refused a write would refuse the checkpoint), nor is a
        failed sync check (the learner has already learnt from the bad samples: the last
        checkpoint is the last good state)."""
        if resume:
            self._resume()
        try:
            with self.stopper:
                self._train()
        except (DiskFault, SyncCheckError):
            raise
        except UserError:
            self.save()
            raise
        finally:
            self.parts.close()
        return self.stopper.signum

    def _resume(self) -> None:
        """Continue from the newest checkpoint that verifies (none: start over at step 0);
        the logs of the steps that will run again are cut."""
        state = {"entropy_coef": self.entropy_coef, "prefetched": None}
        # best/ is a model this run did make and score, kept even when its step runs again.
        record = self.run.best_record()
        self.best = record[ACCURACY] if record else None
        step = resume_from(self.run, self.parts, state)
        if step is not None:
            self.step_done = self._saved_step = step
            self.entropy_coef = state["entropy_coef"]
            self.parts.learner.set_lr(self.recipe.learner.lr)  # a `--set` on resume wins
            self.parts.sync_weights()
            if state["prefetched"] is not None:  # the rounds in flight at the save: exact
                self.prefetch.load_state_dict(state["prefetched"], self.parts.engine.version)

    def _train(self) -> None:
        total = self.recipe.train.steps
        with Display(total, self.step_done) as display:
            if self.step_done == 0:
                self.run.log_metrics(0, before := self._evaluate_unless_stopped())
                self._keep_best(before)
            health = Monitor(self.run.metrics())
            while self.step_done < total and not self.stopper.requested:
                position = self.prefetch.position()
                try:
                    metrics = self.step(self.step_done + 1)
                except StopRequested:  # cut while sampling or scoring: the step never happened
                    self.prefetch.cancel(position)
                    break
                self.step_done += 1
                if self._due(self.recipe.train.eval_every) or self.step_done == total:
                    metrics.update(self._evaluate_unless_stopped())
                flags, raised = health.observe(self.step_done, metrics)
                metrics.update(flags)
                for message in raised:
                    warnings.warn(f"step {self.step_done}: {message}", stacklevel=2)
                self.run.log_metrics(self.step_done, metrics)
                self._keep_best(metrics)
                display.update(self.step_done, metrics)
                if self._due(self.recipe.train.save_every):
                    self.save()
        self.save()
        if self.step_done == total:
            save_model(self.run.final, self.parts, card=grpo_card(self.recipe, self.run))

    def step(self, step: int) -> dict[str, float]:
        """One GRPO step: rollout -> rewards -> advantages -> learner -> weight sync."""
        cfg, timer = self.recipe, Timer()
        groups, rollout_metrics = self.rollout(step, timer)
        rollout_metrics |= self._replaced_workers()
        if cfg.rollout.async_:  # the next k steps sample while this step learns
            rollout_metrics |= staleness(self.parts.engine.version, _completions(groups))
            rollout_metrics["rollout/dropped_rounds"] = self.prefetch.dropped
            for ahead in self.prefetch.ahead(step, cfg.rollout.max_staleness, cfg.train.steps):
                self._prefetch(ahead)
        if not cfg.rollout.async_:  # async samples while the learner trains: no sleep
            self.parts.engine.sleep()  # the GPU is the learner's; update_weights wakes it
        with timer("learn"):
            rewards = torch.cat([group.rewards() for group in groups])
            # Async, TIS off: the ratio's old policy is the engine that sampled each completion
            # (up to k versions behind). TIS on: the learner's own, weighted by learner / engine.
            engine_old = cfg.rollout.async_ and cfg.learner.tis.level == "none"
            batch = to_batch(_completions(groups), None, cfg.train.mask_truncated, engine_old)
            values = whole_batch_values(self.parts.learner, batch, cfg.learner)  # top-q, kl_in
            kl_penalty = kl_penalties(values, batch, cfg.learner)  # 0s unless kl_in: reward
            batch.advantages = advantages = group_advantages(
                rewards - kl_penalty,
                cfg.rollout.group_size,
                cfg.learner.advantage_scale,
                estimator=cfg.learner.advantage,
                k=cfg.learner.passk,
            )
            batch.selected = forking_tokens(values, batch, cfg.learner.entropy_top_q)
            norm = batch.normalisers(cfg.rollout.max_new_tokens)
            for iteration in range(cfg.learner.num_iterations):
                store_old = iteration == 0 and cfg.learner.num_iterations > 1
                objective = PolicyGradient(cfg.learner, store_old, self.entropy_coef)
                learn_metrics = self.parts.learner.step(batch, objective, norm)
        if "entropy" in learn_metrics:  # absent when every sequence was skipped: nothing ran
            learn_metrics |= self._adapt_entropy_coef(learn_metrics["entropy"])
            learn_metrics |= self._check_sync(step, learn_metrics["mismatch_kl"])
        if cfg.learner.kl_in == "reward":
            learn_metrics["kl_penalty"] = kl_penalty.mean().item()
        with timer("sync"):
            self.parts.sync_weights()
        self.run.log_samples(step, self._examples(groups, advantages))
        completions = _completions(groups)
        lengths = torch.tensor([c.model_token_count for c in completions], dtype=torch.float)
        return {
            **rollout_metrics,
            **learn_metrics,
            "reward/total/mean": rewards.mean().item(),
            "completion_length/mean": lengths.mean().item(),
            "completion_length/max": lengths.max().item(),
            "truncated_frac": sum(c.finish_reason == "length" for c in completions)
            / len(completions),
            "zero_variance_frac": torch.tensor([g.is_flat() for g in groups]).float().mean().item(),
            "tokens_per_s": lengths.sum().item() / max(timer.total(), 1e-9),
            **tool_metrics(completions),
            **timer.metrics(),
        }

    def record_placement(self) -> Where | None:
        """Write where the Ray actors run now to placement.json; what it wrote (None: none)."""
        where = placement(self.parts.engine, self.parts.learner)
        if where is not None:
            self.run.write_placement(where)
        return where

    def _replaced_workers(self) -> dict[str, float]:
        """`rollout/restarts`: Ray workers replaced in this process (a dead actor, a lost node),
        with placement.json rewritten after each; {} for an in-process engine."""
        restarts = getattr(self.parts.engine, "restarts", None)
        if restarts is None:
            return {}
        if restarts != self._restarts:
            self._restarts = restarts
            self.record_placement()
        return {"rollout/restarts": restarts}

    def _adapt_entropy_coef(self, entropy: float) -> dict[str, float]:
        """With `learner.entropy_target`: the coefficient this step used, for the log, and the
        next step's, moved towards the target (Skywork-OR1); {} without one."""
        cfg = self.recipe.learner
        if cfg.entropy_target is None:
            return {}
        used = self.entropy_coef
        self.entropy_coef = adapt_entropy_coef(
            used, entropy, cfg.entropy_target, cfg.entropy_coef_step, cfg.entropy_coef_max
        )
        return {"entropy_coef": used}

    def _check_sync(self, step: int, mismatch_kl: float) -> dict[str, float]:
        """Stop (action error) or warn once (action warn) when this step's samples did not come
        from the learner's weights (grpo/sync_check.py); the metric when it warns."""
        problem = sync_problem(mismatch_kl, self.recipe.rollout)
        if problem is None:
            return {}
        if self.recipe.rollout.sync_check.action == "error":
            raise SyncCheckError(f"step {step}: {problem}")
        if not self._sync_warned:
            warnings.warn(f"step {step}: {problem}", stacklevel=2)
            self._sync_warned = True
        return {"sync_check/failed": 1.0}

    def rollout(self, step: int, timer: Timer) -> tuple[list[Group], dict[str, float]]:
        """`prompts_per_step` scored groups. With DAPO dynamic sampling, groups whose G rewards
        are all equal (zero advantage, no signal) are dropped and more prompts drawn, at most
        `max_sampling_rounds` times, as many as the keep rate so far says fill the batch."""
        cfg, parts = self.recipe, self.parts
        wanted = cfg.train.prompts_per_step
        rounds = cfg.train.max_sampling_rounds if cfg.train.dynamic_sampling else 1
        kept: list[Group] = []
        metrics: dict[str, float] = {}
        drawn = 0
        for attempt in range(rounds):
            with timer("generate"), self.stopper.interruptible():
                first_async = attempt == 0 and cfg.rollout.async_
                groups = self._take_prefetched(step) if first_async else None
                if groups is None:
                    count = prompts_to_draw(
                        wanted - len(kept), drawn, len(kept), cfg.train.max_oversample
                    )
                    rows = parts.stream.take(count)
                    sampling = cfg.rollout.params(cfg.rollout.group_size, self._seed(step, attempt))
                    groups = generate_groups(
                        parts.engine, parts.tokenizer, cfg.template, rows, sampling
                    )
            drawn += len(groups)
            with timer("reward"), self.stopper.interruptible():
                metrics.update(score_groups(groups, parts.rewards, parts.reward_pool).stats())
                if parts.stream.adaptive:  # curriculum / pass rates learn what the model solves
                    outcomes = solved(groups, parts.correctness, parts.reward_pool)
                    parts.stream.record([g.row for g in groups], outcomes)
            metrics["sampling_rounds"] = attempt + 1
            kept += [g for g in groups if not (cfg.train.dynamic_sampling and g.is_flat())]
            if len(kept) >= wanted:
                kept = kept[:wanted]
                break
        if not kept:  # every group was flat: train on the last draw (zero advantages)
            kept = groups
        metrics["groups_kept"] = len(kept)
        metrics.update(parts.stream.metrics())
        return kept, metrics

    def _prefetch(self, step: int) -> None:
        """Submit `step`'s first sampling round to the rollout workers (rollout.async)."""
        cfg, parts = self.recipe, self.parts
        sampling = cfg.rollout.params(cfg.rollout.group_size, self._seed(step, 0))
        self.prefetch.start(
            step,
            cfg.train.prompts_per_step,
            lambda rows: submit_groups(parts.engine, parts.tokenizer, cfg.template, rows, sampling),
        )

    def _take_prefetched(self, step: int) -> list[Group] | None:
        """`step`'s prefetched round, unless none was or it is more than k versions behind."""
        bound = self.recipe.rollout.max_staleness
        return self.prefetch.take(step, self.parts.engine.version, bound)

    def _seed(self, step: int, attempt: int) -> int:
        """The sampling seed of a step's sampling round."""
        return self.recipe.seed * 1_000_003 + step * 97 + attempt

    def evaluate(self) -> dict[str, float]:
        """Held-out accuracy (greedy by default) with the same template and verifier."""
        if not self.parts.eval_rows:
            return {}
        # The rollout's settings, one sample each, at train.eval_temperature (0, greedy, is
        # allowed there; the rollout's own temperature must be above 0).
        sampling = replace(
            self.recipe.rollout.params(1, self.recipe.seed),
            temperature=self.recipe.train.eval_temperature,
        )
        result = self._evaluate_with(sampling)
        metrics = {f"eval/{key}": value for key, value in result.summary.items()}
        if self.recipe.data.source == "countdown":
            metrics["eval/answer_forms"] = answer_forms(result.samples)
        samples = self.recipe.train.eval_pass_k
        if samples:  # pass@k from `samples` draws at the rollout temperature: does it explore?
            drawn = self._evaluate_with(self.recipe.rollout.params(samples, self.recipe.seed))
            passes = {k: v for k, v in drawn.summary.items() if k.startswith("pass@")}
            metrics |= {f"eval/sampled/{key}": value for key, value in passes.items()}
        return metrics

    def _evaluate_with(self, sampling: SamplingParams) -> EvalResult:
        """The held-out rows evaluated with `sampling`."""
        return evaluate(
            self.parts.engine,
            self.parts.tokenizer,
            self.recipe.template,
            self.parts.eval_rows,
            self.parts.correctness,
            sampling,
        )

    def _evaluate_unless_stopped(self) -> dict[str, float]:
        """`evaluate`, left out (empty) when a stop signal cuts it."""
        try:
            with self.stopper.interruptible():
                return self.evaluate()
        except StopRequested:
            return {}

    def _keep_best(self, metrics: dict[str, float]) -> None:
        """With train.save_best, write best/ when this step's held-out pass@1 beats best/'s
        (logged first: its card reads this step's evaluation from the log)."""
        accuracy = metrics.get(ACCURACY)
        if not self.recipe.train.save_best or accuracy is None:
            return
        if self.best is not None and accuracy <= self.best:
            return
        card = grpo_card(self.recipe, self.run)
        extra = self.run.best_files(self.step_done, accuracy)
        save_model(self.run.best, self.parts, card=card, extra=extra)
        self.best = accuracy

    def save(self) -> None:
        """Checkpoint the current step (once: a step already saved is not written again)."""
        if self._saved_step == self.step_done:
            return
        trainer = {"entropy_coef": self.entropy_coef}
        if self.recipe.rollout.async_:  # the rounds in flight, waited for, saved with the step
            trainer["prefetched"] = self.prefetch.state_dict(self.parts.engine.version)
        save_checkpoint(
            self.run.checkpoint_dir(self.step_done),
            self.parts,
            self.step_done,
            config=self.run.config,
            trainer=trainer,
        )
        self.run.prune_checkpoints(self.recipe.train.keep_last)
        self._saved_step = self.step_done

    def _examples(self, groups: list[Group], advantages: torch.Tensor) -> list[dict]:
        """`samples_per_step` completions spread evenly over the batch, for samples.jsonl:
        each with its total reward, every reward's value, its advantage and, when it called
        tools, its turns."""
        flat = [(group, i) for group in groups for i in range(len(group.completions))]
        count = self.recipe.train.samples_per_step
        picked = list(enumerate(flat))[:: max(1, len(flat) // max(count, 1))][:count]
        return [
            {
                "prompt": group.row["prompt"],
                "answer": group.row["answer"],
                "completion": group.completions[i].text,
                "reward": group.rewards()[i].item(),
                "rewards": {name: values[i] for name, values in group.per_reward.items()},
                "advantage": advantages[n].item(),
                **sample_turns(group.completions[i]),
            }
            for n, (group, i) in picked
        ]

    def _due(self, every: int) -> bool:
        return every > 0 and self.step_done % every == 0


def prompts_to_draw(missing: int, drawn: int, kept: int, max_oversample: float) -> int:
    """Prompts for the next dynamic-sampling round: the first round draws what is missing;
    later ones draw enough to fill the batch at the keep rate seen so far (DAPO oversamples),
    at most `max_oversample` times what is missing."""
    if drawn == 0:
        return missing
    most = math.ceil(missing * max_oversample)
    return min(most, math.ceil(missing * drawn / kept)) if kept else most


def answer_forms(samples: list[dict]) -> int:
    """How many distinct Countdown equation forms (numbers abstracted) the correct held-out
    answers use: 1 means one pattern learned, not a search."""
    forms = {
        equation_form(extract_answer(own_completion(sample)))
        for sample in samples
        if sample["correct"]
    }
    return len(forms - {None})


def _completions(groups: list[Group]) -> list[Completion]:
    return [c for group in groups for c in group.completions]


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
