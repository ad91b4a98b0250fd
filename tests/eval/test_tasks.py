"""Task files: the shipped sets, GSM8K's layout, and errors that name the line and field."""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from fractions import Fraction

import pytest

from moa.errors import InvalidRequest
from moa.eval import SHIPPED, load_tasks, parse_tasks
from moa.eval.generate import SETS, jsonl
from moa.eval.tasks import ShippedSet, shipped_text


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_each_shipped_set_is_exactly_what_the_seeded_generator_writes(entry: ShippedSet) -> None:
    assert shipped_text(entry) == jsonl(SETS[entry.file]())


OPERATORS: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def exact_value(node: ast.expr) -> Fraction:
    """An arithmetic expression's exact value (numbers and + - * / only)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value)
    assert isinstance(node, ast.BinOp), ast.dump(node)
    return OPERATORS[type(node.op)](exact_value(node.left), exact_value(node.right))


def test_the_arithmetic_sets_expressions_evaluate_to_their_answers() -> None:
    expression = re.compile(r"What is ([\d ()+*/-]+)\?")
    checked = 0
    for task in load_tasks("arithmetic").tasks:
        match = expression.match(task.messages[0].content)
        if match:
            value = exact_value(ast.parse(match.group(1), mode="eval").body)
            assert value == Fraction(task.answer), task.id
            checked += 1
    assert checked >= 40


def test_the_arithmetic_set_interleaves_its_three_levels() -> None:
    levels = [json.loads(line)["difficulty"] for line in shipped_text(SHIPPED[0]).splitlines()]
    assert levels[:6] == ["easy", "medium", "hard"] * 2
    assert {levels.count(level) for level in ("easy", "medium", "hard")} == {40}


def test_the_choice_set_spreads_its_right_letters_over_a_to_d() -> None:
    answers = [t.answer for t in load_tasks("choice").tasks]
    assert set(answers) == {"A", "B", "C", "D"}
    assert all(t.scorer == "choice" and len(t.choices) == 4 for t in load_tasks("choice").tasks)


def test_gsm8k_lines_take_the_question_as_prompt_and_the_number_after_the_marks() -> None:
    line = json.dumps({"question": "How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"})
    (task,) = parse_tasks([line], "gsm8k.jsonl")
    assert (task.id, task.messages[0].content, task.answer) == ("1", "How many?", "7")


def test_messages_and_numeric_answers_are_accepted() -> None:
    line = json.dumps(
        {
            "id": 7,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "2+2?"},
            ],
            "answer": 4,
        }
    )
    (task,) = parse_tasks([line], "t")
    assert (task.id, len(task.messages), task.answer, task.scorer) == ("7", 2, "4", "exact")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"prompt": "a", "answer": "1"}', "not json"], "t line 2: not JSON"),
        (['{"prompt": "a"}'], "t line 1: needs 'answer'"),
        (['{"answer": "1"}'], "t line 1: needs 'prompt'"),
        (['{"prompt": "a", "answer": "1", "scorer": "fuzzy"}'], "t line 1: scorer"),
        (['{"id": "x", "prompt": "a", "answer": "1"}'] * 2, "t line 2: id 'x' is used twice"),
        (["[1, 2]"], "t line 1: each line must be a JSON object"),
        ([""], "t: no tasks"),
    ],
)
def test_a_bad_line_is_named_with_what_is_wrong(lines: list[str], expected: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_tasks(lines, "t")
    assert raised.value.message.startswith(expected), raised.value.message


def test_an_unknown_name_lists_the_shipped_sets() -> None:
    with pytest.raises(InvalidRequest, match="arithmetic, choice"):
        load_tasks("no-such-set")
