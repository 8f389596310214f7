"""Finding the final answer in a completion, in time linear in its length.

A policy writes whatever it likes, so every finder here is one pass or a bounded number of
`rfind`/`finditer` scans: no regex that retries from every position of an unclosed tag
(100k characters of repeated `<answer>` or `\\(` took 9-29 s with the earlier regexes).
"""

from __future__ import annotations

import re

from rewards.text import as_text

BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
NUMBER = re.compile(r"(?<![A-Za-z])(?:-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+)")  # not K2 in AZYUK2A
DOLLAR = re.compile(r"(?<!\\)\$\$|(?<!\\)\$")
ANSWER_IS = re.compile(r"answer is|final answer:", re.I)
CONNECTORS = re.compile(r"\\quad|\\qquad|\\text\{\s*and\s*\}|\band\b|\bor\b|\\[()\[\]]|[\s,;$.]")
MAX_GAP_CHARS = 40  # boxes further apart than this are separate answers


def extract_answer(completion: str | list | dict, answer_tag: bool = False) -> str | None:
    """The final answer: after </think> only, then <answer>, \\boxed, "the answer is",
    GSM8K's ####, and at last the sentence's own ending (see `_from_sentence`). With
    `answer_tag`, only an <answer> tag counts."""
    text = after_reasoning(as_text(completion))
    finders = (_answer_tag,) if answer_tag else ANSWER_FINDERS
    for find in finders:
        found = find(text)
        if found is not None and found.strip():
            return found.strip()
    return None


def after_reasoning(text: str) -> str:
    """The text after the last </think>, cut at any <think> it opens again: an answer inside
    reasoning that never closed is not an answer."""
    return text.rsplit("</think>", 1)[-1].split("<think>", 1)[0]


def _answer_tag(text: str) -> str | None:
    """The last closed <answer>...</answer>, else what follows an unclosed <answer>."""
    close = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, close) if close >= 0 else -1
    if start >= 0:
        inner = text[start + len("<answer>") : close]
    elif "<answer>" in text:
        inner = text.rsplit("<answer>", 1)[1]
    else:
        return None
    return _last_boxed(inner) or inner


def _last_boxed(text: str) -> str | None:
    """The last \\boxed{}/\\fbox{}; boxes just before it, joined only by "and", commas or
    spacing (`\\boxed{1} and \\boxed{2}`), make one answer with it: `1,2`."""
    boxes = list(BOX.finditer(text))
    if not boxes:
        return None
    closing = _closing_braces(text)
    found: list[str] = []
    end = len(text)
    for box in reversed(boxes):
        brace = box.end() - 1
        close = closing.get(brace)
        if close is None or close >= end or (found and not _only_connectors(text[close + 1 : end])):
            break
        found.append(text[brace + 1 : close])
        end = box.start()
    return ",".join(reversed(found)) if found else None


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


def _boxed_or_stated(text: str) -> str | None:
    """The last \\boxed{}, or the sentence after the last "the answer is" or "Final Answer:"
    when that comes later (`\\boxed{255} ... The final answer is $10,455$`) or alone."""
    phrase = None
    for phrase in ANSWER_IS.finditer(text):  # noqa: B007 - the loop keeps the last one
        pass
    if phrase is None:
        return _last_boxed(text)
    sentence = re.match(r"[:\s]*(.+?)(?:\.\s|\.$|\n|$)", text[phrase.end() :], re.S)
    stated = _from_sentence(sentence.group(1)) if sentence else None
    if phrase.start() > max(text.rfind("\\boxed"), text.rfind("\\fbox")):
        return stated or _last_boxed(text)
    return _last_boxed(text) or stated


def _gsm8k_marker(text: str) -> str | None:
    found = re.findall(r"####\s*(.+)", text)
    return found[-1] if found else None


def _from_sentence(text: str) -> str | None:
    """A short word-free text as a whole (`(x+1)^2`, `x=3 or x=-3`); else whichever comes
    last of the last $...$ span and the last number (the documented fallback); else a
    few words with no number at all (`Evelyn`, `\\text{east}`) as a plain-text answer."""
    text = text.strip()
    if len(text) <= 80:
        commands = re.sub(r"\\(?:begin|end)\{\w+\}|\\[A-Za-z]+", "", text)
        if not set(re.findall(r"[A-Za-z]{2,}", commands)) - {"or", "and"}:
            return text
    number = None
    for number in NUMBER.finditer(text):  # noqa: B007 - the loop keeps the last one
        pass
    candidates = [c for c in (_last_span(text), number and (number.group(), number.end())) if c]
    if candidates:
        return max(candidates, key=lambda c: c[1])[0]
    return text if len(text) <= 40 and len(text.split()) <= 3 else None


def _last_span(text: str) -> tuple[str, int] | None:
    """The last non-empty $...$, $$...$$, \\(...\\) or \\[...\\] and where it ends."""
    spans = []
    for opener, closer in (("\\(", "\\)"), ("\\[", "\\]")):
        close = text.rfind(closer)
        start = text.rfind(opener, 0, close) if close >= 0 else -1
        if start >= 0 and close > start + len(opener):
            spans.append((text[start + len(opener) : close], close + len(closer)))
    dollars = list(DOLLAR.finditer(text))
    i = 0
    last = None
    while i + 1 < len(dollars):  # pair delimiters of the same kind from the left, as TeX does
        opened, closed = dollars[i], dollars[i + 1]
        if opened.group() == closed.group() and closed.start() > opened.end():
            last = (text[opened.end() : closed.start()], closed.end())
            i += 2
        else:
            i += 1
    spans += [last] if last else []
    return max(spans, key=lambda s: s[1]) if spans else None


ANSWER_FINDERS = (_answer_tag, _boxed_or_stated, _gsm8k_marker, _from_sentence)
