"""Loading and validating a dataset: a directory of CSV or Parquet files, one per table.

Strict mode raises one :class:`DataValidationError` listing every problem (table, column, rows,
reason). Lenient mode moves bad rows to ``Dataset.rejects`` with their reasons; counts reconcile:
rows in = rows kept + rows rejected, per table, counting lines that could not even be parsed.
Row numbers are 1-based data rows of the source file (row 1 is line 2 of a CSV).

Repairs that cannot change meaning are made and reported in ``Dataset.notes`` rather than
rejected: entity ids are Unicode-normalised (NFKC), trimmed and upper-cased (a USCC is upper case
by standard), blank cells are missing, zoned timestamps become Asia/Shanghai dates.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataValidationError, Problem
from . import uscc
from .contract import EVENT_TABLES, INDUSTRY_PATTERN, TABLES, Column, Table
from .dates import LOCAL_TZ, MAX_DATE, MIN_DATE, ZONED, parse_as_of
from .io import write_table
from .sources.files import (
    EXTENSIONS,
    RawTable,
    Unreadable,
    apply_headers,
    find_table,
    read_table_file,
)
from .sources.profile import Profile, load_profile

__all__ = ["REJECT_COLUMNS", "Dataset", "empty_table", "index_of", "load_dataset", "validation_report"]

MAX_ROWS_SHOWN = 5
_MIN_DAY, _MAX_DAY = (int(np.datetime64(d.date(), "D").astype(np.int64)) for d in (MIN_DATE, MAX_DATE))
_NAT = np.iinfo(np.int64).min  # NaT as int64
_TICKS_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
#: 1 January of the year after 1900 + i, in seconds since 1970 (report years are 1949..2100)
_NEXT_JAN1 = (np.arange(1901, 2103) - 1970).astype("datetime64[Y]").astype("datetime64[s]").view(np.int64)
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}
REJECT_COLUMNS = ["table", "row", "entity_id", "column", "reason", "file", "header"]


@dataclass
class Dataset:
    """Typed tables of one dataset. Every table is a DataFrame with the contract's columns.

    ``rejects`` lists quarantined rows (lenient mode): table, row (1-based data row), entity_id,
    column, reason. ``counts[table] = (rows_in, rows_kept, rows_rejected)``. ``notes`` lists
    repairs made while loading (normalised ids, converted time zones, mapped codes); ``sources``
    where each table came from (file, format, encoding, mapped headers).

    Tables are treated as immutable: derived lookups (entity positions, pools) are cached against
    the table objects they came from, so assigning a new table (``ds.penalties = df``) or using
    :meth:`replace` recomputes them. Do not modify a table in place.
    """

    entities: pd.DataFrame
    penalties: pd.DataFrame
    inspections: pd.DataFrame
    complaints: pd.DataFrame
    annual_reports: pd.DataFrame
    list_records: pd.DataFrame
    tax_ratings: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TABLES and "_cache" in self.__dict__:
            self.__dict__["_cache"].clear()
        object.__setattr__(self, name, value)

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def derived(self, key: Any, tables: tuple[str, ...], make: Callable[[], Any]) -> Any:
        """``make()``, cached under ``key`` for as long as ``tables`` are the same objects."""
        objs = tuple(self.table(t) for t in tables)
        hit = self._cache.get(key)
        if hit is not None and len(hit[0]) == len(objs) and all(a is b for a, b in zip(hit[0], objs, strict=True)):
            return hit[1]
        value = make()
        self._cache[key] = (objs, value)
        return value

    def entity_codes(self, name: str) -> np.ndarray:
        """Position (int64) in ``entities`` of each row's entity in table ``name``; -1 if unknown."""
        return self.derived(("codes", name), ("entities", name),
                            lambda: index_of(self.entities["entity_id"], self.table(name)["entity_id"]))

    def issue_counts(self) -> pd.Series:
        """Quarantined event rows per entity (entity_id index, int): an entity scored on a partial
        history says so through this count."""
        r = self.rejects
        if not len(r):
            return pd.Series(dtype="int64", name="data_issues")
        ev = r[(r["table"] != "entities") & r["entity_id"].notna()]
        return ev.groupby(ev["entity_id"].astype(str)).size().astype("int64").rename("data_issues")

    def fingerprint(self) -> str:
        """SHA-256 over every table's content (order-sensitive); identifies training data."""
        h = hashlib.sha256()
        for name in TABLES:
            df = self.table(name)
            h.update(name.encode())
            h.update(str(len(df)).encode())
            if len(df):
                h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
        return h.hexdigest()

    def save(self, path: str | Path, format: str = "parquet") -> Path:
        """Write every table to ``path`` as ``<table>.<format>`` (atomic per file; data, so no
        spreadsheet formula guard)."""
        path = Path(path)
        for name in TABLES:
            write_table(self.table(name), path / f"{name}.{format}", neutralise=False)
        return path

    def replace(self, **tables: pd.DataFrame) -> Dataset:
        """A copy with some tables replaced (derived lookups are recomputed)."""
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise TypeError(f"replace: unknown table(s) {sorted(unknown)}")
        kw = {n: tables.get(n, self.table(n)) for n in TABLES}
        return Dataset(**kw, rejects=self.rejects, counts=dict(self.counts), source=self.source,
                       notes=list(self.notes), sources=dict(self.sources))


def index_of(values: pd.Series, lookup: pd.Series) -> np.ndarray:
    """Position (int64) in ``values`` of each element of ``lookup``; -1 where absent.

    Arrow's hash lookup is ~3× faster than a pandas Index on string ids; ``values`` must be unique.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        res = pc.index_in(pa.array(lookup, type=pa.string()), value_set=pa.array(values, type=pa.string()))
        return res.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    except (ImportError, pa.ArrowInvalid, pa.ArrowTypeError):  # non-string ids: the pandas path
        return pd.Index(values).get_indexer(lookup).astype(np.int64)


def empty_table(name: str) -> pd.DataFrame:
    """An empty, correctly typed table."""
    return _coerce(TABLES[name], pd.DataFrame({c: pd.Series([], dtype=object) for c in TABLES[name].column_names}))


# ----------------------------------------------------------------------------- checking

class _Findings:
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
        self.runs: dict[str, _Runs] = {}  # each table's entity_id column as runs

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
class _Runs:
    """An id column as runs of equal consecutive values (event tables usually come grouped by
    entity): ``values`` holds one normalised id per run, ``lengths`` how many rows it covers."""

    values: pa.Array
    lengths: np.ndarray | None  # None: one run per row

    def expand(self, per_run: np.ndarray) -> np.ndarray:
        return per_run if self.lengths is None else np.repeat(per_run, self.lengths)


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
    """Trimmed text (blank already missing) in Unicode NFKC (full-width ９１ → 91), trimmed, upper
    case; blank → missing. The normalisation runs only when a value is not ASCII."""
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:  # True, or None when every value is missing
        arr = pc.ascii_upper(arr)
    else:
        arr = pc.utf8_upper(pc.utf8_trim_whitespace(pc.utf8_normalize(arr, "NFKC")))
    return _blank_to_null(arr)


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


def _ids(raw: pd.Series, grouped: bool = True) -> tuple[pd.Series, np.ndarray, int, _Runs]:
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
    runs = _Runs(norm, lengths)
    if trimmed.null_count == u.null_count:  # no blank cells: present wherever the raw cell is
        present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    else:
        present = runs.expand(present)
    return _str_series(out, raw.index), present, n_changed, runs


def _parse_text_dates(txt: pd.Series, formats: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """ISO text (then ``formats``) as datetime64[s], not yet floored to the day, and which values
    carried a time zone and were converted to Asia/Shanghai."""
    n = len(txt)
    present = txt.notna().to_numpy()
    zoned = np.zeros(n, dtype=bool)
    if n:
        long = (txt.str.len() > 10).fillna(False).to_numpy(dtype=bool)
        if long.any():
            zoned[long] = txt[long].str.match(ZONED).fillna(False).to_numpy(dtype=bool)
    s = pd.to_datetime(txt.mask(zoned), format="ISO8601", errors="coerce") if n else \
        pd.Series([], dtype="datetime64[s]")
    if zoned.any():
        z = pd.to_datetime(txt[zoned].str.replace(r"\s+", "", regex=True), format="ISO8601", errors="coerce",
                           utc=True)
        s = s.astype("datetime64[s]")
        s[zoned] = z.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[s]").to_numpy()
    converted = zoned & s.notna().to_numpy()
    s = pd.Series(s, index=txt.index).astype("datetime64[s]")
    for fmt in formats if n else ():  # the profile's own formats, for what ISO 8601 did not read
        todo = present & s.isna().to_numpy()
        if not todo.any():
            break
        s[todo] = pd.to_datetime(txt[todo], format=fmt, errors="coerce").astype("datetime64[s]").to_numpy()
    return s.to_numpy(dtype="datetime64[s]"), converted


def _dates(table: Table, col: Column, raw: pd.Series, f: _Findings | None,
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
        parsed, converted = _parse_text_dates(uniq, formats)
        v = _expand(parsed, codes, np.datetime64("NaT"))
        present = codes >= 0
        if f is not None:
            f.note(table.name, col.name, f"with a time zone converted to {LOCAL_TZ} dates",
                   _expand(converted, codes, False))
    days, nat = _day_numbers(v)
    bad = present & nat
    out_of_range = ~nat & ((days < _MIN_DAY) | (days > _MAX_DAY))
    if f is not None:
        f.add(table.name, col.name, "not an ISO date (YYYY-MM-DD)", bad)
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


def _numbers(table: Table, col: Column, raw: pd.Series, f: _Findings | None) -> tuple[pd.Series, np.ndarray]:
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


def _coerce(table: Table, df: pd.DataFrame, f: _Findings | None = None, profile: Profile | None = None) -> pd.DataFrame:
    """Cast every contract column to its type; unparseable or implausible values are findings.
    ``profile`` maps source code values and adds date formats."""
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
            present = s.notna().to_numpy()
            if col.kind == "code" and col.name in codes and n:
                mapped = s.map(codes[col.name])
                if f is not None:
                    f.note(table.name, col.name, f"mapped to contract codes by profile {profile.name!r}",
                           mapped.notna().to_numpy())
                s = mapped.astype("str").where(mapped.notna(), s)
            null = s.isna().to_numpy()
            if col.kind == "code" and f is not None:
                bad = ~null & ~s.isin(col.codes).to_numpy()
                if bad.any():
                    found = pd.unique(s[bad])
                    shown = ", ".join(repr(v) for v in found[:5]) + (" …" if len(found) > 5 else "")
                    f.add(table.name, col.name, f"not one of {list(col.codes)} (found {shown})", bad)
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
    """An integer per distinct id, one per run of equal ids (``lengths`` as in :class:`_Runs`)."""

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


class _HashedIndex:
    """Entity ids that are all 18 bytes long and distinct (USCCs), matched by a 64-bit hash of
    their bytes, each match verified byte for byte. :meth:`build` gives None otherwise (then
    :func:`_lookup_dictionary` matches every table at once)."""

    def __init__(self, words: tuple[np.ndarray, ...], index: pd.Index) -> None:
        self.words, self.index = words, index

    @classmethod
    def build(cls, ent: _Runs) -> _HashedIndex | None:
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

    def match(self, r: _Runs) -> tuple[np.ndarray, _RunKeys]:
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


def _lookup_dictionary(runs: dict[str, _Runs]) -> _Lookup:
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


def _check_entities(df: pd.DataFrame, f: _Findings, as_of: pd.Timestamp | None, dup: np.ndarray,
                    ids_arrow: pa.Array) -> None:
    ids = df["entity_id"]
    reasons = uscc.reason_codes(ids_arrow)
    found, first = np.unique(reasons, return_index=True)
    for r in found[np.argsort(first)]:
        if r > 1:  # 1 is missing, reported as a missing value
            f.add("entities", "entity_id", f"invalid USCC: {uscc.REASONS[r - 1]}", reasons == r)
    f.add("entities", "entity_id", "duplicate entity_id", dup & ids.notna().to_numpy())
    ind = df["industry"]
    f.add("entities", "industry", "not a GB/T 4754-2017 code (section letter + up to 4 digits)",
          (ind.notna() & ~ind.str.fullmatch(INDUSTRY_PATTERN).fillna(False).astype(bool)).to_numpy())
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


def _check_events(name: str, df: pd.DataFrame, known: np.ndarray, established: np.ndarray,
                  f: _Findings, as_of: pd.Timestamp | None, pos: np.ndarray, key: _RunKeys) -> None:
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


def _read_file(path: Path, name: str, prof: Profile, encoding: str | None) -> tuple[RawTable | None, list[Problem]]:
    """Table ``name``'s file in directory ``path``, and the problems that stop loading."""
    fatal: list[Problem] = []
    names = prof.tables[name].names
    p = find_table(path, names, name, fatal)
    if p is None:
        if TABLES[name].required and not fatal:
            fatal.append(Problem(name, None, f"file not found: {' or '.join(names)} "
                                             f"(.csv, .csv.gz, .xlsx or .parquet) in {path}"))
        return None, fatal
    try:
        return read_table_file(p, name, prof, encoding), fatal
    except Unreadable as e:
        fatal.append(Problem(name, None, f"cannot read {p.name}: {e}"))
    except Exception as e:  # a corrupt file: name it and what the reader said
        fatal.append(Problem(name, None, f"cannot read {p.name}: {type(e).__name__}: {e}"))
    return None, fatal


def _file_size(path: Path, name: str, prof: Profile) -> int:
    sizes = [(path / f"{n}{ext}").stat().st_size for n in prof.tables[name].names for ext in EXTENSIONS
             if (path / f"{n}{ext}").is_file()]
    return max(sizes, default=0)


def _workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


@dataclass
class _Prepared:
    """One table read and typed in a worker; its findings merge in table order afterwards."""

    raw: RawTable | None
    fatal: list[Problem]
    typed: pd.DataFrame | None = None
    findings: _Findings = field(default_factory=lambda: _Findings())
    error: Exception | None = None


def _prepare_tables(read: Callable[[str], tuple[RawTable | None, list[Problem]]], prof: Profile,
                    order: list[str]) -> dict[str, _Prepared]:
    """Read and type every table, the largest first, on up to one thread per core (Arrow and numpy
    release the GIL). Deterministic: each table has its own findings, merged by the caller."""

    def one(name: str) -> _Prepared:
        r, fatal = read(name)
        out = _Prepared(r, fatal)
        if r is None or fatal or (name == "entities" and len(r.df) == 0 and not r.malformed):
            return out
        try:
            out.typed = _coerce(TABLES[name], r.df, out.findings, prof)
        except Exception as e:  # raised by the caller, unless loading stops on a fatal problem anyway
            out.error = e
        return out

    return _in_parallel(one, order)


def _in_parallel(fn: Callable[[str], Any], names: list[str]) -> dict[str, Any]:
    """``{name: fn(name)}``, computed on up to one thread per core in the order given."""
    workers = min(_workers(), len(names))
    if workers <= 1:
        return {name: fn(name) for name in names}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yiwu-load") as pool:
        return dict(zip(names, pool.map(fn, names), strict=True))


def _read_database(url: str, prof: Profile, f: _Findings) -> dict[str, RawTable]:
    """Each table's relation in the database at ``url`` (the profile's names, first found)."""
    from .sources.database import read_tables

    out: dict[str, RawTable] = {}
    todo = {name: list(prof.tables[name].names) for name in TABLES}
    while todo:
        got = read_tables(url, {name: names[0] for name, names in todo.items()})
        nxt = {}
        for name, names in todo.items():
            df = got.get(name)
            if df is None:
                if len(names) > 1:
                    nxt[name] = names[1:]
                elif TABLES[name].required:
                    f.fatal.append(Problem(name, None, f"no table or view {' or '.join(prof.tables[name].names)} "
                                                       f"in the database {_redacted(url)}"))
                continue
            raw = RawTable(df, np.arange(1, len(df) + 1, dtype=np.int64), [], names[0], detail="database relation")
            try:
                out[name] = apply_headers(raw, name, prof)
            except Unreadable as e:
                f.fatal.append(Problem(name, None, f"cannot read {names[0]}: {e}"))
        todo = nxt
    return out


def _redacted(location: str) -> str:
    if "://" not in location:
        return location
    from .sources.database import redact

    return redact(location)


def load_dataset(path: str | Path, as_of: str | pd.Timestamp | None = None, strict: bool = True, *,
                 profile: str | Path | Profile | None = None, encoding: str | None = None) -> Dataset:
    """Load and validate the dataset in directory ``path``, or in the database at URL ``path``
    (``postgresql://…``, ``sqlite:///…``; see docs/sources-database.md).

    ``as_of`` (optional) also rejects events dated after it and entities established after it.
    ``strict=True`` raises :class:`DataValidationError` naming every problem; ``strict=False``
    quarantines bad rows in ``Dataset.rejects`` (an entity's events go with it). Missing, doubled
    or unreadable files, missing columns and an ``entities`` table without rows are always fatal.
    ``profile``: how the source names tables, headers, codes and dates (``"zh"`` ships; default
    the contract's own names). ``encoding``: of CSV files (default: UTF-8 or GB18030, detected).
    """
    location = str(path)
    as_of_ts = parse_as_of(as_of) if as_of is not None else None
    prof = load_profile(profile)
    f = _Findings()
    if "://" in location:
        tables = _read_database(location, prof, f)
        read, order = (lambda name: (tables.get(name), [])), list(TABLES)
    else:
        directory = Path(path)
        if not directory.is_dir():
            raise DataValidationError([Problem("dataset", None, f"directory not found: {directory}")])
        read = lambda name: _read_file(directory, name, prof, encoding)  # noqa: E731
        order = sorted(TABLES, key=lambda name: -_file_size(directory, name, prof))
    prepared = _prepare_tables(read, prof, order)
    for name in TABLES:
        f.fatal += prepared[name].fatal
    typed: dict[str, pd.DataFrame] = {}
    for name, table in TABLES.items():
        t = prepared[name]
        r = t.raw
        if r is None:
            empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in table.column_names})
            typed[name] = _coerce(table, empty, t.findings, prof)
            continue
        if name == "entities" and len(r.df) == 0 and not r.malformed:
            f.fatal.append(Problem(name, None, f"no rows: {r.file} has a header but no data"))
            continue
        f.rows[name], f.files[name] = r.rows, r
        if r.malformed:
            f.malformed[name] = r.malformed
    if f.fatal:
        raise DataValidationError(f.fatal)
    for name in TABLES:
        t = prepared[name]
        if t.error is not None:
            raise t.error
        typed.setdefault(name, t.typed)
        f.items += t.findings.items
        f.notes += t.findings.notes
        f.runs.update(t.findings.runs)

    ent = typed["entities"]
    for name in TABLES:  # tables without rows have no runs yet
        f.runs.setdefault(name, _Runs(pa.array([], pa.large_string()), None))
    hashed = _HashedIndex.build(f.runs["entities"])
    match = None if hashed is not None else _lookup_dictionary(f.runs)
    _check_entities(ent, f, as_of_ts, np.zeros(len(ent), dtype=bool) if match is None else match.dup,
                    f.runs["entities"].values)
    # position -1 (no entity) reads the appended last element: not a rejected entity, no date
    known = np.append(~f.bad_rows("entities", len(ent)), True)
    est = np.append(ent["established_on"].to_numpy(dtype="datetime64[s]"), np.datetime64("NaT"))

    def check(name: str) -> tuple[np.ndarray, _Findings]:
        pos, key = hashed.match(f.runs[name]) if hashed is not None else (match.pos[name], match.key[name])
        sub = _Findings()
        _check_events(name, typed[name], known, est, sub, as_of_ts, pos, key)
        return pos, sub

    checked = _in_parallel(check, sorted(EVENT_TABLES, key=lambda name: -len(typed[name])))
    positions = {}
    for name in EVENT_TABLES:
        positions[name], sub = checked[name]
        f.items += sub.items
    problems = f.problems()
    if strict and problems:
        raise DataValidationError(problems)

    rejects, counts, kept = [], {}, {}
    for name in TABLES:
        df = typed[name]
        bad = f.bad_rows(name, len(df))
        n_malformed = len(f.malformed.get(name, ()))
        counts[name] = (len(df) + n_malformed, int((~bad).sum()), int(bad.sum()) + n_malformed)
        kept[name] = df.loc[~bad].reset_index(drop=True) if bad.any() else df
        r = f.rejects(name, df)
        if r is not None:
            rejects.append(r)
    rej = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(columns=REJECT_COLUMNS)
    ds = Dataset(**kept, rejects=rej, counts=counts, source=_redacted(location), notes=list(f.notes),
                 sources={n: r.describe() for n, r in f.files.items()})
    if counts["entities"][2] == 0:  # entity positions unchanged: reuse the lookups made while checking
        for name, pos in positions.items():
            codes = pos[~f.bad_rows(name, len(pos))].astype(np.int64)
            ds.derived(("codes", name), ("entities", name), lambda c=codes: c)
    return ds


def validation_report(ds_or_error: Dataset | DataValidationError) -> str:
    """A readable multi-line report of a loaded dataset or of a validation error."""
    if isinstance(ds_or_error, DataValidationError):
        return str(ds_or_error)
    ds = ds_or_error
    lines = [f"dataset {ds.source}"]
    if ds.sources:
        lines.append("sources:")
        lines += [f"  {name:15s} ← {src}" for name, src in ds.sources.items()]
    for name, (n_in, n_kept, n_rej) in ds.counts.items():
        lines.append(f"  {name:15s} rows in {n_in:>10,d}  kept {n_kept:>10,d}  rejected {n_rej:>8,d}")
    if ds.notes:
        lines.append("notes (repaired, not rejected):")
        lines += [f"  {note}" for note in ds.notes]
    if len(ds.rejects):
        lines.append("rejected rows by reason:")
        for (t, reason), n in ds.rejects.groupby(["table", "reason"]).size().items():
            lines.append(f"  {t}: {reason} — {n} row(s)")
    else:
        lines.append("no problems found")
    return "\n".join(lines)
