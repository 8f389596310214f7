import contextlib

import pytest
import torch

from distill.examples import Example
from distill.objectives import NextTokenNLL
from distill.recipe import SFTConfig
from distill.sft import SFT, Parts, as_batch, sft_learner
from r1kit import durable
from r1kit.learner.core import Learner
from r1kit.learner.policy import with_lora
from r1kit.models import tiny_model
from r1kit.recipe import LoraConfig
from r1kit.rundir import RunDir
from r1kit.stopping import Stopper


def examples(count: int = 6) -> list[Example]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for i in range(count):
        ids = torch.randint(100, 2000, (3 + i % 3 + 4 + i % 2,), generator=generator).tolist()
        out.append(Example(ids[: 3 + i % 3], ids[3 + i % 3 :]))
    return out


def learner(cfg: SFTConfig, steps: int = 10, seed: int = 0):
    model, tokenizer = tiny_model(seed=seed)
    return sft_learner(model, cfg, steps), tokenizer


def target_logprobs(learner: Learner, batch, size: int):
    """(micro-batch, the learner's log-prob of each target token [B, C]) over `batch`."""
    for mb in batch.micro_batches(size):
        yield mb, learner.forward(learner.model, mb)[0]


def sft_step(learner: Learner, data: list[Example]) -> dict[str, float]:
    batch = as_batch(data)
    return learner.step(batch, NextTokenNLL(), batch.normalisers(16))


def test_loss_is_the_cross_entropy_of_target_tokens_only():
    sft, _ = learner(SFTConfig(micro_batch_size=2))
    data = examples(3)
    (mb, logprobs), *_ = target_logprobs(sft, as_batch(data[:1]), 1)
    ids = torch.tensor([data[0].prompt_ids + data[0].target_ids])
    logits = sft.model(input_ids=ids).logits[0, :-1]
    every = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
    n = len(data[0].target_ids)
    assert mb.mask.sum().item() == n  # prompt tokens carry no loss
    torch.testing.assert_close(logprobs[0], every[-n:], atol=1e-5, rtol=0)


def test_no_attention_crosses_examples_in_a_batch():
    sft, _ = learner(SFTConfig())
    short, long = examples(6)[0], examples(6)[5]
    (_, alone), *_ = target_logprobs(sft, as_batch([short]), 1)
    (mb, together), *_ = target_logprobs(sft, as_batch([short, long]), 2)
    row = mb.rows.index(0)
    n = len(short.target_ids)
    torch.testing.assert_close(together[row, -n:], alone[0, -n:], atol=1e-5, rtol=0)


def test_sft_steps_lower_the_target_nll():
    sft, _ = learner(SFTConfig(lr=1e-2, micro_batch_size=2, schedule="constant"))
    data = examples(4)
    nll = [sft_step(sft, data)["nll"] for _ in range(8)]
    assert nll[-1] < 0.5 * nll[0]


def test_micro_batching_does_not_change_the_loss_or_gradient():
    whole = sft_step(learner(SFTConfig(micro_batch_size=4))[0], examples(4))
    split = sft_step(learner(SFTConfig(micro_batch_size=1))[0], examples(4))
    assert abs(whole["nll"] - split["nll"]) < 1e-5
    assert abs(whole["grad_norm"] - split["grad_norm"]) < 1e-4 * whole["grad_norm"]


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_final_weights(tmp_path, monkeypatch):
    cfg = SFTConfig(lr=1e-2, epochs=2, batch_size=2, micro_batch_size=2, save_every=2)
    data = examples(6)  # 3 steps per epoch, 6 in all

    def fit(name: str, resume: bool = False) -> SFT:
        sft_learner_, tokenizer = learner(cfg, steps=6)
        run = RunDir(tmp_path / name)
        run.path.mkdir(exist_ok=True)
        trainer = SFT(cfg, run, Parts(sft_learner_, tokenizer), data, 0, Stopper())
        trainer.fit(resume=resume)
        return trainer

    straight = fit("straight")
    real_step = Learner.step
    calls = []

    def dies_at_step_5(*args):
        calls.append(1)
        if len(calls) == 5:  # after the step-4 checkpoint, before step 5 ends
            raise Killed
        return real_step(*args)

    monkeypatch.setattr(Learner, "step", dies_at_step_5)
    with contextlib.suppress(Killed):
        fit("killed")
    monkeypatch.setattr(Learner, "step", real_step)
    assert not (tmp_path / "killed" / "final").exists()
    resumed = fit("killed", resume=True)
    assert [m["step"] for m in resumed.run.metrics()] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(
        straight.parts.learner.model.parameters(),
        resumed.parts.learner.model.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_an_moe_student_learns_with_its_router_s_load_balancing_loss():
    # Equal lengths: transformers 5.19's DeepSeek-V3 fails on any padding mask.
    data = [Example(e.prompt_ids[:3], e.target_ids[:4]) for e in examples(4)]
    model, _ = tiny_model("deepseek_v3")
    cfg = SFTConfig(micro_batch_size=2, aux_loss_coef=0.01)
    metrics = sft_step(sft_learner(model, cfg, 10), data)
    assert metrics["aux_loss"] > 0
    assert metrics["loss"] == pytest.approx(metrics["nll"] + 0.01 * metrics["aux_loss"])


def test_an_unmerged_lora_final_is_the_adapter_with_the_run_s_card(tmp_path):
    model, tokenizer = tiny_model()
    cfg = SFTConfig()
    parts = Parts(sft_learner(with_lora(model, LoraConfig(r=4)), cfg, 1), tokenizer)
    run = RunDir(tmp_path)
    SFT(cfg, run, parts, examples(2), 0, Stopper()).save_final(merge_lora=False, card="# card\n")
    assert (run.final / "adapter_config.json").is_file()
    assert (run.final / "README.md").read_text() == "# card\n"  # not peft's own
    assert durable.verify_dir(run.final)[1] == []
