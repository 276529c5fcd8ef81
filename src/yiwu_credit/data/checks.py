"""The checks behind :func:`~yiwu_credit.data.dataset.load_dataset`: typing raw columns (text, ids,
dates, numbers), collecting findings, matching events to entities, entity and event rules.

Vectorised over Arrow buffers and numpy arrays; ``tests/data/test_loading_vectorised.py`` checks
every fast path against the plain per-row rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import Problem
from . import uscc
from .contract import EVENT_TABLES, INDUSTRY_PATTERN, TABLES, YIWU_TOWNS, Column, Table
from .dates import LOCAL_TZ, MAX_DATE, MIN_DATE, parse_text_dates
from .sources.files import (
    RawTable,
)
from .sources.profile import Profile

__all__ = [
    "MAX_ROWS_SHOWN", "REJECT_COLUMNS", "Findings", "HashedIndex", "Runs", "check_entities", "check_events", "coerce",
    "id_runs", "key_text", "lookup_dictionary",
]

MAX_ROWS_SHOWN = 5
_MIN_DAY, _MAX_DAY = (int(np.datetime64(d.date(), "D").astype(np.int64)) for d in (MIN_DATE, MAX_DATE))
_NAT = np.iinfo(np.int64).min  # NaT as int64
_TICKS_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
#: 1 January of the year after 1900 + i, in seconds since 1970 (report years are 1949..2100)
_NEXT_JAN1 = (np.arange(1901, 2103) - 1970).astype("datetime64[Y]").astype("datetime64[s]").view(np.int64)
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}
REJECT_COLUMNS = ["table", "row", "entity_id", "column", "reason", "file", "header"]


class Findings:
    """Collects (table, column, reason, row mask) and turns them into Problems and rejects.

    Masks are over the rows of the parsed table; ``rows[table]`` maps them to file rows and
    ``malformed[table]`` holds the lines that could not be parsed.
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, str, np.ndarray]] = []
        self.fatal: list[Problem] = []
        self.rows: dict[str, np.ndarray | None] = {}  # None: rows 1..n
        self.malformed: dict[str, list[tuple[int, str | None, str]]] = {}
        self.notes: list[str] = []
        self.files: dict[str, RawTable] = {}
        self.runs: dict[str, Runs] = {}  # each table's entity_id column as runs

    def add(self, table: str, column: str | None, reason: str, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.items.append((table, column, reason, mask))

    def note(self, table: str, column: str, what: str, mask: np.ndarray | int) -> None:
        k = mask if isinstance(mask, int) else int(np.count_nonzero(mask))
        if k:
            self.notes.append(f"{table}.{column}: {k:,} value(s) {what}")

    def _file_rows(self, table: str, rows: np.ndarray) -> np.ndarray:
        m = self.rows.get(table)
        return m[rows] if m is not None else rows + 1

    def problems(self) -> list[Problem]:
        out = list(self.fatal)
        for table, bad in self.malformed.items():
            for reason in dict.fromkeys(r for _, _, r in bad):
                rows = [r for r, _, why in bad if why == reason]
                out.append(Problem(table, None, f"malformed line: {reason}", tuple(rows[:MAX_ROWS_SHOWN]), len(rows)))
        for table, column, reason, mask in self.items:
            rows = self._file_rows(table, np.flatnonzero(mask))
            out.append(Problem(table, column, reason + self._where(table, column),
                               tuple(int(r) for r in rows[:MAX_ROWS_SHOWN]), len(rows)))
        return out

    def _where(self, table: str, column: str | None) -> str:
        """' [file 行政处罚.csv, header 罚没金额(元)]' when the source names differ from the contract's."""
        raw = self.files.get(table)
        if raw is None:
            return ""
        header = raw.headers.get(column or "", column)
        default = any(raw.file == f"{table}{ext}" for ext in (".csv", ".csv.gz", ".parquet"))
        if default and header == column:
            return ""
        kind = "relation" if raw.detail == "database relation" else "file"
        return f" [{kind} {raw.file}" + (f", header {header}" if column else "") + "]"

    def bad_rows(self, table: str, n: int) -> np.ndarray:
        bad = np.zeros(n, dtype=bool)
        for t, _, _, mask in self.items:
            if t == table:
                bad |= mask
        return bad

    def rejects(self, name: str, df: pd.DataFrame) -> pd.DataFrame | None:
        """One row per rejected input row; all its reasons joined with '; '."""
        parts = []
        for t, col, reason, mask in self.items:
            if t == name:
                rows = np.flatnonzero(mask)
                header = self.files[name].headers.get(col or "", col or "") if name in self.files else (col or "")
                parts.append(pd.DataFrame({"pos": rows, "column": col or "", "reason": reason, "header": header}))
        out = []
        if parts:
            r = pd.concat(parts, ignore_index=True)
            r = r.groupby("pos", sort=True).agg(column=("column", ";".join), reason=("reason", "; ".join),
                                                header=("header", ";".join)).reset_index()
            pos = r["pos"].to_numpy()
            r["row"] = self._file_rows(name, pos)
            r["entity_id"] = df["entity_id"].astype(object).to_numpy()[pos]
            out.append(r)
        bad = self.malformed.get(name, [])
        if bad:
            out.append(pd.DataFrame({"row": [b[0] for b in bad], "entity_id": [b[1] for b in bad], "column": "",
                                     "reason": [f"malformed line: {b[2]}" for b in bad], "header": ""}))
        if not out:
            return None
        r = pd.concat(out, ignore_index=True).sort_values("row", kind="stable")
        r.insert(0, "table", name)
        r["file"] = self.files[name].file if name in self.files else ""
        r["entity_id"] = r["entity_id"].astype(object).where(r["entity_id"].notna(), None)
        return r[REJECT_COLUMNS]


def _is_arrow_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"


def _arrow(s: pd.Series) -> pa.Array | pa.ChunkedArray:
    """An Arrow-backed text Series as Arrow data, zero-copy (a ChunkedArray as read from Parquet)."""
    return pa.array(s)


def _one(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _str_series(arr: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(arr, index=index, dtype="str")


def _blank_to_null(arr: pa.Array) -> pa.Array:
    empty = pc.equal(arr, "")
    return pc.if_else(empty, pa.scalar(None, arr.type), arr) if pc.any(empty).as_py() else arr


def _text(raw: pd.Series) -> pd.Series:
    """Cells as trimmed text; blank-after-trim is missing (NA)."""
    s = raw if pd.api.types.is_string_dtype(raw.dtype) and not pd.api.types.is_object_dtype(raw.dtype) \
        else raw.astype("str")
    if _is_arrow_text(s):  # what pandas does for Arrow strings, without the Series round trips
        return _str_series(_blank_to_null(pc.utf8_trim_whitespace(_arrow(s))), s.index)
    s = s.str.strip()
    return s.mask(s == "")


#: Unicode format characters (category Cf): zero-width space and joiners, BOM, bidi marks, soft hyphen
_FORMAT_CHARS = r"\p{Cf}"


def key_text(s: pd.Series) -> tuple[pd.Series, int]:
    """Text read as a key (code columns, towns): format characters (Unicode Cf: zero-width
    spaces, BOM, bidi marks) removed, then Unicode NFKC (full-width → ASCII), trimmed; blank →
    missing. Returns the text and how many values changed. The one normalisation of keys: each
    distinct value is normalised once; all-ASCII text (no Cf, NFKC already) is returned as is."""
    if not len(s):
        return s, 0
    src = s if _is_arrow_text(s) else s.astype(pd.StringDtype("pyarrow", na_value=np.nan))
    arr = _one(_arrow(src))
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:  # True, or None when all are missing
        return s, 0
    enc = pc.dictionary_encode(arr)
    d = enc.dictionary
    nd = _blank_to_null(pc.utf8_trim_whitespace(
        pc.utf8_normalize(pc.replace_substring_regex(d, _FORMAT_CHARS, ""), "NFKC")))
    same = pc.equal(nd, d).fill_null(False).to_numpy(zero_copy_only=False)
    if same.all():
        return s, 0
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    n_changed = int(np.count_nonzero(valid & ~same[idx]))
    return _str_series(nd.take(enc.indices), s.index), n_changed


def _cut(v: str, width: int = 40) -> str:
    return v if len(v) <= width else v[:width] + "…"


def _shown(values: list[str], k: int = 3) -> str:
    return ", ".join(values[:k]) + (" …" if len(values) > k else "")


def _codes(table: Table, col: Column, s: pd.Series, f: Findings | None, profile: Profile | None) -> pd.Series:
    """A code column's text (keys already) as contract codes: the profile's exact values (read
    as keys too), the codes themselves, then the profile's ``re:`` patterns. A value matching
    no code, or patterns of several codes, is a finding, or becomes the column's ``fallback``
    code, counted in the notes. Each distinct value is matched once."""
    uniq, pos = _distinct(s)
    if not len(uniq):
        return s
    exact = dict(profile.codes.get(col.name, {})) if profile is not None else {}
    if exact:
        keys, _ = key_text(pd.Series(list(exact), dtype="str"))
        exact = dict(zip(keys.tolist(), exact.values(), strict=True))
    pats = [(re.compile(p), c) for p, c in (profile.patterns.get(col.name, ()) if profile is not None else ())]
    vals = uniq.tolist()
    out = np.empty(len(vals), dtype=object)
    how = np.zeros(len(vals), dtype=np.int8)  # 0 code, 1 profile value, 2 pattern, 3 no code, 4 several
    several: dict[str, set[str]] = {}
    for i, v in enumerate(vals):
        if v in exact:
            out[i], how[i] = exact[v], 1
        elif v in col.codes:
            out[i] = v
        else:
            hit = {c for rx, c in pats if rx.search(v)}
            if len(hit) == 1:
                out[i], how[i] = hit.pop(), 2
            else:
                out[i], how[i] = col.fallback or v, 3 + (len(hit) > 1)
                if hit:
                    several[v] = hit
    rows = _expand(how, pos, -1)
    name = profile.name if profile is not None else ""
    if f is not None:
        f.note(table.name, col.name, f"mapped to contract codes by profile {name!r}", rows == 1)
        f.note(table.name, col.name, f"mapped to contract codes by the patterns of profile {name!r}", rows == 2)
    for k, what in ((3, f"match no code of {list(col.codes)}"), (4, "match patterns of several codes")):
        bad = rows == k
        if f is None or not bad.any():
            continue
        found = [repr(_cut(v)) + (f" ({'/'.join(sorted(several[v]))})" if k == 4 else "")
                 for v, h in zip(vals, how, strict=True) if h == k]
        if col.fallback:
            f.note(table.name, col.name, f"{what}: read as {col.fallback!r} (e.g. {_shown(found)})", bad)
        else:
            f.add(table.name, col.name, f"not one of {list(col.codes)} (found {_shown(found, 5)})"
                  if k == 3 else f"{what} (found {_shown(found, 5)})", bad)
    if not how.any():  # every value a contract code already
        return s
    mapped = pa.array(out.tolist(), type=pa.large_string()).take(pa.array(pos, mask=pos < 0))
    return _str_series(mapped, s.index)


def _distinct(txt: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The distinct values of a text Series (a str Series) and each row's position among them
    (-1 where missing): parsing is then done once per distinct value."""
    if _is_arrow_text(txt) and len(txt):
        enc = pc.dictionary_encode(_arrow(txt))
        chunks = enc.chunks if isinstance(enc, pa.ChunkedArray) else [enc]
        if chunks and all(len(c.dictionary) == len(chunks[-1].dictionary) for c in chunks):  # one dictionary
            dictionary = chunks[-1].dictionary
            codes = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in chunks])
            return _str_series(dictionary, pd.RangeIndex(len(dictionary))), codes.astype(np.int64)
    codes, uniques = pd.factorize(txt)
    return pd.Series(uniques, dtype=txt.dtype), codes.astype(np.int64)


def _expand(values: np.ndarray, codes: np.ndarray, fill: Any) -> np.ndarray:
    """``values[codes]`` with ``fill`` where ``codes`` is -1."""
    out = values[np.maximum(codes, 0)] if len(values) else np.full(len(codes), fill, dtype=values.dtype)
    out[codes < 0] = fill
    return out


@dataclass
class Runs:
    """An id column as runs of equal consecutive values (event tables usually come grouped by
    entity): ``values`` holds one normalised id per run, ``lengths`` how many rows it covers."""

    values: pa.Array
    lengths: np.ndarray | None  # None: one run per row

    def expand(self, per_run: np.ndarray) -> np.ndarray:
        return per_run if self.lengths is None else np.repeat(per_run, self.lengths)


def id_runs(values: pd.Series | pa.Array | pa.ChunkedArray) -> Runs:
    """An id column (already normalised) as :class:`Runs` of equal consecutive values."""
    arr = _one(pa.array(values, type=pa.large_string()) if isinstance(values, pd.Series) else values)
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    starts = _run_starts(arr)
    if starts is None:
        return Runs(arr, None)
    return Runs(arr.filter(pa.array(starts)), np.diff(np.flatnonzero(starts), append=len(arr)))


def _run_starts(arr: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Whether each row starts a run of equal consecutive values; None when runs are too short
    to help."""
    n = len(arr)
    if n < 2:
        return None
    brk = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).fill_null(True)
    starts = np.concatenate(([True], brk.to_numpy(zero_copy_only=False)))
    return starts if np.count_nonzero(starts) <= n // 2 else None


def _normalise_ids(arr: pa.Array) -> pa.Array:
    """Trimmed text (blank already missing) under the one id rule (:func:`uscc.normalise_id_array`)."""
    return uscc.normalise_id_array(arr, trimmed=True)


def _printable_ascii(arr: pa.Array) -> bool | None:
    """For values that are all printable ASCII (no spaces, so nothing to trim or normalise):
    whether any has a lower-case letter; None when some are not."""
    if not len(arr):
        return None
    off, data = uscc.string_buffers(arr)
    data = data[off[0]: off[-1]]
    if len(data) and (data.min() <= 0x20 or data.max() >= 0x7F):
        return None
    return bool(((data >= ord("a")) & (data <= ord("z"))).any())


def _ids(raw: pd.Series, grouped: bool = True) -> tuple[pd.Series, np.ndarray, int, Runs]:
    """Normalised ids, which cells held a value, how many normalising changed, and the column
    as runs (``grouped``: look for runs; event tables usually come grouped by entity).

    Each run of equal consecutive raw values is normalised once; when nothing changes, the raw
    column is kept as it is."""
    src = raw if pd.api.types.is_string_dtype(raw.dtype) and not pd.api.types.is_object_dtype(raw.dtype) \
        else raw.astype("str")
    if not _is_arrow_text(src):
        src = src.astype(pd.StringDtype("pyarrow", na_value=np.nan))
    arr = _arrow(src)
    starts = _run_starts(arr) if grouped else None
    lengths = None if starts is None else np.diff(np.flatnonzero(starts), append=len(arr))
    u = _one(arr if starts is None else arr.filter(pa.array(starts)))
    plain = _printable_ascii(u)
    trimmed = u if plain is not None and u.null_count == 0 and (_byte_lengths(u) > 0).all() \
        else _blank_to_null(pc.utf8_trim_whitespace(u))
    present = trimmed.is_valid().to_numpy(zero_copy_only=False)
    norm = trimmed if plain is False else _normalise_ids(trimmed)
    if norm is u:  # printable ASCII, upper case: nothing to change
        n_changed, out = 0, arr
    else:
        same = pc.or_kleene(pc.equal(norm, u), pc.and_(norm.is_null(), u.is_null())).fill_null(False)
        same = same.to_numpy(zero_copy_only=False)
        changed = ~same & norm.is_valid().to_numpy(zero_copy_only=False) & u.is_valid().to_numpy(zero_copy_only=False)
        n_changed = int(changed.sum() if lengths is None else lengths[changed].sum())
        if same.all():
            out = arr
        else:
            out = norm if lengths is None else norm.take(pa.array(np.repeat(np.arange(len(u)), lengths)))
    runs = Runs(norm, lengths)
    if trimmed.null_count == u.null_count:  # no blank cells: present wherever the raw cell is
        present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    else:
        present = runs.expand(present)
    return _str_series(out, raw.index), present, n_changed, runs


def _dates(table: Table, col: Column, raw: pd.Series, f: Findings | None,
           formats: tuple[str, ...] = ()) -> tuple[pd.Series, np.ndarray]:
    """Calendar days (datetime64[s] at midnight, Asia/Shanghai) from ISO text or datetime cells,
    and which cells held a value. Text is parsed once per distinct value."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        v = raw.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).to_numpy()
        present = raw.notna().to_numpy()
        if f is not None:
            f.note(table.name, col.name, f"with a time zone converted to {LOCAL_TZ} dates", present)
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        v = raw.to_numpy()
        present = ~np.isnat(v)
    else:
        uniq, codes = _distinct(_text(raw))
        parsed, converted = parse_text_dates(uniq, formats)
        v = _expand(parsed, codes, np.datetime64("NaT"))
        present = codes >= 0
        if f is not None:
            f.note(table.name, col.name, f"with a time zone converted to {LOCAL_TZ} dates",
                   _expand(converted, codes, False))
    days, nat = _day_numbers(v)
    bad = present & nat
    out_of_range = ~nat & ((days < _MIN_DAY) | (days > _MAX_DAY))
    if f is not None:
        f.add(table.name, col.name, "not an ISO date (YYYY-MM-DD)" + (
            f" nor a whole date in the profile's formats {list(formats)}" if formats else ""), bad)
        f.add(table.name, col.name, f"implausible date (outside {MIN_DATE.date()}..{MAX_DATE.date()})", out_of_range)
    with np.errstate(over="ignore"):
        secs = days * 86_400
    secs[nat | out_of_range] = _NAT
    return pd.Series(secs.view("datetime64[s]"), index=raw.index, copy=False), present


def _day_numbers(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 (int64, floored: what ``Series.dt.normalize`` does) of a datetime64
    array, and where it is NaT. Integer division: numpy's unit casts are several times slower."""
    unit, count = np.datetime_data(v.dtype)
    i = v.view(np.int64)
    nat = i == _NAT
    per_day = _TICKS_PER_DAY.get(unit) if count == 1 else None
    days = i // per_day if per_day else v.astype("datetime64[D]").view(np.int64)
    return days, nat


def _numbers(table: Table, col: Column, raw: pd.Series, f: Findings | None) -> tuple[pd.Series, np.ndarray]:
    """float64 (``Int64`` for years) from text or numeric cells, and which cells held a value.
    Text is parsed once per distinct value."""
    if col.kind == "year" and col.min_value is None and col.max_value is None \
            and pd.api.types.is_integer_dtype(raw.dtype):  # whole numbers already: only the range to check
        present = raw.notna().to_numpy()
        y = raw.to_numpy(dtype="int64", na_value=0)
        bad_year = present & ((y < 1949) | (y > 2100))
        if f is not None:
            f.add(table.name, col.name, "not a whole year between 1949 and 2100", bad_year)
        return pd.Series(pd.arrays.IntegerArray(np.where(bad_year, 0, y), ~present | bad_year), index=raw.index,
                         copy=False), present
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        v = raw.to_numpy(dtype="float64", na_value=np.nan)
        present = ~np.isnan(v)
    else:
        uniq, codes = _distinct(_text(raw))
        present = codes >= 0
        parsed = pd.to_numeric(uniq, errors="coerce").to_numpy(dtype="float64", na_value=np.nan) if len(uniq) \
            else np.zeros(0)
        v = _expand(parsed, codes, np.nan)
        if f is not None:
            f.add(table.name, col.name, "not a number", present & np.isnan(v))
    v = v.copy()
    infinite = np.isinf(v)
    if f is not None:
        f.add(table.name, col.name, "not a finite number", infinite)
    v[infinite] = np.nan
    ok = ~np.isnan(v)
    if f is not None:
        if col.min_value is not None:
            below = (v <= col.min_value) if col.min_exclusive else (v < col.min_value)
            f.add(table.name, col.name, f"must be {'>' if col.min_exclusive else '>='} {col.min_value}", below & ok)
        if col.max_value is not None:
            f.add(table.name, col.name, f"must be <= {col.max_value}", (v > col.max_value) & ok)
    if col.kind == "year":
        bad_year = ok & ((v != np.round(v)) | (v < 1949) | (v > 2100))
        if f is not None:
            f.add(table.name, col.name, "not a whole year between 1949 and 2100", bad_year)
        v[bad_year] = np.nan
        missing = np.isnan(v)
        years = pd.arrays.IntegerArray(np.where(missing, 0, v).astype(np.int64), missing)
        return pd.Series(years, index=raw.index, copy=False), present
    return pd.Series(v, index=raw.index, copy=False), present


def coerce(table: Table, df: pd.DataFrame, f: Findings | None = None, profile: Profile | None = None) -> pd.DataFrame:
    """Cast every contract column to its type; unparseable or implausible values are findings.
    ``profile`` maps source code values and adds date formats."""
    n = len(df)
    if not n:  # no rows, no findings: the typed empty table (made once per table)
        empty = _EMPTY.get(table.name)
        if empty is None or list(empty.columns) != table.column_names:
            empty = _EMPTY[table.name] = _coerce(table, df.iloc[:0], None, None)
        return empty.copy(deep=True)
    return _coerce(table, df, f, profile)


_EMPTY: dict[str, pd.DataFrame] = {}


def _coerce(table: Table, df: pd.DataFrame, f: Findings | None, profile: Profile | None) -> pd.DataFrame:
    out = {}
    n = len(df)
    codes = profile.codes if profile is not None else {}
    formats = profile.date_formats if profile is not None else ()
    for col in table.columns:
        raw = df[col.name]
        if col.kind == "id" and n:
            s, present, n_changed, runs = _ids(raw, grouped=table.name != "entities")
            if f is not None:
                f.note(table.name, col.name, "normalised before matching (Unicode NFKC, trimmed, upper case)",
                       n_changed)
                f.runs[table.name] = runs
            out[col.name] = s
        elif col.kind in ("id", "str", "code"):
            s = _text(raw) if n else pd.Series([], dtype="str")
            if col.kind == "code" or col.key:
                s, n_changed = key_text(s)
                if f is not None:
                    f.note(table.name, col.name, "normalised (Unicode NFKC, format characters such as "
                           "zero-width spaces removed)", n_changed)
            present = s.notna().to_numpy()
            if col.kind == "code" and n:
                s = _codes(table, col, s, f, profile)
            null = s.isna().to_numpy()
            out[col.name] = s
        elif col.kind == "date":
            s, present = _dates(table, col, raw, f, formats)
            null = s.isna().to_numpy()
            out[col.name] = s
        elif col.kind in ("float", "int", "year"):
            s, present = _numbers(table, col, raw, f)
            null = s.isna().to_numpy()
            out[col.name] = s
        elif col.kind == "bool" and (raw.dtype == bool or isinstance(raw.dtype, pd.BooleanDtype)):
            val = raw.astype("boolean")  # what the text rules give for True/False cells
            present = val.notna().to_numpy()
            out[col.name] = val
        elif col.kind == "bool":
            txt = _text(raw).str.lower() if n else pd.Series([], dtype="str")
            val = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            extra = codes.get("bool", {})
            if n:
                val[txt.isin(_TRUE | {v for v, c in extra.items() if c == "true"}).to_numpy()] = True
                val[txt.isin(_FALSE | {v for v, c in extra.items() if c == "false"}).to_numpy()] = False
            null = val.isna().to_numpy()
            present = txt.notna().to_numpy()
            if f is not None:
                f.add(table.name, col.name, "not a boolean (true/false)", null & present)
            out[col.name] = val
        else:  # pragma: no cover - contract error
            raise AssertionError(col.kind)
        if f is not None and not col.nullable:
            f.add(table.name, col.name, "missing value", ~present)
    return pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)


@dataclass
class _Lookup:
    """Entity ids matched across tables with one hash pass over every distinct id: ``dup`` marks
    entity rows whose id is not unique; ``pos[name]`` is each event row's entity position (the
    first row with that id, -1 if none) and ``key[name]`` an integer per distinct id."""

    dup: np.ndarray
    pos: dict[str, np.ndarray]
    key: dict[str, _RunKeys]


@dataclass
class _RunKeys:
    """An integer per distinct id, one per run of equal ids (``lengths`` as in :class:`Runs`)."""

    keys: np.ndarray
    lengths: np.ndarray | None


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def _words(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Strings of exactly 18 bytes as three integers each (bytes 0-7, 8-15, 16-17): strided,
    unaligned views of the Arrow data buffer, no copy."""
    b = uscc.fixed_width(arr, 18)
    if b is None:
        return None
    if not len(b):
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.uint16)
    flat = b.reshape(-1)  # contiguous: the values lie end to end
    return tuple(np.ndarray((len(b),), dtype=t, buffer=flat, offset=o, strides=(18,))
                 for t, o in ((np.uint64, 0), (np.uint64, 8), (np.uint16, 16)))


def _hash(w: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (w[0] * _MIX[0]) ^ (w[1] * _MIX[1]) ^ (w[2].astype(np.uint64) * _MIX[2])


def _byte_lengths(arr: pa.Array) -> np.ndarray:
    return np.diff(uscc.string_buffers(arr)[0])


class HashedIndex:
    """Entity ids that are all 18 bytes long and distinct (USCCs), matched by a 64-bit hash of
    their bytes, each match verified byte for byte. :meth:`build` gives None otherwise (then
    :func:`lookup_dictionary` matches every table at once)."""

    def __init__(self, words: tuple[np.ndarray, ...], index: pd.Index) -> None:
        self.words, self.index = words, index

    @classmethod
    def build(cls, ent: Runs) -> HashedIndex | None:
        if not len(ent.values) or ent.values.null_count:
            return None
        we = _words(ent.values)
        if we is None:
            return None
        we = tuple(np.ascontiguousarray(w) for w in we)  # gathered at random below: aligned and dense
        index = pd.Index(_hash(we))
        if not index.is_unique:  # duplicate ids (or, once in 2**64, a collision): the general path
            return None
        return cls(we, index)

    def match(self, r: Runs) -> tuple[np.ndarray, _RunKeys]:
        """Each row's entity position (-1: none) and the integer keys of its id."""
        we, v, n_ent = self.words, r.values, len(self.index)
        fixed = v.is_valid().to_numpy(zero_copy_only=False) & (_byte_lengths(v) == 18)
        at = np.flatnonzero(fixed)
        wv = _words(v if len(at) == len(v) else v.filter(pa.array(fixed)))
        p = self.index.get_indexer(_hash(wv)).astype(np.int64)
        hit = np.flatnonzero(p >= 0)
        q = p[hit]
        same = (we[0][q] == wv[0][hit]) & (we[1][q] == wv[1][hit]) & (we[2][q] == wv[2][hit])
        p[hit[~same]] = -1
        pos_run = np.full(len(v), -1, dtype=np.int64)
        pos_run[at] = p
        key_run = pos_run.copy()
        unmatched = pos_run < 0
        if unmatched.any():  # ids not among the entities: numbered after them, null included
            enc = pc.dictionary_encode(v.filter(pa.array(unmatched)), null_encoding="encode")
            key_run[unmatched] = n_ent + enc.indices.to_numpy(zero_copy_only=False)
        return r.expand(pos_run), _RunKeys(key_run, r.lengths)


def lookup_dictionary(runs: dict[str, Runs]) -> _Lookup:
    """Match entity ids across all tables at once with Arrow's dictionary encoding of every
    distinct id (the general path: any ids, duplicates included)."""
    ent = runs["entities"]  # never in runs: one value per row
    parts = [ent.values, *(runs[n].values for n in EVENT_TABLES)]
    enc = pc.dictionary_encode(pa.concat_arrays([a.cast(pa.large_string()) for a in parts]), null_encoding="encode")
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_ent = len(ent.values)
    d_ent = codes[:n_ent]
    # codes are handed out in order of first appearance, so a new code is a new running maximum
    new = d_ent > np.concatenate(([-1], np.maximum.accumulate(d_ent)[:-1])) if n_ent else np.zeros(0, bool)
    first = np.flatnonzero(new)
    if not np.array_equal(d_ent[first], np.arange(len(first))):  # pragma: no cover - defensive
        _, first = np.unique(d_ent, return_index=True)
    n_known = len(first)
    d_ent = ent.expand(d_ent)
    dup = np.bincount(d_ent, minlength=n_known)[d_ent] > 1 if len(d_ent) else np.zeros(0, bool)
    pos, key = {}, {}
    start = n_ent
    for name in EVENT_TABLES:
        r = runs[name]
        d = codes[start: start + len(r.values)]
        start += len(r.values)
        pos[name] = r.expand(np.where(d < n_known, first[np.minimum(d, max(n_known - 1, 0))], -1)) if n_known \
            else r.expand(np.full(len(d), -1, dtype=np.int64))
        key[name] = _RunKeys(d, r.lengths)
    return _Lookup(dup, pos, key)


def check_entities(df: pd.DataFrame, f: Findings, as_of: pd.Timestamp | None, dup: np.ndarray,
                    ids_arrow: pa.Array) -> None:
    ids = df["entity_id"]
    reasons = uscc.reason_codes(ids_arrow)
    found, first = np.unique(reasons, return_index=True)
    for r in found[np.argsort(first)]:
        if r > 1:  # 1 is missing, reported as a missing value
            f.add("entities", "entity_id", f"invalid USCC: {uscc.REASONS[r - 1]}", reasons == r)
    f.add("entities", "entity_id", "duplicate entity_id", dup & ids.notna().to_numpy())
    codes, distinct = pd.factorize(df["industry"])  # a few hundred codes: each matched once
    ok = np.append(pd.Series(distinct, dtype="str").str.fullmatch(INDUSTRY_PATTERN).fillna(False)
                   .to_numpy(dtype=bool), True)  # code -1 (missing) is not this check's concern
    f.add("entities", "industry", "not a GB/T 4754-2017 code (section letter + up to 4 digits)", ~ok[codes])
    town = df["town"]
    f.note("entities", "town", f"not one of the {len(YIWU_TOWNS)} Yiwu towns/streets (grouped as 其他 by the model)",
           (town.notna() & ~town.isin(YIWU_TOWNS)).to_numpy())
    f.add("entities", "closed_on", "before established_on", (df["closed_on"] < df["established_on"]).to_numpy())
    f.add("entities", "closed_on", "status is revoked/cancelled but closed_on is empty",
          (df["status"].isin(["revoked", "cancelled"]) & df["closed_on"].isna()).to_numpy())
    if as_of is not None:
        f.add("entities", "established_on", f"after as_of {as_of.date()}", (df["established_on"] > as_of).to_numpy())


def _duplicated(key: _RunKeys, year: pd.Series) -> np.ndarray:
    """Rows whose (entity, year) occurs more than once; a missing year equals a missing year."""
    ycode = year.to_numpy(dtype="int64", na_value=1947) - 1947  # years are 1949..2100 by now; missing is 0
    n = len(ycode)
    if key.lengths is not None and n and np.bincount(key.keys).max() == 1:
        # each entity is one run: duplicates can only sit inside a run; none if years rise there
        inside = np.ones(n, dtype=bool)
        inside[np.cumsum(key.lengths)[:-1]] = False
        inside[0] = False
        if (ycode[1:] > ycode[:-1])[inside[1:]].all():
            return np.zeros(n, dtype=bool)
    k = (key.keys if key.lengths is None else np.repeat(key.keys, key.lengths)) * 256 + ycode
    s = np.sort(k)
    twice = s[1:][s[1:] == s[:-1]]
    return np.isin(k, twice) if len(twice) else np.zeros(n, dtype=bool)


def check_events(name: str, df: pd.DataFrame, known: np.ndarray, established: np.ndarray,
                  f: Findings, as_of: pd.Timestamp | None, pos: np.ndarray, key: _RunKeys) -> None:
    table = TABLES[name]
    has_id = df["entity_id"].notna().to_numpy()
    f.add(name, "entity_id", "entity_id not in entities", has_id & (pos < 0))
    f.add(name, "entity_id", "its entity was rejected", ~known[pos])
    est = established[pos]
    dcol = table.date_column
    if dcol is not None:
        d = df[dcol].to_numpy()
        f.add(name, dcol, "before the entity was established", d < est)
        if as_of is not None:
            f.add(name, dcol, f"after as_of {as_of.date()}", d > np.datetime64(as_of, "s"))
    if name == "penalties":
        f.add(name, "repaired_on", "before decided_on", (df["repaired_on"] < df["decided_on"]).to_numpy())
    if name == "list_records":
        f.add(name, "removed_on", "before entered_on", (df["removed_on"] < df["entered_on"]).to_numpy())
    if name == "annual_reports":
        year = np.clip(df["year"].to_numpy(dtype="int64", na_value=1970), 1900, 2101)
        filed = df["filed_on"].to_numpy(dtype="datetime64[s]").view(np.int64)
        f.add(name, "filed_on", "filed before the report year ended", (filed != _NAT) & (filed < _NEXT_JAN1[year - 1900]))
        f.add(name, "year", "duplicate (entity_id, year)", _duplicated(key, df["year"]))
    if name == "tax_ratings":
        f.add(name, "year", "duplicate (entity_id, year)", _duplicated(key, df["year"]))
