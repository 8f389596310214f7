import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from distill.on_policy import reverse_kl_step, sampled_batch
from distill.recipe import SFTConfig
from distill.sft import sft_learner
from r1kit.models import load_tokenizer
from rollout.hf_engine import HFEngine
from rollout.types import SamplingParams

PROMPTS = [[1, 20, 30], [1, 14, 15, 16], [1, 7], [1, 8, 9]]


def small_model(seed: int):
    """A random model of 32 tokens: few enough that a few steps of sampled tokens cover them."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    return AutoModelForCausalLM.from_config(config).eval()


def test_reverse_kl_to_a_fixed_teacher_falls_over_a_few_steps():
    student, teacher = small_model(0), small_model(1)
    with torch.no_grad():  # a random model is near uniform: make the teacher opinionated
        teacher.model.norm.weight.mul_(4.0)
    teacher.requires_grad_(False)
    cfg = SFTConfig(lr=3e-3, schedule="constant", max_grad_norm=100.0)
    learner = sft_learner(student, cfg, total_steps=10)
    engine = HFEngine(student, load_tokenizer("smollm2-135m-instruct"))
    kl = []
    for step in range(10):
        student.eval()
        batch = sampled_batch(engine, PROMPTS, SamplingParams(n=16, max_new_tokens=6, seed=step))
        kl.append(reverse_kl_step(learner, teacher, batch, micro_batch_size=64)["reverse_kl"])
    assert sum(kl[-3:]) < 0.8 * sum(kl[:3]), kl


def test_the_sampled_reverse_kl_is_zero_against_itself():
    student, twin = small_model(0), small_model(0)
    learner = sft_learner(student, SFTConfig(), total_steps=1)
    engine = HFEngine(student, load_tokenizer("smollm2-135m-instruct"))
    batch = sampled_batch(engine, PROMPTS, SamplingParams(n=2, max_new_tokens=4, seed=0))
    assert abs(reverse_kl_step(learner, twin, batch, 8)["reverse_kl"]) < 1e-5


def test_samples_become_one_batch_row_each():
    engine = HFEngine(small_model(0), load_tokenizer("smollm2-135m-instruct"))
    batch = sampled_batch(engine, PROMPTS[:2], SamplingParams(n=3, max_new_tokens=4, seed=0))
    assert len(batch) == 6 and batch.prompt_ids[3] == PROMPTS[1]
    pairs = zip(batch.rollout_logprobs, batch.completion_ids, strict=True)
    assert all(len(logprobs) == len(ids) for logprobs, ids in pairs)
