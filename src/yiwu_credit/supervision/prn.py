"""Seeds and permanent random numbers (PRN): the one place randomness comes from.

* :func:`seed_text` is the canonical text of a seed (ints in decimal, strings as given).
* :func:`derive_seed` is the one seed derivation: an integer read from
  SHA-256("yiwu-credit\\0<purpose>\\0v1\\0<seed>"); every start, origin, shift and PRN key
  constant comes from it with its own purpose. :func:`subseed` names a derived PRN stream
  (e.g. the inspector priorities) as text, so it goes through :func:`prn_keys` again.
* :func:`prn_keys` gives every entity a 64-bit key: a keyed fmix64 chain over the UTF-8 bytes of
  its id (little-endian 8-byte words), keyed by :func:`derive_seed` ``("prn", seed)``. Pure
  uint64 arithmetic, identical on every platform; :func:`prn_key` is the plain-Python
  specification of the same function.
* :func:`prn_order` is the draw order: rows sorted by (key, id), independent of row order.

Ids are handled as :class:`IdBytes` (Arrow string buffers, zero copy when possible).
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import PlanError

__all__ = [
    "M64", "PRN_HASH", "IdBytes", "derive_seed", "fmix64", "fmix64_int", "id_bytes", "keys_of", "prn_key", "prn_keys",
    "prn_order", "prn_uniform", "seed_text", "subseed",
]

PRN_HASH = "yiwu-prn-fmix64-v1"
M64 = (1 << 64) - 1
_K_WORD = 0x9E3779B97F4A7C15
_K_LEN = 0xBF58476D1CE4E5B9
_F1 = 0xFF51AFD7ED558CCD
_F2 = 0xC4CEB9FE1A85EC53
_U64 = np.uint64


# ============================================================== seeds
def seed_text(seed: Any) -> str:
    """Canonical text of a seed: ints in decimal, strings as given (so 7 and "7" are one seed)."""
    if isinstance(seed, bool) or seed is None:
        raise PlanError(f"seed: expected an int or a non-empty string, got {seed!r}")
    if isinstance(seed, numbers.Integral):
        return str(int(seed))
    if isinstance(seed, str) and seed:
        return seed
    raise PlanError(f"seed: expected an int or a non-empty string, got {seed!r}")


def derive_seed(purpose: str, seed: Any, bits: int = 64, *, word: int = 0, byteorder: str = "big") -> int:
    """An integer in ``[0, 2**bits)`` derived from ``seed`` for ``purpose``.

    Bytes ``8*word … 8*word+7`` of SHA-256("yiwu-credit\\0<purpose>\\0v1\\0<seed text>") read as a
    64-bit integer in ``byteorder``, keeping its top ``bits`` bits. Different purposes give
    independent values from one public seed.
    """
    d = hashlib.sha256("\x00".join(("yiwu-credit", purpose, "v1", seed_text(seed))).encode()).digest()
    v = int.from_bytes(d[8 * word:8 * word + 8], byteorder)  # type: ignore[arg-type]
    return v >> (64 - bits)


def subseed(*parts: Any) -> str:
    """The seed of a derived PRN stream: the parts' seed texts joined by NUL (e.g.
    ``subseed("inspectors", seed)``)."""
    return "\x00".join(seed_text(p) for p in parts)


def _prn_constants(seed: Any) -> tuple[int, int]:
    return (derive_seed("prn", seed, word=0, byteorder="little"),
            derive_seed("prn", seed, word=1, byteorder="little"))


# ============================================================== the hash
def fmix64_int(h: int) -> int:
    """MurmurHash3's 64-bit finaliser on a Python int."""
    h ^= h >> 33
    h = (h * _F1) & M64
    h ^= h >> 33
    h = (h * _F2) & M64
    return h ^ (h >> 33)


def fmix64(h: np.ndarray, tmp: np.ndarray) -> None:
    """MurmurHash3's 64-bit finaliser in place on uint64 ``h``; ``tmp`` is scratch of the same shape."""
    np.right_shift(h, _U64(33), out=tmp)
    h ^= tmp
    h *= _U64(_F1)
    np.right_shift(h, _U64(33), out=tmp)
    h ^= tmp
    h *= _U64(_F2)
    np.right_shift(h, _U64(33), out=tmp)
    h ^= tmp


def prn_key(seed: Any, entity_id: str) -> int:
    """Plain-Python reference of :func:`prn_keys` for one id (the specification of the hash)."""
    k0, k1 = _prn_constants(seed)
    b = entity_id.encode("utf-8")
    m = max(1, -(-len(b) // 8))
    b = b.ljust(8 * m, b"\x00")
    h = k0
    for j in range(m):
        h = ((h ^ int.from_bytes(b[8 * j:8 * j + 8], "little")) * _K_WORD) & M64
        h ^= h >> 29
    h ^= k1 ^ ((len(entity_id.encode("utf-8")) * _K_LEN) & M64)
    return fmix64_int(h)


# ============================================================== id bytes
@dataclass(frozen=True)
class IdBytes:
    """UTF-8 bytes of N ids: ``offsets`` (N+1, int64) into ``data`` (uint8); ``width`` if all equal."""

    offsets: np.ndarray
    data: np.ndarray
    width: int | None

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def text(self, row: int) -> str:
        """Id ``row`` as a string."""
        return bytes(self.data[self.offsets[row]:self.offsets[row + 1]]).decode("utf-8")

    def take(self, rows: np.ndarray) -> IdBytes:
        """The ids at ``rows``, in that order, as a compact IdBytes."""
        rows = np.asarray(rows, np.int64)
        if self.width is not None:
            w = self.width
            data = np.take(self.data[self.offsets[0]:self.offsets[-1]].view(f"V{w}"), rows, mode="clip")
            return IdBytes(np.arange(len(rows) + 1, dtype=np.int64) * w, data.view(np.uint8), w)
        lens = np.diff(self.offsets)[rows]
        starts = self.offsets[:-1][rows]
        within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        data = self.data[np.repeat(starts, lens) + within]
        return IdBytes(np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), data, None)

    def to_arrow(self) -> pa.Array:
        """The ids as an Arrow ``large_string`` array (zero copy)."""
        offs = self.offsets - self.offsets[0]
        return pa.LargeStringArray.from_buffers(self.n, pa.py_buffer(np.ascontiguousarray(offs)),
                                                pa.py_buffer(np.ascontiguousarray(self.data[self.offsets[0]:
                                                                                            self.offsets[-1]])))


def id_bytes(ids: pd.Index | pd.Series | pa.Array | Sequence[str], what: str = "entity_id") -> IdBytes:
    """Zero-copy access to the id bytes when they are Arrow strings (pandas' default), else convert.

    PlanError for non-string, missing or empty ids.
    """
    try:
        if isinstance(ids, pa.Array | pa.ChunkedArray):
            arr = ids
        elif isinstance(ids, pd.Index | pd.Series):
            arr = pa.array(ids)
        else:
            arr = pa.array(list(ids), type=pa.large_string())
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
    return IdBytes(offsets, data, width)


def _tail_view(flat: np.ndarray, n: int, w: int, base: int, r: int) -> np.ndarray:
    """The last ``r`` (< 8) bytes of each fixed-width id as a little-endian integer (N,)."""
    if r in (1, 2, 4):
        return np.ndarray((n,), dtype=f"<u{r}", buffer=flat, offset=base, strides=(w,))
    tail = np.zeros(n, np.uint64)
    for k in range(r):
        b = np.ndarray((n,), dtype=np.uint8, buffer=flat, offset=base + k, strides=(w,))
        tail |= b.astype(np.uint64) << _U64(8 * k)
    return tail


def _words(ids: IdBytes) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
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


def keys_of(ids: IdBytes, seed: Any, *, pack_bits: int = 0, chunk: int = 1 << 16) -> np.ndarray:
    """uint64 PRN keys (N,) of ``ids`` (see :func:`prn_key` for the definition).

    Works in cache-sized chunks. With ``pack_bits`` = b, returns ``(key >> b << b) | row`` instead,
    ready for a single uint64 sort.
    """
    k0, k1 = _prn_constants(seed)
    words, var_lens, lens = _words(ids)
    n = ids.n
    out = np.empty(n, np.uint64)
    tmp = np.empty(max(1, min(chunk, n)), np.uint64)
    kw, sh = _U64(_K_WORD), _U64(29)
    fin = _U64(k1 ^ ((int(lens[0]) * _K_LEN) & M64)) if var_lens is None else None
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
        fmix64(h, t)
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
    return keys_of(id_bytes(ids), seed)


def prn_uniform(ids: pd.Index | Sequence[str], seed: int | str) -> np.ndarray:
    """Permanent random numbers in [0, 1), shape (N,) (the top 53 bits of :func:`prn_keys`)."""
    return (prn_keys(ids, seed) >> _U64(11)).astype(np.float64) * 2.0**-53


# ============================================================== the draw order
def prn_order(ids: IdBytes, seed: Any, chunk: int = 1 << 16) -> np.ndarray:
    """Row indices (int64, N) sorted by PRN key, equal keys by id text: the draw order.

    Independent of input row order. Sorts ``key prefix | row`` packed in one uint64 (SIMD sort,
    ~0.2 s for 10M), then repairs the rare runs whose key prefixes coincide using the full keys
    of those rows. Raises PlanError on duplicate ids.
    """
    n = ids.n
    if n == 0:
        return np.zeros(0, np.int64)
    nb = max(1, (n - 1).bit_length())
    packed = keys_of(ids, seed, pack_bits=nb, chunk=chunk)
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
            items = sorted((prn_key(seed, t), t, int(r)) for r in order[run] for t in (ids.text(int(r)),))
            for (k1, t1, _), (k2, t2, _) in zip(items[:-1], items[1:], strict=True):
                if k1 == k2 and t1 == t2:
                    raise PlanError(f"entity_id: duplicate id {t1!r}; ids must be unique")
            order[run] = [r for _, _, r in items]
    return order
