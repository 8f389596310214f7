"""r1kit's GRPO step against TRL's GRPOTrainer at identical settings, one after the other.

    pip install -e ".[bench]"          # TRL is a benchmark-only dependency
    python benchmarks/grpo_vs_trl.py [--steps 3]

Settings (both): the built-in SmolLM2-135M-Instruct in float32 on CPU, 8 prompts x 4
completions per step, 64 new tokens, temperature 1, beta 0.04 (so both keep a reference
model), token-level (DAPO) loss, micro-batches of 16 completions, lr 1e-6, the same prompts
(arithmetic, chat template) and the same math reward. Reports seconds per step and completion
tokens per second (generated tokens / step time) for each, and their ratio. The first step of
each is a warm-up and is left out of the averages.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from grpo.components import Components
from grpo.trainer import Trainer
from r1kit.data import load_data
from r1kit.models import resolve_model
from r1kit.recipe import validate
from r1kit.rundir import RunDir
from r1kit.templates import render
from rewards.registry import load_reward

PROMPTS, G, NEW_TOKENS, BETA, MICRO = 8, 4, 64, 0.04, 16


def recipe(steps: int, out: str):
    return validate(
        {
            "model": {"name": "smollm2-135m-instruct"},
            "data": {"source": "arithmetic", "eval_size": 0},
            "template": {"name": "chat"},
            "rollout": {"group_size": G, "max_new_tokens": NEW_TOKENS, "temperature": 1.0},
            "rewards": [{"name": "math"}],
            "learner": {"lr": 1e-6, "beta": BETA, "micro_batch_size": MICRO, "loss": "dapo"},
            "train": {
                "steps": steps,
                "prompts_per_step": PROMPTS,
                "eval_every": 0,
                "save_every": 0,
                "samples_per_step": 0,
            },
            "output": {"dir": out, "name": "bench", "tensorboard": False},
        }
    )


def run_r1kit(steps: int, out: str) -> list[tuple[float, float]]:
    """(seconds, completion tokens) per step."""
    cfg = recipe(steps, out)
    run = RunDir(cfg.run_dir())
    run.create(cfg, tensorboard=False)
    trainer = Trainer(cfg, run, Components.build(cfg))
    trainer.fit()
    return [(m["time/step"], m["completion_length/mean"] * PROMPTS * G) for m in run.metrics()[1:]]


def run_trl(steps: int, out: str) -> list[tuple[float, float]]:
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    cfg = recipe(steps, out)
    path = resolve_model(cfg.model.name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    stream, _ = load_data(cfg.data, cfg.seed)
    rows = stream.take(PROMPTS * (steps + 1))
    dataset = Dataset.from_list(
        [
            {"prompt": render(cfg.template, tokenizer, r["prompt"]), "answer": r["answer"]}
            for r in rows
        ]
    )
    timings: list[tuple[float, float]] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.start

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "completions/mean_length" in logs:
                timings.append((self.seconds, logs["completions/mean_length"] * PROMPTS * G))

    args = GRPOConfig(
        output_dir=f"{out}/trl",
        max_steps=steps,
        num_generations=G,
        per_device_train_batch_size=MICRO,
        gradient_accumulation_steps=PROMPTS * G // MICRO,
        max_completion_length=NEW_TOKENS,
        temperature=1.0,
        beta=BETA,
        loss_type="dapo",
        learning_rate=1e-6,
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        model_init_kwargs={"dtype": torch.float32},
        shuffle_dataset=False,
    )
    math = load_reward("math")
    trainer = GRPOTrainer(
        model=path,
        reward_funcs=[
            lambda prompts, completions, answer, **kw: math(prompts, completions, answer=answer)
        ],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[StepTimer()],
    )
    trainer.train()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="runs/bench-grpo-vs-trl")
    args = parser.parse_args()
    results = {
        "r1kit": run_r1kit(args.steps, args.out),
        "TRL GRPOTrainer": run_trl(args.steps, args.out),
    }
    table = Table(
        "trainer", "s/step", "completion tokens/s", title="GRPO step, SmolLM2-135M float32 CPU"
    )
    speed = {}
    for name, steps in results.items():
        timed = steps[1:] or steps  # leave out the warm-up step
        seconds = sum(s for s, _ in timed) / len(timed)
        tokens = sum(t for _, t in timed) / sum(s for s, _ in timed)
        speed[name] = seconds
        table.add_row(name, f"{seconds:.1f}", f"{tokens:.1f}")
    Console().print(table)
    Console().print(f"r1kit is {speed['TRL GRPOTrainer'] / speed['r1kit']:.2f}x faster per step")


if __name__ == "__main__":
    main()
