"""Read fenced references back out of a prompt, the way a test reads what a model was shown."""

from __future__ import annotations

import re


def fenced(system: str, label: str) -> str:
    """The text between the real open and close lines of the reference called ``label``.

    The open line carries the blend's random tag; the close line must repeat it, so a forged
    close marker inside the reference cannot end the fence early.
    """
    opening = re.search(rf"^<<<{re.escape(label)} ([0-9a-f]+)>>>\n", system, re.MULTILINE)
    assert opening, f"no fence labelled {label!r} in:\n{system}"
    close = f"\n<<<end of {label} {opening.group(1)}>>>"
    end = system.find(close, opening.end())
    assert end != -1, f"fence {label!r} is never closed"
    return system[opening.end() : end]


def fence_tags(system: str) -> set[str]:
    """Every tag used on an open line of ``system``."""
    return set(re.findall(r"^<<<(?!end of )[^\n]* ([0-9a-f]+)>>>$", system, re.MULTILINE))
