"""双随机 supervision: plans, inclusion probabilities, verifiable draws, joint and rotating campaigns.

The pipeline is ``supervision_plan`` (who should be checked how often) → ``draw`` (a fixed-size,
exactly-π, publicly verifiable random sample) → ``verify`` (anyone can recompute it).

Design (see docs/policy.md for the policy side):

* **Plan.** Each entity gets a weight ``tier weight × entity-type factor`` (optionally × its
  calibrated probability, renormalised so each tier keeps its total weight). The annual budget is spread in proportion
  to the weights, capped per entity at the tier's ``max_per_year`` (``expected_per_year``). The
  campaign inclusion probability ``pi`` is proportional to ``expected_per_year``, capped at 1
  with iterative capping, floored at ``min_inclusion_prob`` (nobody is exempt), with
  must-include entities fixed at 1 and ``sum(pi) == n``. Sums run on integer-quantised weights,
  so the result is bit-identical whatever the row order.
* **PRN.** Every entity gets a 64-bit key ``prn_key(seed, entity_id)``: a keyed fmix64 chain over
  the UTF-8 bytes of the id (little-endian 8-byte words), keyed by SHA-256 of the seed. It is
  pure uint64 arithmetic, so it is the same on every platform; ``_prn_key_py`` is a plain-Python
  reference of the same function.
* **Draw.** Systematic PPS over the entities sorted by key: ``pi`` is held as int64 fixed point
  with scale ``2**36`` (``sum == n * 2**36`` exactly), one start ``u`` in ``[0, 2**36)`` is taken
  from SHA-256 of the seed, and unit *i* is selected iff a point ``u + j * 2**36`` falls in its
  cumulative interval. First-order inclusion probabilities are exactly ``pi_int / 2**36``
  (|error| ≤ 2**-36 against the float ``pi``) for any order; hashing the order only randomises
  the joint inclusion and makes the draw independent of row order.
* **Distributed form.** A partition holding a contiguous key range needs only its sorted
  ``pi_int``, the sum of ``pi_int`` over earlier partitions (``offset``) and the start:
  ``systematic_select(pi_int, start, offset)``. ``fixed_point`` hands the rounding deficit to the
  first eligible units in key order; a partition gets its share (``deficit=``) from the prefix
  count of eligible units (see ``test_fixed_point_and_partitions_reproduce_the_draw``).
* **Joint and rotating campaigns.** Departments share permanent random numbers (a *panel seed*)
  and an origin on the PRN circle. Within each department, entities with equal ``pi`` form a
  micro-stratum; the stratum sample size is the integer part of ``N_h * pi_h`` plus one with
  probability equal to the fractional part (systematic over strata, so the total is exactly
  ``n``), and the sample is the ``m_h`` entities nearest after the origin. That is simple random
  sampling within strata, so each department's ``pi`` is exact, while departments select the
  same low-PRN entities → one joint visit. Successive campaigns move the origin past the
  previous campaign's window (by a PRN-independent amount), so entities just inspected are
  unlikely to be drawn again and probabilities stay exact.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..data.io import write_text
from ..errors import ConfigError, PlanError
from .policy import TIERS, Policy, load_policy

__all__ = [
    "SCALE", "SCALE_BITS", "SCOPES", "Draw", "JointDraw", "PlanCells", "VerifyResult", "draw", "plan_cells",
    "plan_on_cells", "sampling_settings", "type_factor_matrix", "fixed_point", "inclusion_probabilities",
    "campaign_window", "check_audit", "joint_draw", "load_audit", "prn_keys", "prn_uniform", "rotate", "save_audit", "start_from_seed", "supervision_plan",
    "systematic_select", "verify", "verify_files",
]

SCALE_BITS = 36
SCALE = 1 << SCALE_BITS                 # fixed-point unit of probability: pi_int / SCALE
MAX_N = (1 << (63 - SCALE_BITS)) - 2    # n * SCALE must fit in int64
DRAW_ALGORITHM = "systematic-pps-in-prn-order"
JOINT_ALGORITHM = "prn-sequential-srs-microstrata"
ALGORITHM_VERSION = "1"
PRN_HASH = "yiwu-prn-fmix64-v1"
AUDIT_FORMAT = "yiwu-credit/draw-audit/1"
JOINT_FORMAT = "yiwu-credit/joint-audit/1"

_M64 = (1 << 64) - 1
_K_WORD = 0x9E3779B97F4A7C15
_K_LEN = 0xBF58476D1CE4E5B9
_F1 = 0xFF51AFD7ED558CCD
_F2 = 0xC4CEB9FE1A85EC53
_U64 = np.uint64


# ============================================================== seeds and the PRN hash
def _seed_str(seed: Any) -> str:
    """Canonical text of a seed: ints in decimal, strings as given (so 7 and "7" are one seed)."""
    if isinstance(seed, bool) or seed is None:
        raise PlanError(f"seed: expected an int or a non-empty string, got {seed!r}")
    if isinstance(seed, numbers.Integral):
        return str(int(seed))
    if isinstance(seed, str) and seed:
        return seed
    raise PlanError(f"seed: expected an int or a non-empty string, got {seed!r}")


def _digest(purpose: str, *parts: str) -> bytes:
    return hashlib.sha256("\x00".join(("yiwu-credit", purpose, "v1", *parts)).encode()).digest()


def _seed_keys(seed: Any) -> tuple[int, int]:
    d = _digest("prn", _seed_str(seed))
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:16], "little")


def start_from_seed(seed: Any) -> int:
    """The systematic start ``u`` in ``[0, SCALE)``: the top 36 bits of SHA-256 of the seed."""
    return int.from_bytes(_digest("start", _seed_str(seed))[:8], "big") >> (64 - SCALE_BITS)


def _fmix64_py(h: int) -> int:
    h ^= h >> 33
    h = (h * _F1) & _M64
    h ^= h >> 33
    h = (h * _F2) & _M64
    return h ^ (h >> 33)


def _prn_key_py(seed: Any, entity_id: str) -> int:
    """Plain-Python reference of :func:`prn_keys` for one id (the specification of the hash)."""
    k0, k1 = _seed_keys(seed)
    b = entity_id.encode("utf-8")
    m = max(1, -(-len(b) // 8))
    b = b.ljust(8 * m, b"\x00")
    h = k0
    for j in range(m):
        h = ((h ^ int.from_bytes(b[8 * j:8 * j + 8], "little")) * _K_WORD) & _M64
        h ^= h >> 29
    h ^= k1 ^ ((len(entity_id.encode("utf-8")) * _K_LEN) & _M64)
    return _fmix64_py(h)


@dataclass(frozen=True)
class _Ids:
    """UTF-8 bytes of N ids: ``offsets`` (N+1, int64) into ``data`` (uint8); ``width`` if all equal."""

    offsets: np.ndarray
    data: np.ndarray
    width: int | None

    @property
    def n(self) -> int:
        return len(self.offsets) - 1


def _id_buffers(ids: pd.Index | Sequence[str], what: str = "entity_id") -> _Ids:
    """Zero-copy access to the id bytes when they are Arrow strings (pandas' default), else convert."""
    try:
        arr = pa.array(ids) if isinstance(ids, pd.Index | pd.Series) else pa.array(list(ids), type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = None
    if arr is not None and isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr is None or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        values = np.asarray(ids, dtype=object)
        bad = [v for v in values[:100_000] if not isinstance(v, str)]
        if bad or any(not isinstance(v, str) for v in values):
            example = bad[0] if bad else next(v for v in values if not isinstance(v, str))
            raise PlanError(f"{what}: every id must be a string, found {example!r}")
        arr = pa.array(values, type=pa.large_string())
    if arr.null_count:
        raise PlanError(f"{what}: {arr.null_count} missing id(s)")
    n = len(arr)
    bufs = arr.buffers()
    odt = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=odt, count=n + 1,
                            offset=arr.offset * np.dtype(odt).itemsize).astype(np.int64, copy=False)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lens = np.diff(offsets)
    if n and lens.min() == 0:
        raise PlanError(f"{what}: empty id at row {int(np.argmin(lens))}")
    width = int(lens[0]) if n and (lens == lens[0]).all() else None
    if width is not None:
        data = data[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return _Ids(offsets, data, width)


def _fmix64(h: np.ndarray, tmp: np.ndarray) -> None:
    np.right_shift(h, _U64(33), out=tmp)
    h ^= tmp
    h *= _U64(_F1)
    np.right_shift(h, _U64(33), out=tmp)
    h ^= tmp
    h *= _U64(_F2)
    np.right_shift(h, _U64(33), out=tmp)
    h ^= tmp


def _tail_view(flat: np.ndarray, n: int, w: int, base: int, r: int) -> np.ndarray:
    """The last ``r`` (< 8) bytes of each fixed-width id as a little-endian integer (N,)."""
    if r in (1, 2, 4):
        return np.ndarray((n,), dtype=f"<u{r}", buffer=flat, offset=base, strides=(w,))
    tail = np.zeros(n, np.uint64)
    for k in range(r):
        b = np.ndarray((n,), dtype=np.uint8, buffer=flat, offset=base + k, strides=(w,))
        tail |= b.astype(np.uint64) << _U64(8 * k)
    return tail


def _words(ids: _Ids) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
    """Little-endian 8-byte words of each id (zero padded, possibly strided views), the per-row
    lengths when they vary (else None), and the lengths."""
    n, w = ids.n, ids.width
    if w is not None:
        flat = ids.data
        words = [np.ndarray((n,), dtype="<u8", buffer=flat, offset=8 * j, strides=(w,)) for j in range(w // 8)]
        if w % 8 or not words:
            words.append(_tail_view(flat, n, w, 8 * (w // 8), w % 8))
        return words, None, np.full(1, w, np.int64)
    lens = np.diff(ids.offsets)
    m = int(-(-lens.max() // 8))
    padded = np.zeros((n, 8 * m), np.uint8)
    within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    padded[np.repeat(np.arange(n), lens), within] = ids.data[ids.offsets[0]:ids.offsets[-1]]
    words = [padded[:, 8 * j:8 * j + 8].copy().view("<u8").ravel() for j in range(m)]
    return words, lens, lens


def _keys_from_ids(ids: _Ids, seed: Any, *, pack_bits: int = 0, chunk: int = 1 << 16) -> np.ndarray:
    """uint64 PRN keys (N,), see :func:`_prn_key_py` for the definition.

    Works in cache-sized chunks. With ``pack_bits`` = b, returns ``(key >> b << b) | row`` instead,
    ready for a single uint64 sort.
    """
    k0, k1 = _seed_keys(seed)
    words, var_lens, lens = _words(ids)
    n = ids.n
    out = np.empty(n, np.uint64)
    tmp = np.empty(max(1, min(chunk, n)), np.uint64)
    kw, sh = _U64(_K_WORD), _U64(29)
    fin = _U64(k1 ^ ((int(lens[0]) * _K_LEN) & _M64)) if var_lens is None else None
    rows = np.arange(len(tmp), dtype=np.uint64) if pack_bits else None
    for s0 in range(0, n, chunk):
        s1 = min(n, s0 + chunk)
        h, t = out[s0:s1], tmp[:s1 - s0]
        np.bitwise_xor(words[0][s0:s1], _U64(k0), out=h, casting="unsafe")
        h *= kw
        np.right_shift(h, sh, out=t)
        h ^= t
        for j, wj in enumerate(words[1:], start=1):
            if var_lens is None:
                np.bitwise_xor(h, wj[s0:s1], out=h, casting="unsafe")
                h *= kw
                np.right_shift(h, sh, out=t)
                h ^= t
            else:
                g = (h ^ wj[s0:s1]) * kw
                g ^= g >> sh
                np.copyto(h, g, where=var_lens[s0:s1] > 8 * j)
        if fin is not None:
            h ^= fin
        else:
            h ^= _U64(k1) ^ (lens[s0:s1].astype(np.uint64) * _U64(_K_LEN))
        _fmix64(h, t)
        if pack_bits:
            h >>= _U64(pack_bits)
            h <<= _U64(pack_bits)
            np.add(rows[:s1 - s0], _U64(s0), out=t)
            h |= t
    return out


def prn_keys(ids: pd.Index | Sequence[str], seed: int | str) -> np.ndarray:
    """Permanent random numbers as uint64 keys, shape (N,): a keyed hash of (seed, entity_id).

    Platform-independent (pure uint64 arithmetic on the UTF-8 bytes), independent of row order,
    ~0.1 s for 10M ids. ``key / 2**64`` is uniform on [0, 1).
    """
    return _keys_from_ids(_id_buffers(ids), seed)


def prn_uniform(ids: pd.Index | Sequence[str], seed: int | str) -> np.ndarray:
    """Permanent random numbers in [0, 1), shape (N,) (the top 53 bits of :func:`prn_keys`)."""
    return (prn_keys(ids, seed) >> _U64(11)).astype(np.float64) * 2.0**-53


# ============================================================== ordering
def _prn_order(ids: _Ids, index: pd.Index, seed: Any, chunk: int = 1 << 16) -> np.ndarray:
    """Row indices (int64, N) sorted by PRN key, equal keys by id text: the draw order.

    Independent of input row order. Sorts ``key prefix | row`` packed in one uint64 (SIMD sort,
    ~0.2 s for 10M), then repairs the rare runs whose key prefixes coincide using the full keys
    of those rows. Raises PlanError on duplicate ids.
    """
    n = ids.n
    if n == 0:
        return np.zeros(0, np.int64)
    nb = max(1, (n - 1).bit_length())
    packed = _keys_from_ids(ids, seed, pack_bits=nb, chunk=chunk)
    packed.sort()
    mask, shift = _U64((1 << nb) - 1), _U64(nb)
    pre = np.empty(min(chunk, n) + 1, np.uint64)
    dups = []
    for s0 in range(0, n, chunk):             # find equal prefixes, then keep only the row (in place)
        s1 = min(n, s0 + chunk)
        e = min(n, s1 + 1)
        p = pre[:e - s0]
        np.right_shift(packed[s0:e], shift, out=p)
        d = np.flatnonzero(p[1:] == p[:-1])
        if len(d):
            dups.append(d + s0)
        packed[s0:s1] &= mask
    order = packed.view(np.int64)
    if dups:
        dup = np.concatenate(dups)
        pos = np.unique(np.concatenate([dup, dup + 1]))
        starts = np.flatnonzero(np.diff(np.concatenate([[-2], pos])) > 1)
        bounds = np.append(starts, len(pos))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            run = pos[a:b]
            items = sorted((_prn_key_py(seed, str(index[r])), str(index[r]), int(r)) for r in order[run])
            for (k1, t1, _), (k2, t2, _) in zip(items[:-1], items[1:], strict=True):
                if k1 == k2 and t1 == t2:
                    raise PlanError(f"entity_id: duplicate id {t1!r}; ids must be unique")
            order[run] = [r for _, _, r in items]
    return order


def _spread_deficit(q: np.ndarray, d: int, what: str, partial: bool = False) -> int:
    """Add (d > 0) or remove (d < 0) one unit at the first |d| eligible positions of ``q`` in place.

    Eligible: below SCALE (adding) or strictly between 1 and SCALE (removing). Returns the signed
    number of units applied; with ``partial=False`` raises PlanError if not all of ``d`` fits.
    """
    if d == 0:
        return 0
    n, k, lo = len(q), abs(d), 0
    while k > 0 and lo < n:
        hi = min(n, lo + 2 * k + 1024)
        blk = q[lo:hi]
        elig = np.flatnonzero(blk < SCALE if d > 0 else (blk > 1) & (blk < SCALE))[:k]
        blk[elig] += 1 if d > 0 else -1
        k -= len(elig)
        lo = hi
    if k and not partial:
        raise PlanError(f"fixed point: cannot {'place' if d > 0 else 'remove'} {abs(d)} units ({what})")
    return (abs(d) - k) * (1 if d > 0 else -1)


def fixed_point(pi_sorted: np.ndarray, n: int, *, deficit: int | None = None, out: np.ndarray | None = None,
                overwrite_input: bool = False) -> np.ndarray:
    """Inclusion probabilities as int64 fixed point (unit ``2**-36``) summing exactly to ``n * SCALE``.

    ``pi_sorted``: float (N,), in draw order. Each value is floored (and kept ≥ 1 unit when
    ``pi > 0``); the shortfall ``n * SCALE - sum`` is then handed out one unit each to the first
    eligible units in draw order (eligible: below ``SCALE``; if the sum overshoots, one unit is
    taken from the first units strictly between 1 and ``SCALE``). Every unit therefore moves by
    at most one unit (2**-36) and certainty units (pi = 1) stay at exactly ``SCALE``.

    For a partition of a distributed frame pass ``deficit`` = the share of the global shortfall
    this partition absorbs (from prefix counts of eligible units); ``n`` is then ignored.
    ``out`` / ``overwrite_input`` avoid allocations on large frames.
    """
    p = np.asarray(pi_sorted, dtype=np.float64)
    if overwrite_input:
        p *= SCALE
        scaled = p
    else:
        scaled = p * SCALE
    q = np.empty(len(p), np.int64) if out is None else out
    np.copyto(q, scaled, casting="unsafe")              # truncation == floor for pi ≥ 0
    zero = q == 0
    if zero.any():
        q[zero & (scaled > 0)] = 1
    d = (int(n) * SCALE - int(q.sum())) if deficit is None else int(deficit)
    _spread_deficit(q, d, f"pi does not sum to n={n}")
    return q


def systematic_select(pi_int: np.ndarray, start: int, offset: int = 0, *, out: np.ndarray | None = None) -> np.ndarray:
    """Systematic selection on integer probabilities, bool (N,).

    Unit *i* (in the given order) is selected iff some point ``start + j * SCALE`` lies in
    ``[offset + C_{i-1}, offset + C_i)`` where ``C`` is the cumulative sum of ``pi_int``; with
    ``0 ≤ pi_int ≤ SCALE`` that is ``(offset + C_i + SCALE - 1 - start) mod SCALE < pi_int``. A unit
    is hit at most once and, over ``start`` uniform on ``[0, SCALE)``, with probability exactly
    ``pi_int / SCALE``. A partition of a distributed frame passes ``offset`` = the sum of
    ``pi_int`` over all earlier partitions (mod SCALE suffices). ``out``: optional int64 (N,)
    scratch buffer.
    """
    pi_int = np.asarray(pi_int, dtype=np.int64)
    c = np.cumsum(pi_int, out=out)
    c += np.int64((int(offset) + SCALE - 1 - int(start)) % SCALE)
    c &= np.int64(SCALE - 1)
    return c < pi_int


class _Infeasible(Exception):
    def __init__(self, side: str, total: float, bound: float):
        super().__init__(side)
        self.side, self.total, self.bound = side, total, bound


@dataclass(frozen=True)
class _Bound:
    """Per-unit bound ``values[codes]`` (few distinct values, so sums are exact and order-free)."""

    values: np.ndarray
    codes: np.ndarray | None = None

    @staticmethod
    def of(x: float | tuple[np.ndarray, np.ndarray]) -> _Bound:
        if isinstance(x, tuple):
            return _Bound(np.asarray(x[0], np.float64), np.asarray(x[1], np.intp))
        return _Bound(np.array([float(x)]))

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


def _quantise(w: np.ndarray, n_units: int) -> np.ndarray:
    """Weights as int64 on a power-of-two grid relative to the largest (sums exact, order-free)."""
    wmax = float(w.max()) if len(w) else 0.0
    if wmax <= 0:
        return np.zeros(len(w), np.int64)
    bits = min(52, 62 - max(1, (n_units - 1).bit_length()))
    q = np.rint(w * math.ldexp(1.0, bits - math.frexp(wmax)[1])).astype(np.int64)
    q[(q == 0) & (w > 0)] = 1
    return q


def _allocate(w: np.ndarray, total: float, lo: _Bound, hi: _Bound, fixed: np.ndarray | None = None,
              fixed_value: float = 1.0, counts: np.ndarray | None = None) -> np.ndarray:
    """``x = clip(a * w, lo, hi)`` with ``sum(counts * x) == total``; ``fixed`` units get ``fixed_value``.

    ``counts`` (optional, int) makes each row a group of identical units. Solves the monotone
    piecewise-linear equation in ``a`` by Newton steps on the current piece (the classical
    iterative capping, extended to floors), safeguarded by bisection. Sums run on integer weights,
    so the result does not depend on row order. Raises ``_Infeasible`` when ``total`` is outside
    ``[sum(lo), sum(hi)]``.
    """
    n_units = len(w) if counts is None else int(counts.sum())
    cw = None if counts is None else counts.astype(np.float64)
    wq = _quantise(w, n_units)
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
        raise _Infeasible("below", t, sum_lo)
    if t > sum_hi + tol:
        raise _Infeasible("above", t, sum_hi)
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
    _check_n(n, len(w), int(mk.sum()), floor)
    try:
        return _allocate(w, float(n), _Bound.of(floor), _Bound.of(1.0), mk, 1.0)
    except _Infeasible as e:
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
    budget = float(default_budget if budget is None else budget)
    if not (budget > 0 and math.isfinite(budget)):
        raise PlanError(f"budget: expected a positive number of inspections per year, got {budget}")
    if n is None:
        n = min(N, max(1, int(round(budget))))
    _check_n(n, N, n_must, floor, detail)
    return budget, int(n)


def _check_n(n: Any, pool: int, n_must: int, floor: float, must_detail: str = "") -> None:
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


# ============================================================== the plan
_CARRY = ("entity_type", "town", "industry")
PLAN_ATTR = "yiwu_credit.plan"


def _as_entity_frame(scored: pd.DataFrame, what: str = "scored") -> pd.DataFrame:
    if not isinstance(scored, pd.DataFrame):
        raise PlanError(f"{what}: expected a pandas DataFrame, got {type(scored).__name__}")
    if "entity_id" in scored.columns:
        scored = scored.set_index("entity_id")
    return scored


def _examples(index: pd.Index, bad: np.ndarray, k: int = 3) -> str:
    rows = np.flatnonzero(bad)[:k]
    return ", ".join(repr(index[r]) for r in rows) + (f" (+{int(bad.sum()) - len(rows)} more)" if bad.sum() > k else "")


def _codes(df: pd.DataFrame, col: str, cats: Sequence[str], what: str, missing_ok: bool) -> np.ndarray:
    """Positions of ``df[col]`` values in ``cats`` as int (N,), -1 for missing; PlanError for others."""
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype):
        lut = np.array([cats.index(c) if c in cats else -2 for c in s.cat.categories] + [-1], dtype=np.int8)
        codes = lut[s.cat.codes.to_numpy()]
    else:
        try:
            arr = pa.array(s) if not s.dtype == object else pa.array(s.to_numpy(), from_pandas=True)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
                raise pa.ArrowInvalid("not strings")
            idx = pc.fill_null(pc.index_in(arr, value_set=pa.array(list(cats), type=arr.type if not pa.types.is_null(arr.type) else pa.string())), -2)
            codes = idx.to_numpy(zero_copy_only=False).astype(np.int8)
            if arr.null_count:
                codes[pc.is_null(arr).to_numpy(zero_copy_only=False)] = -1
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            cat = pd.Categorical(s, categories=list(cats))
            codes = cat.codes.astype(np.int8)
            codes[(codes == -1) & s.notna().to_numpy()] = -2
    bad = codes == -2 if missing_ok else codes < 0
    if bad.any():
        vals = sorted({str(v) for v in s[bad].unique()[:5]})
        raise PlanError(f"{what}.{col}: expected one of {list(cats)}, found {vals} for entity "
                        f"{_examples(df.index, bad)}")
    return codes


def _flag(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df), bool)
    s = df[col]
    if s.dtype == bool:
        return s.to_numpy()
    return s.fillna(False).astype(bool).to_numpy()


def _plan_allocations(w: np.ndarray, counts: np.ndarray | None, budget: float, n: int, floor: float,
                      must_code: np.ndarray, tier: np.ndarray, caps: np.ndarray, must: np.ndarray, n_must: int,
                      detail: str) -> tuple[np.ndarray, np.ndarray]:
    """Annual expected inspections (capped per tier, ≥ 1 for must-includes) and campaign pi ∝ it."""
    try:
        e = _allocate(w, budget, _Bound.of((np.array([0.0, 1.0]), must_code)),
                      _Bound.of((caps, tier + 4 * must_code)), counts=counts)
    except _Infeasible as ex:
        if ex.side == "below":
            raise PlanError(f"budget={budget:g} inspections/year is below the {n_must} must-include "
                            f"entities{detail}, each needing at least one a year") from None
        raise PlanError(f"budget={budget:g} inspections/year exceeds what the per-entity caps allow "
                        f"({ex.bound:g} = tier max_per_year × entities); lower the budget") from None
    try:
        pi = _allocate(e, float(n), _Bound.of(floor), _Bound.of(1.0), must, 1.0, counts=counts)
    except _Infeasible as ex:  # pragma: no cover - _check_n rules out the reachable cases
        raise PlanError(f"n={n}: infeasible ({ex.side}, bound {ex.bound:g})") from None
    return e, pi


SCOPES: tuple[str, ...] = ("all", "routine", "none")
FLAT_NOTE = "no 'probability' column: flat within tier (the policy's alpha needs calibrated probabilities)"
ROUTINE_TIERS: tuple[str, ...] = ("A", "B")


def type_factor_matrix(fac: np.ndarray | Sequence[float], scope: str = "all") -> np.ndarray:
    """Entity-type factors per tier, (4, len(fac)): ``"all"`` applies them on every tier,
    ``"routine"`` on the routine tiers A–B only (C–D get 1), ``"none"`` nowhere."""
    f = np.asarray(fac, np.float64)
    if scope not in SCOPES:
        raise PlanError(f"entity_type_factor_scope: expected one of {list(SCOPES)}, got {scope!r}")
    m = np.ones((len(TIERS), len(f)))
    rows = {"all": range(len(TIERS)), "routine": [TIERS.index(t) for t in ROUTINE_TIERS], "none": []}[scope]
    for r in rows:
        m[r] = f
    return m


def sampling_settings(pol: Policy, *, scale_by_probability: bool | None = None, alpha: float | None = None,
                      scope: str | None = None) -> dict[str, Any]:
    """The plan knobs of a policy as arrays: tier weights/rates/caps (4,), entity types and their
    factors, ``alpha`` (the exponent on the calibrated probability within tier; 0 = flat) and the
    entity-type factor ``scope``. ``scale_by_probability=False`` means alpha 0; True means the
    policy's ``alpha`` (default 1, the pre-1.2 behaviour)."""
    s = pol.sampling
    tcfg = s.tiers
    etf = s.entity_type_factor
    scale = bool(s.scale_by_probability if scale_by_probability is None else scale_by_probability)
    a = float(s.alpha) if alpha is None else float(alpha)
    if not (math.isfinite(a) and a >= 0):
        raise PlanError(f"alpha: expected a finite number ≥ 0, got {alpha}")
    return {"tw": np.array([tcfg[t].weight for t in TIERS], np.float64),
            "rate": np.array([tcfg[t].annual_rate for t in TIERS], np.float64),
            "cap": np.array([tcfg[t].max_per_year for t in TIERS], np.float64),
            "etypes": tuple(etf), "fac": np.array([float(etf[k]) for k in etf] + [1.0]),
            "alpha": a if scale else 0.0,
            "scope": s.entity_type_factor_scope if scope is None else scope,
            "band": list(s.overall_rate_band) if s.clip_budget_to_band else None}


@dataclass(frozen=True)
class PlanCells:
    """A pool reduced to cells of identical plan inputs (tier, entity type, must-include, probability).

    Every unit of a cell gets the same weight, annual plan and pi whatever the candidate policy, and
    :func:`_allocate` gives bit-identical values on cells (with counts) and on units, so a plan is
    solved once per cell. ``inverse`` (N,) maps units to cells; ``p`` is None without probabilities.
    """

    group: np.ndarray        # (K,) tier * n_types + type code
    tier: np.ndarray         # (K,) 0..3
    must: np.ndarray         # (K,) bool
    p: np.ndarray | None     # (K,) calibrated probability
    count: np.ndarray        # (K,) int64 units per cell
    inverse: np.ndarray      # (N,) cell of each unit
    n_types: int
    n_must: int
    detail: str
    N: int


def plan_cells(scored: pd.DataFrame, etypes: Sequence[str], must_cols: Sequence[str], with_p: bool) -> PlanCells:
    """Validate ``scored`` (tier, optional entity_type, probability, must-include flags) into cells."""
    df = _as_entity_frame(scored)
    N = len(df)
    if N == 0:
        raise PlanError("scored: the pool is empty (no active entities)")
    if "tier" not in df.columns:
        raise PlanError("scored: missing column 'tier'")
    tier = _codes(df, "tier", TIERS, "scored", missing_ok=False)
    etypes = tuple(etypes)
    if "entity_type" in df.columns and etypes:
        et = _codes(df, "entity_type", etypes, "scored", missing_ok=True)
        et[et < 0] = len(etypes)
    else:
        et = np.full(N, len(etypes), np.int8)
    ng = len(etypes) + 1
    must = np.zeros(N, bool)
    reasons = []
    for col in must_cols:
        f = _flag(df, col)
        if f.any():
            reasons.append(f"{int(f.sum())} {col}")
        must |= f
    detail = f" ({', '.join(reasons)})" if reasons else ""
    gid = (tier.astype(np.int64) * ng + et) * 2 + must
    if with_p:
        if "probability" not in df.columns:
            raise PlanError("scored: scaling by probability needs a 'probability' column")
        p = df["probability"].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            raise PlanError(f"scored.probability: must be in [0, 1], entity {_examples(df.index, bad)}")
        key = np.stack([gid, p.view(np.int64)], axis=1)
        # a structured view: np.unique on rows without axis=1 overhead
        kv = np.ascontiguousarray(key).view(np.dtype((np.void, 16))).ravel()
        _, first, inv, cnt = np.unique(kv, return_index=True, return_inverse=True, return_counts=True)
        g, pk = gid[first], p[first]
    else:
        uniq, inv, cnt = np.unique(gid, return_inverse=True, return_counts=True)
        g, pk = uniq, None
    return PlanCells(group=g // 2, tier=g // 2 // ng, must=(g % 2).astype(bool), p=pk, count=cnt.astype(np.int64),
                     inverse=inv.astype(np.intp).ravel(), n_types=ng, n_must=int(must.sum()), detail=detail, N=N)


def plan_on_cells(c: PlanCells, tw: np.ndarray, rate: np.ndarray, cap: np.ndarray, fac: np.ndarray, *,
                  scope: str = "all", alpha: float = 0.0, floor: float, budget: float | None = None,
                  n: int | None = None, band: Sequence[float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """The plan on cells: weight, expected_per_year and pi per cell (K,), the budget and n.

    Weight = tier weight × entity-type factor (per ``scope``) × p^alpha × c_tier, with c_tier
    keeping each tier's total weight as without scaling (exact on integer-quantised p^alpha). The
    budget (inspections/year, default Σ annual_rate × factor) is spread ∝ weight under the tier
    caps; pi ∝ that, in [floor, 1], must-includes 1, Σ pi = n. This is the only implementation:
    :func:`supervision_plan` and :func:`yiwu_credit.supervision.frontier.policy_frontier` both call it.
    """
    ng = c.n_types
    facm = type_factor_matrix(fac, scope)
    counts = np.bincount(c.group, weights=c.count, minlength=4 * ng).astype(np.int64)
    budget, n = resolve_budget_n(counts, rate, facm, budget, n, c.N, c.n_must, floor, c.detail, band)
    caps = np.concatenate([cap, np.maximum(cap, 1.0)])   # must-includes may exceed a cap below 1/yr
    gw = (tw[:, None] * facm).ravel()
    w = gw[c.group]
    if alpha > 0:
        if c.p is None:
            raise PlanError("scored: alpha > 0 (scale by probability) needs a 'probability' column")
        pa = c.p if alpha == 1 else c.p ** alpha
        pq = np.rint(pa * 2.0**32).astype(np.int64)
        gi = c.group.astype(np.intp)               # exact integer group sums via two float bincounts:
        hi = np.bincount(gi, weights=(pq >> 17) * c.count, minlength=4 * ng)   # every partial sum < 2**53
        lo = np.bincount(gi, weights=(pq & ((1 << 17) - 1)) * c.count, minlength=4 * ng)
        gsum = np.array([(int(a) * (1 << 17) + int(b)) / 2.0**32 for a, b in zip(hi, lo, strict=True)])
        num = (counts.reshape(4, ng) * facm).sum(axis=1)
        den = (gsum.reshape(4, ng) * facm).sum(axis=1)
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
        flat = np.isin(c.tier, np.flatnonzero(den == 0))
        w = np.where(flat, w, w * (pq / 2.0**32 * ratio[c.tier]))
    e, pi = _plan_allocations(w, c.count, budget, n, floor, c.must.astype(np.intp), c.tier, caps, c.must,
                              c.n_must, c.detail)
    return w, e, pi, budget, n


def supervision_plan(scored: pd.DataFrame, policy: str | Path | Policy | None = None, *, n: int | None = None,
                     budget: float | None = None, floor: float | None = None,
                     scale_by_probability: bool | None = None, alpha: float | None = None,
                     entity_type_factor_scope: str | None = None) -> pd.DataFrame:
    """Annual supervision plan and campaign inclusion probabilities, one row per entity.

    Parameters
    ----------
    scored : DataFrame indexed by ``entity_id`` with ``tier`` (A–D) and, optionally,
        ``probability`` (calibrated, [0, 1]), ``entity_type``, ``town``, ``industry`` and the
        must-include flags named in the policy (``serious_dishonest``, ``abnormal_operation``).
    policy : policy name, TOML path or Policy (default ``yiwu-2022``).
    n : campaign size (entities). Default: the annual budget rounded (one campaign a year).
    budget : inspections per year over the whole pool. Default: Σ tier ``annual_rate`` ×
        entity-type factor, the policy's own rates.
    Without a ``probability`` column a policy that scales by probability plans flat within tier
    (alpha 0) and says so in the notes; an explicit ``scale_by_probability``/``alpha`` raises.
    floor, scale_by_probability, alpha, entity_type_factor_scope : override the policy's
        ``min_inclusion_prob`` / ``scale_by_probability`` / ``alpha`` (within-tier weight ∝
        p^alpha) / ``entity_type_factor_scope`` (``"all"``, ``"routine"`` = tiers A–B, ``"none"``).

    Returns
    -------
    DataFrame (entity_id index) with ``tier``, ``weight`` (relative to B), ``expected_per_year``
    (inspections/year, capped at the tier's ``max_per_year``, ≥ 1 for must-includes, Σ = budget),
    ``pi`` (campaign inclusion probability, Σ = n), ``must_include`` (bool) and the carried
    columns ``entity_type``/``town``/``industry`` when present. ``attrs["yiwu_credit.plan"]`` holds
    the policy name/hash and the parameters, which :func:`draw` records in its audit.

    Raises PlanError for impossible requests (n larger than the pool, smaller than the
    must-includes, too small for the floor; a budget outside the frequency caps).
    """
    pol = load_policy(policy)
    s = pol.sampling
    df = _as_entity_frame(scored)
    floor = float(s.min_inclusion_prob if floor is None else floor)
    if not (0.0 < floor <= 1.0):
        raise PlanError(f"floor: {floor} must be in (0, 1] (no entity is exempt)")
    cfg = sampling_settings(pol, scale_by_probability=scale_by_probability, alpha=alpha,
                            scope=entity_type_factor_scope)
    flat = (cfg["alpha"] > 0 and "probability" not in df.columns and scale_by_probability is None
            and alpha is None)
    if flat:      # the policy scales by probability but the table has tiers only: flat within tier
        cfg["alpha"] = 0.0
    c = plan_cells(df, cfg["etypes"], list(s.must_include), with_p=cfg["alpha"] > 0)
    clipped = budget is None and cfg["band"] is not None
    w, e, pi, budget, n = plan_on_cells(c, cfg["tw"], cfg["rate"], cfg["cap"], cfg["fac"], scope=cfg["scope"],
                                        alpha=cfg["alpha"], floor=floor, budget=budget, n=n, band=cfg["band"])
    N = c.N
    block = np.empty((3, N))                      # one float block, filled in place (no copy)
    for s0 in range(0, N, 1 << 18):
        gi = c.inverse[s0:s0 + (1 << 18)]
        for row, table in enumerate((w, e, pi)):
            np.take(table, gi, out=block[row, s0:s0 + len(gi)], mode="clip")

    out = pd.DataFrame(block.T, index=df.index, columns=["weight", "expected_per_year", "pi"], copy=False)
    out.insert(0, "tier", df["tier"])
    out["must_include"] = c.must[c.inverse]
    for col in _CARRY:
        if col in df.columns:
            out[col] = df[col]
    out.index.name = "entity_id"
    notes = []
    band = s.overall_rate_band
    if band and not (band[0] <= budget / N <= band[1]):
        notes.append(f"overall annual rate {budget / N:.2%} is outside the policy band {band[0]:.0%}–{band[1]:.0%}")
    if clipped and band and budget / N in (band[0], band[1]):
        notes.append(f"default budget clipped to the policy band: {budget / N:.2%} of the pool a year")
    if flat:
        notes.append(FLAT_NOTE)
    out.attrs[PLAN_ATTR] = {
        "policy": pol.name, "policy_version": pol.version, "policy_sha256": pol.sha256, "n": n,
        "budget": budget, "floor": floor, "scale_by_probability": cfg["alpha"] > 0, "alpha": cfg["alpha"],
        "entity_type_factor_scope": cfg["scope"], "campaigns_per_year": budget / n,
        "population": N, "must_include": c.n_must, "notes": notes,
    }
    return out


# ============================================================== the draw and its audit
@dataclass(frozen=True)
class Draw:
    """A drawn campaign: ``selected`` ids in draw order and the ``audit`` record (JSON-ready)."""

    selected: pd.Index
    audit: dict[str, Any]

    def frame(self, plan: pd.DataFrame) -> pd.DataFrame:
        """The plan rows of the selected entities (in draw order)."""
        return plan.loc[self.selected]

    def with_inspectors(self, assignments: pd.DataFrame) -> Draw:
        """This draw with the inspector assignment (the second random) recorded in its audit.

        ``assignments``: the unchanged result of :func:`~yiwu_credit.supervision.inspectors.assign_inspectors`
        for exactly the selected entities. The audit gains ``inspectors``: the roster hash, the
        assignment parameters and the assignment (entity → sorted inspector ids), which
        :func:`verify` recomputes when given the roster.
        """
        from .inspectors import inspector_record

        rec = inspector_record(assignments)
        got, want = set(rec["assignment"]), {str(x) for x in self.selected}
        if got != want:
            extra, missing = sorted(got - want)[:5], sorted(want - got)[:5]
            raise PlanError(f"assignments: not for the drawn entities (not drawn: {extra}; drawn without "
                            f"inspectors: {missing})")
        return Draw(selected=self.selected, audit={**self.audit, "inspectors": rec})


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`.

    ``ok`` is true only when nothing mismatched *and* nothing recorded in the audit was left
    unchecked. ``mismatches``: one message per difference; ``unverified``: parts of the audit that
    could not be checked (e.g. the inspector draw without its roster); ``checked``: what was
    recomputed and matched (entities; inspectors; the published assignments file).
    """

    ok: bool
    mismatches: tuple[str, ...] = ()
    recomputed: dict[str, Any] = field(default_factory=dict)
    checked: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            if not self.checked:
                return "OK: the draw recomputes exactly from the seed and the frame"
            return "OK:\n" + "\n".join(f"  - {m}" for m in self.checked)
        parts = []
        if self.mismatches:
            parts.append("MISMATCH:\n" + "\n".join(f"  - {m}" for m in self.mismatches))
        if self.unverified:
            parts.append("NOT VERIFIED:\n" + "\n".join(f"  - {m}" for m in self.unverified))
        if self.checked:
            parts.append("checked:\n" + "\n".join(f"  - {m}" for m in self.checked))
        return "\n".join(parts)


class _FrameHasher:
    """SHA-256 of the frame in draw order: the concatenated UTF-8 ids, then their lengths (uint32 LE).

    Reference: ``sha256(b"".join(b) + b"".join(len(b).to_bytes(4, "little")))`` over ``b = id.encode()``
    for the ids in draw order. Fed chunk by chunk of row indices.
    """

    def __init__(self, ids: _Ids):
        self.ids, self.h = ids, hashlib.sha256()
        self.lens: list[np.ndarray] = []
        if ids.width is not None:
            self.v = ids.data.view(f"V{ids.width}")

    def update(self, rows: np.ndarray) -> None:
        ids = self.ids
        if ids.width is not None:
            self.h.update(np.take(self.v, rows, mode="clip"))
            return
        lens = np.diff(ids.offsets)[rows]
        starts = ids.offsets[:-1][rows] - ids.offsets[0]
        within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        self.h.update(ids.data[ids.offsets[0]:][np.repeat(starts, lens) + within])
        self.lens.append(lens.astype("<u4"))

    def hexdigest(self) -> str:
        ids = self.ids
        if ids.width is not None:
            block = np.full(min(ids.n, 1 << 20), ids.width, "<u4")
            for s0 in range(0, ids.n, len(block)):
                self.h.update(block[:min(len(block), ids.n - s0)])
        else:
            for x in self.lens:
                self.h.update(x)
        return self.h.hexdigest()


def _frame_sha(ids: _Ids, order: np.ndarray, chunk: int = 1 << 18) -> str:
    fh = _FrameHasher(ids)
    for s0 in range(0, ids.n, chunk):
        fh.update(order[s0:s0 + chunk])
    return fh.hexdigest()


def _id_list(ids: pd.Index) -> list[str]:
    return [str(x) for x in ids.tolist()]


def _int_sha(q: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(q, dtype="<i8"))).hexdigest()


def _plan_pi(plan: pd.DataFrame, what: str = "plan") -> np.ndarray:
    if "pi" not in plan.columns:
        raise PlanError(f"{what}: missing column 'pi' (build it with supervision_plan)")
    col = plan["pi"]
    if col.dtype != np.float64 and not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
        num = pd.to_numeric(col, errors="coerce")
        bad = (num.isna() & col.notna()).to_numpy()
        if bad.any():
            vals = sorted({str(v) for v in col[bad].unique()[:3]})
            raise PlanError(f"{what}.pi: not a number ({vals}) for entity {_examples(plan.index, bad)}")
        col = num
    pi = col.to_numpy(dtype=np.float64) if col.dtype == np.float64 else col.to_numpy(dtype=np.float64, na_value=np.nan)
    if len(pi) and not (pi.min() > 0 and pi.max() <= 1):      # NaN fails both comparisons
        bad = ~((pi > 0) & (pi <= 1))
        raise PlanError(f"{what}.pi: every active entity needs 0 < pi ≤ 1 (nobody is exempt), entity "
                        f"{_examples(plan.index, bad)}")
    return pi


def _resolve_n(pi: np.ndarray, n: int | None, what: str = "plan") -> int:
    total = math.fsum(pi.tolist()) if len(pi) < 1_000_000 else float(pi.sum())
    if n is None:
        n = int(round(total))
    _check_n(n, len(pi), 0, 0.0)
    if abs(total - n) > 1e-6 * max(1.0, n):
        raise PlanError(f"{what}: pi sums to {total:.6f}, not n={n}; rebuild it with supervision_plan(..., n={n})")
    return int(n)


def _library_version() -> str:
    from .._version import __version__

    return __version__


def _systematic_core(ids: _Ids, index: pd.Index, pi: np.ndarray, n: int, seed: Any,
                     chunk: int = 1 << 18) -> dict[str, Any]:
    """The draw on arrays: order, fixed point, one start, selection, and the two audit hashes.

    Same result as ``systematic_select(fixed_point(pi[order], n), start)`` in one cache-friendly
    pass over the draw order (``pi`` must be validated: 0 < pi ≤ 1).
    """
    N = ids.n
    order = _prn_order(ids, index, seed)
    fbuf = np.empty(max(1, min(chunk, N)))
    qbuf = np.empty(len(fbuf), np.int64)
    total = 0
    for s0 in range(0, N, chunk):                         # Σ floor(pi · 2^36), ≥ 1 (pi > 0)
        s1 = min(N, s0 + chunk)
        x, qq = fbuf[:s1 - s0], qbuf[:s1 - s0]
        np.multiply(pi[s0:s1], SCALE, out=x)
        np.copyto(qq, x, casting="unsafe")                 # truncation == floor (pi > 0)
        np.maximum(qq, 1, out=qq)
        total += int(qq.sum())
    deficit = int(n) * SCALE - total
    start = start_from_seed(seed)
    fh, ph = _FrameHasher(ids), hashlib.sha256()
    ibuf = np.empty(len(fbuf), np.int64)
    picked, carry = [], 0
    for s0 in range(0, N, chunk):                         # one pass in draw order
        s1 = min(N, s0 + chunk)
        o, x, qq = order[s0:s1], fbuf[:s1 - s0], qbuf[:s1 - s0]
        np.take(pi, o, out=x, mode="clip")
        x *= SCALE
        np.copyto(qq, x, casting="unsafe")
        np.maximum(qq, 1, out=qq)
        if deficit:
            deficit -= _spread_deficit(qq, deficit, f"pi does not sum to n={n}", partial=True)
        sel = systematic_select(qq, start, carry, out=ibuf[:s1 - s0])
        carry = (carry + int(qq.sum())) % SCALE
        picked.append(o[sel])
        ph.update(qq)
        fh.update(o)
    if deficit:
        raise PlanError(f"fixed point: {deficit} units left over (pi does not sum to n={n})")
    rows = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return {"start": start, "rows": rows, "frame_sha256": fh.hexdigest(), "pi_sha256": ph.hexdigest()}


def _compute_draw(plan: pd.DataFrame, n: int | None, seed: Any) -> dict[str, Any]:
    plan = _as_entity_frame(plan, "plan")
    pi = _plan_pi(plan)
    n = _resolve_n(pi, n)
    ids = _id_buffers(plan.index)
    r = _systematic_core(ids, plan.index, pi, n, seed)
    return {
        "n": n, "population": len(pi), "start": r["start"], "selected_rows": r["rows"],
        "selected": plan.index[r["rows"]], "frame_sha256": r["frame_sha256"], "pi_sha256": r["pi_sha256"],
        "plan": dict(plan.attrs.get(PLAN_ATTR, {})),
    }


def campaign_window(start: Any, end: Any) -> dict[str, str]:
    """The campaign window ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` (inclusive), checked.

    Accepts ISO date strings, dates or Timestamps; PlanError if unreadable or start > end.
    """
    out = {}
    for k, v in (("start", start), ("end", end)):
        if v is None or isinstance(v, bool | numbers.Number):
            raise PlanError(f"campaign window {k}: expected an ISO date YYYY-MM-DD, got {v!r}")
        try:
            t = pd.Timestamp(v) if not isinstance(v, str) else pd.to_datetime(v.strip(), format="%Y-%m-%d")
        except (ValueError, TypeError):
            raise PlanError(f"campaign window {k}: expected an ISO date YYYY-MM-DD, got {v!r}") from None
        if pd.isna(t):
            raise PlanError(f"campaign window {k}: expected an ISO date YYYY-MM-DD, got {v!r}")
        out[k] = t.strftime("%Y-%m-%d")
    if out["start"] > out["end"]:
        raise PlanError(f"campaign window: start {out['start']} is after end {out['end']}")
    return out


def draw(plan: pd.DataFrame, n: int | None, seed: int | str, *, window: tuple[Any, Any] | None = None) -> Draw:
    """Draw a campaign of exactly ``n`` entities with inclusion probabilities ``plan['pi']``.

    Systematic PPS over the entities ordered by ``prn_keys(seed, entity_id)`` with ``pi`` as
    int64 fixed point and one start from SHA-256 of ``seed`` (see the module docstring). The
    result depends only on the set of (entity_id, pi) and the seed, not on row order.
    ``n=None`` takes n from the plan (``round(sum(pi))``). Must-includes (pi = 1) are always in.
    ``window=(start, end)``: the campaign's inspection period (ISO dates, inclusive), recorded in
    the audit as ``campaign``; estimates refuse results dated outside it.
    """
    win = None if window is None else campaign_window(*window)
    if isinstance(plan, pd.DataFrame) and len(plan) == 0:
        raise PlanError("plan: no entities to draw from (the plan is empty)")
    r = _compute_draw(plan, n, seed)
    audit = {
        "format": AUDIT_FORMAT, "algorithm": DRAW_ALGORITHM, "algorithm_version": ALGORITHM_VERSION,
        "prn_hash": PRN_HASH, "fixed_point_bits": SCALE_BITS, "library_version": _library_version(),
        "seed": seed if isinstance(seed, str) else int(seed), "start": r["start"], "n": r["n"],
        "population": r["population"], "frame_sha256": r["frame_sha256"], "pi_sha256": r["pi_sha256"],
        "plan": r["plan"], "selected": _id_list(r["selected"]),
    }
    if win is not None:
        audit["campaign"] = win
    return Draw(selected=pd.Index(r["selected"], name="entity_id"), audit=audit)


def audit_json(audit: Mapping[str, Any] | Draw | JointDraw) -> str:
    """An audit record as the UTF-8 JSON text that is published (sorted keys, one field a line)."""
    if isinstance(audit, Draw | JointDraw):
        audit = audit.audit
    return json.dumps(audit, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def save_audit(audit: Mapping[str, Any] | Draw | JointDraw, path: str | os.PathLike) -> Path:
    """Write an audit record as UTF-8 JSON, atomically."""
    return write_text(path, audit_json(audit))


def load_audit(path: str | os.PathLike) -> dict[str, Any]:
    """Read an audit record written by :func:`save_audit` (ConfigError if malformed)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"audit file not found: {p}")
    try:
        audit = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid JSON: {e}") from None
    return check_audit(audit, str(p))


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _is_ids(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def _is_date(v: Any) -> bool:
    try:
        pd.to_datetime(v, format="%Y-%m-%d")
    except (ValueError, TypeError):
        return False
    return isinstance(v, str)


_SEED = ("an int or a non-empty string", lambda v: _is_int(v) or (isinstance(v, str) and v != ""))
_SHA = ("a SHA-256 hex string", lambda v: isinstance(v, str) and len(v) == 64
        and all(c in "0123456789abcdef" for c in v))
_IDS = ("a list of entity ids (strings)", _is_ids)
_OPT_STRS = ("null or a list of strings", lambda v: v is None or (isinstance(v, list)
                                                                  and all(isinstance(x, str) for x in v)))
_OPT_SHA = ("null or a SHA-256 hex string", lambda v: v is None or _SHA[1](v))
_COUNT = ("a whole number ≥ 0", lambda v: _is_int(v) and v >= 0)
_POS = ("a whole number ≥ 1", lambda v: _is_int(v) and v >= 1)
_SINGLE_FIELDS: dict[str, tuple[str, Any]] = {
    "algorithm": ("a string", lambda v: isinstance(v, str)),
    "algorithm_version": ("a string", lambda v: isinstance(v, str) or _is_int(v)),
    "seed": _SEED,
    "start": (f"a whole number in [0, 2**{SCALE_BITS})", lambda v: _is_int(v) and 0 <= v < SCALE),
    "n": _COUNT, "population": _COUNT, "frame_sha256": _SHA, "pi_sha256": _SHA, "selected": _IDS,
    "plan": ("an object (or null)", lambda v: v is None or isinstance(v, Mapping)),
    "campaign": ("an object {start, end}", lambda v: isinstance(v, Mapping)),
    "inspectors": ("an object", lambda v: isinstance(v, Mapping)),
}
_PLAN_FIELDS: dict[str, tuple[str, Any]] = {
    "policy": ("a policy name (string) or null", lambda v: v is None or isinstance(v, str)),
    "policy_sha256": _OPT_SHA,
    "budget": ("a positive number or null", lambda v: v is None or (_is_num(v) and v > 0)),
    "floor": ("a number in [0, 1] or null", lambda v: v is None or (_is_num(v) and 0 <= v <= 1)),
    "scale_by_probability": ("true, false or null", lambda v: v is None or isinstance(v, bool)),
}
_INSPECTOR_FIELDS: dict[str, tuple[str, Any]] = {
    "algorithm": ("a string", lambda v: isinstance(v, str)),
    "roster_sha256": _SHA, "roster_size": _POS, "seed": _SEED, "per_entity": _POS, "max_per_inspector": _POS,
    "no_repeat_consecutive": ("true or false", lambda v: isinstance(v, bool)),
    "qualification": _OPT_STRS, "departments": _OPT_STRS, "previous_sha256": _OPT_SHA,
    "assignment": ("an object entity_id → list of inspector ids",
                   lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and _is_ids(x) for k, x in v.items())),
}
_INSPECTOR_REQUIRED = ("roster_sha256", "seed", "per_entity", "max_per_inspector", "no_repeat_consecutive",
                       "assignment")
_JOINT_FIELDS: dict[str, tuple[str, Any]] = {
    "algorithm": ("a string", lambda v: isinstance(v, str)),
    "algorithm_version": ("a string", lambda v: isinstance(v, str) or _is_int(v)),
    "panel_seed": _SEED, "seed": _SEED,
    "origin": ("a whole number in [0, 2**64)", lambda v: _is_int(v) and 0 <= v <= _M64),
    "window": ("a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1),
    "departments": ("an object department → draw", lambda v: isinstance(v, Mapping)
                    and all(isinstance(x, Mapping) for x in v.values())),
    "previous": ("null or an object {origin, window, seed}", lambda v: v is None or isinstance(v, Mapping)),
}


def _check_fields(obj: Mapping[str, Any], spec: Mapping[str, tuple[str, Any]], source: str, prefix: str) -> None:
    for k, (want, ok) in spec.items():
        if k in obj and not ok(obj[k]):
            got = repr(obj[k])
            got = got if len(got) <= 60 else got[:57] + "..."
            raise ConfigError(f"{source}: field '{prefix}{k}': expected {want}, got {got}")


def check_audit(audit: Any, source: str = "audit") -> dict[str, Any]:
    """Check the types of an audit record's fields; ConfigError naming ``source`` and the field.

    Only fields that are present are checked here (:func:`verify` names missing ones).
    """
    if not isinstance(audit, Mapping):
        raise ConfigError(f"{source}: not a yiwu-credit audit record (expected a JSON object, got "
                          f"{type(audit).__name__})")
    fmt = audit.get("format")
    if fmt not in (AUDIT_FORMAT, JOINT_FORMAT):
        raise ConfigError(f"{source}: not a yiwu-credit audit record (format {fmt!r})")
    if fmt == JOINT_FORMAT:
        _check_fields(audit, _JOINT_FIELDS, source, "")
        for d, dep in (audit.get("departments") or {}).items():
            _check_fields(dep, {k: _SINGLE_FIELDS[k] for k in ("n", "population", "frame_sha256", "pi_sha256",
                                                                "selected")}, source, f"departments.{d}.")
        prev = audit.get("previous")
        if isinstance(prev, Mapping):
            _check_fields(prev, {k: _JOINT_FIELDS[k] for k in ("origin", "window", "seed")}, source, "previous.")
        return dict(audit)
    _check_fields(audit, _SINGLE_FIELDS, source, "")
    if isinstance(audit.get("plan"), Mapping):
        _check_fields(audit["plan"], _PLAN_FIELDS, source, "plan.")
    if "campaign" in audit:
        c = audit["campaign"]
        for k in ("start", "end"):
            if not _is_date(c.get(k)):
                raise ConfigError(f"{source}: field 'campaign.{k}': expected an ISO date YYYY-MM-DD, got {c.get(k)!r}")
        if c["start"] > c["end"]:
            raise ConfigError(f"{source}: field 'campaign': start {c['start']} is after end {c['end']}")
    if "inspectors" in audit:
        ins = audit["inspectors"]
        miss = [k for k in _INSPECTOR_REQUIRED if k not in ins]
        if miss:
            raise ConfigError(f"{source}: field 'inspectors' lacks {miss}")
        _check_fields(ins, _INSPECTOR_FIELDS, source, "inspectors.")
    return dict(audit)


def _diff_ids(recorded: Sequence[str], recomputed: Sequence[str], what: str) -> list[str]:
    a, b = [str(x) for x in recorded], [str(x) for x in recomputed]
    if a == b:
        return []
    sa, sb = set(a), set(b)
    only_a, only_b = [x for x in a if x not in sb], [x for x in b if x not in sa]
    if not only_a and not only_b:
        return [f"{what}: same entities but in a different order"]
    msg = f"{what}: {len(only_a)} recorded id(s) not in the recomputed draw"
    if only_a:
        msg += f" {only_a[:10]}"
    msg += f"; {len(only_b)} recomputed id(s) missing from the record"
    if only_b:
        msg += f" {only_b[:10]}"
    return [msg]


def _need(audit: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    return [f"audit: missing field '{k}'" for k in keys if k not in audit]


def verify(audit: Mapping[str, Any] | Draw | JointDraw,
           plan_or_frame: pd.DataFrame | Mapping[str, pd.DataFrame],
           policy: str | Path | Policy | None = None, *, roster: Any = None, previous: Any = None,
           assignments: pd.DataFrame | str | os.PathLike | None = None) -> VerifyResult:
    """Recompute a draw from its audit record and the candidate frame; name every mismatch.

    ``plan_or_frame``: the plan (with ``pi``) the draw used, or the scored frame — the plan is
    then rebuilt with the policy and parameters recorded in the audit (``policy`` overrides the
    recorded policy name, e.g. a TOML path). For a joint audit pass the mapping department → plan.
    Checks: algorithm/version, that ``start`` follows from ``seed``, the frame and pi hashes, n,
    and the selected ids.

    The second random: when the audit records an inspector assignment (``inspectors``), pass the
    ``roster`` (and ``previous`` if one was used): the roster hash is checked and the assignment
    recomputed. Without the roster the result is *not ok* and says the inspector draw was not
    verified. ``assignments``: the published assignments (table or CSV path with ``entity_id``,
    ``inspector_id``), compared with the recorded assignment; an unreadable file is a mismatch. Field types are checked first (ConfigError).
    """
    if isinstance(audit, Draw | JointDraw):
        audit = audit.audit
    audit = check_audit(audit)
    if audit.get("format") == JOINT_FORMAT:
        if not isinstance(plan_or_frame, Mapping):
            return VerifyResult(False, ("joint audit: pass a mapping department → plan",))
        return _verify_joint(audit, plan_or_frame)
    miss = _need(audit, ("algorithm", "algorithm_version", "seed", "start", "n", "frame_sha256", "pi_sha256", "selected"))
    if miss:
        return VerifyResult(False, tuple(miss))
    if (audit["algorithm"], str(audit["algorithm_version"])) != (DRAW_ALGORITHM, ALGORITHM_VERSION):
        return VerifyResult(False, (f"algorithm: {audit['algorithm']} v{audit['algorithm_version']} is not "
                                    f"{DRAW_ALGORITHM} v{ALGORITHM_VERSION}",))
    mm: list[str] = []
    frame = _as_entity_frame(plan_or_frame, "frame")
    if "pi" not in frame.columns:
        p = dict(audit.get("plan") or {})
        try:
            pol = load_policy(policy or p.get("policy"))
        except ConfigError as e:
            return VerifyResult(False, (f"policy: cannot load {policy or p.get('policy')!r}: {e}",))
        if p.get("policy_sha256") and pol.sha256 != p["policy_sha256"]:
            mm.append(f"policy: {pol.name} hashes to {pol.sha256[:12]}…, the audit recorded {p['policy_sha256'][:12]}…")
        try:
            frame = supervision_plan(frame, pol, n=int(audit["n"]), budget=p.get("budget"), floor=p.get("floor"),
                                     scale_by_probability=p.get("scale_by_probability"))
        except PlanError as e:
            return VerifyResult(False, tuple(mm + [f"plan: cannot rebuild the plan from the frame: {e}"]))
    try:
        start = start_from_seed(audit["seed"])
    except PlanError as e:
        return VerifyResult(False, tuple(mm + [f"seed: {e}"]))
    try:
        r = _compute_draw(frame, int(audit["n"]), audit["seed"])
    except PlanError as e:
        return VerifyResult(False, tuple(mm + [f"frame: {e}"]))
    if int(audit["start"]) != start:
        mm.append(f"start: {audit['start']} does not follow from seed {audit['seed']!r} (expected {start})")
    if "population" in audit and int(audit["population"]) != r["population"]:
        mm.append(f"population: audit records {audit['population']} entities, the frame has {r['population']}")
    if audit["frame_sha256"] != r["frame_sha256"]:
        mm.append(f"frame_sha256: the candidate frame differs from the one drawn from "
                  f"({r['frame_sha256'][:12]}… != {str(audit['frame_sha256'])[:12]}…)")
    if audit["pi_sha256"] != r["pi_sha256"]:
        mm.append(f"pi_sha256: the inclusion probabilities differ from those drawn with "
                  f"({r['pi_sha256'][:12]}… != {str(audit['pi_sha256'])[:12]}…)")
    mm += _diff_ids(audit["selected"], _id_list(r["selected"]), "selected")
    rec = {k: r[k] for k in ("n", "population", "start", "frame_sha256", "pi_sha256")}
    rec["selected"] = _id_list(r["selected"])
    checked = [] if mm else [f"entities: {r['n']:,} of {r['population']:,} drawn recompute exactly from seed "
                             f"{audit['seed']!r} and the frame (start, frame and pi hashes, selected ids)"]
    unverified: list[str] = []
    if "inspectors" in audit:
        from .inspectors import verify_assignment

        ins = verify_assignment(audit["inspectors"], frame.loc[r["selected"]], roster, previous=previous,
                                published=assignments)
        mm += ins.mismatches
        unverified += ins.unverified
        checked += ins.checked
    elif roster is not None or assignments is not None:
        mm.append("inspectors: a roster or assignments file was given but the audit records no inspector draw "
                  "(draw with --inspectors records it)")
    else:
        checked.append("inspectors: none recorded in the audit (no inspector draw to verify)")
    ok = not mm and not unverified
    return VerifyResult(ok, tuple(mm), rec, tuple(checked), tuple(unverified))


def _read_table(path: str | os.PathLike, what: str = "frame") -> pd.DataFrame:
    from ..errors import DataValidationError, Problem

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} file not found: {p}")
    try:
        if p.suffix == ".parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, dtype={"entity_id": str, "tier": str, "town": str, "industry": str,
                                       "entity_type": str, "inspector_id": str}, encoding="utf-8-sig")
    except Exception as e:  # any unreadable file (0 bytes, not CSV/Parquet, bad encoding)
        raise DataValidationError([Problem(what, None, f"cannot read {p}: {type(e).__name__}: {e}")]) from None
    if "entity_id" not in df.columns:
        raise DataValidationError([Problem(what, "entity_id", f"missing column in {p}")])
    return df


def conventional_assignments_path(audit_path: str | os.PathLike) -> Path:
    """Where ``yiwu-credit draw`` writes the assignments next to an audit: ``X.audit.json`` →
    ``X.inspectors.csv`` (otherwise ``<stem>.inspectors.csv``)."""
    p = Path(audit_path)
    stem = p.name[:-len(".audit.json")] if p.name.endswith(".audit.json") else p.stem
    return p.with_name(stem + ".inspectors.csv")


def verify_files(audit_path: str | os.PathLike, frame_path: str | os.PathLike | Mapping[str, str | os.PathLike],
                 policy: str | Path | Policy | None = None, *, roster: str | os.PathLike | None = None,
                 previous: str | os.PathLike | None = None,
                 assignments: str | os.PathLike | None = None) -> VerifyResult:
    """:func:`verify` on files: an audit JSON and a plan/scored table (CSV or Parquet; for a joint
    audit a mapping department → table path). This is what ``yiwu-credit verify`` runs.

    ``roster`` / ``previous``: the inspector roster and the previous campaign's assignments
    (CSV) to recompute the recorded inspector draw. ``assignments``: the published assignments
    file; by default the conventional file next to the audit (``X.audit.json`` →
    ``X.inspectors.csv``) is checked when it exists.
    """
    audit = load_audit(audit_path)
    if isinstance(frame_path, Mapping):
        return verify(audit, {d: _read_table(p) for d, p in frame_path.items()}, policy)
    frame = _read_table(frame_path)
    prev = _read_table(previous, "previous") if previous is not None else None
    asg = Path(assignments) if assignments is not None else None
    if asg is None and "inspectors" in audit and conventional_assignments_path(audit_path).is_file():
        asg = conventional_assignments_path(audit_path)
    return verify(audit, frame, policy, roster=roster, previous=prev, assignments=asg)


# ============================================================== joint and rotating campaigns
@dataclass(frozen=True)
class JointDraw:
    """Coordinated campaigns of several departments.

    ``selected``: department → ids; ``visits``: one row per visited entity (``departments``
    ";"-joined, ``n_departments``); ``report``: visit counts and savings; ``audit``: JSON-ready.
    """

    selected: dict[str, pd.Index]
    visits: pd.DataFrame
    report: dict[str, Any]
    audit: dict[str, Any]


def _origin_from_seed(seed: Any) -> int:
    return int.from_bytes(_digest("joint-origin", _seed_str(seed))[:8], "big")


def _rounding_start(seed: Any) -> int:
    return int.from_bytes(_digest("joint-rounding", _seed_str(seed))[:8], "big") >> (64 - SCALE_BITS)


def _window(pis: Sequence[np.ndarray]) -> float:
    """Share of the PRN circle a campaign occupies: the largest non-certainty pi level (+2 sd of
    the arc its stratum's run covers)."""
    wmax = 0.0
    for pi in pis:
        levels, counts = np.unique(pi, return_counts=True)
        keep = levels < 1.0
        if keep.any():
            lv, ct = levels[keep], counts[keep]
            wmax = max(wmax, float(np.max(np.minimum(1.0, lv + 2.0 * np.sqrt(lv * (1 - lv) / ct)))))
    return wmax


def _shift(prev_window: float, window: float, seed: Any) -> int:
    """PRN-independent origin shift (uint64) past the previous window.

    If both windows fit on the circle the shift is uniform on ``[prev_window, 1 - window]`` (fresh
    randomness, so the next sample cannot be predicted from the published panel); otherwise it is
    the midpoint of ``[1 - window, prev_window]``, which minimises the forced overlap of the
    highest-probability entities.
    """
    free = 1.0 - prev_window - window
    if free > 0:
        u = int.from_bytes(_digest("joint-rotate", _seed_str(seed))[:8], "big") / 2.0**64
        frac = prev_window + u * free
    else:
        frac = 0.5 * (1.0 - window + prev_window)
    return int(min(max(frac, 0.0), 1.0 - 2.0**-53) * 2.0**64) & _M64


def rotate(previous: JointDraw | Mapping[str, Any], plans: Mapping[str, pd.DataFrame], seed: int | str) -> int:
    """Origin (uint64 on the PRN circle) for the campaign after ``previous``.

    The origin moves past the previous campaign's window by a uniformly random amount within the
    free arc. The shift depends only on the seeds and the plans (not on the PRNs), so every
    campaign's inclusion probabilities stay exact, while entities just inspected sit behind the
    new origin and are drawn again only if the new window wraps around to them.
    """
    a = previous.audit if isinstance(previous, JointDraw) else previous
    if a.get("format") != JOINT_FORMAT:
        raise PlanError("rotate: previous must be a joint_draw result or its audit record")
    window = _window([_plan_pi(p, f"plans[{d!r}]") for d, p in plans.items()])
    return (int(a["origin"]) + _shift(float(a["window"]), window, seed)) & _M64


def _microstrata_select(dist: np.ndarray, tiebreak: np.ndarray, pi: np.ndarray, n: int, round_start: int) -> np.ndarray:
    """Fixed-size, exactly-π selection by micro-strata of equal pi: bool (N,).

    Stratum h (entities with pi = pi_h, N_h of them) gets m_h = floor(X_h) or floor(X_h) + 1 where
    X_h = N_h * pi_h in fixed point, rounded up by systematic selection over strata (so
    Σ m_h = n and E[m_h] = X_h); it takes the m_h entities with the smallest ``dist``.
    """
    levels, inv = np.unique(pi, return_inverse=True)
    nh = np.bincount(inv, minlength=len(levels)).astype(np.int64)
    ph = np.floor(levels * SCALE).astype(np.int64)
    np.maximum(ph, 1, out=ph)
    x = nh * ph
    d = int(n) * SCALE - int(x.sum())
    capa = np.where(ph < SCALE, nh, 0) if d > 0 else np.where((ph > 1) & (ph < SCALE), nh, 0)
    if abs(d) > int(capa.sum()):
        raise PlanError(f"pi sums too far from n={n} for the fixed-point representation")
    before = np.cumsum(capa) - capa
    x += np.sign(d) * np.clip(abs(d) - before, 0, capa)
    base = x >> SCALE_BITS
    frac = x - (base << SCALE_BITS)
    m = base + systematic_select(frac, round_start)
    order = np.lexsort((tiebreak, dist, inv))
    inv_s = inv[order]
    first = np.cumsum(nh) - nh
    rank = np.arange(len(pi)) - first[inv_s]
    sel = np.zeros(len(pi), bool)
    sel[order] = rank < m[inv_s]
    return sel


def _joint_parts(plans: Mapping[str, pd.DataFrame], panel_seed: Any, seed: Any, origin: int) -> dict[str, Any]:
    if not plans:
        raise PlanError("joint_draw: no department plans given")
    rs = _rounding_start(seed)
    out: dict[str, Any] = {}
    for dept in sorted(plans):
        plan = _as_entity_frame(plans[dept], f"plans[{dept!r}]")
        pi = _plan_pi(plan, f"plans[{dept!r}]")
        n = _resolve_n(pi, None, f"plans[{dept!r}]")
        ids = _id_buffers(plan.index)
        keys = _keys_from_ids(ids, panel_seed)
        tb = _keys_from_ids(ids, f"{_seed_str(panel_seed)}\x00tiebreak")
        dist = keys - _U64(origin)
        sel = _microstrata_select(dist, tb, pi, n, rs)
        rows = np.flatnonzero(sel)
        rows = rows[np.lexsort((tb[rows], dist[rows]))]
        order = _prn_order(ids, plan.index, panel_seed)
        q = np.floor(pi[order] * SCALE).astype(np.int64)
        out[dept] = {
            "n": n, "population": len(pi), "selected": plan.index[rows], "pi": pd.Series(pi, index=plan.index),
            "frame_sha256": _frame_sha(ids, order), "pi_sha256": _int_sha(q),
        }
    return out


def _visits(parts: Mapping[str, Any]) -> pd.DataFrame:
    long = pd.concat([pd.DataFrame({"entity_id": np.asarray(p["selected"], dtype=object), "department": d})
                      for d, p in parts.items()], ignore_index=True)
    g = long.groupby("entity_id", sort=True)["department"]
    v = pd.DataFrame({"departments": g.agg(lambda s: ";".join(sorted(s))), "n_departments": g.size()})
    v.index.name = "entity_id"
    return v


def _independent_visits(parts: Mapping[str, Any], among: pd.Index | None = None) -> float:
    """Expected visits if departments drew independently: Σ_i 1 - Π_d (1 - pi_i^d)."""
    pis = pd.concat({d: p["pi"] for d, p in parts.items()}, axis=1).fillna(0.0)
    if among is not None:
        pis = pis.reindex(among).fillna(0.0)
    return float((1.0 - (1.0 - pis).prod(axis=1)).sum())


def joint_draw(plans: Mapping[str, pd.DataFrame], *, panel_seed: int | str, seed: int | str,
               previous: JointDraw | Mapping[str, Any] | None = None) -> JointDraw:
    """Coordinated draws for several departments over the same population (综合查一次).

    Parameters
    ----------
    plans : department → plan (entity_id index, ``pi`` summing to that department's n). Plans
        may cover different entities (each department's own remit).
    panel_seed : permanent-random-number seed shared by all departments and kept across the
        campaigns of a rotation period.
    seed : this campaign's seed (origin and rounding).
    previous : the previous campaign (JointDraw or its audit): the origin then moves past its
        window (see :func:`rotate`) to spread the burden.

    Each department's sample has exactly its n and its own exact pi (simple random sampling
    within strata of equal pi; see :func:`_microstrata_select`). Departments select the entities
    nearest after a shared origin, so an entity drawn by several gets one joint visit.
    ``report`` gives ``visits_joint``, ``visits_separate`` (Σ n), ``visits_independent_expected``,
    ``saved_vs_independent``, ``saved_vs_separate`` and, with ``previous``, repeats.
    """
    _seed_str(panel_seed)
    if previous is None:
        origin, prev = _origin_from_seed(seed), None
    else:
        pa_ = previous.audit if isinstance(previous, JointDraw) else previous
        origin = rotate(pa_, plans, seed)
        prev = {"origin": int(pa_["origin"]), "window": float(pa_["window"]), "seed": pa_.get("seed"),
                "visits": sorted({x for d in pa_["departments"].values() for x in d["selected"]})}
    parts = _joint_parts(plans, panel_seed, seed, origin)
    visits = _visits(parts)
    sep = sum(p["n"] for p in parts.values())
    indep = _independent_visits(parts)
    report: dict[str, Any] = {
        "departments": len(parts), "visits_joint": len(visits), "visits_separate": sep,
        "visits_independent_expected": round(indep, 3), "saved_vs_independent": round(indep - len(visits), 3),
        "saved_vs_separate": sep - len(visits), "joint_visits": int((visits["n_departments"] > 1).sum()),
    }
    if prev is not None:
        pv = pd.Index(prev["visits"])
        report["repeat_from_previous"] = int(visits.index.isin(pv).sum())
        report["repeat_expected_if_independent"] = round(_independent_visits(parts, pv), 3)
    window = _window([p["pi"].to_numpy() for p in parts.values()])
    audit = {
        "format": JOINT_FORMAT, "algorithm": JOINT_ALGORITHM, "algorithm_version": ALGORITHM_VERSION,
        "prn_hash": PRN_HASH, "fixed_point_bits": SCALE_BITS, "library_version": _library_version(),
        "panel_seed": panel_seed if isinstance(panel_seed, str) else int(panel_seed),
        "seed": seed if isinstance(seed, str) else int(seed), "origin": origin, "window": window,
        "rounding_start": _rounding_start(seed),
        "previous": None if prev is None else {"origin": prev["origin"], "window": prev["window"], "seed": prev["seed"]},
        "departments": {d: {"n": p["n"], "population": p["population"], "frame_sha256": p["frame_sha256"],
                            "pi_sha256": p["pi_sha256"], "selected": _id_list(p["selected"])}
                        for d, p in parts.items()},
        "report": report,
    }
    return JointDraw(selected={d: pd.Index(p["selected"], name="entity_id") for d, p in parts.items()},
                     visits=visits, report=report, audit=audit)


def _verify_joint(audit: Mapping[str, Any], plans: Mapping[str, pd.DataFrame]) -> VerifyResult:
    miss = _need(audit, ("algorithm", "algorithm_version", "panel_seed", "seed", "origin", "window", "departments"))
    if miss:
        return VerifyResult(False, tuple(miss))
    if (audit["algorithm"], str(audit["algorithm_version"])) != (JOINT_ALGORITHM, ALGORITHM_VERSION):
        return VerifyResult(False, (f"algorithm: {audit['algorithm']} v{audit['algorithm_version']} is not "
                                    f"{JOINT_ALGORITHM} v{ALGORITHM_VERSION}",))
    mm: list[str] = []
    prev = audit.get("previous")
    try:
        window = _window([_plan_pi(p, f"plans[{d!r}]") for d, p in plans.items()])
        if prev is None:
            expect = _origin_from_seed(audit["seed"])
        else:
            expect = (int(prev["origin"]) + _shift(float(prev["window"]), window, audit["seed"])) & _M64
        parts = _joint_parts(plans, audit["panel_seed"], audit["seed"], int(audit["origin"]))
    except PlanError as e:
        return VerifyResult(False, (f"plans: {e}",))
    if int(audit["origin"]) != expect:
        mm.append(f"origin: {audit['origin']} does not follow from seed {audit['seed']!r} (expected {expect})")
    if abs(float(audit["window"]) - window) > 1e-12:
        mm.append(f"window: audit records {audit['window']}, the plans give {window}")
    if set(audit["departments"]) != set(parts):
        mm.append(f"departments: audit has {sorted(audit['departments'])}, plans have {sorted(parts)}")
    for d in sorted(set(audit["departments"]) & set(parts)):
        a, r = audit["departments"][d], parts[d]
        for k in ("frame_sha256", "pi_sha256"):
            if a.get(k) != r[k]:
                mm.append(f"{d}.{k}: recomputed {r[k][:12]}… != recorded {str(a.get(k))[:12]}…")
        mm += _diff_ids(a.get("selected", []), _id_list(r["selected"]), f"{d}.selected")
    return VerifyResult(not mm, tuple(mm), {"origin": expect, "window": window})
