import time

import pytest

from rewards.math_visible import visible

N = 100_000  # characters of each adversarial completion


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\\phantom{b}c", "a c"),  # hidden text still takes its room
        ("1\\phantom{0}2", "1 2"),
        ("a\\vphantom{b}c", "a c"),
        ("a\\phantom b c", "a  c"),  # one token without braces
        ("a\\phantom{b{c}d}e", "a e"),
        ("a\\phantom{bc", "a "),  # an unclosed group hides to the end
        ("{\\color{red} b}c", "c"),  # a declaration hides the rest of its group
        ("a $\\color{red} b$ c", "a $ $ c"),  # ... or of its math span
        ("a\\textcolor[rgb]{1,1,1}{b}c", "a c"),
        ("a\\fcolorbox{red}{white}{b}c", "a c"),
        ("a <!-- b --> c", "a  c"),
        ("a <!-- b", "a "),
        ("a % b\nc", "a \nc"),
        ("$a % b$\nc", "$a \nc"),  # in math a % after a number is a comment too: `$5 % b$`
        ("$5 % b$\nc", "$5 \nc"),
        ("50% of 24", "50% of 24"),
        ("50\n% b", "50\n"),  # a number on the line before makes no percent sign
        ("a\\def\\x{b}c", "a c"),
        ("a\\newcommand{\\x}[1]{b}c", "a c"),
        ("28 % more", "28 % more"),
        ("$28$ %", "$28$ %"),
        ("28\\% b", "28\\% b"),
        ("a \\iffalse b \\fi c", "a  c"),
        ("a\\begin{comment}b\\end{comment}c", "ac"),
        ("a ~~b~~ c", "a  c"),
        ("a <s>b</s> <del>c</del> d", "a   d"),
        ('a <span style="color:white">b</span> c', "a  c"),
        ("a\u200bb\u2060c\ufeffd\u00ade", "abcde"),
        ("1\u2009000\u202f000", "1 000 000"),
        ("\\text{b} \\mathbf{c}", "\\text{b} \\mathbf{c}"),  # visible
        ("a <b>c</b> d", "a <b>c</b> d"),  # a tag without attributes: its content shows
        ('a <img alt="<b>" src=x> c', "a  c"),
        ("a <script>b</script> c <style>d</style>", "a  c "),
        ("a [b](c) d ![e](f)", "a [b] d "),
        ("[1]: b\nc", "\nc"),
    ],
)
def test_visible_removes_what_renders_invisibly(text, shown):
    assert visible(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "\u202e21",
        "1\u20662\u2069",
        "\u200f-5",
        "a\u061cb",
        "13\\hspace{-2em}12",
        "13\\kern-2em 12",
        "13\\mkern -18mu 12",
        "\\raisebox{9cm}{12} 13",
        "\\llap{12}13",
        "\\mathrlap{12}13",
    ],
)
def test_reordered_or_overlapping_text_is_ambiguous(text):
    assert visible(text) is None


@pytest.mark.parametrize(
    "piece",
    [
        "\\phantom{",
        "\\phantom[",
        "\\textcolor{",
        "\\color{white}",
        "{\\color{x}",
        "%",
        "$%",
        "<!--",
        "\\iffalse",
        "~~1",
        "<s>",
        "<span style=x>",
        "\\begin{comment}",
        "{}",
        "\\phantom{}{}{}{}",  # every brace matched: the costly path
        "![",  # each Markdown link or image attempt must end at the next bracket
        "](",
        "<a style ",
        "<b x=1>",
        '<a b="<',
    ],
)
def test_visible_is_linear_on_repeated_hiding_markup(piece):
    # This thread's CPU time: a backtracking pattern took minutes on some of these.
    text = (piece * (N // len(piece) + 1))[:N]
    start = time.thread_time()
    visible(text)
    assert time.thread_time() - start < 1.0  # what a checker call may take


@pytest.mark.parametrize("text", ["<a " + "=" * N, "<a " + "style " * (N // 6), "<a b=" * (N // 5)])
def test_visible_is_linear_on_one_long_unclosed_tag(text):
    start = time.thread_time()
    visible(text)
    assert time.thread_time() - start < 1.0  # what a checker call may take
