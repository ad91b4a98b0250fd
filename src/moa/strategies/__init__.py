"""The strategies, one small module each, looked up by name."""

from __future__ import annotations

from moa.strategies.base import Strategy
from moa.strategies.best_of import BestOf
from moa.strategies.chain import Chain
from moa.strategies.consensus import Consensus
from moa.strategies.council import Council
from moa.strategies.moa import MixtureOfAgents
from moa.strategies.self_moa import SelfMoa
from moa.strategies.vote import Vote
from moa.types import StrategyName

_STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (Consensus(), Council(), BestOf(), Chain(), MixtureOfAgents(), SelfMoa(), Vote())
}


def get_strategy(name: StrategyName) -> Strategy:
    return _STRATEGIES[name]


__all__ = ["Strategy", "get_strategy"]
