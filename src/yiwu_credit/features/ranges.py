"""Training ranges of the features and per-entity out-of-range flags.

A tree model is flat beyond the largest value it was trained on: an entity with 100,000 penalties
scores like one with the training maximum. :func:`feature_ranges` records, at training time, the
min/max of every numeric feature and the categories seen of every categorical one (stored in the
bundle as ``ranges.json``); :class:`RangeCheck` flags, per entity, the features whose value lies
beyond them. Missing values are never flagged. Bundles without ``ranges.json`` fall back to the
ranges of their reference sample (narrower: more flags), and bundles with neither flag nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RANGES_FILE", "RangeCheck", "bundle_ranges", "feature_ranges", "range_check"]

RANGES_FILE = "ranges.json"


def feature_ranges(X: pd.DataFrame, source: str = "training") -> dict[str, Any]:
    """Ranges of a feature matrix: {"source", "n", "features": {name: {"min", "max"} or
    {"categories": [...]}}} (JSON-ready, deterministic)."""
    feats: dict[str, Any] = {}
    for c in X.columns:
        s = X[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            seen = set(s.dropna().astype(str))
            feats[c] = {"categories": [str(k) for k in s.cat.categories if str(k) in seen]}
        else:
            v = s.to_numpy(dtype="float64", na_value=np.nan)
            v = v[~np.isnan(v)]
            feats[c] = {"min": float(v.min()), "max": float(v.max())} if len(v) else {"min": None, "max": None}
    return {"source": source, "n": int(len(X)), "features": feats}


class RangeCheck:
    """Flags values beyond ``ranges`` for the features ``names`` (in a matrix's column order).

    ``categories`` maps each categorical feature to its full category list (the codes the
    matrix holds); ``ranges=None`` flags nothing.
    """

    def __init__(self, ranges: dict[str, Any] | None, names: Sequence[str],
                 categories: dict[str, Sequence[str]] | None = None):
        self.names = list(names)
        self.source = None if ranges is None else ranges.get("source")
        feats = {} if ranges is None else ranges.get("features", {})
        k = len(self.names)
        self.lo, self.hi = np.full(k, -np.inf), np.full(k, np.inf)
        self.allowed: dict[int, np.ndarray] = {}  # column → bool per category code
        for j, name in enumerate(self.names):
            r = feats.get(name)
            if r is None:
                continue
            if "categories" in r:
                cats = list((categories or {}).get(name, ()))
                if cats:
                    self.allowed[j] = np.isin(np.array(cats, dtype=object), np.array(r["categories"], dtype=object))
            else:
                self.lo[j] = -np.inf if r.get("min") is None else float(r["min"])
                self.hi[j] = np.inf if r.get("max") is None else float(r["max"])

    def beyond(self, M: np.ndarray) -> np.ndarray:
        """For a (n, k) float matrix (categorical columns as category codes, missing = NaN or < 0):
        which values are beyond the ranges (bool, shape (n, k))."""
        M = np.asarray(M, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = (M < self.lo) | (M > self.hi)
        for j, ok in self.allowed.items():
            col = M[:, j]
            known = ~np.isnan(col) & (col >= 0) & (col < len(ok))
            code = np.where(known, col, 0).astype(np.intp)
            bad[:, j] = known & ~ok[code]
        return bad

    def flag_codes(self, bad: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """:meth:`beyond`'s matrix as one text per row: the index of each row's text (int64,
        shape (n,)) in the list of texts, ';'-joined feature names in column order, '' (no flag)
        first."""
        codes = np.zeros(len(bad), dtype=np.int64)
        cols = np.flatnonzero(bad.any(axis=0))
        rows = np.flatnonzero(bad[:, cols].any(axis=1)) if len(cols) else np.zeros(0, dtype=np.int64)
        labels = [""]
        if len(rows):
            sub = bad[np.ix_(rows, cols)]
            packed = np.ascontiguousarray(np.packbits(sub, axis=1))
            keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            labels += [";".join(self.names[j] for j in cols[sub[i]]) for i in first]
            codes[rows] = inverse.ravel() + 1
        return codes, labels

    def flags(self, M: np.ndarray) -> np.ndarray:
        """For a (n, k) float matrix (categorical columns as category codes, missing = NaN or < 0):
        an object array of ';'-joined feature names beyond the ranges ('' when none)."""
        codes, labels = self.flag_codes(self.beyond(M))
        return np.array(labels, dtype=object)[codes]

    def frame_flags(self, X: pd.DataFrame) -> np.ndarray:
        """:meth:`flags` for a feature DataFrame (categorical columns are pandas categoricals)."""
        return self.flags(self.matrix(X))

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The (n, k) float matrix :meth:`beyond` reads, from a feature DataFrame (categorical
        columns as category codes, missing as NaN)."""
        cols = []
        for name in self.names:
            s = X[name]
            if isinstance(s.dtype, pd.CategoricalDtype):
                c = s.cat.codes.to_numpy().astype(np.float64)
                cols.append(np.where(c < 0, np.nan, c))
            else:
                cols.append(s.to_numpy(dtype="float64", na_value=np.nan))
        return np.column_stack(cols) if cols else np.zeros((len(X), 0))


def bundle_ranges(bundle: Any) -> dict[str, Any] | None:
    """The bundle's training ranges, else its reference sample's (source 'reference sample'),
    else None."""
    if getattr(bundle, "ranges", None):
        return bundle.ranges
    ref = getattr(bundle, "reference", None)
    if ref is not None and len(ref):
        return feature_ranges(ref, source="reference sample")
    return None


def range_check(bundle: Any) -> RangeCheck:
    """A :class:`RangeCheck` over the bundle model's features, with catalogue categories."""
    names = list(bundle.model.feature_names_in_)
    cats = {f.name: list(f.categories) for f in bundle.catalogue.features if f.is_categorical}
    return RangeCheck(bundle_ranges(bundle), names, cats)
