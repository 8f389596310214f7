import pytest
import torch

from r1kit.learner.logprobs import token_logprobs


def _inputs(n=10, hidden=6, vocab=50):
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, hidden, generator=g))
    h = torch.randn(n, hidden, generator=g, requires_grad=True)
    targets = torch.randint(vocab, (n,), generator=g)
    return h, targets, head


def _plain(h, targets, head, temperature):
    log_probs = torch.log_softmax(head(h) / temperature, dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return log_probs.gather(-1, targets[:, None]).squeeze(-1), entropy


@pytest.mark.parametrize("chunk", [0, 1, 3, 10, 64])
def test_chunked_logprobs_and_entropy_equal_the_full_softmax(chunk):
    h, targets, head = _inputs()
    logprobs, entropy = token_logprobs(h, targets, head, 0.7, chunk)
    expected_lp, expected_ent = _plain(h, targets, head, 0.7)
    # float32 defaults (rtol 1.3e-6): a log-prob of -16 is one ulp (1.9e-6) from its neighbour
    torch.testing.assert_close(logprobs, expected_lp)
    torch.testing.assert_close(entropy, expected_ent)


@pytest.mark.parametrize("chunk", [1, 3, 0])
def test_chunked_gradients_equal_the_full_softmax(chunk):
    h, targets, head = _inputs()
    weights = torch.linspace(-1, 1, len(targets))
    (token_logprobs(h, targets, head, 0.7, chunk)[0] * weights).sum().backward()
    got = (h.grad.clone(), head.weight.grad.clone())
    h.grad, head.weight.grad = None, None
    (_plain(h, targets, head, 0.7)[0] * weights).sum().backward()
    torch.testing.assert_close(got[0], h.grad)
    torch.testing.assert_close(got[1], head.weight.grad)


def test_logits_pass_through_an_identity_head():
    h, targets, head = _inputs()
    logits = head(h)
    logprobs, _ = token_logprobs(logits, targets, torch.nn.Identity(), 1.0, 4)
    assert (logprobs - _plain(h, targets, head, 1.0)[0]).abs().max() < 1e-6


def test_entropy_carries_no_graph():
    h, targets, head = _inputs()
    logprobs, entropy = token_logprobs(h, targets, head, 1.0, 3)
    assert logprobs.requires_grad and not entropy.requires_grad


@pytest.mark.parametrize("chunk", [0, 3])
def test_entropy_grad_differentiates_the_entropy_as_the_full_softmax(chunk):
    h, targets, head = _inputs()
    (expected,) = torch.autograd.grad(_plain(h, targets, head, 0.7)[1].sum(), h)
    entropy = token_logprobs(h, targets, head, 0.7, chunk, entropy_grad=True)[1]
    (grad,) = torch.autograd.grad(entropy.sum(), h)
    assert torch.allclose(grad, expected, atol=1e-5)


def test_temperature_sharpens_the_distribution():
    h, targets, head = _inputs()
    cold = token_logprobs(h, targets, head, 0.1, 4)[1]
    hot = token_logprobs(h, targets, head, 10.0, 4)[1]
    assert (cold < hot).all()


def test_chunked_logits_are_never_all_alive_in_the_backward_pass():
    """Only the inputs of each chunk are saved for backward, not its [chunk, vocab] logits."""
    h, targets, head = _inputs(n=64, vocab=4096)
    saved: list[int] = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        token_logprobs(h, targets, head, 1.0, 8)
    assert max(saved) < 8 * 4096
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        token_logprobs(h, targets, head, 1.0, 0)
    assert max(saved) >= 64 * 4096
