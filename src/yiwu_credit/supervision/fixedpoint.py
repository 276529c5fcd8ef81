"""Inclusion probabilities in fixed point, and systematic selection on them.

The rule, written once: ``pi`` becomes int64 units of ``2**-36`` by :func:`quantise` (floor,
kept ≥ 1 unit when ``pi > 0``); the shortfall ``d = n * SCALE - Σ q`` is then handed out one
unit each to the first eligible units in draw order (eligible: below ``SCALE`` when adding;
strictly between 1 and ``SCALE`` when removing). When the draw order is cut into consecutive
segments (chunks, key ranges, micro-strata) :func:`deficit_shares` gives each segment its part
of ``d`` from the segments' eligible counts, and :func:`spread_deficit` applies a part inside
its segment. :func:`fixed_point` is the rule on one array. Every unit moves by at most one unit
and certainty units (pi = 1) stay at exactly ``SCALE``; ``Σ == n * SCALE`` on any platform.
"""

from __future__ import annotations

import numpy as np

from ..errors import PlanError

__all__ = ["MAX_N", "SCALE", "SCALE_BITS", "deficit_shares", "eligible_counts", "fixed_point", "quantise",
           "spread_deficit", "systematic_select"]

SCALE_BITS = 36
SCALE = 1 << SCALE_BITS                 # fixed-point unit of probability: pi_int / SCALE
MAX_N = (1 << (63 - SCALE_BITS)) - 2    # n * SCALE must fit in int64


def quantise(pi: np.ndarray, out: np.ndarray | None = None, *, scratch: np.ndarray | None = None) -> np.ndarray:
    """``floor(pi * SCALE)`` as int64, kept ≥ 1 unit where ``pi > 0`` (0 stays 0).

    ``out`` (int64) and ``scratch`` (float64) of the same length avoid allocations.
    """
    p = np.asarray(pi, dtype=np.float64)
    x = np.multiply(p, SCALE, out=scratch)
    q = np.empty(len(p), np.int64) if out is None else out
    np.copyto(q, x, casting="unsafe")                    # truncation == floor for pi ≥ 0
    zero = q == 0
    if zero.any():
        q[zero & (x > 0)] = 1
    return q


def eligible_counts(q: np.ndarray) -> tuple[int, int]:
    """Units of ``q`` that may gain a unit (``q < SCALE``) and that may lose one (``1 < q < SCALE``)."""
    below = q < SCALE
    return int(np.count_nonzero(below)), int(np.count_nonzero(below & (q > 1)))


def deficit_shares(eligible: np.ndarray, deficit: int, what: str = "pi does not sum to n") -> np.ndarray:
    """Each consecutive segment's signed share of ``deficit``: the first ``|deficit|`` eligible
    units in order take one unit each. ``eligible`` (S,) counts the units of the deficit's sign
    per segment (see :func:`eligible_counts`). PlanError if the deficit does not fit."""
    elig = np.asarray(eligible, np.int64)
    d = int(deficit)
    if abs(d) > int(elig.sum()):
        left = (abs(d) - int(elig.sum())) * (1 if d > 0 else -1)
        raise PlanError(f"fixed point: {left} units left over ({what})")
    before = np.cumsum(elig) - elig
    return np.clip(abs(d) - before, 0, elig) * (1 if d >= 0 else -1)


def spread_deficit(q: np.ndarray, d: int, what: str = "pi does not sum to n") -> None:
    """Add (d > 0) or remove (d < 0) one unit at the first |d| eligible positions of ``q`` in place.

    PlanError if fewer than |d| units are eligible.
    """
    d = int(d)
    if d == 0:
        return
    n, k, lo = len(q), abs(d), 0
    while k > 0 and lo < n:
        hi = min(n, lo + 2 * k + 1024)
        blk = q[lo:hi]
        elig = np.flatnonzero(blk < SCALE if d > 0 else (blk > 1) & (blk < SCALE))[:k]
        blk[elig] += 1 if d > 0 else -1
        k -= len(elig)
        lo = hi
    if k:
        raise PlanError(f"fixed point: cannot {'place' if d > 0 else 'remove'} {abs(d)} units ({what})")


def fixed_point(pi_sorted: np.ndarray, n: int, *, deficit: int | None = None, out: np.ndarray | None = None,
                overwrite_input: bool = False) -> np.ndarray:
    """Inclusion probabilities as int64 fixed point (unit ``2**-36``) summing exactly to ``n * SCALE``.

    ``pi_sorted``: float (N,), in draw order; the rule of the module docstring. For one segment of
    a larger frame pass ``deficit`` = its share (:func:`deficit_shares`); ``n`` is then ignored.
    ``out`` / ``overwrite_input`` avoid allocations on large frames.
    """
    p = np.asarray(pi_sorted, dtype=np.float64)
    q = quantise(p, out, scratch=p if overwrite_input else None)
    d = (int(n) * SCALE - int(q.sum())) if deficit is None else int(deficit)
    spread_deficit(q, d, f"pi does not sum to n={n}")
    return q


def systematic_select(pi_int: np.ndarray, start: int, offset: int = 0, *, out: np.ndarray | None = None) -> np.ndarray:
    """Systematic selection on integer probabilities, bool (N,).

    Unit *i* (in the given order) is selected iff some point ``start + j * SCALE`` lies in
    ``[offset + C_{i-1}, offset + C_i)`` where ``C`` is the cumulative sum of ``pi_int``; with
    ``0 ≤ pi_int ≤ SCALE`` that is ``(offset + C_i + SCALE - 1 - start) mod SCALE < pi_int``. A unit
    is hit at most once and, over ``start`` uniform on ``[0, SCALE)``, with probability exactly
    ``pi_int / SCALE``. A segment of a larger frame passes ``offset`` = the sum of ``pi_int`` over
    all earlier segments (mod SCALE suffices). ``out``: optional int64 (N,) scratch buffer.
    """
    pi_int = np.asarray(pi_int, dtype=np.int64)
    c = np.cumsum(pi_int, out=out)
    c += np.int64((int(offset) + SCALE - 1 - int(start)) % SCALE)
    c &= np.int64(SCALE - 1)
    return c < pi_int
