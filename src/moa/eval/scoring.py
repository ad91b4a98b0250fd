"""Is a reply right? Four scorers, each reading the reply's final answer the way
``moa.final_answer`` extracts it, so eval and the ``vote`` strategy agree on what a reply
answered.

- ``exact``: the normalised final answer equals the normalised expected answer.
- ``number``: the final answer's last number equals the expected number (relative
  tolerance 1e-6), so ``ANSWER: 42 km`` is right for 42.
- ``choice``: the option letter the final answer names (``B``, ``(B)``, ``B) Paris``, or
  the text of option B when the task lists its ``choices``) equals the expected letter.
- ``contains``: the normalised expected answer appears in the normalised reply as words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from moa.eval.tasks import Task
from moa.final_answer import NUMBER, answer_line, as_number, extract, normalise

# "B", "(B)", "B) Paris", "B: Paris", "B." but not "A good guess" or "I think".
_LEADING_LETTER = re.compile(r"^\W*?\(?([A-Z])(?:[.):]|\s*$)")
# A standalone capital not used as a word ("A spider", "I think").
_LETTER = re.compile(r"\b([A-Z])\b(?!\s+[a-z])")
_RELATIVE_TOLERANCE = Decimal("1e-6")


@dataclass(frozen=True, slots=True)
class Scored:
    correct: bool
    extracted: str  # what the scorer read as the reply's answer, for the answers file


def score(task: Task, reply: str) -> Scored:
    if task.scorer == "number":
        return _number(task.answer, reply)
    if task.scorer == "choice":
        return _choice(task, reply)
    if task.scorer == "contains":
        expected = normalise(task.answer)
        return Scored(f" {expected} " in f" {normalise(reply)} ", expected)
    extracted = extract(reply)
    return Scored(normalise(extracted) == normalise(task.answer), extracted)


def _number(expected_text: str, reply: str) -> Scored:
    extracted = extract(reply)
    numbers = NUMBER.findall(extracted)
    got = as_number(numbers[-1]) if numbers else None
    expected = as_number(expected_text.strip())
    if got is None or expected is None:
        return Scored(False, extracted)
    tolerance = _RELATIVE_TOLERANCE * max(Decimal(1), abs(expected))
    return Scored(abs(got - expected) <= tolerance, extracted)


def _choice(task: Task, reply: str) -> Scored:
    """The letter named on the answer line (else in the whole reply): a leading letter
    first, else an option's text, else the last standalone capital letter."""
    text = (answer_line(reply) or reply).strip()
    expected = task.answer.strip().upper()
    last = max("D", expected, chr(ord("A") + max(len(task.choices), 1) - 1))
    letter = _letter(text, task.choices, last)
    return Scored(letter == expected, letter or text)


def _letter(text: str, choices: tuple[str, ...], last: str) -> str | None:
    """The option letter ``text`` names, among ``A`` to ``last``."""
    leading = _LEADING_LETTER.match(text)
    if leading and leading.group(1) <= last:
        return leading.group(1)
    said = normalise(text)
    for index, choice in enumerate(choices):
        if normalise(choice) == said:
            return chr(ord("A") + index)
    letters = [letter for letter in _LETTER.findall(text) if letter <= last]
    return letters[-1] if letters else None
