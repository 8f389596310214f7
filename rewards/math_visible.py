"""What a reader of a completion sees: text that renders invisibly is no answer.

A policy paid for an answer hidden from the reader (`\\phantom{\\boxed{12}}`, a `%` comment,
white text) learns to hide its bets. `visible` removes, in one pass each (linear time):
- invisible characters: zero-width spaces and joiners, soft hyphens, invisible operators,
  Unicode tag characters, Hangul fillers; other Unicode spaces become a plain space;
- comments: HTML `<!-- -->`, LaTeX `%` to the end of the line (a `%` right after a number is a
  percent sign: `50%`, `28 %`, `$28$ %`), `\\iffalse ... \\fi`, `\\begin{comment}...\\end{comment}`;
- what a command hides or strikes out: `\\phantom` and its kin, `\\cancel`, `\\sout` and kin,
  colour and style (`\\textcolor{white}{12}`, `{\\color{white} 12}`: any colour, since the
  background is unknown), scaling (`\\scalebox{0}{12}`), markdown `~~12~~`, HTML `<s>`,
  `<del>`, `<strike>`, `<details>`, `<script>`, `<style>`, `<template>`, `<noscript>` and any
  HTML element with a `style`, `class` or `hidden` attribute; the attributes of any tag
  (`<img alt="...">`); a Markdown link's target, an image, a link reference definition;
  definitions (`\\newcommand`, `\\def`), which render nothing.
Hidden text still takes its room (`1\\phantom{0}2` shows `1 2`). Text with bidirectional
controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) is shown in another order than
it is written, and negative spacing (`\\hspace{-2em}`, `\\kern-`), `\\raisebox` and `\\llap`/
`\\rlap` can move one part over another: all ambiguous, so `visible` answers None.
"""

from __future__ import annotations

import re

# Text moved onto or away from other text (negative spacing, raised or overlapping boxes) may
# show anything: as ambiguous as reordered text.
MOVED = re.compile(
    r"\\(?:hspace|vspace|kern|mkern|hskip|mskip|mspace|moveleft|moveright)\*?\s*\{?\s*-"
    r"|\\(?:raisebox|lower|raise|llap|rlap|clap|mathllap|mathrlap|mathclap)(?![a-zA-Z])"
)
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
INVISIBLE_CHARS = re.compile(
    "[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200d\u2060-\u2064\u3164"
    "\ufeff\uffa0\U000e0000-\U000e007f]"
)
UNICODE_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
MATH_TOKEN = re.compile(r"\\\\|\\%|\\[()\[\]]|\$\$|(?<!\\)\$|%")
MATH_OPENERS = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}
PERCENT_SIGN = re.compile(r"\d[$}]?[^\S\n]*\Z")  # what comes before a `%` that is a percent sign
IFFALSE = re.compile(r"\\iffalse(?![a-zA-Z]).*?(?:\\fi(?![a-zA-Z])|\Z)", re.S)
COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?(?:\\end\{comment\}|\Z)", re.S)
STRIKETHROUGH = re.compile(r"~~[^~\n]+~~")
# Markdown shows a link's text, not its target, and neither an image's alt text nor a link
# reference definition (`[1]: \\boxed{12}` on a line of its own).
MARKDOWN_HIDDEN = re.compile(  # no brackets inside: each match attempt ends at the next one
    r"!\[[^\[\]\n]*\]\([^()\n]*\)|(?<=\])\([^()\n]*\)|^ {0,3}\[[^\[\]\n]+\]:.*$", re.M
)
# An HTML tag: quoted attribute values may hold `<` and `>`; each character has one reading,
# so a tag that never closes costs one scan, not a backtracking search.
HTML_TAG = re.compile(r"""<([a-zA-Z][\w-]*)((?:\s(?:"[^"]*"|'[^']*'|[^<>"'])*)?)>""")
HIDING_ELEMENTS = {"s", "del", "strike", "details", "script", "style", "template", "noscript"}
HIDING_ATTRIBUTES = re.compile(r"\b(?:style|class|hidden)\b", re.I)
# Commands whose last argument is hidden (or struck out), by how many arguments they take;
# a definition renders nothing (`\\newcommand{\\x}{\\boxed{12}}`).
HIDING = {
    **dict.fromkeys(("phantom", "vphantom", "hphantom"), 1),
    **dict.fromkeys(("cancel", "bcancel", "xcancel", "sout", "st", "xout"), 1),
    **dict.fromkeys(("textcolor", "mathcolor", "colorbox", "style", "htmlStyle"), 2),
    **dict.fromkeys(("class", "htmlClass", "cssId", "htmlId", "htmlData"), 2),
    **dict.fromkeys(("scalebox", "cancelto"), 2),
    **dict.fromkeys(("fcolorbox", "resizebox"), 3),
    **dict.fromkeys(("newcommand", "renewcommand", "providecommand", "def", "gdef"), 2),
    **dict.fromkeys(("edef", "xdef", "DeclareMathOperator"), 2),
}
# Declarations that hide the rest of their group: `{\color{white} 12}`.
DECLARATIONS = ("color", "pagecolor")
DECLARATION_END = re.compile(r"\n|\$|\\[)\]]|</?[a-zA-Z]")
EMPTY_GROUP = re.compile(r"(?<![\\a-zA-Z^_}])\{\s*\}")  # what a hidden group leaves: `{}13`
COMMAND = re.compile(r"\\([a-zA-Z]+)|[{}]")
# Whether any of them is there at all: most texts hold none, and need no brace matching.
HIDING_COMMAND = re.compile(
    rf"\\(?:{'|'.join(sorted({*HIDING, *DECLARATIONS}, key=len, reverse=True))})(?![a-zA-Z])"
)
CONTROL_SEQUENCE = re.compile(r"\\(?:[a-zA-Z]+|.)", re.S)


def visible(text: str) -> str | None:
    """The text as a reader sees it rendered; None when bidirectional controls reorder it or
    spacing and boxes move parts of it onto others."""
    if BIDI.search(text) or MOVED.search(text):
        return None
    text = UNICODE_SPACES.sub(" ", INVISIBLE_CHARS.sub("", text))
    for hidden in (HTML_COMMENT, IFFALSE, COMMENT_ENV):
        text = hidden.sub("", text)
    text = _without_latex_comments(text)
    text = _without_hidden_html(MARKDOWN_HIDDEN.sub("", STRIKETHROUGH.sub("", text)))
    return EMPTY_GROUP.sub("", _without_hidden_arguments(text))


def _without_hidden_html(text: str) -> str:
    """The text less hiding HTML elements with their content (`<s>`, `<details>`, any element
    with a `style`, `class` or `hidden` attribute; an unclosed one to the end) and less the
    tags of other elements with attributes (`<img alt="...">`: attributes are not shown)."""
    cuts: list[tuple[int, int]] = []
    for tag in HTML_TAG.finditer(text):
        if cuts and tag.start() < cuts[-1][1]:
            continue  # inside a hidden element
        name, attributes = tag.group(1).lower(), tag.group(2)
        if name in HIDING_ELEMENTS or HIDING_ATTRIBUTES.search(attributes):
            close = re.compile(rf"</{re.escape(name)}\s*>", re.I).search(text, tag.end())
            cuts.append((tag.start(), close.end() if close else len(text)))
        elif "=" in attributes:
            cuts.append(tag.span())
    return _cut(text, cuts)


def _without_latex_comments(text: str) -> str:
    """The text less each `%` comment (to the end of its line), in one pass that follows math
    mode: in prose an escaped `\\%` and a `%` right after a number (`50%`, `28 %`, `$28$ %`)
    are percent signs; inside `$...$`, `\\(...\\)` or `\\[...\\]` every unescaped `%` is one."""
    cuts: list[tuple[int, int]] = []
    closer = None  # the delimiter that closes the math span we are in
    skip_to = 0
    for token in MATH_TOKEN.finditer(text):
        if token.start() < skip_to or token.group() == "\\\\" or token.group() == "\\%":
            continue
        if token.group() != "%":
            if closer is None and token.group() in MATH_OPENERS:
                closer = MATH_OPENERS[token.group()]
            elif token.group() == closer:
                closer = None
            continue
        if closer is None and PERCENT_SIGN.search(text[max(0, token.start() - 20) : token.start()]):
            continue
        end = text.find("\n", token.start())
        skip_to = len(text) if end < 0 else end
        cuts.append((token.start(), skip_to))
    return _cut(text, cuts)


def _without_hidden_arguments(text: str) -> str:
    """The text less each hiding command with its arguments and each colour declaration with
    the rest of its group (see `_group_end`), in one pass."""
    if not HIDING_COMMAND.search(text):
        return text
    tokens = list(COMMAND.finditer(text))
    closing = _closing(tokens)
    cuts: list[tuple[int, int]] = []
    groups: list[int] = []  # the open braces around the current token
    for token in tokens:
        if token.group() == "{":
            groups.append(token.start())
        elif token.group() == "}":
            if groups:
                groups.pop()
        elif cuts and token.start() < cuts[-1][1]:
            continue  # hidden already
        elif token.group(1) in HIDING:
            cuts.append((token.start(), _after_arguments(text, token.end(), token, closing)))
        elif token.group(1) in DECLARATIONS:
            cuts.append((token.start(), _group_end(text, token.end(), groups, closing)))
    return _cut(text, cuts, " ")  # hidden text still takes its room: `1\\phantom{0}2` is `1 2`


def _after_arguments(text: str, pos: int, command: re.Match, closing: dict[int, int]) -> int:
    """Where the command's arguments end: each is `[...]`-optional then a `{...}` group or one
    character (an unclosed group runs to the end of the text)."""
    for _ in range(HIDING[command.group(1)]):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text.startswith("[", pos):
            close = text.find("]", pos)
            pos = len(text) if close < 0 else close + 1
            while pos < len(text) and text[pos].isspace():
                pos += 1
        if pos >= len(text):
            return len(text)
        if text[pos] == "{":
            pos = closing.get(pos, len(text)) + 1
        else:  # one token: a character or a command (`\\def\\x{12}`)
            token = CONTROL_SEQUENCE.match(text, pos)
            pos = token.end() if token else pos + 1
    return min(pos, len(text))


def _group_end(text: str, pos: int, groups: list[int], closing: dict[int, int]) -> int:
    """Where a declaration at `pos` stops acting: its group's end, else the end of the line, of
    the math span or the next tag."""
    if groups:
        return closing.get(groups[-1], len(text))
    end = DECLARATION_END.search(text, pos)
    return len(text) if end is None else end.start()


def _closing(tokens: list[re.Match]) -> dict[int, int]:
    """Where each `{` closes."""
    stack: list[int] = []
    closing: dict[int, int] = {}
    for token in tokens:
        if token.group() == "{":
            stack.append(token.start())
        elif token.group() == "}" and stack:
            closing[stack.pop()] = token.start()
    return closing


def _cut(text: str, cuts: list[tuple[int, int]], gap: str = "") -> str:
    """The text less the given (start, end) ranges, which may overlap, each replaced by `gap`."""
    kept, pos = [], 0
    for start, end in sorted(cuts):
        if start > pos:
            kept.append(text[pos:start])
            kept.append(gap)
        pos = max(pos, end)
    kept.append(text[pos:])
    return "".join(kept)
