"""The learner core's optimisations change no gradient: shared prefix, micro-batches, skipped
zero-gradient rows (GRPO's objective drives these, the one every aggregation exercises), on
single-turn and on multi-turn (tool-use) sequences."""

import copy
import math
import warnings

import pytest
import torch
from peft import LoraConfig, get_peft_model

from grpo.objective import PolicyGradient, forking_tokens, whole_batch_values
from r1kit.learner.batch import Batch
from r1kit.learner.core import Learner
from r1kit.learner.normalisers import Normalisers
from r1kit.models import tiny_model
from r1kit.recipe import LearnerConfig

# Every aggregation, GSPO's sequence-level ratio, and the top-q highest-entropy tokens.
VARIANTS = [
    {"loss": "grpo"},
    {"loss": "dapo"},
    {"loss": "bnpo"},
    {"loss": "dr_grpo"},
    {"loss": "grpo", "ratio_level": "sequence"},
    {"loss": "dapo", "entropy_top_q": 0.3},
]
TEMPERATURE = 0.7


def _batch() -> Batch:
    """Two prompts x 4 completions of mixed lengths; zero advantages and one masked row."""
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1000, (n,), generator=g).tolist() for n in (5, 3)]
    completions = [
        torch.randint(1000, (n,), generator=g).tolist() for n in (4, 1, 6, 3, 2, 5, 3, 4)
    ]
    return Batch(
        prompt_ids=[prompts[0]] * 4 + [prompts[1]] * 4,
        completion_ids=completions,
        rollout_logprobs=[[-7.0] * len(c) for c in completions],
        advantages=torch.tensor([1.0, -1.0, 0.0, 0.5, 0.0, 0.0, -2.0, 1.0]),
        loss_mask=[True] * 7 + [False],
    )


def _multi_turn_batch() -> Batch:
    """`_batch` as tool-use trajectories: observation tokens at different places in each
    completion (of a group too), with garbage engine log-probs there."""
    batch = _batch()
    batch.model_tokens = [
        [m == "m" for m in flags]
        for flags in ("mxxm", "m", "mxmmxm", "mmm", "mm", "mxxxm", "mxm", "mxxm")
    ]
    batch.rollout_logprobs = [
        [-7.0 if own else 3.0 for own in flags] for flags in batch.model_tokens
    ]
    return batch


BATCHES = [_batch, _multi_turn_batch]


def _norm(batch: Batch) -> Normalisers:
    return Normalisers(batch.num_tokens(), len(batch), 8)


def _cfg(**options) -> LearnerConfig:
    return LearnerConfig(**{"micro_batch_size": 3, "logprob_chunk": 4, "lr": 1e-2} | options)


def _learner(model=None, **options) -> Learner:
    """A learner and, as `learner.objective`, GRPO's objective with the same settings."""
    model = model if model is not None else tiny_model("llama")[0]
    cfg = _cfg(**options)
    learner = Learner(model, cfg, cfg, 10, TEMPERATURE, reference=cfg.beta > 0)
    learner.objective = PolicyGradient(cfg)
    return learner


def _step(learner: Learner, batch: Batch, store_old: bool = False) -> dict[str, float]:
    """One step as the trainer takes it: the top-q tokens chosen over the whole batch first."""
    cfg = learner.objective.cfg
    batch.selected = forking_tokens(
        whole_batch_values(learner, batch, cfg), batch, cfg.entropy_top_q
    )
    return learner.step(batch, PolicyGradient(cfg, store_old), _norm(batch))


def _metrics_and_gradients(learner: Learner, batch: Batch) -> tuple[dict, list[torch.Tensor]]:
    """One step's metrics and clipped gradient, without the optimizer step."""
    grads: list[torch.Tensor] = []
    learner.optimizer_step = lambda: grads.extend(p.grad.clone() for p in learner.params) or 0.0
    return _step(learner, batch), grads


def _gradients(learner: Learner, batch: Batch) -> list[torch.Tensor]:
    return _metrics_and_gradients(learner, batch)[1]


def _lora_model():
    """tiny-llama with LoRA on q_proj, its adapters random (peft starts B at zero)."""
    model = get_peft_model(tiny_model("llama")[0], LoraConfig(r=4, target_modules=["q_proj"]))
    generator = torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_" in name:
            torch.nn.init.normal_(p, std=0.1, generator=generator)
    return model


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("make_batch", BATCHES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_shared_prefix_gives_the_plain_loss_and_gradient(variant, make_batch):
    packed = _learner(**variant, skip_zero_advantage=False)
    plain = _learner(**variant, skip_zero_advantage=False, shared_prefix=False)
    assert packed.shared_prefix and not plain.shared_prefix
    metrics, grads = _metrics_and_gradients(packed, make_batch())
    plain_metrics, plain_grads = _metrics_and_gradients(plain, make_batch())
    assert metrics["loss"] == pytest.approx(plain_metrics["loss"], abs=1e-6)
    assert _max_diff(grads, plain_grads) < 1e-5


@pytest.mark.parametrize("shared_prefix", [True, False])
@pytest.mark.parametrize("make_batch", BATCHES)
def test_micro_batches_give_the_one_batch_loss_and_gradient(make_batch, shared_prefix):
    tis = {"level": "sequence", "cap": 2.0}
    options = {"ratio_level": "sequence", "tis": tis, "shared_prefix": shared_prefix}
    split = _learner(**options, micro_batch_size=2)
    whole = _learner(**options, micro_batch_size=8)
    metrics, grads = _metrics_and_gradients(split, make_batch())
    whole_metrics, whole_grads = _metrics_and_gradients(whole, make_batch())
    assert metrics["loss"] == pytest.approx(whole_metrics["loss"], abs=1e-6)
    assert _max_diff(grads, whole_grads) < 1e-5


def test_engine_logprobs_on_observation_tokens_change_no_loss_gradient_or_mismatch():
    """The engine sampled no observation token: its placeholder there is not a log-prob, and
    neither TIS's weights nor the sync check's mismatch may read it."""
    runs = []
    for garbage in (0.0, 3.0):
        batch = _multi_turn_batch()
        batch.rollout_logprobs = [
            [-7.0 if own else garbage for own in flags] for flags in batch.model_tokens
        ]
        runs.append(_metrics_and_gradients(_learner(tis={"level": "token", "cap": 2.0}), batch))
    (metrics, grads), (garbage_metrics, garbage_grads) = runs
    assert metrics["mismatch_kl"] > 0 and metrics["loss"] != 0
    for key in ("loss", "mismatch_kl", "entropy", "ratio"):
        assert garbage_metrics[key] == pytest.approx(metrics[key], rel=1e-6)
    assert _max_diff(grads, garbage_grads) < 1e-6


def test_shared_prefix_gives_the_plain_gradient_with_lora():
    packed = _learner(_lora_model(), skip_zero_advantage=False)
    plain = _learner(_lora_model(), skip_zero_advantage=False, shared_prefix=False)
    assert packed.shared_prefix
    assert _max_diff(_gradients(packed, _batch()), _gradients(plain, _batch())) < 1e-5


def test_shared_prefix_gives_the_plain_gradient_with_gradient_checkpointing():
    model = tiny_model("llama")[0]
    model.gradient_checkpointing_enable()
    packed = _learner(model, skip_zero_advantage=False)
    plain = _learner(skip_zero_advantage=False, shared_prefix=False)
    assert _max_diff(_gradients(packed, _batch()), _gradients(plain, _batch())) < 1e-5


def test_shared_prefix_gives_the_plain_gradient_with_a_kl_penalty():
    packed = _learner(beta=0.1)
    plain = _learner(beta=0.1, shared_prefix=False)
    assert _max_diff(_gradients(packed, _batch()), _gradients(plain, _batch())) < 1e-5


def _with_mask_hook(effect: str):
    """tiny-llama whose decoder drops ("ignore") or fails on ("reject") a 4-D attention mask."""
    model = tiny_model("llama")[0]

    def hook(module, args, kwargs):
        if kwargs["attention_mask"] is not None and kwargs["attention_mask"].dim() == 4:
            if effect == "reject":
                raise RuntimeError("no custom masks here")
            kwargs["attention_mask"] = None
        return args, kwargs

    model.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    return model


@pytest.mark.parametrize("effect", ["ignore", "reject"])
def test_a_model_without_custom_mask_support_falls_back_to_the_plain_path(effect):
    with pytest.warns(UserWarning, match="shared_prefix off"):
        learner = _learner(_with_mask_hook(effect))
    assert not learner.shared_prefix


def _unpadded_batch() -> Batch:
    """`_batch` in equal lengths: transformers 5.19's DeepSeek-V3 fails on any padding mask."""
    batch = _batch()
    batch.prompt_ids = [batch.prompt_ids[0]] * 4 + [batch.prompt_ids[0][::-1]] * 4
    batch.completion_ids = [ids[:1] * 3 for ids in batch.completion_ids]
    batch.rollout_logprobs = [[-7.0] * 3] * 8
    return batch


def test_tiny_deepseek_v3_gives_the_plain_gradient_packed_or_fallen_back():
    batch = _unpadded_batch()
    grads = []
    for shared_prefix in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback's warning
            learner = _learner(
                tiny_model("deepseek_v3")[0], aux_loss_coef=0.0, shared_prefix=shared_prefix
            )
        grads.append(_gradients(learner, copy.deepcopy(batch)))
    assert _max_diff(*grads) < 1e-5


def test_moe_router_loss_turns_the_shared_prefix_off_without_probing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner = _learner(tiny_model("deepseek_v3")[0], aux_loss_coef=0.01)
    assert not learner.shared_prefix


@pytest.mark.parametrize("variant", VARIANTS)
def test_skipping_zero_advantage_rows_changes_no_gradient(variant):
    tis = {"level": "token", "cap": 2.0}
    skipping = _learner(**variant, tis=tis)
    full = _learner(**variant, tis=tis, skip_zero_advantage=False)
    assert _max_diff(_gradients(skipping, _batch()), _gradients(full, _batch())) < 1e-6


def test_nothing_is_skipped_when_the_moe_router_loss_counts_every_token():
    learner = _learner(tiny_model("deepseek_v3")[0], aux_loss_coef=0.01, shared_prefix=False)
    batch = _unpadded_batch()
    assert len(learner.objective.rows(batch)) < len(batch)  # what GRPO alone would skip
    metrics = _step(learner, batch)
    assert metrics["skipped_frac"] == 0 and metrics["aux_loss"] > 0


def test_the_skipped_share_is_reported():
    metrics = _step(_learner(), _batch())
    assert metrics["skipped_frac"] == pytest.approx(4 / 8)


def test_a_batch_with_nothing_to_learn_still_takes_the_momentum_step():
    """AdamW moves weights on momentum alone: skipping every row must not skip that."""
    idle = _batch()
    idle.advantages = torch.zeros(8)
    results = []
    for skip in (True, False):
        learner = _learner(shared_prefix=False)
        _step(learner, _batch())
        before = [p.detach().clone() for p in learner.params]
        learner.step(idle, PolicyGradient(_cfg(skip_zero_advantage=skip)), _norm(idle))
        results.append([p.detach().clone() for p in learner.params])
    assert _max_diff(results[0], before) > 0
    assert _max_diff(*results) == 0


def test_second_iteration_with_the_skip_uses_the_same_old_logprobs_as_without():
    grads = []
    for skip in (True, False):
        learner, batch = _learner(skip_zero_advantage=skip), _batch()
        learner.optimizer_step = lambda: 0.0  # the policy stays the old one: ratio 1
        _step(learner, batch, store_old=True)
        grads.append(_gradients(learner, batch))
    assert _max_diff(*grads) < 1e-5


def test_stored_old_logprobs_line_up_with_their_completion_tokens():
    model = tiny_model("llama")[0]
    before = copy.deepcopy(model)
    batch = _batch()
    _step(_learner(model, skip_zero_advantage=False), batch, store_old=True)
    for i, completion in enumerate(batch.completion_ids):
        sequence = torch.tensor([batch.prompt_ids[i] + completion])
        with torch.no_grad():
            logits = before(input_ids=sequence).logits[0, len(batch.prompt_ids[i]) - 1 : -1]
        expected = torch.log_softmax(logits / TEMPERATURE, -1)
        expected = expected.gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)
        assert batch.old_logprobs[i].shape == (len(completion),)
        assert (batch.old_logprobs[i] - expected).abs().max() < 1e-5


@pytest.mark.parametrize("make_batch", BATCHES)
def test_token_values_are_the_step_s_logprobs_and_entropy_whatever_the_micro_batches(make_batch):
    batch = make_batch()
    values = _learner(beta=0.1).token_values(batch, reference=True)
    plain = _learner(micro_batch_size=8, shared_prefix=False).token_values(batch)
    learner = _learner(skip_zero_advantage=False)
    metrics = _step(learner, batch, store_old=True)
    for i, completion in enumerate(batch.completion_ids):
        assert values["logprobs"][i].shape == (len(completion),)
        assert (values["logprobs"][i] - batch.old_logprobs[i]).abs().max() < 1e-5
        assert (values["logprobs"][i] - plain["logprobs"][i]).abs().max() < 1e-5
        assert (values["entropy"][i] - plain["entropy"][i]).abs().max() < 1e-5
        assert (values["ref_logprobs"][i] - values["logprobs"][i]).abs().max() < 1e-6
    # The step's mean entropy: over the model's own tokens of the sequences in the loss.
    entropy = sum(values["entropy"][i][batch.counted(i)].sum().item() for i in range(len(batch)))
    entropy /= batch.num_tokens()
    assert metrics["entropy"] == pytest.approx(entropy, rel=1e-5)


def test_the_top_q_tokens_and_their_gradient_do_not_depend_on_the_micro_batches():
    small = _learner(entropy_top_q=0.3, skip_zero_advantage=False)
    whole = _learner(entropy_top_q=0.3, micro_batch_size=8, shared_prefix=False)
    a, b = _batch(), _batch()
    grads = _gradients(small, a), _gradients(whole, b)
    assert [t.tolist() for t in a.selected] == [t.tolist() for t in b.selected]
    # At least ceil(q M); more when tied (a group's first tokens share one distribution).
    kept = sum(t.sum().item() for t in a.selected)
    assert math.ceil(0.3 * a.num_tokens()) <= kept < a.num_tokens()
    assert _max_diff(*grads) < 1e-5
    assert _max_diff(grads[0], _gradients(_learner(skip_zero_advantage=False), _batch())) > 1e-4


def test_lora_weights_stream_merged_like_peft_and_leave_the_base_unchanged():
    model = _lora_model()
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    streamed = dict(_learner(model).named_weights())
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    assert streamed.keys() <= merged.keys()
    assert max((streamed[n] - merged[n]).abs().max().item() for n in streamed) < 1e-6
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters())


def test_a_packed_step_gives_bitwise_the_same_gradient_every_time():
    # 64 completions of one prompt: its last hidden state predicts all their first tokens. A
    # backward that adds such duplicates in a thread-dependent order (advanced indexing on
    # CPU) gives weights that differ in the last bit from run to run.
    g = torch.Generator().manual_seed(2)
    prompt = torch.randint(1000, (6,), generator=g).tolist()
    completions = [torch.randint(1000, (12,), generator=g).tolist() for _ in range(64)]
    batch = Batch(
        prompt_ids=[prompt] * 64,
        completion_ids=completions,
        rollout_logprobs=[[-7.0] * 12 for _ in range(64)],
        advantages=torch.randn(64, generator=g),
        loss_mask=[True] * 64,
    )
    cfg = LearnerConfig(micro_batch_size=64, lr=1e-2)
    learner = Learner(tiny_model("llama")[0], cfg, cfg, 10, TEMPERATURE)
    learner.objective = PolicyGradient(cfg)
    assert learner.shared_prefix
    first = _gradients(learner, batch)
    for _ in range(6):
        again = _gradients(learner, batch)
        assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
