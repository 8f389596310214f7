import pytest
import torch

from r1kit.models import load_model
from rollout.hf_engine import EngineError, HFEngine
from rollout.types import SamplingParams
from tests.rollout.conftest import logprob_gap, lora_merged, perturbed


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


@pytest.fixture(scope="module")
def prompts(tiny):
    _, tokenizer = tiny
    texts = ["hello there", "a much longer prompt with quite a few more words in it", "2 + 2 ="]
    return [tokenizer(t)["input_ids"] for t in texts]


def _forward_logprobs(model, prompt, completion, temperature):
    ids = torch.tensor([prompt + completion])
    logits = model(ids).logits[0, len(prompt) - 1 : -1] / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def _token_ids(groups):
    return [[c.token_ids for c in group] for group in groups]


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-deepseek-v3"])
def test_reported_logprobs_equal_a_separate_forward_pass(name, prompts):
    model, tokenizer = load_model(name)
    groups = HFEngine(model, tokenizer, batch_size=4).generate(
        prompts, SamplingParams(n=3, temperature=0.7, max_new_tokens=12, seed=1)
    )
    for prompt, group in zip(prompts, groups, strict=True):
        assert len(group) == 3
        for c in group:
            assert c.prompt_token_ids == prompt
            expected = _forward_logprobs(model, prompt, c.token_ids, 0.7)
            assert (expected - torch.tensor(c.logprobs)).abs().max() < 1e-4


def test_same_seed_same_completions(tiny, prompts):
    engine = HFEngine(*tiny)
    sampling = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=7)
    assert _token_ids(engine.generate(prompts, sampling)) == _token_ids(
        engine.generate(prompts, sampling)
    )


def test_greedy_matches_model_generate(tiny, prompts):
    model, tokenizer = tiny
    groups = HFEngine(model, tokenizer).generate(
        prompts, SamplingParams(temperature=0, max_new_tokens=10)
    )
    for prompt, (completion,) in zip(prompts, groups, strict=True):
        reference = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=10)
        assert completion.token_ids == reference[0, len(prompt) :].tolist()


def test_small_batches_give_the_same_greedy_output(tiny, prompts):
    sampling = SamplingParams(n=2, temperature=0, max_new_tokens=10)
    big = HFEngine(*tiny, batch_size=64).generate(prompts, sampling)
    small = HFEngine(*tiny, batch_size=1).generate(prompts, sampling)
    assert _token_ids(big) == _token_ids(small)


def test_max_new_tokens_ends_with_finish_reason_length(tiny, prompts):
    groups = HFEngine(*tiny).generate(prompts, SamplingParams(n=2, max_new_tokens=5, seed=0))
    for c in (c for group in groups for c in group):
        assert len(c.token_ids) == len(c.logprobs) <= 5
        assert c.finish_reason == ("length" if len(c.token_ids) == 5 else "stop")


def test_eos_is_kept_in_the_tokens_but_not_in_the_text(tiny, prompts, monkeypatch):
    model, tokenizer = tiny
    original = model.forward

    def wants_to_end(*args, **kwargs):
        out = original(*args, **kwargs)
        out.logits[..., tokenizer.eos_token_id] += 100.0
        return out

    monkeypatch.setattr(model, "forward", wants_to_end)
    (completion,) = HFEngine(model, tokenizer).generate(prompts[:1], SamplingParams(seed=0))[0]
    assert completion.token_ids == [tokenizer.eos_token_id]
    assert completion.text == "" and completion.finish_reason == "stop"


def test_stop_string_cuts_text_and_stops_decoding(tiny, prompts):
    model, tokenizer = tiny
    engine = HFEngine(model, tokenizer)
    free = engine.generate(prompts[:1], SamplingParams(temperature=0, max_new_tokens=12))[0][0]
    stop = tokenizer.decode(free.token_ids[3:5])  # text the greedy output is known to contain
    cut = engine.generate(
        prompts[:1], SamplingParams(temperature=0, max_new_tokens=12, stop=(stop,))
    )[0][0]
    assert cut.finish_reason == "stop" and cut.text.endswith(stop)
    assert len(cut.token_ids) <= 5 and cut.token_ids == free.token_ids[: len(cut.token_ids)]


def test_finished_sequences_leave_the_batch(tiny, prompts, monkeypatch):
    model, tokenizer = tiny
    engine = HFEngine(model, tokenizer)
    engine.eos_ids = set(range(0, model.config.vocab_size, 2))  # any even token ends a sequence
    rows_per_call = []
    original = model.forward

    def counting(*args, **kwargs):
        rows_per_call.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    engine.generate(prompts, SamplingParams(n=4, max_new_tokens=16, seed=0))
    prefill, decode_rows = rows_per_call[0], rows_per_call[1:]
    assert prefill == 3  # one prefill per unique prompt, shared by its 4 samples
    assert decode_rows[0] <= 12 and decode_rows[-1] < decode_rows[0]
    assert decode_rows == sorted(decode_rows, reverse=True)


def test_update_weights_changes_the_samples(prompts):
    model, tokenizer = load_model("tiny-llama")
    engine = HFEngine(model, tokenizer)
    sampling = SamplingParams(temperature=0, max_new_tokens=6)
    before = engine.generate(prompts, sampling)
    torch.manual_seed(1)
    engine.update_weights((name, torch.randn_like(p)) for name, p in model.named_parameters())
    assert _token_ids(engine.generate(prompts, sampling)) != _token_ids(before)


def test_update_weights_rejects_unknown_names(tiny):
    with pytest.raises(EngineError, match="no parameter 'nope'"):
        HFEngine(*tiny).update_weights([("nope", torch.zeros(1))])


def test_update_weights_rejects_wrong_shapes(tiny):
    name = next(name for name, _ in tiny[0].named_parameters())
    with pytest.raises(EngineError, match="shape"):
        HFEngine(*tiny).update_weights([(name, torch.zeros(1))])


def test_empty_prompt_is_rejected(tiny):
    with pytest.raises(EngineError, match="at least one token"):
        HFEngine(*tiny).generate([[]], SamplingParams())


@pytest.mark.parametrize("new_policy", [perturbed, lora_merged], ids=["full", "lora-merged"])
def test_after_update_logprobs_follow_the_new_weights(tiny, prompts, new_policy):
    model, tokenizer = load_model("tiny-llama")
    engine = HFEngine(model, tokenizer)
    new = new_policy(tiny[0], seed=3)
    engine.update_weights(new.named_parameters())
    groups = engine.generate(prompts, SamplingParams(n=2, temperature=0.7, max_new_tokens=8))
    assert logprob_gap(new, groups, 0.7) < 1e-4
    assert logprob_gap(tiny[0], groups, 0.7) > 1e-2  # the old weights give other log-probs
    assert {c.policy_version for g in groups for c in g} == {1}
