"""Accuracy intervals and latency percentiles, checked against values worked by hand."""

from __future__ import annotations

import pytest

from moa.eval import wilson
from moa.eval.report import quantile


@pytest.mark.parametrize(
    ("correct", "n", "interval"),
    [
        (0, 10, (0.0, 0.2775)),
        (5, 10, (0.2366, 0.7634)),
        (10, 10, (0.7225, 1.0)),
        (30, 60, (0.3773, 0.6227)),
    ],
)
def test_wilson_intervals_match_the_textbook_values(
    correct: int, n: int, interval: tuple[float, float]
) -> None:
    assert wilson(correct, n) == pytest.approx(interval, abs=1e-4)


def test_no_answers_means_nothing_is_known() -> None:
    assert wilson(0, 0) == (0.0, 1.0)


def test_percentiles_interpolate_between_ranks() -> None:
    assert quantile([10, 20, 30, 40], 0.5) == 25
    assert quantile([10, 20, 30, 40, 50], 0.95) == pytest.approx(48)
    assert quantile([7], 0.95) == 7
