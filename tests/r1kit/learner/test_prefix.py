import pytest
import torch

from r1kit.learner.batch import Batch
from r1kit.learner.prefix import additive_mask, packed_micro_batches

PROMPT_A, PROMPT_B = [1, 2, 3], [4, 5]


def _batch() -> Batch:
    completions = [[10, 11, 12], [20], [30, 31], [40, 41], [50, 51, 52]]
    return Batch(
        prompt_ids=[PROMPT_A] * 3 + [PROMPT_B] * 2,
        completion_ids=completions,
        rollout_logprobs=[[0.0] * len(c) for c in completions],
        advantages=torch.arange(5.0),
        loss_mask=[True] * 5,
    )


def _only(batch: Batch, rows: list[int], size: int = 8):
    (mb,) = packed_micro_batches(batch, rows, size)
    return mb


def test_a_group_is_one_row_with_its_prompt_once_and_each_completion_but_its_last_token():
    mb = _only(_batch(), [0, 1, 2])
    assert mb.input_ids.tolist() == [[1, 2, 3, 10, 11, 30]]


def test_position_ids_restart_after_the_prompt_for_each_completion():
    mb = _only(_batch(), [0, 1, 2])
    assert mb.position_ids.tolist() == [[0, 1, 2, 3, 4, 3]]


def test_a_completion_sees_the_prompt_and_its_own_past_but_no_other_completion():
    mask = _only(_batch(), [0, 1, 2]).attention_mask[0, 0]
    assert mask[5].tolist() == [True, True, True, False, False, True]  # completion 2's token
    assert mask[4].tolist() == [True, True, True, True, True, False]  # completion 0's 2nd token
    assert mask[2].tolist() == [True, True, True, False, False, False]  # last prompt token


def test_source_points_at_the_position_that_predicts_each_completion_token():
    batch = _batch()
    mb = _only(batch, [0, 1, 2])
    for b, i in enumerate(mb.rows):
        n = len(batch.completion_ids[i])
        predictors = mb.source[b, mb.source.shape[1] - n :]
        # The input just before a target is the last prompt token or the previous target.
        previous = [PROMPT_A[-1], *batch.completion_ids[i][:-1]]
        assert mb.input_ids.view(-1)[predictors].tolist() == previous
        assert mb.targets[b, mb.targets.shape[1] - n :].tolist() == batch.completion_ids[i]


def test_a_group_larger_than_the_micro_batch_is_split_with_its_prompt_repeated():
    mbs = list(packed_micro_batches(_batch(), [0, 1, 2], size=2))
    rows = [r.tolist() for mb in mbs for r in mb.input_ids]
    assert sum(len(mb.rows) for mb in mbs) == 3
    assert all(row[:3] == PROMPT_A for row in rows)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_micro_batches_hold_at_most_size_completions_and_cover_each_once(size):
    mbs = list(packed_micro_batches(_batch(), list(range(5)), size))
    assert all(len(mb.rows) <= size for mb in mbs)
    assert sorted(r for mb in mbs for r in mb.rows) == [0, 1, 2, 3, 4]


def test_padding_positions_attend_only_to_themselves():
    mb = _only(_batch(), [0, 1, 2, 3, 4])
    short = int((mb.input_ids[:, 0] == PROMPT_B[0]).nonzero())
    mask = mb.attention_mask[short, 0]
    length = len(PROMPT_B) + 1 + 2  # [4, 5, 40, 50, 51]
    for pos in range(length, mask.shape[0]):
        assert mask[pos].nonzero().view(-1).tolist() == [pos]


def test_only_the_given_rows_are_packed():
    mb = _only(_batch(), [1, 4])
    assert sorted(mb.rows) == [1, 4]


def test_an_empty_prompt_is_rejected_with_its_index():
    batch = _batch()
    batch.prompt_ids[3] = []
    with pytest.raises(ValueError, match="sequence 3"):
        list(packed_micro_batches(batch, [3], 4))


def test_the_additive_mask_is_zero_where_attended_and_very_negative_elsewhere():
    mask = torch.tensor([[True, False]])
    additive = additive_mask(mask, torch.float32)
    assert additive[0, 0] == 0 and additive[0, 1] == torch.finfo(torch.float32).min


@pytest.mark.parametrize("max_tokens", [5, 6, 7, 12])  # 5: the longest single row
def test_a_token_bound_caps_every_micro_batch_and_still_covers_each_row_once(max_tokens):
    batch = _batch()
    mbs = list(packed_micro_batches(batch, list(range(5)), size=8, max_tokens=max_tokens))
    assert all(mb.input_ids.numel() <= max_tokens for mb in mbs)
    assert sorted(r for mb in mbs for r in mb.rows) == [0, 1, 2, 3, 4]


def test_a_completion_longer_than_the_token_bound_gets_a_row_of_its_own():
    mbs = list(packed_micro_batches(_batch(), [0, 1], size=8, max_tokens=2))
    assert sorted(len(mb.rows) for mb in mbs) == [1, 1]
