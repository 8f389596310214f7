import time
from fractions import Fraction

import pytest

from rewards.math_normalise import exact_number, normalise


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.\\overline{3}", Fraction(1, 3)),
        ("0.(3)", Fraction(1, 3)),
        ("0.1\\overline{6}", Fraction(1, 6)),
        ("0.\\overline{142857}", Fraction(1, 7)),
        ("-0.\\overline{6}", Fraction(-2, 3)),
        ("1.2(34)", Fraction(611, 495)),
        ("0.\\dot{3}", Fraction(1, 3)),
    ],
)
def test_repeating_decimals_are_exact_fractions(text, value):
    assert exact_number(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3\\times10^{5}", 300_000),
        ("3\\cdot10^5", 300_000),
        ("3e5", 300_000),
        ("3E+5", 300_000),
        ("3.2e-4", Fraction(32, 100_000)),
        ("10^{5}", 100_000),
        ("-10^{3}", -1000),
        ("1.5\\times10^{-2}", Fraction(15, 1000)),
    ],
)
def test_powers_of_ten_are_exact_numbers(text, value):
    assert exact_number(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "310^5",  # 310 to the fifth, not 3 times 10^5
        "10^{100000}",  # refused, never built
        "e5",
        "2e",
        "x",
        "\\frac{1}{0}",
        "0.\\overline{}",
    ],
)
def test_what_is_not_a_plain_number_is_none(text):
    assert exact_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\frac{1}{2} cm", "\\frac{1}{2}"),
        ("\\frac{1}{2}\\text{ cm}", "\\frac{1}{2}"),
        ("5 dollars", "5"),
        ("3\\pi square units", "3\\pi"),
        ("2\\sqrt{3} meters", "2\\sqrt{3}"),
        ("12 m^2", "12"),
        ("(1, 2) inches", "(1,2)"),
        ("\\frac{9}{4} \\mbox{ feet}.", "\\frac{9}{4}"),
    ],
)
def test_units_and_words_after_the_mathematics_are_dropped(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize("text", ["2 pi", "3 mod 5", "Evelyn", "x is odd"])
def test_words_that_are_the_answer_or_mathematics_stay(text):
    assert normalise(text) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["\\emptyset", "\\varnothing", "∅", "\\{\\}", "\\{ \\}"])
def test_every_spelling_of_the_empty_set_is_one(text):
    assert normalise(text) == "\\{\\}"


@pytest.mark.parametrize("piece", ["aa ", " ", "pct ", "1 or "])
def test_a_text_too_long_to_be_an_answer_is_returned_quickly(piece):
    text = piece * 20_000  # evaluation normalises extracted answers of any length
    start = time.thread_time()
    assert normalise(text) == text.strip()
    assert time.thread_time() - start < 0.1
