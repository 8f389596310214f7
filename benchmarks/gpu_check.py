"""One check of everything that only runs on CUDA, on one GPU, in at most ~8 minutes.

    python benchmarks/gpu_check.py [--out gpu_check] [--steps 4] [--max-minutes 8] [--dry-run]

Rows, each in its own process under a time limit (a row that hangs or runs out of memory
costs only itself; rows left when the time is spent are reported as skipped):
  hf-bf16         the main recipe in bf16 on the HF engine
  vllm-colocated  the same on vLLM in the learner's process: 30% of the GPU, asleep while the
                  learner trains, full weights by CUDA IPC (rollout/native_transfer.py)
  vllm-lora       the same with LoRA r 16: adapter-only updates (rollout/adapters.py)
  transfer-135m   one update of the built-in model into vLLM: CUDA IPC vs the /dev/shm reload
  transfer-1.5b   the same for a random 1.5B-class model (Qwen2-1.5B's layer shapes)
  fsdp2-nccl      one FSDP2 learner step on NCCL (world size 1)
  nccl-transfer   vLLM in a Ray worker on a second GPU, updated by NCCL (needs 2 GPUs)
The training rows report s/step and tokens/s (medians after the first step), peak GPU memory
(nvidia-smi, whole GPU), sync seconds and the sync check's figure (max mismatch_kl after the
first update; rollout.sync_check's limit is 0.01). The table is printed and written to
<out>/gpu_check.md. --dry-run prints the plan (what each row runs, its settings, the weight
route) without CUDA or a model and exits 0; without CUDA and without --dry-run it exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rollout.weight_transfer import choose_route, native_api_present

MAIN = "recipes/r1_zero_arithmetic_smollm2.yaml"
BUILT_IN = "smollm2-135m-instruct"
CLI = (sys.executable, "-m", "r1kit.cli", "train")
LIMIT_S = 150  # one row at most; the whole run is bounded by --max-minutes as well
BF16 = ["model.dtype=bfloat16", "data.eval_size=16", "train.eval_every=0", "train.save_every=0"]
VLLM = [
    "rollout.engine=vllm",
    "rollout.vllm.gpu_memory_utilization=0.3",
    "rollout.vllm.sleep_level=1",
    "rollout.vllm.enforce_eager=true",  # no graph capture: minutes of start-up saved
]
LORA = ["model.lora.r=16", "model.lora.alpha=32"]


@dataclass(frozen=True)
class Row:
    """One line of the check: `settings` are a training row's recipe overrides or a probe's."""

    name: str
    what: str
    settings: tuple[str, ...]
    route: str
    probe: bool = False  # a function of this script (run as --probe NAME), else `r1kit train`
    gpus: int = 1


def plan() -> list[Row]:
    """The rows, with the weight route each would take on a GPU with this vLLM."""
    native = native_api_present()
    ipc = choose_route("cuda", native, colocated=True)
    lora = choose_route("cuda", native, colocated=True, lora_modules=["all-linear"])
    nccl = choose_route("cuda", native, colocated=False)
    return [
        Row("hf-bf16", "main recipe, bf16, HF engine", (*BF16,), "in place (the policy itself)"),
        Row("vllm-colocated", "main recipe, bf16, colocated vLLM", (*BF16, *VLLM), _say(ipc)),
        Row("vllm-lora", "main recipe + LoRA, colocated vLLM", (*BF16, *VLLM, *LORA), _say(lora)),
        Row("transfer-135m", "built-in model: native vs /dev/shm", ("bf16",), _say(ipc), True),
        Row("transfer-1.5b", "random 1.5B-class: native vs /dev/shm", ("bf16",), _say(ipc), True),
        Row("fsdp2-nccl", "one FSDP2 step, NCCL, 1 rank", ("bf16", "8 x 128 tokens"), "-", True),
        Row("nccl-transfer", "vLLM in a Ray worker, 2nd GPU", ("bf16",), _say(nccl), True, 2),
    ]


def _say(route) -> str:
    return f"{route.describe()} ({route.reason})"


# ---- the training rows ------------------------------------------------------------------


def train_row(row: Row, steps: int, out: Path, limit_s: float) -> dict:
    """`r1kit train` on the main recipe with the row's overrides; figures from its metrics."""
    sets = [*row.settings, f"train.steps={steps}", f"output.dir={out}", f"output.name={row.name}"]
    args = [
        *CLI,
        MAIN,
        "--overwrite",
        *[a for s in [*sets, "output.report_to=[]"] for a in ("--set", s)],
    ]
    code, peak = _run(args, out / f"{row.name}.log", limit_s)
    metrics_file = out / row.name / "metrics.jsonl"
    steps_done = []
    if metrics_file.exists():
        records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line]
        steps_done = [r for r in records if "time/step" in r]
    if code != 0 or len(steps_done) < 2:
        return {"status": _failed(code, out / f"{row.name}.log"), "peak GPU GiB": peak}
    later = steps_done[1:]  # the first step loads and warms the engine
    return {
        "status": "ok",
        "s/step": statistics.median(r["time/step"] for r in later),
        "tokens/s": statistics.median(r["tokens_per_s"] for r in later),
        "peak GPU GiB": peak,
        "sync s": statistics.median(r.get("time/sync", float("nan")) for r in later),
        # Steps that ran no token measured none: NaN when none was measured, not a perfect 0.
        "mismatch_kl": max(
            (r["mismatch_kl"] for r in later if "mismatch_kl" in r), default=float("nan")
        ),
    }


# ---- the probes (each runs in its own process: python benchmarks/gpu_check.py --probe NAME)


def probe_transfer(model_dir: str) -> dict:
    """Time one update of `model_dir`'s weights (moved by noise, so that an update that does
    not land shows) into a colocated vLLM engine, natively and by /dev/shm, each followed by
    the engine/learner log-prob gap on sampled tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    from rollout.types import SamplingParams
    from rollout.vllm_engine import VLLMEngine

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda()
    engine = VLLMEngine(
        model_dir, gpu_memory_utilization=0.3, enforce_eager=True, max_model_len=512
    )
    result: dict = {"route": engine.route.path}
    sampling = SamplingParams(n=4, temperature=1.0, max_new_tokens=32, seed=0)
    prompts = [[1, 2, 3, 4, 5, 6, 7, 8]]
    native = engine.sender
    for label, sender in (("native", native), ("shm", None)):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 1e-2)
        engine.sender = sender  # None: the same engine takes the /dev/shm reload
        torch.cuda.synchronize()
        start = time.perf_counter()
        engine.update_weights(model.named_parameters())
        result[f"{label} s"] = time.perf_counter() - start
        result[f"{label} gap"] = _logprob_gap(model, engine.generate(prompts, sampling))
    engine.close()
    return result


def _logprob_gap(model, groups) -> float:
    """Mean |engine log-prob - model log-prob| over the sampled tokens (temperature 1)."""
    import torch

    gaps = []
    for completion in (c for group in groups for c in group):
        ids = torch.tensor([completion.prompt_token_ids + completion.token_ids], device="cuda")
        with torch.no_grad():
            logits = model(ids).logits[0, len(completion.prompt_token_ids) - 1 : -1].float()
        mine = torch.log_softmax(logits, -1).gather(-1, ids[0, -len(completion.token_ids) :, None])
        gaps.append((mine.squeeze(-1).cpu() - torch.tensor(completion.logprobs)).abs())
    return torch.cat(gaps).mean().item()


def probe_transfer_135m() -> dict:
    from r1kit.models import model_dir

    return probe_transfer(model_dir(BUILT_IN))


def probe_transfer_1_5b() -> dict:
    """A random model with Qwen2-1.5B's layer shapes (the built-in tokenizer's vocabulary, so
    that sampled tokens decode), written once to a temporary directory; nothing downloaded."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from r1kit.models import load_tokenizer

    config = LlamaConfig(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=49152,
        max_position_embeddings=4096,
        rope_theta=1e6,
        tie_word_embeddings=True,
    )
    with tempfile.TemporaryDirectory(prefix="gpu-check-1.5b-") as directory:
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(directory)
        load_tokenizer(BUILT_IN).save_pretrained(directory)
        del model
        torch.cuda.empty_cache()
        return probe_transfer(directory) | {"params": "1.4B"}


def probe_fsdp2_nccl() -> dict:
    """One FSDP2 forward/backward/AdamW step of the built-in model on NCCL, world size 1."""
    import torch

    from r1kit.learner.distributed import init_group, shard
    from r1kit.models import load_model

    mesh = init_group(0, 1, f"127.0.0.1:{_free_port()}", "cuda")
    model = shard(load_model(BUILT_IN, dtype="float32", device="cuda")[0].train(), mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(0, 1000, (8, 128), device="cuda")
    torch.cuda.synchronize()
    start = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    torch.cuda.synchronize()
    return {
        "step s": time.perf_counter() - start,
        "loss": loss.item(),
        "peak GPU GiB": torch.cuda.max_memory_allocated() / 2**30,
    }


def probe_nccl_transfer() -> dict:
    """vLLM in one Ray worker on the second GPU, the learner's weights on the first, one
    update by NCCL; then the engine/learner log-prob gap."""
    import torch
    from transformers import AutoModelForCausalLM

    from r1kit.models import model_dir
    from rollout.engines import EngineSpec, Placement
    from rollout.ray_pool import RayPool
    from rollout.types import SamplingParams

    directory = model_dir(BUILT_IN)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16).cuda()
    options = {"gpu_memory_utilization": 0.5, "enforce_eager": True, "max_model_len": 512}
    pool = RayPool(EngineSpec("vllm", 1, options, Placement("local", 1.0, 1.0)), directory)
    result: dict = {"route": "nccl" if pool._native is not None else "shm"}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-2)
    start = time.perf_counter()
    pool.update_weights(model.named_parameters())
    result["native s"] = time.perf_counter() - start
    sampling = SamplingParams(n=4, temperature=1.0, max_new_tokens=32, seed=0)
    result["native gap"] = _logprob_gap(model, pool.generate([[1, 2, 3, 4, 5, 6, 7, 8]], sampling))
    pool.close()
    return result


PROBES: dict[str, Callable[[], dict]] = {
    "transfer-135m": probe_transfer_135m,
    "transfer-1.5b": probe_transfer_1_5b,
    "fsdp2-nccl": probe_fsdp2_nccl,
    "nccl-transfer": probe_nccl_transfer,
}


def probe_row(row: Row, out: Path, limit_s: float) -> dict:
    """Run the row's probe in a process of its own; its figures (or why it failed)."""
    result_file = out / f"{row.name}.json"
    args = [sys.executable, __file__, "--probe", row.name, "--out", str(out)]
    code, peak = _run(args, out / f"{row.name}.log", limit_s)
    if code != 0 or not result_file.exists():
        return {"status": _failed(code, out / f"{row.name}.log"), "peak GPU GiB": peak}
    return {"status": "ok", "peak GPU GiB": peak} | json.loads(result_file.read_text())


# ---- running, timing, the table --------------------------------------------------------


def _run(args: list[str], log_path: Path, limit_s: float) -> tuple[int, float]:
    """Run `args` with output to `log_path`, killed after `limit_s`; exit code (124 when
    killed) and the GPU's peak memory in use meanwhile (GiB, nvidia-smi)."""
    peak, done = [0.0], threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], _gpu_used_gib())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with log_path.open("w") as log:
        try:
            code = subprocess.run(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=limit_s
            ).returncode
        except subprocess.TimeoutExpired:
            code = 124
    done.set()
    watcher.join()
    return code, peak[0]


def _gpu_used_gib() -> float:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        return max(float(v) for v in out.split()) / 1024
    except (OSError, ValueError, subprocess.SubprocessError):
        return float("nan")


def _failed(code: int, log_path: Path) -> str:
    last = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    why = "time limit" if code == 124 else (last[-1][:120] if last else "no output")
    return f"failed ({code}): {why}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def table(rows: list[Row], results: dict[str, dict]) -> str:
    """The results as one markdown table (every figure a row has, in one column)."""
    lines = ["| row | what | route | status | figures |", "|---|---|---|---|---|"]
    for row in rows:
        result = dict(results.get(row.name, {"status": "not run"}))
        status = result.pop("status", "ok")
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in result.items())
        lines.append(f"| {row.name} | {row.what} | {row.route} | {status} | {figures} |")
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_plan(rows: list[Row], steps: int, minutes: float) -> None:
    print(f"plan (dry run): {len(rows)} rows, at most {minutes:g} minutes, {steps} steps each")
    for row in rows:
        runs = f"probe {row.name}" if row.probe else f"r1kit train {MAIN}"
        gpus = f", needs {row.gpus} GPUs" if row.gpus > 1 else ""
        print(f"  {row.name:15} {row.what}{gpus}\n{'':17} runs: {runs}")
        print(f"{'':17} settings: {' '.join(row.settings)}\n{'':17} weights: {row.route}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-minutes", type=float, default=8.0)
    parser.add_argument("--rows", nargs="*", help="only these rows (default: all)")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.rows or []) - {r.name for r in plan()}
    if unknown:
        parser.error(f"--rows: unknown {sorted(unknown)}; rows: {[r.name for r in plan()]}")
    rows = [r for r in plan() if not args.rows or r.name in args.rows]
    if args.dry_run:
        print_plan(rows, args.steps, args.max_minutes)
        return 0
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device here; it checks GPU paths only (--dry-run shows the plan)",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.probe:  # one probe, in this process: its figures to <out>/<name>.json
        result = PROBES[args.probe]()
        (args.out / f"{args.probe}.json").write_text(json.dumps(result))
        return 0
    deadline, results = time.monotonic() + args.max_minutes * 60, {}
    for row in rows:
        left = deadline - time.monotonic()
        if row.gpus > torch.cuda.device_count():
            results[row.name] = {"status": f"skipped: needs {row.gpus} GPUs"}
        elif left < 20:
            results[row.name] = {"status": "skipped: --max-minutes spent"}
        elif row.probe:
            results[row.name] = probe_row(row, args.out, min(LIMIT_S, left))
        else:
            results[row.name] = train_row(row, args.steps, args.out, min(LIMIT_S, left))
        print(f"{row.name}: {results[row.name]}", flush=True)
    markdown = table(rows, results)
    (args.out / "gpu_check.md").write_text(markdown + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
