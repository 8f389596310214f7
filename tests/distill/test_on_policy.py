import torch

from distill.objectives import ReverseKL
from distill.on_policy import task_advantages
from distill.recipe import SFTConfig
from distill.sft import sft_learner
from r1kit.learner.batch import to_batch
from r1kit.models import load_tokenizer
from rollout.hf_engine import HFEngine
from rollout.types import SamplingParams
from tests.distill.conftest import random_model

PROMPTS = [[1, 20, 30], [1, 14, 15, 16], [1, 7], [1, 8, 9]]


def sampled_batch(engine, prompts, sampling):
    """The engine's samples of every prompt as a learner batch with no task advantage."""
    groups = engine.generate(prompts, sampling)
    return to_batch([c for group in groups for c in group])


def reverse_kl_step(learner, teacher, batch) -> dict[str, float]:
    return learner.step(batch, ReverseKL(teacher), batch.normalisers(8))


def test_reverse_kl_to_a_fixed_teacher_falls_over_a_few_steps():
    student, teacher = random_model(32, 2, seed=0), random_model(32, 2, seed=1)
    with torch.no_grad():  # a random model is near uniform: make the teacher opinionated
        teacher.model.norm.weight.mul_(4.0)
    teacher.requires_grad_(False)
    cfg = SFTConfig(lr=3e-3, schedule="constant", max_grad_norm=100.0, micro_batch_size=64)
    learner = sft_learner(student, cfg, total_steps=10)
    engine = HFEngine(student, load_tokenizer("smollm2-135m-instruct"))
    kl = []
    for step in range(10):
        student.eval()
        batch = sampled_batch(engine, PROMPTS, SamplingParams(n=16, max_new_tokens=6, seed=step))
        kl.append(reverse_kl_step(learner, teacher, batch)["reverse_kl"])
    assert sum(kl[-3:]) < 0.8 * sum(kl[:3]), kl


def test_the_sampled_reverse_kl_is_zero_against_itself():
    student, twin = random_model(32, 2, seed=0), random_model(32, 2, seed=0)
    learner = sft_learner(student, SFTConfig(micro_batch_size=8), total_steps=1)
    engine = HFEngine(student, load_tokenizer("smollm2-135m-instruct"))
    batch = sampled_batch(engine, PROMPTS, SamplingParams(n=2, max_new_tokens=4, seed=0))
    assert abs(reverse_kl_step(learner, twin, batch)["reverse_kl"]) < 1e-5


def test_samples_become_one_batch_row_each():
    engine = HFEngine(random_model(32, 2, seed=0), load_tokenizer("smollm2-135m-instruct"))
    batch = sampled_batch(engine, PROMPTS[:2], SamplingParams(n=3, max_new_tokens=4, seed=0))
    assert len(batch) == 6 and batch.prompt_ids[3] == PROMPTS[1]
    pairs = zip(batch.rollout_logprobs, batch.completion_ids, strict=True)
    assert all(len(logprobs) == len(ids) for logprobs, ids in pairs)


def test_a_task_reward_adds_weight_times_its_group_advantage_per_sample():
    from r1kit.groups import Group
    from rewards.scoring import WeightedReward
    from rollout.types import Completion

    def group(texts):
        completions = [Completion([1], [0.0], t, "stop") for t in texts]
        return Group({"prompt": "q"}, "q", completions)

    def right(prompts, completions, **kw):
        return [float(c == "right") for c in completions]

    groups = [group(["right", "wrong"]), group(["wrong", "wrong"])]
    advantages, metrics = task_advantages(groups, [WeightedReward("right", right)], weight=0.5)
    torch.testing.assert_close(advantages[2:], torch.zeros(2))  # a flat group: no signal
    assert advantages[0] > 0 > advantages[1] and abs(advantages[0] - 0.5 * 0.7071) < 1e-3
    assert metrics["reward/right/mean"] == 0.25


def test_without_rewards_the_task_advantage_is_zero():
    from r1kit.groups import Group
    from rollout.types import Completion

    completions = [Completion([1], [0.0], "x", "stop")] * 3
    advantages, metrics = task_advantages([Group({}, "q", completions)], [], weight=1.0)
    assert advantages.tolist() == [0.0] * 3 and metrics == {}


def loss_and_gradient(learner, teacher, batch) -> tuple[float, list[torch.Tensor]]:
    """One reverse-KL step's loss and clipped gradient, without the optimizer step."""
    grads = []
    learner.optimizer_step = lambda: grads.extend(p.grad.clone() for p in learner.params) or 0
    return reverse_kl_step(learner, teacher, batch)["loss"], grads


def test_each_prompt_s_samples_are_packed_and_give_the_plain_loss_and_gradient():
    teacher = random_model(32, 2, seed=1).requires_grad_(False)
    engine = HFEngine(random_model(32, 2, seed=0), load_tokenizer("smollm2-135m-instruct"))
    batch = sampled_batch(engine, PROMPTS, SamplingParams(n=3, max_new_tokens=5, seed=0))
    results = []
    for shared_prefix in (True, False):
        cfg = SFTConfig(micro_batch_size=4, shared_prefix=shared_prefix)
        learner = sft_learner(random_model(32, 2, seed=0), cfg, total_steps=1)
        mb = next(learner.micro_batches(batch, list(range(len(batch)))))
        assert (mb.attention_mask.dim() == 4) == shared_prefix  # packed: the 4-D mask
        results.append(loss_and_gradient(learner, teacher, batch))
    (packed_loss, packed), (plain_loss, plain) = results
    assert abs(packed_loss - plain_loss) < 1e-5
    assert max((a - b).abs().max().item() for a, b in zip(packed, plain, strict=True)) < 1e-5
