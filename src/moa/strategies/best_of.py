"""best_of: the synthesizer picks the best answer (first line ``PICK: n``), then streams it
improved with what the others add. The pick line is parsed, never shown; if the synthesizer
names no pick (or one out of range), the pick is reported as null rather than guessed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from moa import prompts
from moa.strategies.base import Answer, Outcome, Strategy, Synthesizer, numbered, synthesis_messages
from moa.types import BlendRequest

_PICK = re.compile(r"^\W*pick\W*(\d+)", re.IGNORECASE)


class PickLine:
    """A delta filter that holds back the first line, reads the pick from it, and passes
    everything after it through."""

    def __init__(self) -> None:
        self._head = ""
        self._passing = False
        self.pick: int | None = None

    def __call__(self, delta: str) -> str:
        if self._passing:
            return delta
        self._head += delta
        head = self._head.lstrip()  # some models open with a blank line
        if "\n" not in head and len(head) < 200:
            return ""
        first, _, rest = head.partition("\n")
        self._passing = True
        match = _PICK.match(first)
        if match:
            self.pick = int(match.group(1))
            return rest.lstrip("\n")
        return self._head

    def flush(self) -> str:
        """Text still held back when the stream ended (an answer without a newline)."""
        if self._passing:
            return ""
        self._passing = True
        match = _PICK.match(self._head.lstrip())
        if match:
            self.pick = int(match.group(1))
            return self._head.lstrip()[match.end() :].lstrip()
        return self._head


class BestOf(Strategy):
    name = "best_of"

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        messages = synthesis_messages(prompts.BEST_OF, numbered(answers), request.messages)
        pick_line = PickLine()
        streamed = await synth.stream(messages, shown=pick_line)
        tail = pick_line.flush()
        if tail:
            synth.show(tail)
        content = _after_pick_line(streamed)
        pick = pick_line.pick
        if pick is None or not 1 <= pick <= len(answers):
            return Outcome(content=content, best_of_pick=None)
        return Outcome(content=content, best_of_pick=answers[pick - 1].model)


def _after_pick_line(text: str) -> str:
    first, newline, rest = text.lstrip().partition("\n")
    match = _PICK.match(first)
    if match is None:
        return text
    return rest.lstrip("\n") if newline else first[match.end() :].lstrip()
