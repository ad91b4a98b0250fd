"""Answers already paid for, kept per system and task so an interrupted eval resumes and a
rerun with the same settings costs nothing.

One JSONL file per system fingerprint (``<fingerprint>.jsonl``), one line per answered
task. Only answers are kept, never failures (a rerun tries those again), and never scores
(they are recomputed, so fixing a task's expected answer needs no new calls). A line cut
short by a crash is skipped. Files are read and appended in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

from moa.types import Usage, VoteResult


class Reply(BaseModel):
    """What a system produced for one task, as cached."""

    content: str = ""
    error: str | None = None
    usage: Usage = Usage()
    latency_ms: int = 0
    vote: VoteResult | None = None
    degraded: bool = False


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/moa/eval``, else ``~/.cache/moa/eval``."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "moa" / "eval"


class AnswerCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = asyncio.Lock()

    def _file(self, fingerprint: str) -> Path:
        return self.directory / f"{fingerprint}.jsonl"

    async def load(self, fingerprint: str) -> dict[str, Reply]:
        return await asyncio.to_thread(self._read, self._file(fingerprint))

    async def put(self, fingerprint: str, task: str, reply: Reply) -> None:
        line = json.dumps({"task": task, "reply": reply.model_dump(mode="json")}) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, self._file(fingerprint), line)

    @staticmethod
    def _read(path: Path) -> dict[str, Reply]:
        replies: dict[str, Reply] = {}
        if not path.is_file():
            return replies
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                replies[str(entry["task"])] = Reply.model_validate(entry["reply"])
            except (json.JSONDecodeError, KeyError, TypeError, ValidationError):
                continue  # a line cut short by an interrupted run
        return replies

    @staticmethod
    def _append(path: Path, line: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            file.write(line)
