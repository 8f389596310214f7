import pickle
import re
from pathlib import Path

import pytest

from rewards.registry import BUILTINS, RewardError, load_reward


def test_builtin_by_name_with_bound_kwargs():
    fn = load_reward("format", {"strict": True})
    assert fn(["q"], ["x <think>a</think><answer>1</answer>"]) == [0.0]


def test_custom_reward_from_a_file_path(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "def short(prompts, completions, **kw):\n"
        "    return [1.0 if len(c) < 5 else 0.0 for c in completions]\n"
    )
    assert load_reward(f"{path}:short")(["q", "q"], ["ok", "far too long"]) == [1.0, 0.0]


def test_custom_reward_from_a_module_path():
    fn = load_reward("rewards.format:format_reward")
    assert fn(["q"], ["<think>a</think><answer>1</answer>"]) == [1.0]


def test_the_shipped_example_reward_loads():
    fn = load_reward("recipes/examples/custom_reward.py:brevity", {"max_chars": 10})
    assert fn(["q", "q"], ["short", "x" * 100]) == [1.0, 0.0]


def test_trl_style_async_reward_with_completion_ids(tmp_path):
    path = tmp_path / "trl_style.py"
    path.write_text(
        "async def few_tokens(prompts, completions, completion_ids, **kwargs):\n"
        "    return [float(len(ids) < 3) for ids in completion_ids]\n"
    )
    fn = load_reward(f"{path}:few_tokens")
    assert fn(["q", "q"], ["a", "b"], completion_ids=[[1], [1, 2, 3]]) == [1.0, 0.0]


def test_verl_style_compute_score_is_adapted(tmp_path):
    path = tmp_path / "verl_style.py"
    path.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
        "    return {'score': float(solution_str.strip() == ground_truth), 'source': data_source}\n"
    )
    fn = load_reward(f"{path}:compute_score")
    assert fn(["q", "q"], ["4", "5"], answer=["4", "4"], data_source=["gsm8k"] * 2) == [1.0, 0.0]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mathh", "did you mean 'math'"),
        ("nowhere.py:fn", "reward file not found"),
        ("rewards.format:nothing", "has no function 'nothing'"),
        ("no_such_package.mod:fn", "cannot be imported"),
    ],
)
def test_unknown_rewards_get_clear_errors(name, message):
    with pytest.raises(RewardError, match=message):
        load_reward(name)


def test_a_reward_file_that_fails_to_import_is_named(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RewardError, match=r"broken.py failed to import: RuntimeError: boom"):
        load_reward(f"{path}:f")


def test_an_unknown_name_lists_the_builtins_with_what_they_score():
    with pytest.raises(RewardError) as raised:
        load_reward("nothing_like_it")
    for name, builtin in BUILTINS.items():
        assert f"  {name} " in str(raised.value) and builtin.description in str(raised.value)


def test_every_builtin_loads():
    for name in BUILTINS:
        assert callable(load_reward(name))


def test_the_docs_table_names_every_builtin():
    page = (Path(__file__).resolve().parents[2] / "docs" / "rewards.md").read_text()
    table = page.split("## Built-ins")[1].split("\n\n")[1]
    assert sorted(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)) == sorted(BUILTINS)


def test_a_relative_file_path_is_resolved_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text("def one(prompts, completions, **kw):\n    return [1.0]\n")
    monkeypatch.chdir(tmp_path)
    assert load_reward("mine.py:one")(["q"], ["x"]) == [1.0]


def test_a_loaded_file_reward_pickles_by_name_and_loads_again(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "def scaled(prompts, completions, k=1.0, **kw):\n    return [k] * len(prompts)\n"
    )
    fn = pickle.loads(pickle.dumps(load_reward(f"{path}:scaled", {"k": 2.0})))
    assert fn(["q"], ["x"]) == [2.0]


def test_verl_extra_info_holds_the_other_columns(tmp_path):
    path = tmp_path / "verl_style.py"
    path.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info):\n"
        "    return float(extra_info['nums'] == [1, 2])\n"
    )
    fn = load_reward(f"{path}:compute_score")
    assert fn(["q"], ["x"], answer=["3"], nums=[[1, 2]]) == [1.0]


def test_an_option_the_builtin_does_not_take_is_refused():
    with pytest.raises(RewardError, match=r"'format' has no option 'strct'; it takes strict"):
        load_reward("format", {"strct": True})


def test_an_unknown_style_is_refused():
    with pytest.raises(RewardError, match="style must be one of auto, trl, verl"):
        load_reward("math", style="openai")


def test_verl_rewards_get_the_text_of_chat_message_completions(tmp_path):
    path = tmp_path / "verl_style.py"
    path.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
        "    return float(solution_str == ground_truth)\n"
    )
    completion = [{"role": "assistant", "content": "4"}]
    assert load_reward(f"{path}:compute_score")(["q"], [completion], answer=["4"]) == [1.0]


def test_a_refused_option_lists_only_the_options_not_the_columns():
    with pytest.raises(
        RewardError,
        match=r"'math' has no option 'answer_tags'; it takes "
        r"answer_tag, approximate, percent_fraction$",
    ):
        load_reward("math", {"answer_tags": True})
