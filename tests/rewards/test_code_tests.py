import json

import pytest

from rewards.code_tests import HARNESS, Case, CodeRewardError, cases
from rewards.sandbox import ExecResult


def result(stdout: str, status: str = "ok") -> ExecResult:
    return ExecResult(status, stdout, "", 0, 0.01)


def test_stdout_is_compared_as_whitespace_separated_tokens():
    case = Case("", expected="1 2\n3\n")
    assert case.passed(result("1  2 \n 3"))
    assert not case.passed(result("1 2 3 4"))


def test_a_failed_run_never_passes():
    assert not Case("", expected="").passed(result("", status="timeout"))


def test_assert_style_cases_are_judged_by_the_exit_status_alone():
    case = cases("x = 1", {"test_list": ["assert x == 1"]})[0]
    assert case.passed(result("")) and not case.passed(result("", status="error"))


def test_assert_style_tests_go_to_the_harness_apart_from_the_code():
    case = cases("CODE", {"test_list": ["assert f() == 'SECRET'"]})[0]
    assert case.source == HARNESS and "SECRET" not in case.stdin + case.source
    assert "SECRET" in case.private_input and "CODE" not in case.private_input


def test_humaneval_header_goes_before_the_code_and_before_the_tests():
    row = {"test": "def check(f): assert f() == 1", "entry_point": "one", "humaneval_prompt": "H\n"}
    case = cases("    return 1", row)[0]
    assert case.stdin.startswith("H\n    return 1\n")
    assert case.private_input.startswith("H\n\none = __completion__.get('one', one)\n")
    assert case.private_input.endswith(f"{row['test']}\n\ncheck(one)\n")


def test_mbpp_setup_code_runs_after_the_solution():
    row = {"test_list": ["assert a", "assert b"], "test_setup_code": "SETUP"}
    codes = [c.stdin for c in cases("CODE", row)]
    assert len(codes) == 2 and all(c.index("CODE") < c.index("SETUP") for c in codes)


@pytest.mark.parametrize(
    "tests",
    [
        [{"input": "1\n", "output": "2\n"}],
        json.dumps([{"input": "1\n", "output": "2\n"}]),
        {"inputs": ["1\n"], "outputs": ["2\n"]},
        json.dumps({"inputs": [["1"]], "outputs": [["2"]]}),
    ],
)
def test_stdio_tests_in_every_accepted_shape(tests):
    assert cases("CODE", {"tests": tests}) == [Case("CODE", "1\n", expected="2\n")]


@pytest.mark.parametrize("tests", [None, [], ""])
def test_a_row_without_tests_has_no_cases(tests):
    assert cases("CODE", {"tests": tests}) == []


@pytest.mark.parametrize(
    "tests",
    ["not json", [{"input": "1"}], {"inputs": ["1"], "outputs": []}, 42],
)
def test_malformed_tests_are_reported(tests):
    with pytest.raises(CodeRewardError, match="tests"):
        cases("CODE", {"tests": tests})


@pytest.mark.parametrize(
    ("test", "bound"),
    [
        ("assert sum(10, 15) == 6", "sum"),
        ("assert set(max(xs)) == {1}", "max"),
        ("assert abs(area(2) - 12.5) < 1e-9", None),
        ("assert len(f(1)) == 2", None),
        ("assert (", None),
    ],
)
def test_an_mbpp_function_named_like_a_builtin_is_bound_to_the_completion_s(test, bound):
    private = cases("CODE", {"test_list": [test]})[0].private_input
    binding = f"\n{bound} = __completion__.get({bound!r}, {bound})\n" if bound else ""
    assert private == f"{binding}{test}\n"
