"""r1kit's GRPO step before and after its learner optimisations, and TRL's, one after the other.

    pip install -e ".[bench]"          # TRL is a benchmark-only dependency
    python benchmarks/grpo_vs_trl.py [--steps 4] [--max-new-tokens 96 --micro-batch 64]
                                     [--gradient-checkpointing] [--only "r1kit after"]

Settings (all): the main recipe (recipes/r1_zero_arithmetic_smollm2.yaml: the built-in
SmolLM2-135M-Instruct in float32 on CPU, 8 prompts x 8 completions, its template, rewards,
temperature, loss, lr, micro-batch), evaluation and checkpoints off. Configurations, each in
its own subprocess so that its peak RSS is its own:
  r1kit before   learner.shared_prefix, skip_zero_advantage off, logprob_chunk 0
  r1kit after    the recipe's defaults (all three on)
  TRL            GRPOTrainer at the same settings (TRL has no stop strings: it may generate more)
Reports, per configuration: the load average before it ran, the median seconds per step (the
first step, a warm-up, left out), completion tokens per second, and peak RSS. Run it on an
idle machine: every number depends on what else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "r1_zero_arithmetic_smollm2.yaml"
BEFORE = ["learner.shared_prefix=false", "learner.skip_zero_advantage=false"]
CONFIGURATIONS = {
    "r1kit before": ["r1kit", *BEFORE, "learner.logprob_chunk=0"],
    "r1kit after": ["r1kit"],
    "TRL GRPOTrainer": ["trl"],
}


def recipe(args: argparse.Namespace, overrides: list[str]):
    from r1kit.recipe import load_recipe

    return load_recipe(
        RECIPE,
        [
            f"train.steps={args.steps}",
            "train.eval_every=0",
            "train.save_every=0",
            "train.samples_per_step=0",
            "data.eval_size=0",
            f"output.dir={args.out}",
            "output.report_to=[]",
            *([f"rollout.max_new_tokens={args.max_new_tokens}"] if args.max_new_tokens else []),
            *([f"learner.micro_batch_size={args.micro_batch}"] if args.micro_batch else []),
            *([f"model.name={args.model}"] if args.model else []),
            *(["model.gradient_checkpointing=true"] if args.gradient_checkpointing else []),
            *overrides,
        ],
    )


def run_r1kit(args: argparse.Namespace, overrides: list[str]) -> list[tuple[float, float]]:
    """(seconds, completion tokens) per step."""
    from grpo.components import Components
    from grpo.trainer import Trainer
    from r1kit.rundir import RunDir

    cfg = recipe(args, overrides)
    run = RunDir(cfg.run_dir())
    run.create(cfg)
    Trainer(cfg, run, Components.build(cfg)).fit()
    per_step = cfg.train.prompts_per_step * cfg.rollout.group_size
    steps = [m for m in run.metrics() if "time/step" in m]  # not the evaluation records
    return [(m["time/step"], m["completion_length/mean"] * per_step) for m in steps]


def run_trl(args: argparse.Namespace) -> list[tuple[float, float]]:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1kit.data import load_data
    from r1kit.models import resolve_model
    from r1kit.templates import render
    from rewards.registry import load_reward

    cfg = recipe(args, [])
    prompts, group = cfg.train.prompts_per_step, cfg.rollout.group_size
    path = resolve_model(cfg.model.name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    stream, _ = load_data(cfg.data, cfg.seed)
    rows = stream.take(prompts * (args.steps + 1))
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
                timings.append((self.seconds, logs["completions/mean_length"] * prompts * group))

    learner = cfg.learner
    config = GRPOConfig(
        output_dir=f"{args.out}/trl",
        max_steps=args.steps,
        num_generations=group,
        per_device_train_batch_size=learner.micro_batch_size,
        gradient_accumulation_steps=max(prompts * group // learner.micro_batch_size, 1),
        max_completion_length=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature,
        beta=learner.beta,
        loss_type=learner.loss,
        learning_rate=learner.lr,
        reward_weights=[r.weight for r in cfg.rewards],
        use_cpu=True,
        bf16=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        model_init_kwargs={"dtype": torch.float32},
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        shuffle_dataset=False,
    )
    trainer = GRPOTrainer(
        model=path,
        reward_funcs=[_trl_reward(load_reward(r.name, r.kwargs)) for r in cfg.rewards],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[StepTimer()],
    )
    trainer.train()
    return timings


def _trl_reward(reward):
    def fn(prompts, completions, answer, **kwargs):
        return reward(prompts, completions, answer=answer)

    fn.__name__ = reward.spec.rsplit(":", 1)[-1]
    return fn


def worker(args: argparse.Namespace) -> None:
    """Run one configuration in this process; write its steps and peak RSS as JSON."""
    kind, *overrides = CONFIGURATIONS[args.worker]
    # Each configuration writes its own run directory (one shared metrics.jsonl would mix them).
    name = f"output.name={args.worker.replace(' ', '-')}"
    steps = run_r1kit(args, [*overrides, name]) if kind == "r1kit" else run_trl(args)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    Path(args.result).write_text(json.dumps({"steps": steps, "peak_rss_gb": peak_kb / 2**20}))


def summary(name: str, load: float, result: dict) -> list[str]:
    timed = result["steps"][1:] or result["steps"]  # leave out the warm-up step
    seconds = statistics.median(s for s, _ in timed)
    tokens = sum(t for _, t in timed) / sum(s for s, _ in timed)
    return [name, f"{load:.2f}", f"{seconds:.1f}", f"{tokens:.1f}", f"{result['peak_rss_gb']:.2f}"]


def _settings(args: argparse.Namespace) -> list[str]:
    """The command-line settings a worker needs to run what this run was asked for."""
    given = {"--steps": args.steps, "--out": args.out}
    given |= {"--max-new-tokens": args.max_new_tokens, "--micro-batch": args.micro_batch}
    given |= {"--model": args.model}
    flags = ["--gradient-checkpointing"] if args.gradient_checkpointing else []
    return [item for key, value in given.items() if value for item in (key, str(value))] + flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per configuration")
    parser.add_argument("--max-new-tokens", type=int, help="override rollout.max_new_tokens")
    parser.add_argument("--micro-batch", type=int, help="override learner.micro_batch_size")
    parser.add_argument("--model", help="override model.name (tiny-llama: a smoke test of r1kit)")
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="model.gradient_checkpointing on"
    )
    parser.add_argument("--only", nargs="+", choices=CONFIGURATIONS, help="run only these")
    parser.add_argument("--out", default="runs/bench-grpo-vs-trl")
    parser.add_argument("--worker", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("configuration", "load avg (1 min)", "median s/step", "tokens/s", "peak RSS GB")
    seconds = {}
    for name in args.only or CONFIGURATIONS:
        load = os.getloadavg()[0]
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            subprocess.run(
                [sys.executable, __file__, *_settings(args), "--worker", name]
                + ["--result", result.name],
                check=True,
            )
            row = summary(name, load, json.loads(Path(result.name).read_text()))
        seconds[name] = float(row[2])
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name in seconds.keys() - {"r1kit after"}:
        if "r1kit after" in seconds:
            ratio = seconds[name] / seconds["r1kit after"]
            console.print(f"r1kit after is {ratio:.2f}x faster per step than {name}")


if __name__ == "__main__":
    main()
