"""The reference budget and the fence that marks references as untrusted material.

Other models' answers are shown to a model as references. They are cut so one long answer
cannot crowd out the rest (3,200 characters each), then scaled by one common ratio so all
of them fit in 12,000 characters. Each is placed verbatim inside a fence whose label holds a
per-blend random tag, so text inside a reference cannot close the fence early.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

PER_REFERENCE_CHARS = 3_200
TOTAL_CHARS = 12_000


def apply_budget(
    texts: Sequence[str], per_reference: int = PER_REFERENCE_CHARS, total: int = TOTAL_CHARS
) -> list[str]:
    """Cut each text to ``per_reference``; if the sum is still over ``total``, cut every text
    by the same ratio ``total / sum`` (so each keeps its share)."""
    cut = [text[:per_reference] for text in texts]
    size = sum(len(text) for text in cut)
    if size <= total:
        return cut
    ratio = total / size
    return [text[: int(len(text) * ratio)] for text in cut]


@dataclass(frozen=True, slots=True)
class Reference:
    label: str
    text: str


def fence(references: Sequence[Reference], tag: str | None = None) -> str:
    """Budgeted references, each verbatim between labelled open and close lines."""
    tag = tag or secrets.token_hex(4)
    texts = apply_budget([r.text for r in references])
    blocks = [
        f"<<<{ref.label} {tag}>>>\n{text}\n<<<end of {ref.label} {tag}>>>"
        for ref, text in zip(references, texts, strict=True)
    ]
    return "\n\n".join(blocks)


# What a model echoes of a fence: the open or close line of any reference, whatever its tag
# (small models copy them, and mangle the tags as they do).
ECHOED_FENCE = re.compile(r"<<<[^<>\n]{0,100}>>>")
_MAYBE_FENCE = re.compile(r"<{1,2}$|<<<[^<>\n]{0,100}>{0,2}$")


def strip_fences(text: str) -> str:
    """Model text without echoed fence lines: they are moa's plumbing, not an answer."""
    return ECHOED_FENCE.sub("", text)


class FenceFilter:
    """``strip_fences`` for a stream: passes text on at once, holding back only a tail that
    could still become a fence line, so the deltas join into exactly ``strip_fences`` of
    the whole."""

    def __init__(self) -> None:
        self._held = ""

    def __call__(self, delta: str) -> str:
        text = self._held + delta
        maybe = _MAYBE_FENCE.search(text)
        cut = maybe.start() if maybe else len(text)
        self._held = text[cut:]
        return strip_fences(text[:cut])

    def flush(self) -> str:
        text, self._held = self._held, ""
        return strip_fences(text)
