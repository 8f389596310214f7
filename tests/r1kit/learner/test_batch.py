from dataclasses import replace

import pytest
import torch

from r1kit.learner.batch import Batch, MicroBatch, to_batch
from r1kit.learner.prefix import packed_micro_batches
from rollout.types import Completion


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


def _completions() -> list[Completion]:
    return [
        Completion([7, 8], [-0.1, -0.2], "a", "stop", [1, 2]),
        Completion([9], [-0.3], "b", "length", [1, 2]),
    ]


def test_completions_become_one_sequence_each_with_zero_advantage_unless_given():
    batch = to_batch(_completions())
    assert batch.prompt_ids == [[1, 2], [1, 2]] and batch.completion_ids == [[7, 8], [9]]
    assert batch.rollout_logprobs == [[-0.1, -0.2], [-0.3]]
    assert batch.advantages.tolist() == [0.0, 0.0] and batch.loss_mask == [True, True]
    assert batch.old_logprobs is None and batch.shares_prompts()


def test_truncated_completions_are_masked_out_when_asked():
    assert to_batch(_completions(), mask_truncated=True).loss_mask == [True, False]


def test_the_engine_s_logprobs_can_be_the_old_policy():
    old = to_batch(_completions(), torch.tensor([1.0, -1.0]), engine_old=True).old_logprobs
    assert [t.tolist() for t in old] == [pytest.approx([-0.1, -0.2]), pytest.approx([-0.3])]


def test_normalisers_count_the_tokens_in_the_loss_over_the_whole_batch():
    norm = _batch().normalisers(max_completion_len=16)
    assert (norm.num_tokens, norm.num_sequences, norm.max_completion_len) == (5, 3, 16)


# A hand-built tool-use trajectory: the model's call, the tool's observation, the model's answer
# (token ids standing for "<think>..<python>print(3*4)</python>", "<output>12</output>",
# "</think><answer>12</answer>"); the engine gives the observation placeholder log-probs of 0.0.
CALL, OBSERVATION, ANSWER = [11, 12, 13], [21, 22], [31, 32]
TRAJECTORY = CALL + OBSERVATION + ANSWER
OWN = [True] * len(CALL) + [False] * len(OBSERVATION) + [True] * len(ANSWER)


def _trajectory() -> Completion:
    logprobs = [-0.5 if own else 0.0 for own in OWN]
    return Completion(TRAJECTORY, logprobs, "", "stop", [1, 2], model_tokens=OWN)


def _plain(batch: Batch) -> MicroBatch:
    return next(batch.micro_batches(size=4))


def _packed(batch: Batch) -> MicroBatch:
    return next(packed_micro_batches(batch, list(range(len(batch))), size=4))


@pytest.mark.parametrize("layout", [_plain, _packed])
def test_a_trajectory_s_loss_mask_is_zero_exactly_on_its_observation_tokens(layout):
    single = Completion([7, 8], [-0.1, -0.2], "", "stop", [1, 2])
    mb = layout(to_batch([_trajectory(), single]))
    row = mb.rows.index(0)
    assert mb.targets[row].tolist() == TRAJECTORY  # observations stay in the context
    assert mb.mask[row].tolist() == [float(own) for own in OWN]
    assert mb.mask[mb.rows.index(1)].tolist() == [0.0] * 5 + [1.0] * 2


def test_a_left_out_trajectory_counts_no_token():
    batch = to_batch([replace(_trajectory(), finish_reason="length")], mask_truncated=True)
    assert _plain(batch).mask.sum() == 0 and batch.num_tokens() == 0


def test_the_token_normaliser_counts_the_model_s_own_tokens_only():
    batch = to_batch([_trajectory(), Completion([7, 8], [-0.1, -0.2], "", "stop", [1, 2])])
    own = len(CALL) + len(ANSWER) + 2
    assert batch.num_tokens() == own and batch.normalisers(16).num_tokens == own


def test_single_turn_completions_carry_no_model_token_flags():
    assert to_batch(_completions()).model_tokens is None


def test_single_turn_completions_beside_a_trajectory_are_all_the_model_s():
    batch = to_batch([_trajectory(), _completions()[0]])
    assert batch.model_tokens[1] == [True, True]


def test_model_token_flags_of_the_wrong_length_are_rejected_naming_the_completion():
    bad = replace(_trajectory(), model_tokens=[True, False])
    with pytest.raises(ValueError, match="completion 1 has 2 model_tokens flags for 7 tokens"):
        to_batch([_completions()[0], bad])
