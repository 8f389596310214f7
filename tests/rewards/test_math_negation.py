import pytest

from rewards.math_negation import negated


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("the answer is not ", ""),
        ("it is NOT ", "."),
        ("it isn't ", ""),
        ("the answer is definitely not ", ""),
        ("the answer is not, in fact, ", ""),
        ("it is **not** $", "$"),
        ("it is \\text{not} ", ""),
        ("it is <b>not</b> ", ""),
        ("it is \\underline{not} ", ""),
        ("it is ｎｏｔ ", ""),  # full-width letters
        ("", " is wrong"),
        ("", " is not correct."),
        ("", "? No."),
        ("", ". Nope"),
        ("", "\n\nWait, that's wrong."),
        ("", " -- actually no, it is 13"),
        ("", " ✗"),
        ("", "\n\n(Actually, it's not.)"),
        ("", " is not!"),
        ("", " \\xmark"),
        ("", "\n" * 200 + "Wait, that is wrong."),  # however far, the next words
        ("", "." * 500 + " wrong"),
        ("", "\\quad" * 50 + " is wrong"),
        ("the answer is not" + " " * 200, ""),
        ("the answer is not" + "\\hspace{1em}" * 20, ""),
    ],
)
def test_words_around_an_answer_that_negate_it(before, after):
    assert negated(before, "12", after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("12 is not prime, so the answer is ", ""),
        ("Is it 7? No. So ", ""),
        ("Is it 7? No\n\n", ""),  # a line break ends the sentence
        ("the answer is not 11 but ", ""),
        ("", ", not 13"),
        ("", ". No other value works."),
        ("", ". I hope it is correct."),
        ("", ", which is not prime."),
        ("there is no doubt: ", ""),
    ],
)
def test_words_around_an_answer_that_do_not_negate_it(before, after):
    assert not negated(before, "12", after)


@pytest.mark.parametrize(
    ("answer", "is_negated"),
    [
        ("\\neq 12", True),
        ("not 12", True),
        ("12 (wrong)", True),
        ("12? no", True),
        ("x \\neq 12", False),  # an inequality
        ("No", False),  # a yes/no answer
        ("False", False),
        ("\\text{not possible}", False),
        ("\\text{no solution}", False),
    ],
)
def test_an_answer_that_negates_itself(answer, is_negated):
    assert negated("", answer, "") is is_negated
