"""Latency figures shared by the hand-run benchmarks."""

from __future__ import annotations

from collections.abc import Sequence


def quantiles(values: Sequence[float], *qs: float) -> list[float]:
    """The value at each fraction q of `values` in order (nearest rank, no interpolation: every
    figure is one that was measured), in the unit of `values`."""
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in qs]
