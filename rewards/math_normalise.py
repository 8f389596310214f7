"""Normalising answer strings (LaTeX and plain text) before they are compared."""

from __future__ import annotations

import re

UNITS = (
    "degrees|degree|deg|cm|mm|km|m|meters|meter|inches|inch|feet|foot|ft|units|unit|sq|square|"
    "cents|cent|dollars|dollar|hours|hour|minutes|minute|seconds|second|days|day|mph|kg|g|"
    "pounds|pound|lbs|miles|mile|people|students|marbles|apples"
)
REPLACEMENTS = [
    (r"\\\$", ""),
    (rf"\\(?:text|textbf|textnormal|mbox|mathrm)\{{\s*(?:{UNITS})\s*\}}", ""),
    (r"\\left|\\right|\\displaystyle|\\!|\\,|\\;|\\:|(?<!\\)\\ |~|\$", ""),
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
]


def normalise(answer: str) -> str:
    """A canonical spelling: no $, sizing commands, spaces, \\text, units or degrees;
    `1,000` -> `1000`; `\\frac12` -> `\\frac{1}{2}`; no trailing period."""
    text = answer.strip()
    if "\\begin" not in text:  # outside matrices `\\frac` is `\frac` escaped twice
        text = re.sub(r"\\\\(?=[a-zA-Z])", r"\\", text)
    for pattern, replacement in REPLACEMENTS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(rf"(\d)\s*(?:\\?(?:{UNITS}))\b\.?", r"\1", text)
    text = re.sub(r"(\d),\s*(?=\d{3}(?!\d))", r"\1", text)  # thousands separators
    text = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\{([^{}]+)\}(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\sqrt\s*(\d+)", r"\\sqrt{\1}", text)
    text = re.sub(r"\s+", "", text).rstrip(".")
    if "," not in text:
        text = text.replace(";", ",")  # `-12;-11` and `(0;0;0)` list with semicolons
    text = re.sub(r"^\\pm(.+)$", r"\\{-\1,\1\\}", text)
    return strip_braces(text)


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
