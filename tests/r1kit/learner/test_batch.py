import torch

from r1kit.learner.batch import Batch


def _batch() -> Batch:
    return Batch(
        prompt_ids=[[1, 2, 3], [4, 5], [6]],
        completion_ids=[[7, 8], [9, 10, 11], [12]],
        rollout_logprobs=[[-0.1, -0.2], [-0.3, -0.4, -0.5], [-0.6]],
        advantages=torch.tensor([1.0, -1.0, 0.5]),
        loss_mask=[True, True, False],
    )


def test_sequences_are_left_padded_and_completions_right_aligned():
    mb = next(_batch().micro_batches(size=3))
    row = mb.rows.index(1)  # prompt [4, 5] + completion [9, 10, 11]
    assert mb.input_ids[row].tolist()[-5:] == [4, 5, 9, 10, 11]
    assert mb.targets[row].tolist() == [9, 10, 11]
    short = mb.rows.index(0)
    assert mb.targets[short].tolist() == [0, 7, 8]
    assert mb.mask[short].tolist() == [0.0, 1.0, 1.0]
    assert torch.allclose(mb.rollout_logprobs[short], torch.tensor([0.0, -0.1, -0.2]))


def test_position_ids_restart_at_the_first_real_token():
    mb = next(_batch().micro_batches(size=3))
    row = mb.rows.index(2)  # 2 real tokens in a width of 5
    assert mb.position_ids[row].tolist() == [0, 0, 0, 0, 1]
    assert mb.attention_mask[row].tolist() == [0, 0, 0, 1, 1]


def test_masked_sequences_do_not_count():
    batch = _batch()
    assert batch.num_tokens() == 5
    mb = next(batch.micro_batches(size=3))
    assert mb.mask[mb.rows.index(2)].sum() == 0


def test_micro_batches_cover_every_sequence_once():
    rows = [r for mb in _batch().micro_batches(size=2) for r in mb.rows]
    assert sorted(rows) == [0, 1, 2]


def test_source_points_at_the_position_that_predicts_each_completion_token():
    batch = _batch()
    mb = next(batch.micro_batches(size=3))
    for b, i in enumerate(mb.rows):
        n = len(batch.completion_ids[i])
        predictors = mb.source[b, mb.source.shape[1] - n :]
        previous = [batch.prompt_ids[i][-1], *batch.completion_ids[i][:-1]]
        assert mb.input_ids.view(-1)[predictors].tolist() == previous


def test_positions_without_a_completion_token_have_no_source():
    mb = next(_batch().micro_batches(size=3))
    short = mb.rows.index(2)  # one completion token in a window of three
    assert mb.source[short].tolist()[:2] == [-1, -1]


def test_only_the_given_rows_are_collated():
    rows = [r for mb in _batch().micro_batches(size=2, rows=[0, 2]) for r in mb.rows]
    assert sorted(rows) == [0, 2]
