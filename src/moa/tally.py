"""Calls, tokens and dollars of one request, added up as its calls finish."""

from __future__ import annotations

from moa.config import Settings
from moa.types import TokenUsage, Usage


class Tally:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.usage = Usage()

    def add(self, model: str, tokens: TokenUsage, calls: int = 1) -> None:
        price = self._settings.price(model)
        cost = (
            tokens.prompt_tokens * price.input_usd_per_mtok
            + tokens.completion_tokens * price.output_usd_per_mtok
        ) / 1_000_000
        self.usage = Usage(
            calls=self.usage.calls + calls,
            prompt_tokens=self.usage.prompt_tokens + tokens.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + tokens.completion_tokens,
            cost_usd=round(self.usage.cost_usd + cost, 8),
        )
