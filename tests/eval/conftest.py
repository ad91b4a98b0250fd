"""Tasks whose right answers the scripted upstream knows, and models scripted to be right
on known tasks, so every system's accuracy is known before the eval runs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moa.eval import Task, parse_tasks
from moa.testing import ScriptedUpstream

TASK_COUNT = 10
_INDEX = re.compile(r"Question (\d+):")


def task_lines(count: int = TASK_COUNT) -> list[str]:
    """Question i asks for 10 * i + 7; the answer is given as a plain number."""
    return [
        json.dumps(
            {
                "id": f"q{i}",
                "prompt": f"Question {i}: what is {i} * 10 + 7?",
                "answer": str(10 * i + 7),
            }
        )
        for i in range(count)
    ]


def tasks(count: int = TASK_COUNT) -> tuple[Task, ...]:
    return parse_tasks(task_lines(count), "scripted")


def question_of(body: dict[str, Any]) -> int:
    user = [m for m in body["messages"] if m["role"] == "user"][-1]
    match = _INDEX.search(str(user["content"]))
    assert match, user
    return int(match.group(1))


def right_on(questions: set[int], wrong_by: int) -> Callable[[dict[str, Any]], str]:
    """A model that is right on ``questions`` and off by ``wrong_by`` elsewhere."""

    def reply(body: dict[str, Any]) -> str:
        i = question_of(body)
        value = 10 * i + 7 + (0 if i in questions else wrong_by)
        return f"Working it out: {i} * 10 + 7.\nANSWER: {value:,}"

    return reply


# alpha right on 0-5, beta on 0-2 and 6-8, gamma on 3-9: a vote of the three is right where
# at least two are (0-8); on 9 only gamma is, and three different answers tie, so the
# earliest source (alpha, wrong) wins the tie.
ALPHA = set(range(6))
BETA = {0, 1, 2, 6, 7, 8}
GAMMA = set(range(3, 10))


@pytest.fixture
def scripted(upstream: ScriptedUpstream) -> ScriptedUpstream:
    upstream.script("alpha", reply=right_on(ALPHA, 1))
    upstream.script("beta", reply=right_on(BETA, 2))
    upstream.script("gamma", reply=right_on(GAMMA, 3))
    return upstream


@pytest.fixture
def tasks_file(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(task_lines()) + "\n", encoding="utf-8")
    return path
