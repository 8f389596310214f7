import pytest
import torch

from rollout.sampling import next_tokens
from rollout.types import SamplingParams

LOGITS = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]])


def _draws(sampling: SamplingParams, count: int = 4000) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    tokens, _ = next_tokens(LOGITS.expand(count, -1), sampling, generator)
    return tokens


def test_greedy_takes_the_argmax_with_its_plain_log_prob():
    tokens, logprobs = next_tokens(LOGITS, SamplingParams(temperature=0), torch.Generator())
    assert tokens.tolist() == [0]
    assert logprobs.item() == pytest.approx(torch.log_softmax(LOGITS, -1)[0, 0].item())


def test_draws_follow_the_tempered_softmax():
    counts = torch.bincount(_draws(SamplingParams(temperature=0.7)), minlength=5)
    expected = torch.softmax(LOGITS[0] / 0.7, -1)
    assert (counts / counts.sum() - expected).abs().max() < 0.03


def test_top_k_keeps_only_the_k_likeliest_tokens():
    assert set(_draws(SamplingParams(top_k=2)).tolist()) == {0, 1}


def test_top_p_keeps_the_smallest_nucleus_covering_p():
    # softmax(LOGITS) = [0.61, 0.22, 0.14, ...]: 0.61 < 0.7, so the nucleus is tokens 0 and 1.
    assert set(_draws(SamplingParams(top_p=0.7)).tolist()) == {0, 1}


def test_log_probs_are_taken_before_truncation():
    tokens, logprobs = next_tokens(
        LOGITS, SamplingParams(temperature=0.5, top_k=1), torch.Generator()
    )
    assert tokens.tolist() == [0]
    assert logprobs.item() == pytest.approx(torch.log_softmax(LOGITS / 0.5, -1)[0, 0].item())
