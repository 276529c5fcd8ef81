"""Allocation under bounds: ``x = clip(a * w, lo, hi)`` with a prescribed total, solved exactly.

The plan math of both plan steps (annual expected inspections under the tier caps, then campaign
inclusion probabilities under the floor and 1) is :func:`allocate`; :func:`inclusion_probabilities`
is its public form for one weight vector. Sums run on integer-quantised weights, so results do
not depend on the order of the units (or on how they are grouped into cells with counts).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PlanError
from .fixedpoint import MAX_N

__all__ = ["Bound", "Infeasible", "allocate", "check_budget", "check_n", "inclusion_probabilities",
           "quantise_weights", "resolve_budget_n"]


class Infeasible(Exception):
    """The requested total is outside [Σ lower bounds, Σ upper bounds] (``side``: below/above)."""

    def __init__(self, side: str, total: float, bound: float):
        super().__init__(side)
        self.side, self.total, self.bound = side, total, bound


@dataclass(frozen=True)
class Bound:
    """Per-unit bound ``values[codes]`` (few distinct values, so sums are exact and order-free)."""

    values: np.ndarray
    codes: np.ndarray | None = None

    @staticmethod
    def of(x: float | tuple[np.ndarray, np.ndarray]) -> Bound:
        if isinstance(x, tuple):
            return Bound(np.asarray(x[0], np.float64), np.asarray(x[1], np.intp))
        return Bound(np.array([float(x)]))

    def array(self) -> np.ndarray | float:
        return float(self.values[0]) if self.codes is None else self.values[self.codes]

    def total(self, mask: np.ndarray, counts: np.ndarray | None) -> float:
        """Σ bound over ``mask`` (weighted by integer ``counts``), computed exactly per value."""
        if self.codes is None:
            cnt = int(np.count_nonzero(mask)) if counts is None else int(counts[mask].sum())
            return float(self.values[0]) * cnt
        c = np.bincount(self.codes[mask], weights=None if counts is None else counts[mask],
                        minlength=len(self.values))
        return math.fsum(float(v) * float(k) for v, k in zip(self.values, c, strict=True))


def quantise_weights(w: np.ndarray, n_units: int) -> np.ndarray:
    """Weights as int64 on a power-of-two grid relative to the largest (sums exact, order-free)."""
    wmax = float(w.max()) if len(w) else 0.0
    if wmax <= 0:
        return np.zeros(len(w), np.int64)
    bits = min(52, 62 - max(1, (n_units - 1).bit_length()))
    q = np.rint(w * math.ldexp(1.0, bits - math.frexp(wmax)[1])).astype(np.int64)
    q[(q == 0) & (w > 0)] = 1
    return q


def allocate(w: np.ndarray, total: float, lo: Bound, hi: Bound, fixed: np.ndarray | None = None,
              fixed_value: float = 1.0, counts: np.ndarray | None = None) -> np.ndarray:
    """``x = clip(a * w, lo, hi)`` with ``sum(counts * x) == total``; ``fixed`` units get ``fixed_value``.

    ``counts`` (optional, int) makes each row a group of identical units. Solves the monotone
    piecewise-linear equation in ``a`` by Newton steps on the current piece (the classical
    iterative capping, extended to floors), safeguarded by bisection. Sums run on integer weights,
    so the result does not depend on row order. Raises ``Infeasible`` when ``total`` is outside
    ``[sum(lo), sum(hi)]``.
    """
    n_units = len(w) if counts is None else int(counts.sum())
    cw = None if counts is None else counts.astype(np.float64)
    wq = quantise_weights(w, n_units)
    wc = wq if counts is None else wq * counts.astype(np.int64)
    free = np.ones(len(w), bool) if fixed is None else ~fixed
    nfix = n_units - (int(np.count_nonzero(free)) if counts is None else int(counts[free].sum()))
    movable = free & (wq > 0)
    stuck = free & (wq == 0)
    t = float(total) - nfix * fixed_value - lo.total(stuck, cw)
    lo_arr, hi_arr = lo.array(), hi.array()
    sum_lo, sum_hi = lo.total(movable, cw), hi.total(movable, cw)
    tol = 1e-9 * max(1.0, abs(t))
    if t < sum_lo - tol:
        raise Infeasible("below", t, sum_lo)
    if t > sum_hi + tol:
        raise Infeasible("above", t, sum_hi)
    wsum = int(wc[movable].sum())
    wf = wq.astype(np.float64)
    x = np.empty(len(w))
    if wsum > 0:
        a, lo_a, hi_a = t / wsum, 0.0, math.inf
        y = np.empty(len(w))
        for _ in range(300):
            np.multiply(wf, a, out=y)
            up = movable & (y >= hi_arr)
            down = movable & (y <= lo_arr)
            base = hi.total(up, cw) + lo.total(down, cw)
            wmid = wsum - int(wc[up].sum()) - int(wc[down].sum())
            g = base + a * wmid
            if g < t:
                lo_a = max(lo_a, a)
            elif g > t:
                hi_a = min(hi_a, a)
            else:
                break
            a_new = (t - base) / wmid if wmid > 0 else math.nan
            if a_new == a:
                break
            if hi_a < math.inf and hi_a - lo_a <= 4e-16 * hi_a:
                break
            if not (lo_a < a_new < hi_a):
                a_new = 0.5 * (lo_a + hi_a) if hi_a < math.inf else 2.0 * a
            a = a_new
        np.multiply(wf, a, out=x)
        np.clip(x, lo_arr, hi_arr, out=x)
    if stuck.any() or wsum == 0:
        x[stuck] = lo_arr[stuck] if isinstance(lo_arr, np.ndarray) else lo_arr
    if fixed is not None:
        x[fixed] = fixed_value
    return x


def inclusion_probabilities(weights: np.ndarray | Sequence[float], n: int, must: np.ndarray | None = None,
                            floor: float = 0.0) -> np.ndarray:
    """Inclusion probabilities proportional to ``weights``, capped at 1, floored, summing to ``n``.

    Parameters
    ----------
    weights : (N,) non-negative finite floats.
    n : sample size, ``0 ≤ n ≤ N``.
    must : optional (N,) bool; these units get probability 1.
    floor : lower bound for every other unit (``0 ≤ floor ≤ 1``).

    Returns (N,) float64 ``pi = clip(a * w, floor, 1)`` (must-includes at 1) with ``sum(pi) == n``
    up to float rounding (exactly in fixed point, see :func:`fixed_point`); ``w < w'`` implies
    ``pi ≤ pi'``. Weights are quantised to ~38 significant bits relative to the largest, which
    makes the result identical whatever the order of the units.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1:
        raise PlanError(f"weights: expected a 1-D array, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise PlanError("weights: must be finite and non-negative")
    mk = np.zeros(len(w), bool) if must is None else np.asarray(must, dtype=bool)
    if mk.shape != w.shape:
        raise PlanError(f"must: expected shape {w.shape}, got {mk.shape}")
    if not (0.0 <= floor <= 1.0):
        raise PlanError(f"floor: {floor} is outside [0, 1]")
    check_n(n, len(w), int(mk.sum()), floor)
    try:
        return allocate(w, float(n), Bound.of(floor), Bound.of(1.0), mk, 1.0)
    except Infeasible as e:
        raise PlanError(f"n={n}: cannot give every unit a probability in [{floor}, 1] summing to n "
                        f"(the bounds allow {e.bound:.6g} for the free units, {e.side})") from None


def resolve_budget_n(counts: np.ndarray, rate: np.ndarray, fac: np.ndarray, budget: float | None, n: int | None,
                     N: int, n_must: int, floor: float, detail: str = "",
                     band: Sequence[float] | None = None) -> tuple[float, int]:
    """The annual budget (default: Σ tier rate × entity-type factor over the group ``counts``,
    ordered tier-major; ``fac`` (n_types,) or per tier (4, n_types); with ``band`` = (low, high) the
    default is clipped into [low·N, high·N]) and the campaign size (default: the budget rounded), both checked."""
    fac = np.asarray(fac, np.float64)
    ng = fac.shape[-1]
    f2 = fac if fac.ndim == 2 else np.broadcast_to(fac, (len(rate), ng))
    default_budget = math.fsum(float(rate[g // ng] * f2[g // ng, g % ng]) * int(c) for g, c in enumerate(counts))
    if band is not None:      # [sampling] clip_budget_to_band: the default budget stays in the overall band
        default_budget = min(max(default_budget, float(band[0]) * N), float(band[1]) * N)
    budget = check_budget(default_budget if budget is None else budget)
    if n is None:
        n = min(N, max(1, int(round(budget))))
    check_n(n, N, n_must, floor, detail)
    return budget, int(n)


def check_budget(budget: Any) -> float:
    """An annual budget as a float: PlanError naming ``budget`` unless a finite number > 0."""
    try:
        b = float(budget)
    except (TypeError, ValueError):
        raise PlanError(f"budget: expected a positive number of inspections per year, got {budget!r}") from None
    if isinstance(budget, bool) or not (b > 0 and math.isfinite(b)):
        raise PlanError(f"budget: expected a positive number of inspections per year, got {budget!r}")
    return b


def check_n(n: Any, pool: int, n_must: int, floor: float, must_detail: str = "") -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise PlanError(f"n: expected an integer campaign size, got {n!r}")
    n = int(n)
    if n < 0 or (n == 0 and pool):
        raise PlanError(f"n={n}: a campaign must draw at least one entity")
    if n > pool:
        raise PlanError(f"n={n} is larger than the pool of {pool} active entities")
    if n > MAX_N:
        raise PlanError(f"n={n} exceeds the fixed-point limit of {MAX_N} per campaign")
    if n < n_must:
        raise PlanError(f"n={n} is smaller than the {n_must} must-include entities{must_detail}; "
                        f"raise n to at least {n_must}")
    need = n_must + floor * (pool - n_must)
    if n < need - 1e-9:
        raise PlanError(f"n={n} is too small for the floor: {pool - n_must} entities × min_inclusion_prob "
                        f"{floor:g} + {n_must} must-includes need n ≥ {math.ceil(need - 1e-9)}; "
                        f"raise n or lower the floor")
