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

__all__ = [
    "CHARSET", "WEIGHTS", "ENTITY_TYPE_PREFIX", "YIWU_DIVISION", "check_char",
    "is_valid", "invalid_reasons", "generate",
]

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_LUT = np.full(256, -1, dtype=np.int64)
for _c, _v in _VALUE.items():
    _LUT[ord(_c)] = _v

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


def invalid_reasons(codes: Iterable[str] | pd.Series) -> np.ndarray:
    """Vectorised validation. Returns an object array: ``None`` for a valid code, else the reason.

    Runs in O(n) numpy work (about 1 s per 10M codes), so it can check a city in one pass.
    """
    s = pd.Series(codes, dtype=object)
    out = np.full(len(s), None, dtype=object)
    is_str = s.map(lambda x: isinstance(x, str)).to_numpy(dtype=bool)
    out[~is_str] = "missing"
    lens = np.zeros(len(s), dtype=np.int64)
    lens[is_str] = s[is_str].str.len().to_numpy()
    bad_len = is_str & (lens != 18)
    out[bad_len] = "not 18 characters"
    ok = is_str & ~bad_len
    if ok.any():
        joined = "".join(s[ok].tolist())
        try:
            raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, 18)
            vals = _LUT[raw]
            idx = np.flatnonzero(ok)
        except UnicodeEncodeError:  # non-ASCII somewhere: fall back to the per-code path
            idx = np.flatnonzero(ok)
            vals = np.array([[_LUT[ord(c)] if ord(c) < 256 else -1 for c in x] for x in s[ok]], dtype=np.int64)
        bad_char = (vals < 0).any(axis=1)
        out[idx[bad_char]] = "character outside the USCC set (no I, O, S, V, Z; upper case)"
        good = ~bad_char
        check = (31 - (vals[good, :17] @ WEIGHTS) % 31) % 31
        wrong = check != vals[good, 17]
        out[idx[good][wrong]] = "wrong check character"
    return out


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
