"""THE reader of every table a command takes (scores, plan, frame, results, drawn entities, roster,
previous and published assignments): CSV (UTF-8 with or without BOM, or GB18030/GBK, detected),
Parquet or ``.xlsx`` (first sheet, bounded used range), built on the dataset loader's file
readers (:mod:`yiwu_credit.data.sources.files`).

:func:`read_input` checks the header row (duplicate headers, missing columns), undoes the CSV
formula guard of files this package wrote (:func:`~yiwu_credit.data.io.restore_formulas`) and
applies the one id rule (:func:`~yiwu_credit.data.uscc.normalise_id_array`: NFKC, trim, upper
case) to every column that names an entity or an inspector. Every refusal is a
:class:`~yiwu_credit.errors.DataValidationError` (exit 3) naming the table, file, column, rows and
reason; a missing file is exit 3 for every command. :func:`unmatched_ids` counts ids that still
match nothing, for the command to report.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataValidationError, Problem, UsageError
from .paths import table_format
from .uscc import normalise_ids

__all__ = ["ID_COLUMNS", "TEXT_COLUMNS", "TEXT_PREFIXES", "check_unique_ids", "read_input", "unmatched_ids"]

#: columns that name an entity or an inspector (the one id rule applies to them)
ID_COLUMNS = ("entity_id", "inspector_id")
#: columns read as text whatever they look like (ids, codes, labels)
TEXT_COLUMNS = ("entity_id", "inspector_id", "tier", "town", "industry", "entity_type", "department", "towns",
                "qualifications", "conflicts")
#: column name prefixes read as text: the records one command hands to the next (the scores' tiering
#: policy ``tier_policy*``, the plan's ``plan_*``), which must come back exactly as written
TEXT_PREFIXES = ("tier_policy", "plan_")


def _infer(s: pd.Series) -> pd.Series:
    """Numbers and booleans of a workbook column as such, text as text."""
    vals = s.dropna()
    if len(vals) and all(isinstance(v, bool) for v in vals):
        return s.astype("boolean")
    if len(vals) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return s.astype("float64")
    return s


def _read(p: Path, text: set[str]) -> pd.DataFrame:
    """The file's cells (``text`` columns as str), after the header checks; Unreadable/ValueError
    propagate with the reason."""
    from .io import restore_formulas
    from .sources.files import Unreadable, csv_header, duplicate_headers, xlsx_cell, xlsx_rows

    if table_format(p) == "parquet":
        import pyarrow.parquet as pq

        dup = duplicate_headers([str(n) for n in pq.read_schema(p).names])
        if dup:
            raise Unreadable(dup)
        return pd.read_parquet(p)
    if table_format(p) == "xlsx":
        _, names, rows = xlsx_rows(p)
        width = len(names)
        body = [list(r[:width]) + [None] * (width - len(r)) for r in rows]
        df = pd.DataFrame(body, columns=names, dtype=object).replace({"": None}) if body \
            else pd.DataFrame({c: [] for c in names}, dtype=object)
        for c in df.columns:
            if c in text or str(c).startswith(TEXT_PREFIXES):
                df[c] = df[c].astype(object).where(df[c].notna(), None).map(xlsx_cell)  # the loader's rule
            else:
                df[c] = _infer(df[c])
        return df
    enc, names = csv_header(p)
    dtype = {c: str for c in names if c in text or c.startswith(TEXT_PREFIXES)}
    # only an empty cell is missing (as in the dataset loader): 'NA' or 'null' is text, not a gap
    # headers as stripped for matching (the dataset loader's rule), so ' entity_id' is entity_id; never
    # the first column as an index when rows have one field more than the header (every column would shift)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(p, dtype=dtype, encoding="utf-8-sig" if enc == "utf-8" else enc, header=0, names=names,
                             index_col=False, keep_default_na=False, na_values=[""])
        except pd.errors.ParserWarning:
            raise Unreadable(f"data rows have more fields than the header's {len(names)} ({names}); a column "
                             "without a header is not guessed") from None
    return restore_formulas(df)


def read_input(source: str | os.PathLike | pd.DataFrame, what: str, *, required: Sequence[str] = ("entity_id",),
               id_columns: Sequence[str] = ID_COLUMNS, text: Iterable[str] = TEXT_COLUMNS,
               unique: Sequence[str] = ()) -> pd.DataFrame:
    """Read the command input ``what`` (a path, or a DataFrame to check the same way).

    ``required`` columns must be present; ``id_columns`` that are present are normalised by the
    one id rule and may not be blank; ``text`` columns are read as text; ``unique`` columns may
    not repeat a value (after the id rule: :func:`check_unique_ids`). Returns the table (not
    indexed) with ``attrs["source"]`` (the file name). DataValidationError (exit 3) naming ``what``, the file, the
    column, the rows and the reason; UsageError (exit 2) for a database URL.
    """
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), what
    else:
        s = os.fspath(source)
        if "://" in s:
            raise UsageError(f"{what}: {s.split('://', 1)[0]}://… — reading a command input from a database URL is "
                             "not supported; give a .csv, .parquet or .xlsx file")
        p = Path(s)
        name = p.name
        if not p.is_file():
            raise DataValidationError([Problem(what, None, f"file not found: {p}")])
        try:
            df = _read(p, set(text))
        except (DataValidationError, UsageError):
            raise
        except Exception as e:  # any unreadable file: 0 bytes, not CSV/Parquet/xlsx, bad encoding, ragged rows
            reason = str(e) if type(e).__name__ == "Unreadable" else f"{type(e).__name__}: {e}"
            raise DataValidationError([Problem(what, None, f"cannot read {p}: {reason}")]) from None
    if df.index.name in (*required, *id_columns) and df.index.name not in df.columns:
        df = df.reset_index()
    from .sources.files import duplicate_headers

    dup = duplicate_headers([str(c) for c in df.columns])
    if dup:
        raise DataValidationError([Problem(what, None, f"{name}: {dup}")])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataValidationError([Problem(what, c, f"missing column in {name}; found {[str(x) for x in df.columns]}")
                                   for c in missing])
    for c in id_columns:
        if c not in df.columns:
            continue
        raw = df[c]
        ids = normalise_ids(raw)
        blank = pd.isna(ids)
        if blank.any():
            rows = tuple(int(i) + 1 for i in np.flatnonzero(blank))
            raise DataValidationError([Problem(what, c, f"{name}: missing {c}", rows=rows[:10], n_rows=len(rows))])
        df[c] = pd.Series(ids, index=df.index, dtype=object)
    for c in unique:
        check_unique_ids(df.set_index(c), f"{what} ({name})" if name != what else what, c)
    df.attrs.update(source=name)
    return df


def check_unique_ids(df: pd.DataFrame, what: str = "scored", column: str = "entity_id") -> None:
    """DataValidationError (exit 3) naming the duplicated ids of ``df``'s index and their rows
    (1-based data rows): a duplicated entity would be planned, counted and drawn twice."""
    idx = df.index
    if idx.is_unique:
        return
    dup = idx.duplicated(keep=False)
    rows = np.flatnonzero(dup)
    ids = sorted({str(x) for x in idx[dup]})
    shown = ", ".join(repr(x) for x in ids[:5]) + (f" (+{len(ids) - 5} more)" if len(ids) > 5 else "")
    raise DataValidationError([Problem(what, column, f"duplicate {column} {shown}: each must appear once (it "
                                       "would be counted twice)", tuple(int(r) + 1 for r in rows[:5]), len(rows))])


def unmatched_ids(ids: Iterable[str], known: Iterable[str], what: str, against: str, limit: int = 5) -> str | None:
    """A warning line counting the ids (already normalised) that match nothing in ``known``, or None."""
    known_set = set(known)
    odd = sorted({str(i) for i in ids} - known_set)
    if not odd:
        return None
    more = f" … and {len(odd) - limit} more" if len(odd) > limit else ""
    return (f"warning: {what}: {len(odd)} id(s) match nothing in {against} after normalisation (NFKC, trim, "
            f"upper case): {', '.join(odd[:limit])}{more}")
