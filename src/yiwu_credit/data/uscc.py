"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

18 characters: registration authority (1), entity type (1), GB/T 2260 division (6),
organisation code (9), check character (1). Characters come from ``CHARSET`` (31 symbols,
no I O S V Z); the check character is ``(31 - sum(c_i * w_i) mod 31) mod 31`` with
``w_i = 3**(i-1) mod 31``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CHARSET", "WEIGHTS", "ENTITY_TYPE_PREFIX", "YIWU_DIVISION", "check_char",
    "is_valid", "invalid_reasons", "generate", "normalise_id_array", "normalise_ids",
]

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_LUT = np.full(256, -1, dtype=np.int64)
for _c, _v in _VALUE.items():
    _LUT[ord(_c)] = _v
_LUT8 = _LUT.astype(np.int8)

#: Positions 1-2 for market entities (工商): enterprise, individual business, farmers' co-operative.
ENTITY_TYPE_PREFIX = {"enterprise": "91", "individual": "92", "cooperative": "93"}
YIWU_DIVISION = "330782"


def check_char(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {len(first17)}")
    try:
        vals = [_VALUE[c] for c in first17.upper()]
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the USCC character set") from None
    return CHARSET[(31 - int(np.dot(vals, WEIGHTS)) % 31) % 31]


def is_valid(code: str) -> bool:
    """True if ``code`` is 18 characters from the charset with a correct check character."""
    if not isinstance(code, str) or len(code) != 18 or any(c not in _VALUE for c in code):
        return False
    return check_char(code[:17]) == code[17]


#: Why a code is invalid; :func:`reason_codes` returns 1-based positions in this tuple (0 = valid).
REASONS = ("missing", "not 18 characters", "character outside the USCC set (no I, O, S, V, Z; upper case)",
           "wrong check character")


def reason_codes(codes: Iterable[str] | pd.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Vectorised validation in Arrow and numpy: int8 per code, 0 if valid, else ``k`` for
    ``REASONS[k - 1]``. Anything that is not a string is missing.

    ASCII codes of 18 characters are checked as one (n, 18) byte matrix read straight from the
    Arrow buffer (about 0.1 s per 10M codes); only codes with non-ASCII characters go one by one.
    """
    arr = _as_arrow(codes)
    n = len(arr)
    out = np.zeros(n, dtype=np.int8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    lens = pc.utf8_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    out[~valid] = 1
    bad_len = valid & (lens != 18)
    out[bad_len] = 2
    ok = valid & ~bad_len
    idx = np.flatnonzero(ok)
    if not len(idx):
        return out
    sub = arr if len(idx) == n else arr.filter(pa.array(ok))
    raw = fixed_width(sub, 18)
    if raw is not None:
        vals = _LUT8[raw]
    else:  # non-ASCII somewhere: the characters one by one
        vals = np.array([[_LUT[ord(c)] if ord(c) < 256 else -1 for c in x] for x in sub.to_pylist()],
                        dtype=np.int8).reshape(-1, 18)
    bad_char = (vals < 0).any(axis=1)
    out[idx[bad_char]] = 3
    total = np.zeros(len(vals), dtype=np.int32)
    for i, w in enumerate(WEIGHTS.tolist()):  # column by column: no (n, 17) int64 temporaries
        total += vals[:, i].astype(np.int32) * w
    check = (31 - total % 31) % 31
    out[idx[~bad_char & (check != vals[:, 17])]] = 4
    return out


def invalid_reasons(codes: Iterable[str] | pd.Series | pa.Array) -> np.ndarray:
    """Vectorised validation. Returns an object array: ``None`` for a valid code, else the reason."""
    lookup = np.array([None, *REASONS], dtype=object)
    return lookup[reason_codes(codes)]


def _as_arrow(codes: Iterable[str] | pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Codes as one Arrow string array; values that are not strings become nulls."""
    if isinstance(codes, pa.ChunkedArray):
        codes = codes.combine_chunks()
    if isinstance(codes, pa.Array) and (pa.types.is_string(codes.type) or pa.types.is_large_string(codes.type)):
        return codes
    if isinstance(codes, pd.Series) and isinstance(codes.dtype, pd.StringDtype) and codes.dtype.storage == "pyarrow":
        return _as_arrow(pa.array(codes))
    values = codes.to_pylist() if isinstance(codes, pa.Array) else list(codes)
    return pa.array([x if isinstance(x, str) else None for x in values], type=pa.large_string())


def normalise_id_array(arr: pa.Array, *, trimmed: bool = False) -> pa.Array:
    """THE id rule for every file that names an entity or an inspector: Unicode NFKC (full-width
    ９１ → 91, no-break and ideographic spaces → spaces), trimmed, upper case; blank → missing.
    ``trimmed``: the values are already trimmed (the loader's fast path). NFKC runs only when a
    value is not ASCII."""
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:  # True, or None when every value is missing
        arr = pc.ascii_upper(arr if trimmed else pc.ascii_trim_whitespace(arr))
    else:
        arr = pc.utf8_upper(pc.utf8_trim_whitespace(pc.utf8_normalize(arr, "NFKC")))
    empty = pc.equal(arr, "")
    return pc.if_else(empty, pa.scalar(None, arr.type), arr) if pc.any(empty).as_py() else arr


def normalise_ids(values: Iterable[object] | pd.Series | pa.Array) -> np.ndarray:
    """:func:`normalise_id_array` of any ids (non-strings as their text; missing stays missing), as
    an object array of ``str`` or ``None``."""
    try:  # text already (the usual case): straight into Arrow, missing → null
        arr = _as_arrow(values) if isinstance(values, pa.Array | pa.ChunkedArray) else \
            pa.array(values if isinstance(values, pd.Series) else list(values), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers or other objects: their text
        vals = values.to_pylist() if isinstance(values, pa.Array | pa.ChunkedArray) else list(values)
        arr = pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v) for v in vals],
                       type=pa.large_string())
    return normalise_id_array(arr).to_numpy(zero_copy_only=False).astype(object)


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's value offsets (n + 1) and the bytes they index, as numpy views (no copy)."""
    if not len(arr):
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    bufs = arr.buffers()
    kind = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    off = np.frombuffer(bufs[1], dtype=kind)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return off, data


def fixed_width(arr: pa.Array, width: int) -> np.ndarray | None:
    """The bytes of a string array whose values are all ``width`` bytes long, as an (n, width)
    uint8 view of its data buffer; None when they are not (non-ASCII characters take more bytes)."""
    off, data = string_buffers(arr)
    if off[-1] - off[0] != width * len(arr):
        return None
    return data[off[0]: off[-1]].reshape(-1, width)


def generate(
    n: int,
    rng: np.random.Generator,
    entity_type: Iterable[str] | str = "enterprise",
    division: str = YIWU_DIVISION,
) -> np.ndarray:
    """Generate ``n`` valid, distinct-with-high-probability codes for a division.

    ``entity_type`` (one per code, or one for all) sets positions 1-2 (91/92/93). The 9-char
    organisation part is random from the charset. Returns an array of str, shape (n,).
    """
    if isinstance(entity_type, str):
        types = np.full(n, entity_type, dtype=object)
    else:
        types = np.asarray(list(entity_type), dtype=object)
    prefix = np.array([ENTITY_TYPE_PREFIX[t] for t in pd.unique(types)])
    lookup = dict(zip(pd.unique(types), prefix, strict=True))
    pre = np.array([[_VALUE[c] for c in lookup[t] + division] for t in lookup], dtype=np.int64)
    pre_idx = pd.Categorical(types, categories=list(lookup)).codes
    body = np.empty((n, 17), dtype=np.int64)
    body[:, :8] = pre[pre_idx]
    body[:, 8:] = rng.integers(0, 31, size=(n, 9))
    check = (31 - (body @ WEIGHTS) % 31) % 31
    chars = np.frombuffer(CHARSET.encode(), dtype=np.uint8)
    full = np.concatenate([chars[body], chars[check][:, None]], axis=1)
    return full.view("S18").ravel().astype(str)
