"""Math answers: extraction from a completion, normalisation, and equivalence with the gold.

    verify(gold, completion) -> bool

Cheap checks first (normalised strings, exact rationals, choice letters, tuples and sets
element by element); only what they cannot decide goes to sympy, which runs in a helper
process killed after a deadline, so every call returns within a second: no `signal.alarm`
(which fails outside the main thread, e.g. in Ray workers), nothing left running.

Policies (documented in docs/rewards.md):
- a decimal matches a rational gold when it is that value rounded to its own decimals and has
  at least 3 of them (0.333 = 1/3; 0.33 != 1/3); otherwise comparisons are exact;
- "50%" matches both 50 and 0.5;
- without </think>, <answer>, \\boxed, "the answer is" or "####", the last number is taken.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar
from fractions import Fraction

from rewards.math_normalise import normalise, split_top_level, strip_braces
from rewards.sympy_worker import DEADLINE_S, sympy_equal
from rewards.text import as_text

MAX_ANSWER_CHARS = 500  # longer "answers" are not answers; never parse them
_BOUND = r"(-?[^<>=]+?)"
_VARIABLE = r"(?:[a-zA-Z](?:_\{?\w+\}?)?|[a-zA-Z]\([a-zA-Z]\))"
CHAINED_INEQUALITY = re.compile(rf"{_BOUND}(<|\\leq){_VARIABLE}(<|\\leq){_BOUND}")
# When the current verify() call must end: a set of answers may need several sympy calls,
# and together they share one deadline. A ContextVar, so each thread has its own.
_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


def extract_answer(completion: str | list | dict, answer_tag: bool = False) -> str | None:
    """The final answer: after </think> only, then <answer>, \\boxed, "the answer is",
    GSM8K's ####, and at last the sentence's own ending (see `_from_sentence`). With
    `answer_tag`, only an <answer> tag counts."""
    text = as_text(completion)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    finders = (_answer_tag,) if answer_tag else ANSWER_FINDERS
    for find in finders:
        found = find(text)
        if found is not None and found.strip():
            return found.strip()
    return None


def verify(gold: str, completion: str | list | dict, answer_tag: bool = False) -> bool:
    """Whether the completion's final answer (inside <answer> only, with `answer_tag`) equals
    the gold answer."""
    pred = extract_answer(completion, answer_tag)
    if pred is None or len(pred) > MAX_ANSWER_CHARS:
        return False
    gold = _gold_answer(str(gold))
    token = _deadline.set(time.monotonic() + DEADLINE_S)
    try:
        return equivalent(gold, pred)
    finally:
        _deadline.reset(token)


def math_reward(
    prompts: list, completions: list, answer: list, answer_tag: bool = False, **_
) -> list[float]:
    """1.0 when the completion's final answer equals the row's `answer`, else 0.0. With
    `answer_tag` only an answer inside <answer></answer> counts, as R1's accuracy reward asks
    for the answer "in a specified format"."""
    return [
        float(verify(gold, completion, answer_tag))
        for gold, completion in zip(answer, completions, strict=True)
    ]


def equivalent(gold: str, pred: str) -> bool:
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
    if len(g_items) > 1 or len(p_items) > 1:
        return _same_collection(g_items, g_kind, p_items, p_kind)
    return _same_value(g_items[0], p_items[0])


def _same_collection(g: list[str], g_kind: str, p: list[str], p_kind: str) -> bool:
    """Tuples and intervals compare in order; sets and lists of solutions as sets."""
    if g_kind == "interval" or p_kind == "interval":
        return g_kind == p_kind and _bracket(g) == _bracket(p) and _pairwise(g, p)
    if g_kind == "tuple" and p_kind == "tuple":
        return _pairwise(g, p)
    remaining = list(dict.fromkeys(p))
    if len(dict.fromkeys(g)) != len(remaining):
        return False
    for item in dict.fromkeys(g):
        match = next((q for q in remaining if equivalent(item, q)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def _pairwise(g: list[str], p: list[str]) -> bool:
    return len(g) == len(p) and all(
        _same_value(a.strip("[]()"), b.strip("[]()")) for a, b in zip(g, p, strict=True)
    )


def _bracket(items: list[str]) -> str:
    return items[0][:1] + items[-1][-1:]


def _same_value(g: str, p: str) -> bool:
    g, p = _named_sides(g, p)
    if g == p:
        return True
    g_num, p_num = _number(g), _number(p)
    if g_num is not None and p_num is not None:
        return any(_numbers_match(a, p, b) for a in g_num for b in p_num)
    if g_num is not None and re.fullmatch(r"-?[\d.]+", p):
        return False  # a plain number against a number: decided above, no sympy needed
    deadline = _deadline.get()
    left = DEADLINE_S if deadline is None else deadline - time.monotonic()
    return left > 0 and sympy_equal(g, p, left)


def _numbers_match(gold: Fraction, pred_text: str, pred: Fraction) -> bool:
    if gold == pred:
        return True
    decimals = re.fullmatch(r"-?\d*\.(\d+)", pred_text)
    if decimals is None or len(decimals.group(1)) < 3:
        return False
    return abs(gold - pred) <= Fraction(1, 2 * 10 ** len(decimals.group(1)))


def _number(text: str) -> list[Fraction] | None:
    """The exact values a numeric answer may mean ("50%" means 50 or 0.5), or None."""
    percent = text.endswith("%")
    text = text.removesuffix("%")
    frac = re.fullmatch(r"(-?)\\frac\{?(\d+)\}?\{?(\d+)\}?", text)
    try:
        if frac:
            value = Fraction(int(frac.group(2)), int(frac.group(3))) * (-1 if frac.group(1) else 1)
        elif re.fullmatch(r"-?\d+(\.\d+)?(/\d+)?|-?\.\d+", text):
            value = Fraction(text)
        else:
            return None
    except ZeroDivisionError:
        return None
    return [value, value / 100] if percent else [value]


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
    """Split a collection answer into items and say what it is: tuple, interval, set or single."""
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
    return parts, "set" if len(parts) > 1 else "single"


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
    if "####" in gold or "\\boxed" in gold:
        return extract_answer(gold) or gold
    return gold


def _answer_tag(text: str) -> str | None:
    closed = re.findall(r"<answer>(.*?)</answer>", text, re.S)
    if closed:
        inner = closed[-1]
    elif "<answer>" in text:
        inner = text.rsplit("<answer>", 1)[1]
    else:
        return None
    return _last_boxed(inner) or inner


def _last_boxed(text: str) -> str | None:
    """The last \\boxed{}/\\fbox{}; boxes just before it, joined only by "and", commas or
    spacing (`\\boxed{1} and \\boxed{2}`), make one answer with it: `1,2`."""
    found: list[str] = []
    end = len(text)
    while (start := max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))) >= 0:
        content, after = _braced(text, start, end)
        if content is None or (found and not _only_connectors(text[after:end])):
            break
        found.insert(0, content)
        end = start
    return ",".join(found) if found else None


def _braced(text: str, start: int, end: int) -> tuple[str | None, int]:
    """The balanced {...} after a command at `start`, searched no further than `end`."""
    brace = text.find("{", start, end)
    depth = 0
    for i in range(max(brace, 0), end if brace >= 0 else 0):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1 : i], i + 1
    return None, end


def _only_connectors(gap: str) -> bool:
    rest = re.sub(r"\\quad|\\qquad|\\text\{\s*and\s*\}|\band\b|\bor\b|\\[()\[\]]|[\s,;$.]", "", gap)
    return len(gap) < 40 and not rest


def _answer_is(text: str) -> str | None:
    """The sentence after the last "the answer is" or "Final Answer:"."""
    found = re.findall(
        r"(?:answer is|final answer:)[:\s]*(.+?)(?:\.\s|\.$|\n|$)", text, re.I | re.S
    )
    return _from_sentence(found[-1]) if found else None


def _gsm8k_marker(text: str) -> str | None:
    found = re.findall(r"####\s*(.+)", text)
    return found[-1] if found else None


def _from_sentence(text: str) -> str | None:
    """A short word-free text as a whole (`(x+1)^2`, `x=3 or x=-3`); else whichever comes
    last of the last $...$ span and the last number (the documented fallback); else a
    few words with no number at all (`Evelyn`, `\\text{east}`) as a plain-text answer."""
    text = text.strip()
    commands = re.sub(r"\\(?:begin|end)\{\w+\}|\\[A-Za-z]+", "", text)
    if len(text) <= 80 and not set(re.findall(r"[A-Za-z]{2,}", commands)) - {"or", "and"}:
        return text
    span = _last_match(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", text)
    number = _last_match(r"(-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+)", text)
    if span or number:
        best = max((m for m in (span, number) if m), key=lambda m: m.end())
        return next(part for part in best.groups() if part)
    return text if len(text) <= 40 and len(text.split()) <= 3 else None


def _last_match(pattern: str, text: str) -> re.Match | None:
    last = None
    for last in re.finditer(pattern, text, re.S):  # noqa: B007 - the loop keeps the last one
        pass
    return last


ANSWER_FINDERS = (_answer_tag, _last_boxed, _answer_is, _gsm8k_marker, _from_sentence)
