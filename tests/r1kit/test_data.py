import json

import pytest

from r1kit.data import DataError, PromptStream, hub_dataset, load_data
from r1kit.recipe import DataConfig


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_local_jsonl_with_column_mapping(tmp_path):
    path = tmp_path / "d.jsonl"
    _write_jsonl(path, [{"q": f"question {i}", "a": i, "level": i % 3} for i in range(10)])
    cfg = DataConfig(
        source=str(path), prompt_column="q", answer_column="a", columns=["level"], eval_size=2
    )
    stream, held_out = load_data(cfg, seed=0)
    rows = stream.take(8)
    assert len(held_out) == 2 and set(rows[0]) == {"prompt", "answer", "level"}
    assert not {r["prompt"] for r in rows} & {r["prompt"] for r in held_out}
    assert isinstance(rows[0]["answer"], str)


def test_missing_column_names_it(tmp_path):
    path = tmp_path / "d.jsonl"
    _write_jsonl(path, [{"question": "q", "answer": 1}] * 4)
    with pytest.raises(DataError, match=r"column\(s\) \['solution'\] not found"):
        load_data(DataConfig(source=str(path), answer_column="solution", eval_size=1), seed=0)


@pytest.mark.parametrize(
    "bad", [{"answer": 3}, {"question": None, "answer": 3}, {"question": " ", "answer": 3}]
)
def test_a_row_without_its_prompt_is_named_by_number_and_column(tmp_path, bad):
    path = tmp_path / "d.jsonl"
    _write_jsonl(path, [{"question": "q1", "answer": 1}, {"question": "q2", "answer": 2}, bad])
    with pytest.raises(DataError, match=r"d.jsonl:3: column 'question' is empty or missing"):
        load_data(DataConfig(source=str(path), eval_size=1), seed=0)


@pytest.mark.parametrize("answer", [None, "", "   "])
def test_a_row_with_a_blank_answer_is_named_by_file_line_and_column(tmp_path, answer):
    path = tmp_path / "d.jsonl"
    rows = [{"question": "q1", "answer": "1"}, {"question": "q2", "answer": answer}]
    path.write_text(f"{json.dumps(rows[0])}\n\n{json.dumps(rows[1])}\n")  # a blank line between
    with pytest.raises(DataError, match=r"d.jsonl:3: column 'answer' is empty or missing"):
        load_data(DataConfig(source=str(path), eval_size=1), seed=0)


def test_a_bad_row_of_a_csv_is_named_by_its_number(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,answer\nq1,1\nq2,\n")
    with pytest.raises(DataError, match=r"d.csv' \(train\) row 2: column 'answer' is empty"):
        load_data(DataConfig(source=str(path), eval_size=1), seed=0)


@pytest.mark.parametrize("name, text", [("d.jsonl", ""), ("d.jsonl", "\n \n"), ("d.csv", "")])
def test_an_empty_data_file_says_it_is_empty(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=rf"{name}': the file is empty \(no rows\)"):
        load_data(DataConfig(source=str(path), eval_size=0), seed=0)


def test_a_csv_with_only_its_header_says_so(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,answer\n")
    with pytest.raises(DataError, match="d.csv': only a header line, no rows"):
        load_data(DataConfig(source=str(path), eval_size=0), seed=0)


def test_eval_size_must_leave_training_rows(tmp_path):
    path = tmp_path / "d.jsonl"
    _write_jsonl(path, [{"question": "q", "answer": 1}] * 4)
    with pytest.raises(DataError, match="leaves no training rows"):
        load_data(DataConfig(source=str(path), eval_size=4), seed=0)


def test_stream_resumes_exactly_across_an_epoch_boundary():
    rows = [{"prompt": str(i), "answer": str(i)} for i in range(5)]
    full = PromptStream(rows, seed=3)
    expected = full.take(12)
    first = PromptStream(rows, seed=3)
    head = first.take(7)  # past the end of epoch 0
    resumed = PromptStream(rows, seed=3)
    resumed.load_state_dict(first.state_dict())
    assert head + resumed.take(5) == expected


def test_epochs_are_reshuffled():
    rows = [{"prompt": str(i), "answer": str(i)} for i in range(20)]
    stream = PromptStream(rows, seed=0)
    assert stream.take(20) != stream.take(20)


def test_builtin_task_stream_resumes():
    stream, _ = load_data(DataConfig(source="countdown", eval_size=5), seed=1)
    stream.take(3)
    state = stream.state_dict()
    after = stream.take(2)
    stream.load_state_dict(state)
    assert stream.take(2) == after


def _curriculum_stream(levels=1, **curriculum):
    cfg = DataConfig(
        source="arithmetic",
        eval_size=5,
        arithmetic={"digits": 2},
        curriculum={"levels": levels, "raise_at": 0.5, "window": 8, **curriculum},
    )
    return load_data(cfg, seed=0)


def _digits(row) -> int:
    return max(len(n) for n in row["prompt"].removeprefix("What is ").rstrip("?").split()[::2])


def test_curriculum_starts_easy_and_moves_to_the_configured_task_as_accuracy_rises():
    stream, held_out = _curriculum_stream()
    assert {_digits(r) for r in stream.take(20)} == {1} and {_digits(r) for r in held_out} == {2}
    stream.record(stream.take(1), [[True] * 4])
    assert stream.metrics() == {"curriculum/level": 0}
    stream.record(stream.take(1), [[True] * 4])
    assert stream.metrics() == {"curriculum/level": 1}
    assert {_digits(r) for r in stream.take(20)} == {2}


def test_curriculum_level_resumes_with_the_stream():
    stream, _ = _curriculum_stream()
    stream.record(stream.take(2), [[True] * 4, [True] * 4])
    resumed, _ = _curriculum_stream()
    resumed.load_state_dict(stream.state_dict())
    assert resumed.metrics() == {"curriculum/level": 1} and resumed.take(3) == stream.take(3)


def _pass_rate_stream(tmp_path, problems: int, min_attempts: int):
    """A stream over `problems` dataset rows (one held out) with pass-rate filtering on."""
    path = tmp_path / "d.jsonl"
    _write_jsonl(path, [{"question": f"q{i}", "answer": i} for i in range(problems)])
    pass_rate = {"enabled": True, "min_attempts": min_attempts}
    return load_data(DataConfig(source=str(path), eval_size=1, pass_rate=pass_rate), seed=0)[0]


def test_pass_rate_filtering_skips_settled_problems(tmp_path):
    stream = _pass_rate_stream(tmp_path, problems=6, min_attempts=2)
    first = stream.take(5)
    stream.record(first[:2], [[True, True], [False, False]])  # settled: always / never solved
    stream.record(first[2:3], [[True, False]])  # still informative
    later = [r["prompt"] for r in stream.take(9)]
    assert first[2]["prompt"] in later
    assert first[0]["prompt"] not in later and first[1]["prompt"] not in later
    assert stream.metrics() == {"data/settled_problems": 2}


def test_pass_rate_filtering_still_serves_when_every_problem_is_settled(tmp_path):
    stream = _pass_rate_stream(tmp_path, problems=3, min_attempts=1)
    rows = stream.take(2)
    stream.record(rows, [[True], [True]])
    assert len(stream.take(4)) == 4


def test_hub_dataset_names_only_a_hub_source(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "rows.jsonl").write_text('{"question": "1 + 1", "answer": "2"}\n')
    assert hub_dataset(DataConfig(source="openai/gsm8k", subset="main")) == "openai/gsm8k"
    local = ("arithmetic", "countdown", str(tmp_path / "rows.jsonl"), str(tmp_path / "local"))
    for source in local:
        assert hub_dataset(DataConfig(source=source)) is None
