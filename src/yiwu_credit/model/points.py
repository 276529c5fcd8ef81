"""The credit-score scale: the one formula from a probability of violation to points.

``score = base_points + pdo / ln 2 · (ln((1 - p) / p) - ln(base_odds))``: higher is better;
an entity whose odds of good are ``base_odds`` scores ``base_points``, and every ``pdo`` points
double the odds of good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PointsScale", "credit_points"]


@dataclass(frozen=True)
class PointsScale:
    """``base_points`` at odds good:bad ``base_odds``; ``pdo`` points double the odds."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 40.0

    @property
    def factor(self) -> float:
        """Points per unit of log-odds of good (pdo / ln 2)."""
        return self.pdo / math.log(2)

    def score(self, p: np.ndarray | float) -> np.ndarray:
        """Credit score of probabilities of violation ``p`` (array, same shape)."""
        p = np.asarray(p, dtype=float)
        return self.base_points + self.factor * (np.log((1 - p) / p) - math.log(self.base_odds))

    def linear(self, slope: float, intercept: float) -> tuple[float, float]:
        """For a calibrated log-odds of violation ``slope · margin + intercept``: (points per unit
        of margin, the score at margin 0), so that score = k · margin + base."""
        return -self.factor * slope, self.base_points - self.factor * (math.log(self.base_odds) + intercept)


def credit_points(p: np.ndarray | float, base_points: float = 600.0, base_odds: float = 50.0,
                  pdo: float = 40.0) -> np.ndarray:
    """Credit score of probabilities of violation ``p`` on the given scale (see :class:`PointsScale`)."""
    return PointsScale(base_points, base_odds, pdo).score(p)
