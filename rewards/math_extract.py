"""Finding the final answer in a completion, in time linear in its length.

A policy writes whatever it likes, so every finder here is one pass or a bounded number of
`rfind`/`finditer` scans: no regex that retries from every position of an unclosed tag
(100k characters of repeated `<answer>` or `\\(` took 9-29 s with the earlier regexes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.math_negation import negated, plain
from rewards.math_normalise import strip_braces
from rewards.math_visible import visible
from rewards.text import as_text

BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# A number not glued to letters (not the 2 of AZYUK2A); commas only between digits (`13, not 12`).
NUMBER = re.compile(r"(?<![A-Za-z])(?:-?\d(?:\d|,(?=\d))*(?:\.\d+)?(?:/\d+)?|-?\.\d+)")
DOLLAR = re.compile(r"(?<!\\)\$\$|(?<!\\)\$")
ANSWER_IS = re.compile(r"answer is|final answer:", re.I)
CONNECTORS = re.compile(r"\\quad|\\qquad|\\text\{\s*and\s*\}|\band\b|\bor\b|\\[()\[\]]|[\s,;$.]")
MAX_GAP_CHARS = 40  # boxes further apart than this are separate answers
CONTRAST = re.compile(r"\s*[,;(]?\s*(?:and\s+|but\s+)?(?:not|rather\s+than|instead\s+of)\s*")


@dataclass(frozen=True)
class Found:
    """A final answer as found, and whether the text around it negates it or shows it in
    another order than it is written (then it is ambiguous: no answer, never a guess)."""

    text: str
    ambiguous: bool = False


def extract_answer(completion: str | list | dict, answer_tag: bool = False) -> str | None:
    """The final answer: after </think> only, then <answer>, \\boxed, "the answer is",
    GSM8K's ####, and at last the sentence's own ending (see `_from_sentence`). With
    `answer_tag`, only an <answer> tag counts. Only what a reader sees counts (`visible`),
    and an answer the text negates is none."""
    found = find_answer(completion, answer_tag)
    return None if found is None or found.ambiguous else found.text


def find_answer(completion: str | list | dict, answer_tag: bool = False) -> Found | None:
    """`extract_answer`'s answer with its ambiguity; None when there is none."""
    shown = visible(as_text(completion))
    if shown is None:
        return Found("", ambiguous=True)
    text = after_reasoning(shown)
    finders = (_answer_tag,) if answer_tag else ANSWER_FINDERS
    for find in finders:
        found = find(text)
        if found is not None and (found.ambiguous or found.text.strip()):
            return Found(found.text.strip(), found.ambiguous)
    return None


def after_reasoning(text: str) -> str:
    """The text after the last </think>, cut at any <think> it opens again: an answer inside
    reasoning that never closed is not an answer."""
    return text.rsplit("</think>", 1)[-1].split("<think>", 1)[0]


def _found(text: str, start: int, end: int, answer: str) -> Found:
    """The answer that text[start:end] gives, negated or not by what stands around it."""
    return Found(answer, negated(text[:start], answer, text[end:]))


def _answer_tag(text: str) -> Found | None:
    """The last closed <answer>...</answer>, else what follows an unclosed <answer>."""
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close >= 0 else -1
    if start >= 0:
        inner_start, inner_end = start + len("<answer>"), close
    elif "<answer>" in text:
        inner_start, inner_end = text.rfind("<answer>") + len("<answer>"), len(text)
    else:
        return None
    boxed = _last_boxed(text, inner_start, inner_end)
    return boxed or _found(text, inner_start, inner_end, text[inner_start:inner_end])


def _last_boxed(text: str, lo: int = 0, hi: int | None = None) -> Found | None:
    """The last \\boxed{}/\\fbox{} in text[lo:hi]; boxes just before it, joined only by "and",
    commas or spacing (`\\boxed{1} and \\boxed{2}`), make one answer with it: `1,2`."""
    hi = len(text) if hi is None else hi
    boxes = list(BOX.finditer(text, lo, hi))
    if not boxes:
        return None
    closing = _closing_braces(text[lo:hi])
    found: list[str] = []
    end, last_close = hi, None
    for box in reversed(boxes):
        brace = box.end() - 1
        close = closing.get(brace - lo)
        close = None if close is None else close + lo
        if close is None or close >= end or (found and not _only_connectors(text[close + 1 : end])):
            break
        found.append(_math(text[brace + 1 : close]))
        last_close = last_close or close + 1
        end = box.start()
    if not found:
        return None
    return _found(text, end, last_close, ",".join(reversed(found)))


def _closing_braces(text: str) -> dict[int, int]:
    """Where each `{` closes, found in one pass with a stack."""
    stack: list[int] = []
    closing: dict[int, int] = {}
    for brace in re.finditer(r"[{}]", text):
        if brace.group() == "{":
            stack.append(brace.start())
        elif stack:
            closing[stack.pop()] = brace.start()
    return closing


def _only_connectors(gap: str) -> bool:
    return len(gap) < MAX_GAP_CHARS and not CONNECTORS.sub("", gap)


def _boxed_or_stated(text: str) -> Found | None:
    """The last \\boxed{}, or the sentence after the last "the answer is" or "Final Answer:"
    when that comes later (`\\boxed{255} ... The final answer is $10,455$`) or alone."""
    phrase = None
    for phrase in ANSWER_IS.finditer(text):  # noqa: B007 - the loop keeps the last one
        pass
    if phrase is None:
        return _last_boxed(text)
    sentence = re.compile(r"[:\s]*(.+?)(?:\.\s|\.$|\n|$)", re.S).match(text, phrase.end())
    stated = _from_sentence(text, *sentence.span(1)) if sentence else None
    if phrase.start() > max(text.rfind("\\boxed"), text.rfind("\\fbox")):
        return stated or _last_boxed(text)
    return _last_boxed(text) or stated


def _gsm8k_marker(text: str) -> Found | None:
    marker = None
    for marker in re.finditer(r"####\s*(.+)", text):  # noqa: B007 - the loop keeps the last one
        pass
    return None if marker is None else _found(text, *marker.span(1), marker.group(1))


def _from_sentence(text: str, lo: int = 0, hi: int | None = None) -> Found | None:
    """In text[lo:hi]: a short word-free text as a whole (`(x+1)^2`, `x=3 or x=-3`); else
    whichever comes last of the $...$ spans and the numbers (the documented fallback; in
    "13, not 12" the one before the contrast); else a few words with no number at all
    (`Evelyn`, `\\text{east}`) as a plain-text answer."""
    hi = len(text) if hi is None else hi
    segment = text[lo:hi]
    lo, hi = lo + len(segment) - len(segment.lstrip()), lo + len(segment.rstrip())
    segment = text[lo:hi]
    if len(segment) <= 80:
        commands = re.sub(r"\\(?:begin|end)\{\w+\}|\\[A-Za-z]+", "", segment)
        if not set(re.findall(r"[A-Za-z]{2,}", commands)) - {"or", "and"}:
            return _found(text, lo, hi, segment)
    numbers = [(m.group(), m.start(), m.end()) for m in NUMBER.finditer(text, lo, hi)]
    candidates = sorted(numbers + _spans(text, lo, hi), key=lambda c: c[2])
    if candidates:
        return _last_affirmed(text, candidates)
    return (
        _found(text, lo, hi, segment) if len(segment) <= 40 and len(segment.split()) <= 3 else None
    )


def _last_affirmed(text: str, candidates: list[tuple[str, int, int]]) -> Found:
    """The last candidate, unless the text contrasts it away from the one before it (`13, not
    12`, `$13$ rather than $12$`): then that one."""
    answer, start, end = candidates[-1]
    last = _found(text, start, end, answer)
    earlier = [c for c in candidates if c[2] <= start]
    if last.ambiguous and earlier and CONTRAST.fullmatch(plain(text[earlier[-1][2] : start])):
        return _found(text, earlier[-1][1], earlier[-1][2], earlier[-1][0])
    return last


def _spans(text: str, lo: int, hi: int) -> list[tuple[str, int, int]]:
    """The non-empty $...$ and $$...$$ spans of text[lo:hi] and its last \\(...\\) and
    \\[...\\]: (content, where it opens, where it closes)."""
    spans = []
    for opener, closer in (("\\(", "\\)"), ("\\[", "\\]")):
        close = text.rfind(closer, lo, hi)
        start = text.rfind(opener, lo, close) if close >= 0 else -1
        if start >= 0 and close > start + len(opener):
            spans.append((_math(text[start + len(opener) : close]), start, close + len(closer)))
    dollars = list(DOLLAR.finditer(text, lo, hi))
    i = 0
    while i + 1 < len(dollars):  # pair delimiters of the same kind from the left, as TeX does
        opened, closed = dollars[i], dollars[i + 1]
        if opened.group() == closed.group() and closed.start() > opened.end():
            spans.append((_math(text[opened.end() : closed.start()]), opened.start(), closed.end()))
            i += 2
        else:
            i += 1
    return spans


def _math(text: str) -> str:
    """What a math span or box holds, less braces around all of it: in math they only group
    (`\\boxed{{5}}` and `${5}$` show 5, not a set)."""
    return strip_braces(text.strip())


ANSWER_FINDERS = (_answer_tag, _boxed_or_stated, _gsm8k_marker, _from_sentence)
