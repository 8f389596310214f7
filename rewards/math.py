"""Math answers: equivalence of a completion's final answer with the gold.

    verify(gold, completion) -> bool        (never raises; `check` says why)

Cheap checks first (normalised strings, exact rationals, choice letters, tuples and sets
element by element); only what they cannot decide goes to sympy, which runs in a helper
process killed at the deadline: no `signal.alarm` (which fails outside the main thread,
e.g. in Ray workers), nothing left running. One wall-clock deadline covers the whole call,
extraction included (extraction is linear in the completion's length).

Policies (documented in docs/rewards.md):
- exact: a decimal equals a gold only when it is the same number (0.5 = 1/2, 0.333 != 1/3,
  3.14159 != pi); with `approximate`, a decimal that is the gold rounded to its own decimals
  (at least as many as the gold writes) counts too;
- "50%" equals 50; it equals 0.5 only with `percent_fraction`;
- a collection is not its item (`3, 3` != 3); sets and lists of solutions ignore repeats;
- without </think>, <answer>, \\boxed, "the answer is" or "####", the last number is taken;
  nothing inside an unclosed <think> is an answer;
- only what a reader sees counts (`rewards.math_visible`), and a final answer the text
  negates ("is not 12", "\\boxed{12} is wrong") is ambiguous: 0, never guessed;
- `1 000` is 1000 (groups of three), `1 2` and `12 34` are no number; `\\{5\\}` is not 5.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from rewards.math_extract import ANSWER_IS, extract_answer, find_answer
from rewards.math_normalise import (
    MAX_ANSWER_CHARS,
    exact_number,
    normalise,
    split_top_level,
    strip_braces,
)
from rewards.math_sympy import sympy_equal
from rewards.text import continued

__all__ = ["Outcome", "OUTCOMES", "check", "equivalent", "extract_answer", "math_reward", "verify"]

DEADLINE_S = 0.8  # one call's whole budget: extraction, cheap checks and sympy (killing a
# stuck sympy helper takes a little more, so a call returns within about a second)
_BOUND = r"(-?[^<>=]+?)"
_VARIABLE = r"(?:[a-zA-Z](?:_\{?\w+\}?)?|[a-zA-Z]\([a-zA-Z]\))"
CHAINED_INEQUALITY = re.compile(rf"{_BOUND}(<|\\leq){_VARIABLE}(<|\\leq){_BOUND}")
DECIMAL = re.compile(r"-?\d*\.(\d+)")
# Arithmetic left to do on numbers alone (no variable, no constant): an operator after a digit or
# a closing bracket; scientific notation (3 \\times 10^{5}, 10^5) is a number, not arithmetic.
_OPERATORS = re.compile(r"\\(?:times|cdot|div)(?![a-z])")
NUMBERS_ONLY = re.compile(r"[\d.,\s+\-*/^!(){}\[\]]+")
OPERATION = re.compile(r"[\d)}\]]\s*[-+*/^!]")
SCIENTIFIC = re.compile(r"-?(?:\d+(?:\.\d+)?\s*\*\s*)?10\s*\^\s*\{?-?\d+\}?")
# When the current verify() call must end: a set of answers may need several sympy calls,
# and together they share one deadline. A ContextVar, so each thread has its own.
_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


class Outcome(StrEnum):
    """Why a verify() call answered as it did; counted in OUTCOMES."""

    EQUAL = "equal"
    DIFFERENT = "different"
    NO_ANSWER = "no_answer"  # nothing extracted
    AMBIGUOUS = "ambiguous"  # the text negates its final answer, or shows it reordered
    TOO_LONG = "too_long"  # an extracted answer over MAX_ANSWER_CHARS
    TIMEOUT = "timeout"  # the deadline passed before equivalence was decided
    ERROR = "error"  # an input the checker could not handle (a bug to report)


OUTCOMES: Counter[Outcome] = Counter()  # this process's calls, by outcome; callers may log it
_outcomes_lock = threading.Lock()


@dataclass(frozen=True)
class Policy:
    """How lenient equivalence is (see the module docstring)."""

    approximate: bool = False
    percent_fraction: bool = False


class _OutOfTime(Exception):
    """The call's deadline passed before sympy could answer."""


def verify(
    gold: str,
    completion: str | list | dict,
    answer_tag: bool = False,
    approximate: bool = False,
    percent_fraction: bool = False,
) -> bool:
    """Whether the completion's final answer (inside <answer> only, with `answer_tag`) equals
    the gold answer. Never raises; see `check` for the reason."""
    outcome = check(gold, completion, answer_tag, approximate, percent_fraction)
    return outcome is Outcome.EQUAL


def check(
    gold: str,
    completion: str | list | dict,
    answer_tag: bool = False,
    approximate: bool = False,
    percent_fraction: bool = False,
) -> Outcome:
    """verify()'s answer with its reason, counted in OUTCOMES; within DEADLINE_S (plus a
    sympy helper's cold start)."""
    token = _deadline.set(time.monotonic() + DEADLINE_S)
    try:
        outcome = _check(str(gold), completion, answer_tag, Policy(approximate, percent_fraction))
    except _OutOfTime:
        outcome = Outcome.TIMEOUT
    except Exception:  # noqa: BLE001 - a reward must not crash training; counted instead
        outcome = Outcome.ERROR
    finally:
        _deadline.reset(token)
    with _outcomes_lock:
        OUTCOMES[outcome] += 1
    return outcome


def _check(gold: str, completion: str | list | dict, answer_tag: bool, policy: Policy) -> Outcome:
    found = find_answer(completion, answer_tag)
    if found is None:
        return Outcome.NO_ANSWER
    if found.ambiguous:
        return Outcome.AMBIGUOUS
    pred = found.text
    if len(pred) > MAX_ANSWER_CHARS:
        return Outcome.TOO_LONG
    equal = equivalent(_gold_answer(gold), pred, policy)
    return Outcome.EQUAL if equal else Outcome.DIFFERENT


def math_reward(
    prompts: list,
    completions: list,
    answer: list,
    answer_tag: bool = False,
    approximate: bool = False,
    percent_fraction: bool = False,
    **_,
) -> list[float]:
    """1.0 when the completion's final answer equals the row's `answer`, else 0.0. With
    `answer_tag` only an answer inside <answer></answer> counts, as R1's accuracy reward asks
    for the answer "in a specified format"; `approximate` accepts rounded decimals (for
    problems that ask for them); `percent_fraction` lets 50% equal 0.5."""
    return [
        float(
            verify(gold, continued(prompt, completion), answer_tag, approximate, percent_fraction)
        )
        for prompt, gold, completion in zip(prompts, answer, completions, strict=True)
    ]


def equivalent(gold: str, pred: str, policy: Policy = Policy()) -> bool:
    """Whether two extracted answers are the same mathematical object."""
    g, p = _named_sides(_as_interval(normalise(gold)), _as_interval(normalise(pred)))
    if g == p:
        return True
    if not g or not p:
        return False
    if (letter := _choice(g)) is not None:
        return letter == _choice(p)
    g_items, g_kind = _items(g)
    p_items, p_kind = _items(p)
    if not g_items or not p_items:  # the empty set equals only itself
        return not g_items and not p_items
    if len(g_items) == len(p_items) == 1 and (g_kind == "set") != (p_kind == "set"):
        return False  # a set of one element is not its element
    if len(g_items) > 1 or len(p_items) > 1:
        return _same_collection(g_items, g_kind, p_items, p_kind, policy)
    return _same_value(g_items[0], p_items[0], policy)


def _same_collection(g: list[str], g_kind: str, p: list[str], p_kind: str, policy: Policy) -> bool:
    """Tuples and intervals compare in order (a bare list against a tuple too); sets and
    lists of solutions as collections: braces ignore repeats, a bare list keeps them."""
    if g_kind == "interval" or p_kind == "interval":
        return g_kind == p_kind and _bracket(g) == _bracket(p) and _pairwise(g, p, policy)
    if "tuple" in (g_kind, p_kind):
        return {g_kind, p_kind} <= {"tuple", "list"} and _pairwise(g, p, policy)
    if "single" in (g_kind, p_kind):
        return False  # several items are not one value, even when they all equal it
    g, remaining = list(dict.fromkeys(g)), list(dict.fromkeys(p))
    if len(g) != len(remaining):
        return False
    for item in g:
        match = next((q for q in remaining if equivalent(item, q, policy)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def _pairwise(g: list[str], p: list[str], policy: Policy) -> bool:
    return len(g) == len(p) and all(
        _same_value(a.strip("[]()"), b.strip("[]()"), policy) for a, b in zip(g, p, strict=True)
    )


def _bracket(items: list[str]) -> str:
    return items[0][:1] + items[-1][-1:]


def _same_value(g: str, p: str, policy: Policy) -> bool:
    g, p = _named_sides(g, p)
    if g == p:
        return True
    if not policy.percent_fraction:  # 50% is 50: the sign is a unit, never a factor 1/100
        g, p = g.removesuffix("%"), p.removesuffix("%")
    g_num, p_num = _numbers(g, policy), _numbers(p, policy)
    if g_num and p_num:
        return any(_numbers_match(a, g, b, p, policy) for a in g_num for b in p_num)
    if g_num and re.fullmatch(r"-?[\d.]+", p):
        return False  # a plain number against a number: decided above, no sympy needed
    if g_num and _unevaluated(p):
        return False  # "162*501" for 81162: the problem restated, its arithmetic not done
    rounded = None
    if policy.approximate and bool(g_num) != bool(p_num):  # a decimal against an exact constant
        rounded = _decimals(p if p_num else g)
    return _sympy(g.removesuffix("%"), p.removesuffix("%"), rounded)


def _unevaluated(text: str) -> bool:
    """Arithmetic on numbers alone, left undone ("162*501", "2^{10}", "3!"): what restates a
    numeric problem rather than answering it."""
    plain = _OPERATORS.sub("*", text)
    if not NUMBERS_ONLY.fullmatch(plain) or SCIENTIFIC.fullmatch(plain):
        return False
    return OPERATION.search(plain) is not None


def _sympy(gold: str, pred: str, rounded: int | None) -> bool:
    """sympy's answer within what is left of the call's deadline."""
    deadline = _deadline.get()
    left = DEADLINE_S if deadline is None else deadline - time.monotonic()
    equal = sympy_equal(gold, pred, left, rounded) if left > 0 else None
    if equal is None:
        raise _OutOfTime
    return equal


def _numbers(text: str, policy: Policy) -> list[Fraction]:
    """The exact values a numeric answer may mean (`50%` is 0.5 with `percent_fraction`)."""
    value = exact_number(text.removesuffix("%"))
    if value is None:
        return []
    return [value, value / 100] if text.endswith("%") and policy.percent_fraction else [value]


def _numbers_match(
    gold: Fraction, gold_text: str, pred: Fraction, pred_text: str, policy: Policy
) -> bool:
    """Equal values; with `approximate`, also a decimal that is the gold rounded to its own
    decimals, when it writes at least as many as the gold (0.3 is not 0.34 rounded)."""
    if gold == pred:
        return True
    decimals = _decimals(pred_text)
    if not policy.approximate or decimals is None or decimals < (_decimals(gold_text) or 0):
        return False
    return abs(gold - pred) <= Fraction(1, 2 * 10**decimals)


def _decimals(text: str) -> int | None:
    """How many decimals a plain decimal number writes (`0.25` -> 2), else None."""
    match = DECIMAL.fullmatch(text.removesuffix("%"))
    return len(match.group(1)) if match else None


def _named_sides(g: str, p: str) -> tuple[str, str]:
    """Drop a name on the left: `x = 3`, `f(x) = 3`, `|AB| = 3`, `x \\in [2, 5)` all mean the
    right side. Two equations keep their sides unless they name the same thing."""
    g_sides, p_sides = _sides(g), _sides(p)
    if g_sides and p_sides:
        return (g_sides[1], p_sides[1]) if g_sides[0] == p_sides[0] else (g, p)
    if g_sides and _is_name(g_sides[0]):
        return g_sides[1], p
    if p_sides and _is_name(p_sides[0]):
        return g, p_sides[1]
    return g, p


def _sides(text: str) -> tuple[str, str] | None:
    """(left, right) of `a = b` or `a \\in b`; `x = 5 + 6 = 11` -> (x, 11); None for lists."""
    parts = re.split(r"=|\\in(?![a-zA-Z])", text)
    if len(parts) < 2 or len(split_top_level(text)) > 1 or not parts[0] or not parts[-1]:
        return None
    return parts[0], parts[-1]


def _is_name(text: str) -> bool:
    """Letters, brackets and subscripts, no number or sum: `x`, `f(x)`, `a_3`, `|AB|`."""
    return not re.search(r"[\d+\-]", re.sub(r"_\{?\w+\}?", "", text))


def _as_interval(text: str) -> str:
    """`-2 \\leq x < 7` -> `[-2,7)`: a chained inequality is an interval."""
    match = CHAINED_INEQUALITY.fullmatch(text)
    if not match:
        return text
    low, left, right, high = match.groups()
    return {"<": "(", "\\leq": "["}[left] + f"{low},{high}" + {"<": ")", "\\leq": "]"}[right]


def _items(text: str) -> tuple[list[str], str]:
    """Split a collection answer into items and say what it is: tuple, interval, set (in
    braces), list (bare commas) or single."""
    if text.startswith("\\{") and text.endswith("\\}"):
        return split_top_level(text[2:-2]), "set"
    if len(text) > 1 and text[0] in "([" and text[-1] in ")]" and _enclosed(text[1:-1]):
        inner = split_top_level(text[1:-1])
        if len(inner) > 1:
            kind = "tuple" if text[0] + text[-1] == "()" else "interval"
            if kind == "interval":
                inner[0], inner[-1] = text[0] + inner[0], inner[-1] + text[-1]
            return inner, kind
    parts = split_top_level(text)
    return parts, "list" if len(parts) > 1 else "single"


def _enclosed(inner: str) -> bool:
    """No bracket closes before the end: `(1,2),(3,4)` is a list, not one tuple."""
    depth = 0
    for char in inner:
        depth += (char in "([{") - (char in ")]}")
        if depth < 0:
            return False
    return True


def _choice(text: str) -> str | None:
    match = re.fullmatch(r"\(?([A-E])\)?", strip_braces(text))
    return match.group(1) if match else None


def _gold_answer(gold: str) -> str:
    """A gold answer may be a whole solution: take its marked final answer."""
    if "####" in gold or "\\boxed" in gold or ANSWER_IS.search(gold):
        return extract_answer(gold) or gold
    return gold
