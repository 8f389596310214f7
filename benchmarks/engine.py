"""The HF rollout engine's completion tokens/s against plain `model.generate`, same prompts.

    python benchmarks/engine.py [--sizes 8 32 128] [--new-tokens 64]

The built-in SmolLM2-135M-Instruct in float32 on CPU; arithmetic prompts through the chat
template; each batch is size/8 prompts x 8 samples (as GRPO asks for them) at temperature 1.
`model.generate` gets every sequence at once (its prompts repeated), `do_sample=True` with
the same temperature and length limit. Tokens are counted up to and including EOS.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from rich.console import Console
from rich.table import Table
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from r1kit.data import load_data
from r1kit.models import load_model
from r1kit.recipe import DataConfig, TemplateConfig
from r1kit.templates import encode
from rollout import Engine, EngineSpec, ModelSource, SamplingParams, open_engine

GROUP = 8


def engine_run(engine: Engine, prompts: list[list[int]], new_tokens: int) -> tuple[float, int]:
    """Seconds and completion tokens of one `engine.generate` call."""
    start = time.perf_counter()
    groups = engine.generate(prompts, SamplingParams(n=GROUP, max_new_tokens=new_tokens, seed=0))
    return time.perf_counter() - start, sum(len(c.token_ids) for g in groups for c in g)


@torch.inference_mode()
def generate_run(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    new_tokens: int,
) -> tuple[float, int]:
    """Seconds and completion tokens of one `model.generate` call on the same sequences."""
    batch = tokenizer.pad(
        {"input_ids": [p for p in prompts for _ in range(GROUP)]}, return_tensors="pt"
    )
    start = time.perf_counter()
    out = model.generate(
        **batch,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        max_new_tokens=new_tokens,
        pad_token_id=tokenizer.pad_token_id,
    )
    seconds = time.perf_counter() - start
    new = out[:, batch["input_ids"].shape[1] :]
    eos = (new == tokenizer.eos_token_id).int()
    lengths = torch.where(eos.any(-1), eos.argmax(-1) + 1, new.shape[1])
    return seconds, int(lengths.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    model, tokenizer = load_model("smollm2-135m-instruct")
    hf = EngineSpec("hf", options={"batch_size": max(args.sizes)})
    engine = open_engine(hf, ModelSource.live(model, tokenizer))
    stream, _ = load_data(DataConfig(source="arithmetic", eval_size=0), seed=0)
    template = TemplateConfig(name="chat")
    engine_run(engine, encode(template, tokenizer, ["warm up"]), 4)
    table = Table(
        "sequences",
        "engine s",
        "engine tokens",
        "engine tok/s",
        "generate s",
        "generate tokens",
        "generate tok/s",
        "speed-up",
        title=f"completion tokens/s, at most {args.new_tokens} new tokens, float32, "
        f"{torch.get_num_threads()} threads",
    )
    for size in args.sizes:
        rows = stream.take(max(size // GROUP, 1))
        prompts = encode(template, tokenizer, [r["prompt"] for r in rows])
        e_s, e_tok = engine_run(engine, prompts, args.new_tokens)
        g_s, g_tok = generate_run(model, tokenizer, prompts, args.new_tokens)
        table.add_row(
            str(size),
            f"{e_s:.1f}",
            str(e_tok),
            f"{e_tok / e_s:.1f}",
            f"{g_s:.1f}",
            str(g_tok),
            f"{g_tok / g_s:.1f}",
            f"{(e_tok / e_s) / (g_tok / g_s):.2f}x",
        )
    Console(width=140).print(table)
    print(
        f"load average at the end: {os.getloadavg()[0]:.1f} (this machine: {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
