"""The final answer inside a model's reply, and its normal form.

One module for both uses, so they can never disagree: the ``vote`` strategy counts answers
by their normal form, and ``moa eval``'s ``exact`` scorer compares it with the expected
answer. Extraction: the last ``ANSWER: x`` line (the vote prompt asks for one; markdown
emphasis and a ``Final`` prefix are tolerated), else the last number, else the whole text.
Normalisation: lower case, punctuation to spaces, runs of spaces collapsed, and numbers in
one canonical form (``1,000`` = ``1000`` = ``1000.0`` = ``+1000``).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

_ANSWER = re.compile(r"\banswer\b[\s*_`]*:[\s*_`]*(.*)", re.IGNORECASE)
# A number: optional sign (not after a word, so "3-5" is 3 and 5), thousands separated by
# commas only in groups of three (so "1,2,3" is three numbers), an optional decimal part.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])\.\d+")


def answer_line(text: str) -> str | None:
    """What follows the last ``ANSWER:`` in ``text`` (or the next non-blank line, when the
    marker ends its line); None when there is no marker."""
    lines = text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        matches = list(_ANSWER.finditer(lines[index]))
        if not matches:
            continue
        value = matches[-1].group(1).strip()
        if value:
            return value
        following = [line.strip() for line in lines[index + 1 :] if line.strip()]
        return following[0] if following else ""
    return None


def extract(text: str) -> str:
    """The reply's final answer, before normalisation."""
    marked = answer_line(text)
    if marked:
        return marked
    numbers = NUMBER.findall(text)
    return numbers[-1] if numbers else text.strip()


def as_number(text: str) -> Decimal | None:
    """``text`` as an exact decimal, if it is one number (commas as thousands separators)."""
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def canonical_number(value: Decimal) -> str:
    """``1000``, ``0.5``, ``-3``: no exponent, no trailing zeros, no negative zero."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalise(answer: str) -> str:
    """Case, spaces and punctuation folded; every number in canonical form."""
    parts: list[str] = []
    position = 0
    for match in NUMBER.finditer(answer):
        parts.append(_words(answer[position : match.start()]))
        number = as_number(match.group())
        parts.append(canonical_number(number) if number is not None else match.group())
        position = match.end()
    parts.append(_words(answer[position:]))
    return " ".join(" ".join(parts).split())


def final_answer(text: str) -> str:
    """The normal form of the reply's final answer: what a vote counts."""
    return normalise(extract(text))


def _words(text: str) -> str:
    return "".join(
        " " if unicodedata.category(ch)[0] in "PS" else ch for ch in text.casefold()
    ).strip()
