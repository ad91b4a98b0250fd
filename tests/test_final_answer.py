"""Final-answer extraction and normalisation, shared by the vote strategy and eval's scorer."""

from __future__ import annotations

import pytest

from moa.final_answer import extract, final_answer, normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("First 6 x 7 = 42.\nANSWER: 42", "42"),
        ("answer: 3\nthen more thinking\nAnswer: 5", "5"),
        ("**ANSWER:** Paris", "Paris"),
        ("Final answer: 12 km", "12 km"),
        ("So the total is 17.\nANSWER:\n\n  19", "19"),
        ("We add 3 and 4 to get 7, then double it: 14.", "14"),
        ("It costs $1,250.50 in total.", "1,250.50"),
        ("Paris", "Paris"),
        ("  the blue whale  ", "the blue whale"),
    ],
)
def test_extraction_takes_the_answer_line_else_the_last_number_else_the_text(
    text: str, expected: str
) -> None:
    assert extract(text) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("1,000", "1000"),
        ("1000", "1000.0"),
        ("+7", "7"),
        ("0.50", ".5"),
        ("Paris.", "paris"),
        ("  New   York ", "new york"),
        ("(B)", "b"),
        ("$1,000", "1000"),
        ("**42**", "42"),
        ("-0", "0"),
    ],
)
def test_equivalent_answers_normalise_alike(first: str, second: str) -> None:
    assert normalise(first) == normalise(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [("1000", "100"), ("-5", "5"), ("1.5", "15"), ("paris", "lyon"), ("2.5 km", "2.5 m")],
)
def test_different_answers_stay_different(first: str, second: str) -> None:
    assert normalise(first) != normalise(second)


def test_numbers_inside_text_keep_their_decimal_point() -> None:
    assert normalise("About 3.50 km.") == "about 3.5 km"


def test_a_reply_and_a_bare_answer_reach_the_same_final_answer() -> None:
    assert final_answer("Let me think. 500 + 500 = 1000\nANSWER: 1,000.") == final_answer("1000")
