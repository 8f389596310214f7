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
from fractions import Fraction

from rewards.math_normalise import normalise, split_top_level, strip_braces
from rewards.sympy_worker import sympy_equal
from rewards.text import as_text

MAX_ANSWER_CHARS = 500  # longer "answers" are not answers; never parse them


def extract_answer(completion: str | list | dict) -> str | None:
    """The final answer: after </think> only, then <answer>, \\boxed, "the answer is",
    GSM8K's ####, a short word-free text as a whole, and as a fallback the last number."""
    text = as_text(completion)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    finders = (
        _answer_tag,
        _last_boxed,
        _answer_is,
        _gsm8k_marker,
        _bare_answer,
        _last_math_span,
        _last_number,
        _short_text,
    )
    for find in finders:
        found = find(text)
        if found is not None and found.strip():
            return found.strip()
    return None


def verify(gold: str, completion: str | list | dict) -> bool:
    """Whether the completion's final answer equals the gold answer."""
    pred = extract_answer(completion)
    if pred is None or len(pred) > MAX_ANSWER_CHARS:
        return False
    gold = _gold_answer(str(gold))
    return equivalent(gold, pred)


def math_reward(prompts: list, completions: list, answer: list, **_) -> list[float]:
    """1.0 when the completion's final answer equals the row's `answer`, else 0.0."""
    return [
        float(verify(gold, completion))
        for gold, completion in zip(answer, completions, strict=True)
    ]


def equivalent(gold: str, pred: str) -> bool:
    g, p = _rhs(normalise(gold)), _rhs(normalise(pred))
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
    if len(g) != len(p):
        return False
    if g_kind == "interval" or p_kind == "interval":
        return g_kind == p_kind and _bracket(g) == _bracket(p) and _pairwise(g, p)
    if g_kind == "tuple" and p_kind == "tuple":
        return _pairwise(g, p)
    remaining = list(p)  # sets, lists of solutions: order does not matter
    for item in g:
        match = next((q for q in remaining if _same_value(item, q)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def _pairwise(g: list[str], p: list[str]) -> bool:
    return all(_same_value(a.strip("[]()"), b.strip("[]()")) for a, b in zip(g, p, strict=True))


def _bracket(items: list[str]) -> str:
    return items[0][:1] + items[-1][-1:]


def _same_value(g: str, p: str) -> bool:
    g, p = _rhs(g), _rhs(p)
    if g == p:
        return True
    g_num, p_num = _number(g), _number(p)
    if g_num is not None and p_num is not None:
        return any(_numbers_match(a, p, b) for a in g_num for b in p_num)
    if g_num is not None and re.fullmatch(r"-?[\d.]+", p):
        return False  # a plain number against a number: decided above, no sympy needed
    return sympy_equal(g, p)


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


def _rhs(text: str) -> str:
    """`x = 3` -> `3`, `x \\in [2, 5)` -> `[2, 5)`: a lone variable on the left is dropped."""
    match = re.fullmatch(r"(?:[a-zA-Z](?:_\{?\w+\}?)?|\([a-zA-Z,]+\))(?:=|\\in)(.+)", text)
    if not match or len(split_top_level(match.group(1))) > 1:
        return text
    return match.group(1).rsplit("=", 1)[-1]  # x = 5 + 6 = 11: the last value


def _items(text: str) -> tuple[list[str], str]:
    """Split a collection answer into items and say what it is: tuple, interval, set or single."""
    if text.startswith("\\{") and text.endswith("\\}"):
        return split_top_level(text[2:-2]), "set"
    if len(text) > 1 and text[0] in "([" and text[-1] in ")]":
        inner = split_top_level(text[1:-1])
        if len(inner) > 1:
            kind = "tuple" if text[0] + text[-1] == "()" else "interval"
            if kind == "interval":
                inner[0], inner[-1] = text[0] + inner[0], inner[-1] + text[-1]
            return inner, kind
    parts = split_top_level(text)
    return parts, "set" if len(parts) > 1 else "single"


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
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1 : i]
    return None


def _answer_is(text: str) -> str | None:
    found = re.findall(r"answer is[:\s]*(.+?)(?:\.\s|\.$|\n|$)", text, re.I)
    return found[-1] if found else None


def _gsm8k_marker(text: str) -> str | None:
    found = re.findall(r"####\s*(.+)", text)
    return found[-1] if found else None


def _bare_answer(text: str) -> str | None:
    """A short text with no words in it (`(x+1)^2`, `x=3 or x=-3`) is itself the answer."""
    text = text.strip()
    commands = re.sub(r"\\(?:begin|end)\{\w+\}|\\[A-Za-z]+", "", text)
    words = set(re.findall(r"[A-Za-z]{2,}", commands)) - {"or", "and"}
    return text if len(text) <= 80 and not words else None


def _short_text(text: str) -> str | None:
    """A few words and no number at all (`Evelyn`, `\\text{east}`): a plain-text answer."""
    text = text.strip()
    return text if len(text) <= 40 and len(text.split()) <= 3 else None


def _last_math_span(text: str) -> str | None:
    """The last $...$, \\(...\\) or \\[...\\] of a text that ends its argument with maths."""
    spans = re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", text, re.S)
    return next((part for part in spans[-1] if part), None) if spans else None


def _last_number(text: str) -> str | None:
    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+", text)
    return found[-1] if found else None
