"""The harness's wire format and its checker's end, without a sandbox (the attacks on the whole
are in test_code.py)."""

import io
import json
from collections import Counter

import pytest

from rewards import code_harness, sandbox
from rewards.code_harness import Link, Remote, decoder, encode, raised

PLAIN = [
    None,
    True,
    -5,
    2**100,
    -0.0,
    float("inf"),
    float("nan"),
    "text",
    b"\x00\xff",
    1 + 2j,
    [1, (2, 3)],
    (),
    set(),
    {(1, 2): {"a": frozenset({1})}},
]


def no_refs(value: object) -> int:
    raise AssertionError(f"{value!r} should have been sent as plain data")


def round_trip(value: object, to_ref=no_refs, from_ref=None) -> object:
    return json.loads(json.dumps(encode(value, to_ref)), object_hook=decoder(from_ref))


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_builtin_values_cross_with_their_exact_types(value):
    assert repr(round_trip(value)) == repr(value)


class Shouting(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


@pytest.mark.parametrize(
    ("value", "plain"), [(Counter("aab"), {"a": 2, "b": 1}), (Shouting("hi"), "hi")]
)
def test_a_builtin_subclass_arrives_as_its_builtin_base(value, plain):
    got = round_trip(value)
    assert type(got) is type(plain) and got == plain and got != "other"


def test_builtins_cross_by_name():
    assert round_trip([len, int]) == [len, int]


def test_other_objects_and_lookalikes_of_builtins_stay_behind_as_references():
    def lookalike():
        return 0

    lookalike.__name__ = "len"
    kept: list[object] = []

    def keep(value: object) -> int:
        kept.append(value)
        return len(kept) - 1

    sent = round_trip([lookalike, Shouting], keep, from_ref=lambda ref: ("ref", ref))
    assert sent == [("ref", 0), ("ref", 1)] and kept == [lookalike, Shouting]


def test_a_remote_object_equals_only_itself():
    one = Remote(0, link=None)
    assert one == one and one != Remote(0, link=None)


def test_a_remote_object_has_no_truth_value():
    with pytest.raises(TypeError, match="truth value"):
        all([Remote(0, link=None)])


def link_answering(*lines: str) -> Link:
    return Link(io.StringIO(), io.StringIO("".join(f"{line}\n" for line in lines)))


def test_a_builtin_exception_in_the_candidate_is_raised_as_itself():
    with pytest.raises(ValueError, match="bad"):
        link_answering('["raised", "ValueError", "bad"]').receive()


@pytest.mark.parametrize(
    "name",
    [
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
        "Mine",
        "print",
        "StopIteration",
        "StopAsyncIteration",
    ],
)
def test_other_raised_names_become_runtime_errors(name):
    with pytest.raises(RuntimeError, match=name):
        link_answering(f'["raised", "{name}", "x"]').receive()


def test_a_stop_iteration_of_the_candidate_does_not_end_the_tests_map():
    tested = Remote(0, link_answering('["raised", "StopIteration", ""]'))
    with pytest.raises(RuntimeError, match="StopIteration"):
        all(map(tested, [1]))


class Invalid(ValueError):
    pass


@pytest.mark.parametrize(
    ("err", "answer"),
    [
        (KeyError("k"), ["raised", "KeyError", "'k'"]),
        (Invalid("bad"), ["raised", "ValueError", "Invalid: bad"]),
        (
            json.JSONDecodeError("bad", "", 0),
            ["raised", "ValueError", "JSONDecodeError: bad: line 1 column 1 (char 0)"],
        ),
    ],
    ids=repr,
)
def test_the_candidate_names_an_exception_by_its_nearest_builtin_class(err, answer):
    assert raised(err) == answer


def test_a_candidate_that_ends_fails_the_call():
    with pytest.raises(RuntimeError, match="ended"):
        link_answering().receive()


def test_only_plain_data_and_remote_objects_can_be_passed_to_the_candidate():
    link = link_answering('["value", 1]')
    assert link.call(0, (Remote(3, link), [1]), {}) == 1
    assert json.loads(link.requests.getvalue()) == [0, [{"ref": 3}, [1]], {"dict": []}]
    with pytest.raises(TypeError, match="function"):
        link.call(0, (lambda: 0,), {})


def test_the_harness_reads_the_descriptor_the_sandbox_opens():
    assert code_harness.PRIVATE_FD == sandbox.PRIVATE_FD
