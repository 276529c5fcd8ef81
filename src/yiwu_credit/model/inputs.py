"""Input handling of the estimator: any 2-D table in, a string-named DataFrame out; categorical
columns as codes over fixed categories."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["as_categorical", "as_frame", "column_major", "is_categorical", "row_major"]


def as_frame(X: Any, names: list[str] | None = None) -> pd.DataFrame:
    if sp.issparse(X):
        raise TypeError("sparse input is not supported: pass a dense DataFrame or array")
    if isinstance(X, pd.DataFrame):
        if all(isinstance(c, str) for c in X.columns):
            return X
        return X.rename(columns=str)
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data "
                         "(one row per entity, one column per feature).")
    cols = names if names is not None and len(names) == arr.shape[1] else [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


def as_categorical(s: pd.Series, categories: list) -> pd.Categorical:
    """``s`` as a Categorical over exactly ``categories`` (unknown values become missing).

    The column is factorized once and only its distinct values are looked up; those that match
    no category (e.g. numbers stored as objects, matched by their text) are retried as text.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        if list(s.cat.categories) == categories:
            return s.array
        return s.cat.set_categories(categories).array
    index = pd.Index(categories)
    fcodes, uniques = pd.factorize(s)  # hashing once; the look-up is per distinct value
    lut = index.get_indexer(uniques)
    bad = lut < 0
    if bad.any():
        lut[bad] = index.get_indexer(pd.Index(uniques[bad], dtype=object).map(str))
    codes = np.append(lut, -1)[fcodes]  # factorize marks missing values with -1
    return pd.Categorical.from_codes(codes, categories=index)


def is_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


def row_major(columns: list[np.ndarray], n: int, block: int = 4096) -> np.ndarray:
    """Columns (each of length ``n``) as one C-ordered float64 matrix (n, len(columns)).

    Filled ``block`` rows at a time, so each block stays in cache while its columns are
    written (column-by-column writes into a row-major matrix of millions of rows are ~3× slower).
    """
    M = np.empty((n, len(columns)), dtype=np.float64)
    for s in range(0, n, block):
        rows = M[s:s + block]
        for j, col in enumerate(columns):
            rows[:, j] = col[s:s + block]
    return M


def column_major(columns: list[np.ndarray], n: int) -> np.ndarray:
    """Columns (each of length ``n``) as one F-ordered float64 matrix (n, len(columns)): each
    column is one contiguous copy. LightGBM's predict and the scorecard read it as fast as the
    row-major matrix (the same values), and it costs a fraction of :func:`row_major`."""
    M = np.empty((len(columns), n), dtype=np.float64)
    for j, col in enumerate(columns):
        M[j] = col
    return M.T
