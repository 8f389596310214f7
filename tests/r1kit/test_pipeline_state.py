import pytest

from r1kit.pipeline_state import STATE, PipelineState
from r1kit.recipe import RecipeError


def test_a_stage_keeps_the_fingerprint_it_started_with_and_is_read_back(tmp_path):
    state = PipelineState(tmp_path)
    state.start("teacher", "aaa")
    state.start("teacher", "bbb")  # a resume of the stage under way
    assert not PipelineState(tmp_path).finished("teacher")
    state.finish("teacher", {"wall_s": 1.0})
    again = PipelineState(tmp_path)
    assert again.finished("teacher") and again.stages["teacher"]["hash"] == "aaa"
    assert again.stages["teacher"]["wall_s"] == 1.0
    assert not again.started("student")


def test_an_unreadable_state_file_names_it(tmp_path):
    (tmp_path / STATE).write_text("{not json")
    with pytest.raises(RecipeError, match="pipeline.json: unreadable"):
        PipelineState(tmp_path)
