"""Text columns built from codes: the cheap way to make a column of a few distinct strings.

A scored frame holds a million rows of a handful of distinct texts (tier labels, override notes,
the policy's hash). Letting pandas infer ``str`` from a million-element object array, or
broadcasting a scalar string, re-encodes every row (~0.1–0.2 s a column at 1M); here the distinct
texts are encoded once and Arrow gathers them by code (~0.01 s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["constant_strings", "dictionary_take", "encode_strings", "string_column"]

_STR = pd.StringDtype(na_value=np.nan)  # what pandas infers for text: ``str``, Arrow large_string


def string_column(labels: Sequence[str], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The ``str`` array ``labels[codes]`` (shape (n,)), equal to what pandas infers from the
    object array ``np.array(labels, dtype=object)[codes]``. ``codes``: ints in [0, len(labels))."""
    codes = np.asarray(codes, dtype=np.intp)
    if len(labels) == 1:
        return constant_strings(labels[0], len(codes))
    small = pa.array([str(s) for s in labels], type=pa.large_string())
    return pd.array(small.take(pa.array(codes)), dtype=_STR)


def constant_strings(value: str, n: int) -> pd.api.extensions.ExtensionArray:
    """A ``str`` array of ``n`` copies of ``value`` (what assigning the scalar to a column gives)."""
    b = str(value).encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int64) * len(b)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b * n))
    return pd.array(arr, dtype=_STR)


def encode_strings(values: pd.Series) -> tuple[pa.Array, pa.Array]:
    """A text column as Arrow (dictionary of distinct values, int32 indices; nulls stay null)."""
    enc = pc.dictionary_encode(pa.array(values, type=pa.large_string()))
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    return enc.dictionary, enc.indices


def dictionary_take(encoded: tuple[pa.Array, pa.Array], rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The ``str`` array of rows ``rows`` of an :func:`encode_strings` column: the indices are
    gathered, then the few distinct strings (~3× a gather of the strings themselves)."""
    dictionary, indices = encoded
    return pd.array(dictionary.take(indices.take(pa.array(np.asarray(rows, dtype=np.int64)))), dtype=_STR)
