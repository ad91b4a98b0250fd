"""A retry budget: retries may add at most ``ratio`` extra load on top of first attempts.

Every first attempt deposits ``ratio`` of a token; every retry withdraws one. A small
reserve lets a quiet service still retry. Without this, a failing upstream under load gets
(1 + max_retries) times the traffic exactly when it can least take it.
"""

from __future__ import annotations


class RetryBudget:
    def __init__(self, ratio: float = 0.2, reserve: float = 10.0) -> None:
        self._ratio = ratio
        self._cap = reserve + 100.0 * ratio
        self._tokens = reserve

    def on_attempt(self) -> None:
        self._tokens = min(self._cap, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        if self._tokens >= 1.0 - 1e-9:  # ten deposits of 0.1 make one retry, not 0.999…
            self._tokens -= 1.0
            return True
        return False
