"""Whether the text around a final answer says that it is not the answer.

"the answer is not 12", "\\boxed{12} is wrong", "12? No." and "\\boxed{\\neq 12}" give no
answer 12: a negated final answer is ambiguous and earns nothing (it is never guessed). Only
words that bear on the answer itself count: "12 is not prime, so the answer is 13" reads 13,
"13, not 12" reads 13, and "x \\neq 3" (with its left side) is an inequality, not a negation.
"""

from __future__ import annotations

import re
import unicodedata

CONTEXT_CHARS = 80  # how much text on each side of an answer is read
_FILLER = (
    r"(?:[\s,]+(?:equal\s+to|equals?|exactly|just|simply|quite|actually|necessarily|really|even|"
    r"in\s+fact|i\s+think|i\s+believe|of\s+course|the\s+number|the\s+value))*"
)
# Right before the answer: a negator or a comparison (`more than 12` is not 12; not "at most",
# which states a maximum: "Zach can have at most \boxed{2} left over" answers 2), then only
# filler words, markup or a colon (not the end of a sentence: "Is it 7? No. \boxed{12}"
# answers 12).
NEGATED_BEFORE = re.compile(
    r"(?:\bnot|n['’]t|\bnever|\bhardly|\bscarcely|\bfar\s+from|\bno|\bnor|\bneither|≠|\\neq?(?![a-z])|\\not(?![a-z])|\\neg|\\lnot|¬|"
    r"\bcannot\s+be|\binstead\s+of|\brather\s+than|\banything\s+but|\bexcept|"
    r"\b(?:more|less|greater|fewer|smaller|larger|bigger|other)\s+than)"
    + _FILLER
    + r"[^\w.?!;\n]*\Z"
)
_VERDICT = (
    r"(?:(?:not|n['’]t)\s+(?:be\s+)?(?:correct|right|true|valid|possible|it|the\s+(?:right\s+|"
    r"correct\s+|final\s+)?answer)|wrong|incorrect|false|invalid|impossible|mistaken|erroneous|"
    r"a\s+mistake|an\s+error|a\s+typo|just\s+kidding|kidding|jk)\b"
)
_INTERJECTIONS = r"(?:(?:wait|hmm+|oops|actually|but|oh|well|sorry{})\b[^\w]*)*"
_SUBJECT = (
    r"(?:(?:that|this|it|which|the\s+answer)(?:['’]s|\s+is|\s+was|\s+would\s+be|\s+seems|"
    r"\s+looks)?|is|was|are|ca|can|could|must|would|should|might|seems|looks)?\s*(?:be\s+)?"
)
CROSS = re.compile("[✗✘✖❌🚫⛔]")  # a cross mark (`\\xmark` reads as one) right after an answer
# Right after the answer: a verdict on it (`is wrong`, `-- wait, that's not right`, `(it's
# not)`), a bare "No." / "Nope".
NEGATED_AFTER = re.compile(
    r"^[^\w]*"
    + _INTERJECTIONS.format("|no|nope")
    + _SUBJECT
    + r"(?:(?:definitely|clearly|probably|obviously|also|still|actually)\s+)?"
    + r"(?:"
    + _VERDICT
    + r"|(?:not|n['’]t)(?=\s*(?:[.!;,)]|\Z)))"  # `it's not.`, `(it isn't)`
    + r"|^[^\w]*"
    + _INTERJECTIONS.format("")
    + r"(?:no|nope|nah)\b(?!\s+\w)"
)
# Inside an answer: a leading negator before mathematics (`\neq 12`, `not 12`), or a verdict
# beside mathematics (`12 (wrong)`, `12? No`).
NEGATED_START = re.compile(
    r"^[^\w\\]*(?:(?:not|never)\s*(?=[\d\\(.$-])|≠|\\neq?(?![a-z])|\\not(?![a-z])|\\neg|¬)"
)
VERDICT_INSIDE = re.compile(r"(?<![a-z])" + _VERDICT + r"|\?\s*no\b|" + CROSS.pattern)
CROSS_COMMAND = re.compile(r"\\(?:xmark|ding\{5[5-8]\})")
SPACING = re.compile(
    r"\\(?:q?quad|enspace|thinspace|medspace|thickspace|newline|[hv]space\*?\s*\{[^{}]*\}|"
    r"[hmv]?skip\s*\d\w*|[,;:! ]|\\)"
)
MARKUP = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsc|textup|mathrm|mathbf|mathit|mbox|emph|underline|"
    r"boldsymbol|bm|operatorname)\s*\{([^{}]*)\}"
)


def plain(text: str) -> str:
    """Lower case (NFKC: `ｎｏｔ` is `not`) without markup that carries no meaning here:
    `**NOT**`, `\\text{not }`, `<b>not</b>`, `$`, spacing (`\\quad`, `\\hspace{1em}`); runs of
    spaces are one, and a line break stays one (it ends a sentence)."""
    text = MARKUP.sub(r"\1", unicodedata.normalize("NFKC", text))
    text = SPACING.sub(" ", CROSS_COMMAND.sub("✗", text))
    text = re.sub(r"</?[a-zA-Z][^<>]*>|[*_`$]|\\[()\[\]]", " ", text)
    return re.sub(r"\s*\n\s*", "\n", re.sub(r"[^\S\n]+", " ", text)).lower()


def negated(before: str, answer: str, after: str) -> bool:
    """Whether the text right before or after an answer, or the answer itself, negates it.
    However much punctuation or spacing stands between them (`\\boxed{12}` then a page of
    blank lines, then `is wrong`), the nearest words are read."""
    return _negated_before(plain(before)) or _negated_after(plain(after)) or negated_inside(answer)


def _negated_before(text: str) -> bool:
    end = len(text)
    while end and not text[end - 1].isalnum() and text[end - 1] not in ".?!;\n":
        end -= 1  # a loop, not a regex anchored at the end: that one is quadratic on runs
    return bool(NEGATED_BEFORE.search(text[max(0, end - CONTEXT_CHARS) : end]))


def _negated_after(text: str) -> bool:
    start = 0
    while start < len(text) and not text[start].isalnum():
        start += 1
    if CROSS.search(text, 0, start):
        return True
    return bool(NEGATED_AFTER.match(text[max(0, start - 10) : start + CONTEXT_CHARS]))


def negated_inside(answer: str) -> bool:
    """`\\neq 12`, `not 12`, `12 (wrong)`, `12? No`: an answer that negates itself. Words
    without mathematics (`No`, `False`, `not possible`) are an answer, not a verdict on one."""
    text = plain(answer).strip()
    if NEGATED_START.search(text):
        return True
    return bool(re.search(r"[\d\\]", text) and VERDICT_INSIDE.search(text))
