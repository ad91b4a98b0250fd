"""Task sets: one JSON object per line, validated line by line with errors that name the
line and the field.

A line is ``{"id", "prompt" (or "messages"), "answer"}``, optionally ``"scorer"`` (exact,
number, choice, contains) and ``"choices"`` (option texts, in letter order, so ``choice``
also accepts the text of the right option). GSM8K's layout works as is: ``"question"`` is
the prompt and the answer is what follows its ``####`` line. ``id`` defaults to the line
number. Extra fields (``difficulty``, ...) are kept out of the way, not rejected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from moa.errors import InvalidRequest
from moa.types import Message
from moa.validation import describe_errors

Scorer = Literal["exact", "number", "choice", "contains"]
MAX_TASKS = 100_000
MAX_LINE_CHARS = 200_000


class Task(BaseModel):
    """One question with its expected answer and how to score a reply against it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    messages: tuple[Message, ...] = Field(min_length=1)
    answer: str = Field(min_length=1)
    scorer: Scorer = "exact"
    choices: tuple[str, ...] = Field((), max_length=26)

    @field_validator("messages")
    @classmethod
    def _has_a_user_turn(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        if not any(m.role == "user" and m.content.strip() for m in value):
            raise ValueError("needs at least one non-empty 'user' message")
        return value


@dataclass(frozen=True, slots=True)
class ShippedSet:
    name: str
    file: str
    description: str


SHIPPED = (
    ShippedSet(
        "arithmetic",
        "arithmetic.jsonl",
        "multi-step arithmetic, unit conversions and word problems with exact numeric "
        "answers; easy, medium and hard interleaved (seeded generator)",
    ),
    ShippedSet(
        "choice",
        "choice.jsonl",
        "multiple-choice questions (A-D) on science, everyday reasoning and language, "
        "written for moa",
    ),
)


@dataclass(frozen=True, slots=True)
class TaskSet:
    name: str
    tasks: tuple[Task, ...]


def shipped_text(entry: ShippedSet) -> str:
    return resources.files("moa.eval").joinpath("data", entry.file).read_text(encoding="utf-8")


def load_tasks(source: str) -> TaskSet:
    """A shipped set by name, or a JSONL file by path (an existing file wins)."""
    path = Path(source)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"tasks: cannot read {source}: {exc}") from exc
        return TaskSet(path.name, parse_tasks(text.splitlines(), source))
    for entry in SHIPPED:
        if entry.name == source:
            return TaskSet(entry.name, parse_tasks(shipped_text(entry).splitlines(), source))
    names = ", ".join(s.name for s in SHIPPED)
    raise InvalidRequest(f"tasks: {source!r} is neither a file nor a shipped set ({names})")


def parse_tasks(lines: Iterable[str], where: str) -> tuple[Task, ...]:
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(tasks) == MAX_TASKS:
            raise InvalidRequest(f"{where}: more than {MAX_TASKS} tasks")
        task = _parse_line(line, number, f"{where} line {number}")
        if task.id in seen:
            raise InvalidRequest(f"{where} line {number}: id {task.id!r} is used twice")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise InvalidRequest(f"{where}: no tasks")
    return tuple(tasks)


def _parse_line(line: str, number: int, where: str) -> Task:
    if len(line) > MAX_LINE_CHARS:
        raise InvalidRequest(f"{where}: longer than {MAX_LINE_CHARS} characters")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{where}: not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where}: each line must be a JSON object")
    try:
        return Task.model_validate(_as_task_fields(data, number))
    except ValidationError as exc:
        raise InvalidRequest(f"{where}: {describe_errors(exc.errors())}") from exc
    except ValueError as exc:
        raise InvalidRequest(f"{where}: {exc}") from exc


def _as_task_fields(data: dict[str, Any], number: int) -> dict[str, Any]:
    """Map the accepted layouts onto Task's fields."""
    fields = dict(data)
    fields["id"] = str(data.get("id", number))
    prompt = data.get("prompt", data.get("question"))
    if "messages" not in data:
        if not isinstance(prompt, str):
            raise ValueError("needs 'prompt' (or 'question') as a string, or 'messages'")
        fields["messages"] = [{"role": "user", "content": prompt}]
    answer = data.get("answer")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str):
        raise ValueError("needs 'answer' as a string or a number")
    fields["answer"] = gsm8k_answer(answer)
    return fields


def gsm8k_answer(answer: str) -> str:
    """GSM8K ends its worked solution with ``#### 72``: the answer is what follows."""
    _, marker, final = answer.rpartition("####")
    return final.strip() if marker else answer.strip()
