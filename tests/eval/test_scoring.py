"""The four scorers read a reply the way a person marking it would."""

from __future__ import annotations

from typing import Any

import pytest

from moa.eval import Task, score


def task(answer: str, scorer: str = "exact", **fields: Any) -> Task:
    messages = [{"role": "user", "content": "q"}]
    return Task.model_validate(
        {"id": "t", "messages": messages, "answer": answer, "scorer": scorer, **fields}
    )


@pytest.mark.parametrize(
    ("reply", "correct"),
    [
        ("So 1,000.\nANSWER: 1000", True),
        ("ANSWER: 1,000.0", True),
        ("It is 999 or 1000", True),
        ("ANSWER: 1000 km", False),
        ("ANSWER: 100", False),
    ],
)
def test_exact_compares_normalised_final_answers(reply: str, correct: bool) -> None:
    assert score(task("1000"), reply).correct is correct


@pytest.mark.parametrize(
    ("reply", "correct"),
    [
        ("ANSWER: 1000 km", True),
        ("ANSWER: about 1000.0000001", True),
        ("ANSWER: 1001", False),
        ("no idea", False),
    ],
)
def test_number_compares_the_last_number_of_the_final_answer(reply: str, correct: bool) -> None:
    assert score(task("1000", "number"), reply).correct is correct


@pytest.mark.parametrize(
    ("reply", "correct"),
    [
        ("ANSWER: B", True),
        ("ANSWER: (B)", True),
        ("ANSWER: B) Mercury", True),
        ("ANSWER: Mercury", True),
        ("A planet near the Sun... the answer is B.", True),
        ("ANSWER: A", False),
        ("I am not sure.", False),
    ],
)
def test_choice_reads_the_option_letter_or_its_text(reply: str, correct: bool) -> None:
    choices = ["Venus", "Mercury", "Mars", "Earth"]
    assert score(task("B", "choice", choices=choices), reply).correct is correct


@pytest.mark.parametrize(
    ("reply", "correct"),
    [("The capital is Paris, of course.", True), ("Parisian food", False), ("PARIS!", True)],
)
def test_contains_looks_for_the_answer_as_words_anywhere(reply: str, correct: bool) -> None:
    assert score(task("Paris", "contains"), reply).correct is correct


def test_the_extracted_answer_is_reported() -> None:
    assert score(task("42"), "Thinking...\nANSWER: 41").extracted == "41"
