"""Completion tokens/s of the rollout engines on the same prompts, one after the other.

    python benchmarks/rollout_engines.py [--model smollm2-135m-instruct] [--prompts 4]
        [--group 8] [--new-tokens 64] [--runs hf vllm ray-1 ray-2] [--pool-engine vllm]

hf / vllm: the engine in this process; ray-N: a pool of N Ray actors, each owning a vLLM
engine (`--pool-engine hf` for HF ones). Arithmetic prompts through the chat template, G
samples each at temperature 1, float32 on CPU. Each run is timed after a short warm-up call on
all prompts (so it reaches every actor); its peak RSS is that of this process and all its
descendants (engine processes, Ray actors). Not `rollout.py`: run as a script, that name
would shadow the `rollout` package.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from rich.console import Console
from rich.table import Table

from r1kit.data import load_data
from r1kit.models import TINY_MODELS, load_model, load_tokenizer, resolve_model
from r1kit.recipe import DataConfig, TemplateConfig
from r1kit.templates import encode
from rollout.build import build_engine
from rollout.types import Engine, SamplingParams


@contextmanager
def peak_rss() -> Iterator[list[float]]:
    """Yields a one-element list that holds, on exit, the peak RSS (GB) of this process tree."""
    peak, done = [0.0], threading.Event()

    def poll() -> None:
        while not done.wait(0.2):
            tree = [psutil.Process(), *psutil.Process().children(recursive=True)]
            total = 0
            for process in tree:
                with contextlib.suppress(psutil.Error):  # ended between listing and reading
                    total += process.memory_info().rss
            peak[0] = max(peak[0], total / 2**30)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def timed(engine: Engine, prompts: list[list[int]], sampling: SamplingParams) -> tuple[float, int]:
    """Seconds and completion tokens of one `generate` call."""
    start = time.perf_counter()
    groups = engine.generate(prompts, sampling)
    return time.perf_counter() - start, sum(len(c.token_ids) for g in groups for c in g)


def model_dir(name: str, scratch: str) -> str:
    """An HF directory of the model: tiny models are saved to `scratch` first."""
    if name not in TINY_MODELS:
        return resolve_model(name)
    model, tokenizer = load_model(name)
    model.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    return scratch


def engine_for(run: str, directory: str, pool_engine: str) -> Engine:
    if run in ("hf", "vllm"):
        return build_engine(run, directory)
    workers = int(run.removeprefix("ray-"))
    return build_engine(pool_engine, directory, workers=workers, ray_address="local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--runs", nargs="+", default=["hf", "vllm", "ray-1", "ray-2"])
    parser.add_argument("--pool-engine", choices=["hf", "vllm"], default="vllm")
    args = parser.parse_args()
    directory = model_dir(args.model, tempfile.mkdtemp(prefix="r1kit-bench-"))
    tokenizer = load_tokenizer(args.model)
    stream, _ = load_data(DataConfig(source="arithmetic", eval_size=0), seed=0)
    rows = stream.take(args.prompts)
    prompts = encode(TemplateConfig(name="chat"), tokenizer, [r["prompt"] for r in rows])
    sampling = SamplingParams(n=args.group, max_new_tokens=args.new_tokens, seed=0)
    table = Table(
        "run",
        "start s",
        "generate s",
        "tokens",
        "tok/s",
        "peak RSS GB",
        "load avg",
        title=f"{args.model}: {args.prompts} prompts x {args.group}, "
        f"at most {args.new_tokens} new tokens",
    )
    for run in args.runs:
        with peak_rss() as peak:
            start = time.perf_counter()
            engine = engine_for(run, directory, args.pool_engine)
            started = time.perf_counter() - start
            timed(engine, prompts, SamplingParams(max_new_tokens=4, seed=0))  # warms every actor
            seconds, tokens = timed(engine, prompts, sampling)
            if hasattr(engine, "close"):
                engine.close()
        table.add_row(
            run,
            f"{started:.1f}",
            f"{seconds:.1f}",
            str(tokens),
            f"{tokens / seconds:.1f}",
            f"{peak[0]:.2f}",
            f"{os.getloadavg()[0]:.1f}",
        )
    Console(width=120).print(table)
    print(f"this machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
