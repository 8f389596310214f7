import pytest

from distill.recipe import TracesConfig
from distill.traces import TracesError, load_traces
from r1kit.errors import UserError
from tests.distill.conftest import write_jsonl


def test_messages_layout_splits_the_last_assistant_message_off(messages_file):
    traces = load_traces(TracesConfig(source=str(messages_file)))
    assert len(traces) == 6
    assert traces[0].prompt == [{"role": "user", "content": "What is 10 + 3?"}]
    assert traces[0].completion == "<think>10 plus 3 is 13.</think> <answer>13</answer>"


def test_prompt_completion_columns_are_read_as_a_user_turn_and_a_reply(tmp_path):
    path = write_jsonl(
        tmp_path / "pc.jsonl", [{"prompt": "2+2?", "completion": "<think>4</think>"}]
    )
    (trace,) = load_traces(TracesConfig(source=str(path)))
    assert trace.prompt == [{"role": "user", "content": "2+2?"}]
    assert trace.completion == "<think>4</think>"


def test_a_file_without_the_columns_names_what_it_needs(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "2+2?"}])
    with pytest.raises(TracesError, match="needs a 'messages' column.*it has question"):
        load_traces(TracesConfig(source=str(path)))


def test_messages_not_ending_in_an_assistant_turn_name_the_row(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]
    rows.append({"messages": [{"role": "user", "content": "only a question"}]})
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(TracesError, match="row 2: messages must end in an assistant"):
        load_traces(TracesConfig(source=str(path)))


@pytest.mark.parametrize("text", ["", "\n\n"], ids=["empty", "blank-lines"])
def test_an_empty_traces_file_says_it_holds_no_traces(tmp_path, text):
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    with pytest.raises(TracesError, match="empty.jsonl: no traces in it"):
        load_traces(TracesConfig(source=str(path)))


def test_a_line_that_is_not_json_is_named_by_its_number(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    path.write_text(path.read_text() + '{"prompt": [}\n')
    with pytest.raises(UserError, match=r"t.jsonl:2: not valid JSON"):
        load_traces(TracesConfig(source=str(path)))
