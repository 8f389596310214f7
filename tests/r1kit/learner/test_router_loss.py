import torch

from r1kit.learner.router_loss import balance_loss


def test_perfectly_balanced_routing_scores_one():
    # 4 tokens, 4 experts, top-1: each token prefers a different expert by the same margin.
    logits = torch.full((4, 4), -2.0) + 4.0 * torch.eye(4)
    loss = balance_loss((logits,), top_k=1, token_mask=torch.ones(4))
    assert torch.isclose(loss, torch.tensor(1.0))


def test_collapsed_routing_scores_higher_and_has_a_gradient():
    logits = torch.tensor([[3.0, -3.0, -3.0, -3.0]] * 4, requires_grad=True)
    loss = balance_loss((logits,), top_k=1, token_mask=torch.ones(4))
    loss.backward()
    assert loss > 1.5 and logits.grad.abs().sum() > 0


def test_padding_tokens_are_ignored():
    logits = torch.full((4, 4), -2.0) + 4.0 * torch.eye(4)
    padded = torch.cat([logits, torch.tensor([[9.0, -9.0, -9.0, -9.0]] * 4)])
    mask = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    assert torch.isclose(
        balance_loss((padded,), 1, mask), balance_loss((logits,), 1, torch.ones(4))
    )
