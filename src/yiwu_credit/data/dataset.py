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
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import DataValidationError, Problem
from .checks import (
    REJECT_COLUMNS,
    Findings,
    HashedIndex,
    Runs,
    check_entities,
    check_events,
    coerce,
    id_runs,
    lookup_dictionary,
)
from .contract import EVENT_TABLES, TABLES
from .dates import parse_as_of
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

__all__ = ["REJECT_COLUMNS", "Dataset", "empty_table", "index_of", "load_dataset", "load_records",
           "validation_report"]

#: below this many rows in all, in-memory tables are validated on the calling thread
_PARALLEL_ROWS = 50_000



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
        """Position (int64) in ``entities`` of each row's entity in table ``name``; -1 if unknown.

        Distinct USCC-shaped ids are matched by a 64-bit hash of their bytes, each match checked
        byte for byte (:class:`~.checks.HashedIndex`, built once per entities table and shared by
        every table), one look-up per run of equal ids; other ids by Arrow's hash look-up."""
        def make() -> np.ndarray:
            hashed = self.derived(("hashed ids",), ("entities",),
                                  lambda: HashedIndex.build(id_runs(self.entities["entity_id"])))
            if hashed is None or not len(self.table(name)):
                return index_of(self.entities["entity_id"], self.table(name)["entity_id"])
            return hashed.match(id_runs(self.table(name)["entity_id"]))[0]

        return self.derived(("codes", name), ("entities", name), make)

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
    return coerce(TABLES[name], pd.DataFrame({c: pd.Series([], dtype=object) for c in TABLES[name].column_names}))


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
    findings: Findings = field(default_factory=lambda: Findings())
    error: Exception | None = None
    #: entities: the id index, the entity checks, and per entity position whether it is kept and
    #: its establishment date (index -1: no entity), made in the same worker right after typing
    hashed: HashedIndex | None = None
    checks: Findings | None = None
    known: np.ndarray | None = None
    established: np.ndarray | None = None
    #: event tables: each row's entity position and the row checks, made in the table's worker
    positions: np.ndarray | None = None
    row_checks: Findings | None = None


def _prepare_tables(read: Callable[[str], tuple[RawTable | None, list[Problem]]], prof: Profile,
                    order: list[str], as_of: pd.Timestamp | None = None,
                    parallel: bool = True) -> dict[str, _Prepared]:
    """Read, type and check every table on up to one thread per core (Arrow and numpy release the
    GIL): ``entities`` first (its worker then indexes the ids and checks the entities), then the
    other tables, the largest first; each event table's worker matches its ids and checks its rows
    as soon as the entities are done. With ids that are not distinct USCC-shaped strings the
    matching is left to the caller (:func:`lookup_dictionary` needs every table). Deterministic:
    each table has its own findings, merged by the caller in table order."""
    done = threading.Event()
    box: dict[str, _Prepared] = {}

    def entities(out: _Prepared) -> None:
        runs = out.findings.runs.get("entities")
        out.hashed = None if runs is None else HashedIndex.build(runs)
        if out.hashed is None:  # duplicates or other ids: no duplicates to look up first
            return
        out.checks = Findings()
        n = len(out.typed)
        check_entities(out.typed, out.checks, as_of, np.zeros(n, dtype=bool), runs.values)
        bad = out.findings.bad_rows("entities", n) | out.checks.bad_rows("entities", n)
        # position -1 (no entity) reads the appended last element: not a rejected entity, no date
        out.known = np.append(~bad, True)
        out.established = np.append(out.typed["established_on"].to_numpy(dtype="datetime64[s]"),
                                    np.datetime64("NaT"))

    def events(name: str, out: _Prepared) -> None:
        done.wait()
        ent = box.get("entities")
        runs = out.findings.runs.get(name)
        if ent is None or ent.known is None or runs is None:
            return
        pos, key = ent.hashed.match(runs)
        out.row_checks = Findings()
        check_events(name, out.typed, ent.known, ent.established, out.row_checks, as_of, pos, key)
        out.positions = pos

    def one(name: str) -> _Prepared:
        try:
            r, fatal = read(name)
            out = _Prepared(r, fatal)
            if r is None or fatal or (name == "entities" and len(r.df) == 0 and not r.malformed):
                return out
            try:
                out.typed = coerce(TABLES[name], r.df, out.findings, prof)
                if name == "entities":
                    entities(out)
                elif name in EVENT_TABLES:
                    events(name, out)
            except Exception as e:  # raised by the caller, unless loading stops on a fatal problem anyway
                out.error = e
            if name == "entities":
                box["entities"] = out
            return out
        finally:
            if name == "entities":  # whatever happened: the event tables' workers must not wait forever
                done.set()

    order = ["entities", *(n for n in order if n != "entities")]
    return _in_parallel(one, order) if parallel else {name: one(name) for name in order}


def _in_parallel(fn: Callable[[str], Any], names: list[str]) -> dict[str, Any]:
    """``{name: fn(name)}``, computed on up to one thread per core, started in the order given."""
    workers = min(_workers(), len(names))
    if workers <= 1:
        return {name: fn(name) for name in names}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yiwu-load") as pool:
        return dict(zip(names, pool.map(fn, names), strict=True))


def _read_database(url: str, prof: Profile, f: Findings) -> dict[str, RawTable]:
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
            got_table = _native_table(df, name, prof, names[0], "database relation", f)
            if got_table is not None:
                out[name] = got_table
        todo = nxt
    return out


def _native_table(df: pd.DataFrame, name: str, prof: Profile, file: str, detail: str,
                  f: Findings) -> RawTable | None:
    """Rows with native typed values (a database relation, in-memory records) as table ``name``:
    rows numbered 1..n, headers mapped by ``prof``; a header problem is fatal (in ``f``)."""
    raw = RawTable(df, np.arange(1, len(df) + 1, dtype=np.int64), [], file, detail=detail)
    try:
        return apply_headers(raw, name, prof)
    except Unreadable as e:
        f.fatal.append(Problem(name, None, f"cannot read {file}: {e}"))
    return None


def _record_frame(rows: Sequence[Any], name: str, prof: Profile, f: Findings) -> pd.DataFrame | None:
    """A list of records (mappings of column → value) as an object-typed frame: every value is
    read as a file cell is (missing-likes — None, NaN, NaT, NA, blank — are missing; numbers,
    booleans and dates by their text), so typed and text records give the same verdicts. A key
    absent from a record is a missing value; a key that names no column (of the contract or the
    profile's headers) is fatal."""
    bad = [i for i, r in enumerate(rows, 1) if not isinstance(r, Mapping)]
    if bad:
        f.fatal.append(Problem(name, None, f"row(s) {bad[:5]} are not records (mappings of column to value)"))
        return None
    tm = prof.tables[name]
    known = {h: c for c in TABLES[name].column_names for h in (c, *tm.columns.get(c, ()))}
    keys = list(dict.fromkeys(k for r in rows for k in r))
    unknown = [k for k in keys if str(k).strip() not in known and str(k).strip() not in tm.ignore]
    if unknown:
        f.fatal.append(Problem(name, None, f"unknown field(s) {unknown[:5]}; fields are {TABLES[name].column_names}"))
        return None
    given = {known[str(k).strip()] for k in keys if str(k).strip() in known}
    keys += [c for c in TABLES[name].column_names if c not in given]
    return pd.DataFrame({k: pd.Series([r.get(k) for r in rows], dtype=object) for k in keys},
                        index=pd.RangeIndex(len(rows)))


def load_records(tables: Mapping[str, pd.DataFrame | Sequence[Mapping[str, Any]]],
                 as_of: str | pd.Timestamp | None = None, strict: bool = True, *,
                 profile: str | Path | Profile | None = None, source: str = "records") -> Dataset:
    """Validate in-memory tables — DataFrames or lists of records (column → value) — into a
    :class:`Dataset`, exactly as :func:`load_dataset` validates a directory or a database: the
    same typing, codes, ranges, dates, USCC check, id normalisation and profile mapping, the same
    rejects, notes, counts and ``data_issues``. ``tables`` maps a contract table name (or the
    profile's name of it) to its rows; a table left out has no rows (``entities`` must have rows).

    DataFrame columns keep their types (as a database relation's do); record values are read by
    their text (``2016`` and ``"2016"``, ``True`` and ``"True"`` give the same verdict; None,
    NaN, NaT and blanks are missing). An unknown table name or field is always fatal. ``strict``
    and ``as_of`` as in :func:`load_dataset`; row N of a reject is the N-th record (1-based).
    Small inputs are validated on the calling thread (no thread pool: online requests)."""
    as_of_ts = parse_as_of(as_of) if as_of is not None else None
    prof = load_profile(profile)
    f = Findings()
    alias = {n: name for name in TABLES for n in (name, *prof.tables[name].names)}
    frames: dict[str, RawTable] = {}
    for key, rows in tables.items():
        name = alias.get(str(key))
        if name is None:
            f.fatal.append(Problem(str(key), None, f"unknown table {key!r}; tables are {list(TABLES)}"))
            continue
        if name in frames:
            f.fatal.append(Problem(name, None, f"table given twice (as {key!r} and another name)"))
            continue
        if isinstance(rows, pd.DataFrame):
            df = rows.reset_index(drop=True)
        elif isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
            df = _record_frame(rows, name, prof, f)
        else:
            f.fatal.append(Problem(name, None, f"expected a DataFrame or a list of records, got {type(rows).__name__}"))
            continue
        if df is not None:
            raw = _native_table(df, name, prof, f"{name} ({source})", source, f)
            if raw is not None:
                frames[name] = raw
    for name in TABLES:  # a table left out: no rows
        if name not in frames and not any(p.table == name for p in f.fatal):
            frames[name] = RawTable(_record_frame([], name, prof, f), np.zeros(0, dtype=np.int64), [],
                                    f"{name} ({source})", headers={c: c for c in TABLES[name].column_names},
                                    detail=source)
    if f.fatal:
        raise DataValidationError(f.fatal)
    small = sum(len(r.df) for r in frames.values()) < _PARALLEL_ROWS
    return _validated(lambda name: (frames.get(name), []), list(TABLES), prof, as_of_ts, strict, source, f,
                      parallel=not small)


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
    f = Findings()
    if "://" in location:
        tables = _read_database(location, prof, f)
        read, order = (lambda name: (tables.get(name), [])), list(TABLES)
    else:
        directory = Path(path)
        if not directory.is_dir():
            raise DataValidationError([Problem("dataset", None, f"directory not found: {directory}")])
        read = lambda name: _read_file(directory, name, prof, encoding)  # noqa: E731
        order = sorted(TABLES, key=lambda name: -_file_size(directory, name, prof))
    return _validated(read, order, prof, as_of_ts, strict, location, f)


def _validated(read: Callable[[str], tuple[RawTable | None, list[Problem]]], order: list[str], prof: Profile,
               as_of_ts: pd.Timestamp | None, strict: bool, location: str, f: Findings,
               parallel: bool = True) -> Dataset:
    """Type and check the tables ``read(name)`` gives, and build the Dataset (or raise): the one
    validation of every source (files, a database, in-memory records)."""
    prepared = _prepare_tables(read, prof, order, as_of_ts, parallel)
    for name in TABLES:
        f.fatal += prepared[name].fatal
    typed: dict[str, pd.DataFrame] = {}
    for name, table in TABLES.items():
        t = prepared[name]
        r = t.raw
        if r is None:
            empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in table.column_names})
            typed[name] = coerce(table, empty, t.findings, prof)
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
        f.runs.setdefault(name, Runs(pa.array([], pa.large_string()), None))
    pe = prepared["entities"]
    hashed = pe.hashed
    match = None if hashed is not None else lookup_dictionary(f.runs)
    if pe.checks is not None:
        f.items += pe.checks.items
        f.notes += pe.checks.notes
        known, est = pe.known, pe.established
    else:
        check_entities(ent, f, as_of_ts, match.dup, f.runs["entities"].values)
        known = np.append(~f.bad_rows("entities", len(ent)), True)
        est = np.append(ent["established_on"].to_numpy(dtype="datetime64[s]"), np.datetime64("NaT"))

    def check(name: str) -> tuple[np.ndarray, Findings]:
        t = prepared[name]
        if t.positions is not None:  # matched and checked in the table's own worker
            return t.positions, t.row_checks
        pos, key = hashed.match(f.runs[name]) if hashed is not None else (match.pos[name], match.key[name])
        sub = Findings()
        check_events(name, typed[name], known, est, sub, as_of_ts, pos, key)
        return pos, sub

    todo = [n for n in EVENT_TABLES if prepared[n].positions is None]
    later = sorted(todo, key=lambda name: -len(typed[name]))
    checked = {**{n: check(n) for n in EVENT_TABLES if n not in todo},
               **(_in_parallel(check, later) if parallel else {n: check(n) for n in later})}
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
