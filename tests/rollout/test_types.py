import pytest

from rollout.types import Completion, SamplingParams
from tests.trajectories import call, multi_turn


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "n"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"stop": "</answer>"}, "stop"),
    ],
)
def test_bad_sampling_params_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"\b{field} must"):
        SamplingParams(**kwargs)


def test_model_token_count_leaves_tool_observations_out():
    completion = multi_turn("ab", call("42"), "c")  # the observation: output tags around "42"
    assert len(completion.token_ids) == 3 + len("<output>\n42\n</output>")
    assert completion.model_token_count == 3
    assert Completion([1, 2], [-1.0, -1.0], "ab", "stop").model_token_count == 2
