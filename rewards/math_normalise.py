"""Normalising answer strings (LaTeX and plain text) before they are compared."""

from __future__ import annotations

import re
from fractions import Fraction

UNITS = (
    "degrees|degree|deg|cm|mm|km|m|meters|meter|inches|inch|feet|foot|ft|units|unit|sq|square|"
    "cents|cent|dollars|dollar|hours|hour|minutes|minute|seconds|second|days|day|mph|kg|g|"
    "pounds|pound|lbs|miles|mile|people|students|marbles|apples"
)
REPLACEMENTS = [
    (r"\\\$", ""),
    (rf"\\(?:text|textbf|textnormal|mbox|mathrm)\{{\s*(?:{UNITS})\s*\}}", ""),
    (r"\\left|\\right|\\displaystyle|\\!|\$", ""),
    (r"\\q?quad\b|\\,|\\;|\\:|(?<!\\)\\ |~", " "),  # spacing: `1\,000`, never `1 2` = 12
    (r"\\lbrace\b", r"\\{"),
    (r"\\rbrace\b", r"\\}"),
    (r"\\[()\[\]]|\\?\"", ""),  # math delimiters \( \) \[ \] and quotes around the answer
    (r"\\[dt]frac", r"\\frac"),
    (r"\^\{?\\circ\}?|°", ""),
    (r"\\%|％", "%"),
    (r"\\(?:text|textbf|textit|textnormal|mathrm|mathbf|mbox)\{([^{}]*)\}", r"\1"),
    (r"\s*(?:pct|percent|percentage)\b", "%"),
    (r"\{(?:[bBvV]?matrix|array)\}(?:\{[lcr]+\})?", "{pmatrix}"),
    (r"\\leq?(?!ft)|≤|<=", r"\\leq "),
    (r"\\geq?|≥|>=", r"\\geq "),
    (r"\\neq?|≠|!=", r"\\neq "),
    (r"\\lt\b", "<"),
    (r"\\gt\b", ">"),
    (r"\s+(?:or|and)\s+|(?<=[)\]])(?:or|and)(?=[(\[])", ","),
    (r"\\emptyset|\\varnothing|∅|\\\{\s*\\\}", r"\\{\\}"),
]
# Words after the mathematics (`\frac{1}{2} cm`, `5 square units`, `3\pi cm^2`) are units or
# text, unless one of them is mathematics.
TRAILING_WORDS = re.compile(r"((?:\s+[A-Za-z]{2,}(?:\^\{?[23]\}?)?)+)\.?\s*$")
AFTER_MATHS = re.compile(r"(?:[\d})\]%]|\\[a-zA-Z]+)$")
MATH_WORDS = {"pi", "sqrt", "infinity", "inf", "mod", "ln", "log", "sin", "cos", "tan", "exp"}
# Digits in groups of three after the first (`1 000 000`, `12 345.5`, `1\,000`) are one number,
# as thousands separators; any other space between digits (`1 2`, `12 34`, `3. 14`) leaves two
# numbers side by side, which are no number: SPACED marks them so that nothing equals them.
THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3})((?:[^\S\n]+\d{3})+)(?!\d)")
DIGITS_APART = re.compile(r"(?<=\d)\s+(?=\.?\d)|(?<=\d\.)\s+(?=\d)")
SPACED = "\u2423"  # an open-box character: what stood between digits set apart
MAX_ANSWER_CHARS = 500  # longer "answers" are not answers: never normalised or parsed
MAX_EXPONENT = 9999  # 10^{12345} is not a number anyone answers with; never build it
REPEATING = re.compile(
    r"(-?)(\d*)\.(\d*)(?:\\overline\{(\d+)\}|\\overline(\d)|\\dot\{?(\d)\}?|\((\d+)\))"
)
POWER_OF_TEN = re.compile(r"(-?)(?:(\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|×))?10\^\{?([-+]?\d+)\}?")
E_NOTATION = re.compile(r"(-?)(\d+(?:\.\d+)?)[eE]([-+]?\d+)")


def normalise(answer: str) -> str:
    """A canonical spelling: no $, sizing commands, spaces, \\text, units or degrees;
    `1,000` and `1 000` -> `1000`; `\\frac12` -> `\\frac{1}{2}`; no trailing period; `{5}` a set."""
    text = answer.strip()
    in_math = text.startswith(("$", "\\(", "\\["))  # where braces only group, unseen
    if len(text) > MAX_ANSWER_CHARS:  # not an answer: normalising it costs time quadratic in
        return text  # its length (runs of spaces against `\s*` patterns)
    if "\\begin" not in text:  # outside matrices `\\frac` is `\frac` escaped twice
        text = re.sub(r"\\\\(?=[a-zA-Z])", r"\\", text)
    for pattern, replacement in REPLACEMENTS:
        text = re.sub(pattern, replacement, text)
    text = _drop_trailing_words(text)
    text = re.sub(rf"(\d)\s*(?:\\?(?:{UNITS}))\b(?:\^\{{?[23]\}}?)?\.?", r"\1", text)
    text = re.sub(r"(\d),\s*(?=\d{3}(?!\d))", r"\1", text)  # thousands separators
    text = THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"\s+", "", m.group(2)), text)
    text = DIGITS_APART.sub(SPACED, text)
    text = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\{([^{}]+)\}(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\sqrt\s*(\d+)", r"\\sqrt{\1}", text)
    text = re.sub(r"\s+", "", text).rstrip(".")
    if "," not in text:
        text = text.replace(";", ",")  # `-12;-11` and `(0;0;0)` list with semicolons
    text = re.sub(r"^\\pm(.+)$", r"\\{-\1,\1\\}", text)
    return strip_braces(text) if in_math else _braces_as_set(text)


def _braces_as_set(text: str) -> str:
    """`{5}` -> `\\{5\\}`: in plain text, braces around a whole answer are seen, and read
    as a set (a set of one element is not its element); in `$...$` they only group."""
    inner = strip_braces(text)
    return inner if inner == text else f"\\{{{inner}\\}}"


def exact_number(text: str) -> Fraction | None:
    """The exact value of a normalised plain number: `-3`, `0.25`, `2/3`, `\\frac{2}{3}`,
    repeating decimals (`0.\\overline{3}`, `0.(3)`) and powers of ten (`3\\times10^{5}`,
    `3e5`, `10^{5}`); None for anything else."""
    frac = re.fullmatch(r"(-?)\\frac\{?(\d+)\}?\{?(\d+)\}?", text)
    try:
        if frac:
            return Fraction(int(frac.group(2)), int(frac.group(3))) * (-1 if frac.group(1) else 1)
        if re.fullmatch(r"-?\d+(\.\d+)?(/\d+)?|-?\.\d+", text):
            return Fraction(text)
    except ZeroDivisionError:
        return None
    if repeating := REPEATING.fullmatch(text):
        return _repeating_value(repeating)
    if scientific := POWER_OF_TEN.fullmatch(text) or E_NOTATION.fullmatch(text):
        sign, mantissa, exponent = scientific.groups()
        if abs(int(exponent)) <= MAX_EXPONENT:
            return Fraction(f"{sign}{mantissa or 1}") * Fraction(10) ** int(exponent)
    return None


def _repeating_value(match: re.Match) -> Fraction:
    sign, whole, fixed = match.group(1), match.group(2) or "0", match.group(3)
    cycle = next(group for group in match.groups()[3:] if group)
    value = int(whole) + Fraction(int(fixed or 0), 10 ** len(fixed))
    value += Fraction(int(cycle), (10 ** len(cycle) - 1) * 10 ** len(fixed))
    return -value if sign else value


def _drop_trailing_words(text: str) -> str:
    """`\\frac{1}{2} cm` -> `\\frac{1}{2}`: units or words after the mathematics."""
    match = TRAILING_WORDS.search(text)
    if match is None or not AFTER_MATHS.search(text[: match.start()]):
        return text
    if set(re.findall(r"[A-Za-z]+", match.group(1))) & MATH_WORDS:
        return text
    return text[: match.start()]


def strip_braces(text: str) -> str:
    """`{x}` -> `x` when the braces enclose the whole string."""
    while text.startswith("{") and text.endswith("}") and _balanced(text[1:-1]):
        text = text[1:-1]
    return text


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside any (), [], {} nesting."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0
