"""Datasets in and results out of a database: PostgreSQL (and compatible servers) or SQLite.

URLs
    ``postgresql://user:password@host:port/dbname`` (also ``postgres://``; any part may be left out
    and comes from the libpq environment variables ``PGHOST``, ``PGPORT``, ``PGUSER``,
    ``PGPASSWORD``, ``PGDATABASE``, ``PGPASSFILE``, ``PGSSLMODE``... or ``~/.pgpass``);
    ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``. ``mysql://`` URLs are
    recognised but not supported yet (a clear :class:`~yiwu_credit.errors.UsageError`): no MySQL
    server is tested here. Passwords are never printed: every message passes through :func:`redact`.

Reading (:func:`read_tables`) returns each relation's rows with its own column names and native
types (dates as ``datetime64``, ``timestamptz`` as UTC-zoned ``datetime64``, numbers as numbers,
booleans as ``boolean``, text as text); :mod:`yiwu_credit.data.dataset` coerces them. PostgreSQL rows
travel as Arrow record batches over the binary COPY protocol (ADBC driver); SQLite rows through the
standard library, ``chunk_rows`` at a time.

Row order (row N in a reject is the N-th row read): a plain table is read in physical order
(``ORDER BY ctid`` in PostgreSQL, ``ORDER BY rowid`` in SQLite), which is insertion order for a
table that was loaded and not updated since; a view (or a table without row ids) is read in the
order the view itself defines, unless ``order_by`` names columns to sort on.

Writing (:func:`write_run`) puts a run's result tables into the database in one transaction: the
run's previous rows are deleted and the new ones inserted, and a row describing the run (command,
time, audit JSON, row counts) goes to ``yiwu_runs``; all of it lands or none of it does.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import DataValidationError, OutputError, Problem, UsageError
from ..contract import TABLES
from .dburl import (
    Unreachable,
    candidates,
    is_database_url,
    pg_connect,
    quote_ident,
    redact,
    refuse_mysql,
    scrub,
    split_name,
    sqlite_path,
    url_scheme,
)
from .runs import clear_earlier_run

__all__ = [
    "RUNS_TABLE", "SCHEMES", "is_database_url", "read_tables", "redact", "write_dataset", "write_run",
]

log = logging.getLogger(__name__)

#: URL schemes recognised as databases (``mysql`` is recognised only to be refused clearly).
SCHEMES = ("postgresql", "postgres", "sqlite", "mysql")
#: The table beside the results that describes each run.
RUNS_TABLE = "yiwu_runs"
# ----------------------------------------------------------------------------- reading

def read_tables(url: str, relations: Mapping[str, str], *, chunk_rows: int = 250_000,
                order_by: Mapping[str, str | list[str]] | None = None, workers: int = 1) -> dict[str, pd.DataFrame | None]:
    """Read each relation: ``{contract table: relation}`` → ``{contract table: rows or None}``.

    A relation is a table or view name, optionally ``schema.table`` (double-quote a part that
    holds a dot; a name is matched exactly, then folded to lower case). ``None`` means the
    relation does not exist (the caller decides whether that table is required). Columns keep the
    relation's own names and order. ``order_by`` (table → column or columns) sorts a relation
    instead of the default physical order (see the module docstring). ``chunk_rows`` is the
    number of rows fetched at a time from SQLite (PostgreSQL streams Arrow batches of its own
    size). ``workers > 1`` PostgreSQL connections share one snapshot and read a large table's
    block ranges concurrently (PostgreSQL 14+): worth it only when the server has cores to spare
    (on the 2-core benchmark machine, server included, one connection was faster). All relations
    are read from one consistent snapshot. Raises :class:`DataValidationError` (table ``database`` or the table concerned) when
    the server cannot be reached, a relation cannot be read (permission...) or an ``order_by``
    column is unknown; no message contains the password.
    """
    scheme = url_scheme(url)
    if scheme == "mysql":
        refuse_mysql(url)
    if chunk_rows < 1 or workers < 1:
        raise UsageError(f"chunk_rows and workers must be >= 1 (got {chunk_rows}, {workers})")
    order_by = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (order_by or {}).items()}
    unknown = set(order_by) - set(relations)
    if unknown:
        raise UsageError(f"order_by names table(s) not being read: {sorted(unknown)}")
    try:
        reader = _PgReader(url, workers) if scheme == "postgresql" else _SqliteReader(url, chunk_rows)
    except Unreachable as e:
        raise DataValidationError([Problem("database", None, str(e))]) from None
    out: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    with reader:
        for name, rel in relations.items():
            t0 = time.perf_counter()
            try:
                out[name] = reader.read(rel, order_by.get(name))
            except _ReadError as e:
                problems.append(Problem(name, None, str(e)))
                continue
            got = out[name]
            log.debug("read %s from %s %s: %s rows in %.2fs", name, redact(url), rel,
                      "no such relation," if got is None else f"{len(got):,}", time.perf_counter() - t0)
    if problems:
        raise DataValidationError(problems)
    return out


class _ReadError(Exception):
    """A relation that exists but cannot be read (message already redacted)."""


#: PostgreSQL types read as they are; others are cast on the server (numeric to float8, the rest,
#: e.g. uuid, json, inet, arrays or domains, to text).
_PG_NATIVE = frozenset({"text", "varchar", "bpchar", "name", "int2", "int4", "int8", "float4", "float8", "bool",
                        "date", "timestamp", "timestamptz"})
_PG_CAST = {"numeric": "float8", "money": "numeric::float8"}
_PARALLEL_MIN_BLOCKS = 1024  # 8 MiB: smaller tables are read by one connection


class _PgReader:
    """Reads relations from one consistent snapshot (a read-only REPEATABLE READ transaction,
    shared with ``workers - 1`` helper connections through an exported snapshot, as pg_dump does).

    Heap tables are read in physical order without a sort: one sequential scan from block 0
    (``synchronize_seqscans`` and parallel workers off), or, with helpers, consecutive block ranges
    (TID range scans, PostgreSQL 14+) read concurrently and concatenated in order. A server that
    refuses those settings gets ``ORDER BY ctid`` instead.
    """

    def __init__(self, url: str, workers: int):
        self.url = url
        self.conns: list[Any] = []
        self.curs: list[Any] = []
        self.physical = True
        self._open()
        try:
            self.cur.execute("SELECT current_setting('server_version_num')::int")
            version = int(self.cur.fetchone()[0])
            snapshot = None
            if workers > 1 and version >= 140000 and self.physical:
                self.cur.execute("SELECT pg_export_snapshot()")
                snapshot = str(self.cur.fetchone()[0])
        except Exception as e:
            self.__exit__()
            raise Unreachable(f"cannot start reading from {redact(self.url)}: {scrub(str(e), self.url)}") from None
        if snapshot:
            try:
                for _ in range(workers - 1):
                    self._open(snapshot)
            except Unreachable:
                self.__exit__()
                raise

    @property
    def cur(self) -> Any:
        return self.curs[0]

    def _open(self, snapshot: str | None = None) -> None:
        conn = pg_connect(self.url, autocommit=True)
        cur = conn.cursor()
        self.conns.append(conn)
        self.curs.append(cur)
        try:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if snapshot:
                cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        except Exception as e:
            raise Unreachable(f"cannot start a read transaction on {redact(self.url)}: {scrub(str(e), self.url)}") \
                from None
        # one scan in block order: a scan joining another one mid-table (synchronize_seqscans) or a
        # parallel scan would return rows in another order
        for setting in ("synchronize_seqscans = off", "max_parallel_workers_per_gather = 0"):
            try:
                cur.execute(f"SET LOCAL {setting}")
            except Exception:  # pragma: no cover - a compatible server without the setting
                log.debug("server refused SET %s; ordering by ctid instead", setting)
                self.physical = False
                cur.execute("ROLLBACK")
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def __enter__(self) -> _PgReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        for cur, conn in zip(self.curs, self.conns, strict=False):
            try:
                cur.execute("COMMIT")
            except Exception:
                log.debug("ending a read transaction failed")
            try:
                cur.close()
                conn.close()
            except Exception:
                log.debug("closing a read connection failed")
        self.curs, self.conns = [], []

    def _err(self, rel: str, e: Exception) -> _ReadError:
        msg = scrub(str(e), self.url)
        msg = re.sub(r"^\w+: (Failed to \w+ query: )?(ERROR: )?", "", msg)
        msg = msg.split(" LINE 1:")[0].split(" Query was:")[0]
        return _ReadError(f"cannot read {rel} from {redact(self.url)}: {msg}")

    def _resolve(self, rel: str) -> tuple[str, str, int] | None:
        for cand in candidates(rel):
            try:
                self.cur.execute("SELECT c.relkind::text, CASE WHEN c.relkind IN ('r', 'm', 't') THEN "
                                 "pg_relation_size(c.oid) / current_setting('block_size')::int ELSE 0 END "
                                 "FROM pg_catalog.pg_class c WHERE c.oid = to_regclass($1)", parameters=(cand,))
                row = self.cur.fetchone()
            except Exception as e:
                raise self._err(rel, e) from None
            if row is not None:
                return cand, str(row[0]), int(row[1])
        return None

    def _fetch(self, cur: Any, sql: str) -> Any:
        import pyarrow as pa

        cur.execute(sql)
        reader = cur.fetch_record_batch()
        return pa.Table.from_batches(list(reader), schema=reader.schema)

    def read(self, rel: str, order: list[str] | None) -> pd.DataFrame | None:
        import pyarrow as pa

        found = self._resolve(rel)
        if found is None:
            return None
        qname, kind, blocks = found
        heap = kind in ("r", "m", "t")
        try:
            self.cur.execute("SELECT a.attname::text, t.typname::text FROM pg_catalog.pg_attribute a "
                             "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid WHERE a.attrelid = to_regclass($1) "
                             "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", parameters=(qname,))
            cols = [(str(r[0]), str(r[1])) for r in self.cur.fetchall()]
        except Exception as e:
            raise self._err(rel, e) from None
        select = ", ".join(quote_ident(c) if t in _PG_NATIVE else f"{quote_ident(c)}::{_PG_CAST.get(t, 'text')} AS {quote_ident(c)}"
                           for c, t in cols) or "*"
        sql = f"SELECT {select} FROM {qname}"
        k = len(self.curs)
        try:
            if order:
                table = self._fetch(self.cur, sql + " ORDER BY " + ", ".join(quote_ident(c) for c in order))
            elif heap and not self.physical:
                table = self._fetch(self.cur, sql + " ORDER BY ctid")
            elif heap and k > 1 and blocks >= _PARALLEL_MIN_BLOCKS:
                from concurrent.futures import ThreadPoolExecutor

                cuts = [blocks * i // k for i in range(k)]
                parts = [sql + f" WHERE ctid >= '({a},0)'::tid" + (f" AND ctid < '({b},0)'::tid" if b is not None else "")
                         for a, b in zip(cuts, [*cuts[1:], None], strict=True)]
                with ThreadPoolExecutor(k) as pool:
                    tables = list(pool.map(self._fetch, self.curs, parts))
                table = pa.concat_tables(tables)
            else:
                table = self._fetch(self.cur, sql)
        except Exception as e:
            raise self._err(rel, e) from None
        return _arrow_to_pandas(table)


def _plain(t: Any) -> Any:
    """Extension types the driver hands over (numeric, uuid, json...) as plain Arrow types:
    ``numeric`` as float64, the rest as their storage (text, or bytes)."""
    import pyarrow as pa

    if not isinstance(t.type, pa.BaseExtensionType):
        return t
    storage = pa.chunked_array([c.storage for c in t.chunks], type=t.type.storage_type)
    if getattr(t.type, "type_name", "") == "numeric":
        return storage.cast(pa.string()).cast(pa.float64())
    return storage


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    """Arrow → pandas without losing types: integers stay integers (nullable ``Int64``), booleans
    ``boolean``, dates ``datetime64``, zoned timestamps keep their zone."""
    import pyarrow as pa

    cols = [_plain(table.column(i)) for i in range(table.num_columns)]
    table = pa.table(cols, names=table.column_names)
    mapping = {pa.bool_(): pd.BooleanDtype(), pa.int8(): pd.Int64Dtype(), pa.int16(): pd.Int64Dtype(),
               pa.int32(): pd.Int64Dtype(), pa.int64(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=mapping.get, date_as_object=False, split_blocks=True, self_destruct=True)


class _SqliteReader:
    def __init__(self, url: str, chunk_rows: int):
        self.url = url
        self.chunk_rows = chunk_rows
        path = sqlite_path(url)
        if not Path(path).is_file():
            raise Unreachable(f"SQLite database not found: {path}")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error as e:
            raise Unreachable(f"cannot open {redact(url)}: {e}") from None

    def __enter__(self) -> _SqliteReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()

    def read(self, rel: str, order: list[str] | None) -> pd.DataFrame | None:
        parts = split_name(rel)
        schema = quote_ident(parts[0][0]) + "." if len(parts) == 2 else ""
        name = parts[-1][0]
        try:
            row = self.conn.execute(f"SELECT type, sql FROM {schema}sqlite_master WHERE type IN ('table', 'view') "
                                    "AND name = ? COLLATE NOCASE", (name,)).fetchone()
            if row is None:
                return None
            kind, ddl = row
            qname = schema + quote_ident(name)
            decl = {r[1]: (r[2] or "").upper() for r in self.conn.execute(f"PRAGMA {schema}table_info({quote_ident(name)})")}
            if order:
                by = ", ".join(quote_ident(c) for c in order)
            elif kind == "table" and "WITHOUT ROWID" not in (ddl or "").upper():
                by = "rowid"
            else:
                by = ""
            cur = self.conn.execute(f"SELECT * FROM {qname}" + (f" ORDER BY {by}" if by else ""))
            names = [d[0] for d in cur.description]
            chunks = []
            while True:
                rows = cur.fetchmany(self.chunk_rows)
                if not rows:
                    break
                chunks.append(rows)
        except sqlite3.Error as e:
            raise _ReadError(f"cannot read {rel} from {redact(self.url)}: {e}") from None
        columns: dict[str, pd.Series] = {}
        for i, c in enumerate(names):
            values = [r[i] for rows in chunks for r in rows]
            columns[c] = _sqlite_column(values, decl.get(c, ""))
        return pd.DataFrame(columns, index=pd.RangeIndex(sum(len(r) for r in chunks)))[names] \
            if names else pd.DataFrame()


def _sqlite_column(values: list, decl: str) -> pd.Series:
    """One SQLite column as a typed Series, by its declared type (SQLite stores dates as text)."""
    s = pd.Series(values, dtype=object)
    kinds = {type(v) for v in values if v is not None}
    if "BOOL" in decl and kinds <= {int}:
        return s.map({1: True, 0: False}).astype("boolean")
    if kinds <= {int}:
        return s.astype("Int64") if kinds else s.astype("str")
    if kinds <= {int, float}:
        return s.astype("float64")
    if kinds <= {str}:
        return s.astype("str")
    return s


# ----------------------------------------------------------------------------- writing helpers

def _pg_type(s: pd.Series) -> str:
    t = s.dtype
    if pd.api.types.is_bool_dtype(t):
        return "boolean"
    if pd.api.types.is_integer_dtype(t):
        return "bigint"
    if pd.api.types.is_float_dtype(t):
        return "double precision"
    if isinstance(t, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(t):
        return "timestamp"
    return "text"


def _sqlite_type(s: pd.Series) -> str:
    t = s.dtype
    if pd.api.types.is_bool_dtype(t):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(t):
        return "INTEGER"
    if pd.api.types.is_float_dtype(t):
        return "REAL"
    if pd.api.types.is_datetime64_any_dtype(t):
        return "TIMESTAMP"
    return "TEXT"


def _to_arrow(df: pd.DataFrame, pg_types: Mapping[str, str] | None = None) -> Any:
    """A frame as an Arrow table whose types COPY into the given PostgreSQL column types."""
    import pyarrow as pa

    arrays, names = [], []
    for c in df.columns:
        s = df[c]
        want = (pg_types or {}).get(c) or _pg_type(s)
        if want == "date":
            if isinstance(s.dtype, pd.DatetimeTZDtype):
                s = s.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
            a = pa.array(s.astype("datetime64[s]").dt.normalize(), from_pandas=True).cast(pa.date32(), safe=False)
        elif want == "boolean":
            a = pa.array(s.astype("boolean"), type=pa.bool_())
        elif want in ("bigint", "integer"):
            a = pa.array(s.astype("Int64"), type=pa.int64())
        elif want == "double precision":
            a = pa.array(s.astype("float64"), type=pa.float64(), from_pandas=True)
        elif want == "timestamptz":
            a = pa.array(s.dt.tz_convert("UTC"), type=pa.timestamp("us", tz="UTC"))
        elif want == "timestamp":
            a = pa.array(s.astype("datetime64[us]"), type=pa.timestamp("us"))
        elif pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype):
            a = pa.array(s, type=pa.string(), from_pandas=True)
        else:
            obj = s.astype(object)
            a = pa.array([None if _isna(v) else str(v) for v in obj], type=pa.string())
        arrays.append(a)
        names.append(str(c))
    return pa.table(arrays, names=names)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _sqlite_value(v: Any) -> Any:
    if _isna(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat() if (v.tz is not None or v != v.normalize()) else v.date().isoformat()
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, (int, float, str)):
        return v
    return str(v)


def _sqlite_rows(df: pd.DataFrame, start: int, stop: int) -> Iterator[tuple]:
    part = df.iloc[start:stop]
    cols = [part[c].astype(object).to_numpy() for c in part.columns]
    for i in range(len(part)):
        yield tuple(_sqlite_value(col[i]) for col in cols)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (pd.Timestamp, datetime, date)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    return str(o)


# ----------------------------------------------------------------------------- write_dataset

_CONTRACT_PG = {"id": "text", "str": "text", "code": "text", "date": "date", "float": "double precision",
                "int": "bigint", "year": "bigint", "bool": "boolean"}
_CONTRACT_SQLITE = {"id": "TEXT", "str": "TEXT", "code": "TEXT", "date": "DATE", "float": "REAL",
                    "int": "INTEGER", "year": "INTEGER", "bool": "BOOLEAN"}


def _fits(kind: str | None, s: pd.Series) -> bool:
    """Whether a column can take its contract SQL type: typed columns do; raw text (a frame as
    read from a file) keeps its text so that bad cells reach the loader as they were."""
    if kind is None:
        return False
    t = s.dtype
    if kind == "date":
        return pd.api.types.is_datetime64_any_dtype(t)
    if kind in ("float", "int", "year"):
        return pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
    if kind == "bool":
        return pd.api.types.is_bool_dtype(t)
    return True


def write_dataset(url: str, dataset: Any, relations: Mapping[str, str] | None = None, *,
                  chunk_rows: int = 250_000) -> dict[str, int]:
    """Write a dataset (a :class:`~yiwu_credit.data.dataset.Dataset` or ``{table: frame}``) into the
    database, one relation per contract table (``relations`` renames them; default the table
    names), replacing relations of the same names, in one transaction. Typed contract columns get
    their SQL types (date, double precision, bigint, boolean, text); raw text columns (a frame read
    from a file) and extra columns keep their own type.
    Rows keep their order. Returns ``{table: rows written}``; raises :class:`OutputError`."""
    scheme = url_scheme(url)
    if scheme == "mysql":
        refuse_mysql(url)
    frames = {n: (dataset.table(n) if hasattr(dataset, "table") else dataset[n])
              for n in TABLES if (hasattr(dataset, "table") or n in dataset)}
    rels = {n: (relations or {}).get(n, n) for n in frames}
    counts: dict[str, int] = {}
    with _writer(url, scheme) as w:
        for name, df in frames.items():
            contract = {c.name: c.kind for c in TABLES[name].columns}
            w.replace_table(rels[name], df, contract, chunk_rows)
            counts[name] = len(df)
    log.info("wrote dataset to %s: %s", redact(url), counts)
    return counts


# ----------------------------------------------------------------------------- write_run

def write_run(url: str, run_id: str, tables: Mapping[str, pd.DataFrame], *, audit: Mapping | None = None,
              schema: str | None = None, command: str = "", chunk_rows: int = 250_000) -> dict[str, int]:
    """Write one run's results, idempotently and atomically.

    Each frame goes to the table of its key (in ``schema`` if given, created if absent), with a
    ``run_id`` text column first; new columns are added to an existing table. In one transaction
    the run's previous rows are deleted from every table written and the new rows inserted, and
    ``yiwu_runs`` (``run_id``, ``command``, ``created_at``, ``audit`` JSON, ``row_counts`` JSON)
    gets the run's row: all of it lands or nothing changes. Writers are serialised (an advisory
    lock in PostgreSQL, an immediate transaction in SQLite), so concurrent runs with different
    ids never clobber each other. Returns ``{table: rows written}``; raises :class:`OutputError`
    (nothing written) when the write fails.
    """
    scheme = url_scheme(url)
    if scheme == "mysql":
        refuse_mysql(url)
    if not isinstance(run_id, str) or not run_id.strip():
        raise UsageError("a run id must be a non-empty string")
    if RUNS_TABLE in tables:
        raise UsageError(f"{RUNS_TABLE} is the run table; name the results otherwise")
    for name in tables:
        split_name(name)
        if "run_id" in tables[name].columns:
            raise UsageError(f"results table {name} already has a run_id column")
    counts = {name: len(df) for name, df in tables.items()}
    audit_json = json.dumps(dict(audit or {}), default=_json_default, ensure_ascii=False, sort_keys=True)
    counts_json = json.dumps(counts, sort_keys=True)
    t0 = time.perf_counter()
    with _writer(url, scheme, schema=schema) as w:
        w.lock()
        w.ensure_runs()
        clear_earlier_run(w, RUNS_TABLE, run_id, command, list(tables))  # refuses another command's run id
        for name, df in tables.items():
            w.replace_run_rows(name, run_id, df, chunk_rows)
        w.record_run(run_id, command, audit_json, counts_json)
    log.info("wrote run %s to %s: %s in %.2fs", run_id, redact(url), counts, time.perf_counter() - t0)
    return counts


@contextmanager
def _writer(url: str, scheme: str, schema: str | None = None) -> Iterator[Any]:
    """One writing transaction: commit if the block succeeds, roll back and raise
    :class:`OutputError` otherwise."""
    try:
        w: _PgWriter | _SqliteWriter = _PgWriter(url, schema) if scheme == "postgresql" else _SqliteWriter(url, schema)
    except Unreachable as e:
        raise OutputError(f"{e}; nothing was written") from None
    try:
        yield w
        w.commit()
    except (UsageError, OutputError):
        w.rollback()
        raise
    except Exception as e:
        w.rollback()
        msg = scrub(str(e), url)
        msg = re.sub(r"^\w+: (Failed to \w+ query: )?(ERROR: )?", "", msg).split(" Query was:")[0]
        raise OutputError(f"cannot write to {redact(url)}{(' (' + w.where + ')') if w.where else ''}: {msg}; "
                          "the transaction was rolled back, nothing was written") from None
    finally:
        w.close()


class _PgWriter:
    def __init__(self, url: str, schema: str | None):
        self.url = url
        self.schema = schema
        self.where = ""
        self.conn = pg_connect(url, autocommit=False)
        self.cur = self.conn.cursor()

    def name(self, table: str) -> str:
        parts = split_name(table)
        if len(parts) == 2 or not self.schema:
            return ".".join(quote_ident(p) for p, _ in parts)
        return f"{quote_ident(self.schema)}.{quote_ident(parts[0][0])}"

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # the connection is gone: the server rolls back by itself
            log.debug("rollback failed; the server discards the transaction")

    def close(self) -> None:
        try:
            self.cur.close()
            self.conn.close()
        except Exception:
            log.debug("close failed")

    def lock(self) -> None:
        """Serialise writers (held until commit or rollback), then make the schema if needed."""
        self.cur.execute("SELECT pg_advisory_xact_lock(hashtext('yiwu_credit.write_run'))")
        self.cur.fetchall()
        if self.schema:
            self.cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")

    def ensure_runs(self) -> None:
        self.where = RUNS_TABLE
        self.cur.execute(f"CREATE TABLE IF NOT EXISTS {self.name(RUNS_TABLE)} (run_id text PRIMARY KEY, "
                         "command text, created_at timestamptz NOT NULL, audit jsonb, row_counts jsonb)")

    def _columns(self, qname: str) -> dict[str, str] | None:
        self.cur.execute("SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
                         "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
                         "ORDER BY a.attnum", parameters=(qname,))
        rows = self.cur.fetchall()
        if not rows:
            self.cur.execute("SELECT to_regclass($1) IS NOT NULL", parameters=(qname,))
            exists = bool(self.cur.fetchone()[0])
            return {} if exists else None
        return {str(r[0]): str(r[1]) for r in rows}

    def _copy(self, qname: str, df: pd.DataFrame, types: Mapping[str, str], chunk_rows: int,
              prefix: tuple[str, str] | None = None) -> None:
        """COPY ``df`` into ``qname`` through a temporary table (the server casts by assignment,
        so an existing table's column types need not match the frame's exactly)."""
        cols = [str(c) for c in df.columns]
        self.cur.execute("DROP TABLE IF EXISTS pg_temp.yiwu_load")
        self.cur.execute("CREATE TEMPORARY TABLE yiwu_load (" + ", ".join(
            f"{quote_ident(c)} {types.get(c) or _pg_type(df[c])}" for c in cols) + ") ON COMMIT DROP")
        for start in range(0, max(len(df), 1), chunk_rows):
            part = df.iloc[start:start + chunk_rows]
            if len(part):
                self.cur.adbc_ingest("yiwu_load", _to_arrow(part, types), mode="append", db_schema_name="pg_temp")
        target = ([quote_ident(prefix[0])] if prefix else []) + [quote_ident(c) for c in cols]
        source = (["$1"] if prefix else []) + [quote_ident(c) for c in cols]
        self.cur.execute(f"INSERT INTO {qname} ({', '.join(target)}) SELECT {', '.join(source)} "
                         "FROM pg_temp.yiwu_load ORDER BY ctid", parameters=((prefix[1],) if prefix else None))
        self.cur.execute("DROP TABLE pg_temp.yiwu_load")

    def replace_table(self, rel: str, df: pd.DataFrame, contract: Mapping[str, str], chunk_rows: int) -> None:
        self.where = rel
        qname = self.name(rel)
        types = {str(c): _CONTRACT_PG[contract[c]] if _fits(contract.get(c), df[c]) else _pg_type(df[c])
                 for c in df.columns}
        self.cur.execute(f"DROP TABLE IF EXISTS {qname}")
        self.cur.execute(f"CREATE TABLE {qname} (" + ", ".join(f"{quote_ident(str(c))} {t}" for c, t in types.items()) + ")")
        parts = split_name(rel)
        schema = parts[0][0] if len(parts) == 2 else self.schema
        for start in range(0, len(df), chunk_rows):  # COPY straight in: the column types are ours
            self.cur.adbc_ingest(parts[-1][0], _to_arrow(df.iloc[start:start + chunk_rows], types), mode="append",
                                 **({"db_schema_name": schema} if schema else {}))

    def replace_run_rows(self, table: str, run_id: str, df: pd.DataFrame, chunk_rows: int) -> None:
        self.where = table
        qname = self.name(table)
        have = self._columns(qname)
        types = {str(c): _pg_type(df[c]) for c in df.columns}
        if have is None:
            self.cur.execute(f"CREATE TABLE {qname} (run_id text NOT NULL, " + ", ".join(
                f"{quote_ident(c)} {t}" for c, t in types.items()) + ")")
            self.cur.execute(f"CREATE INDEX ON {qname} (run_id)")
        else:
            for c, t in types.items():
                if c not in have:
                    self.cur.execute(f"ALTER TABLE {qname} ADD COLUMN {quote_ident(c)} {t}")
        self.cur.execute(f"DELETE FROM {qname} WHERE run_id = $1", parameters=(run_id,))
        if len(df):
            self._copy(qname, df, types, chunk_rows, prefix=("run_id", run_id))

    def record_run(self, run_id: str, command: str, audit_json: str, counts_json: str) -> None:
        self.where = RUNS_TABLE
        q = self.name(RUNS_TABLE)
        self.cur.execute(f"DELETE FROM {q} WHERE run_id = $1", parameters=(run_id,))
        self.cur.execute(f"INSERT INTO {q} (run_id, command, created_at, audit, row_counts) "
                         "VALUES ($1, $2, now(), $3::jsonb, $4::jsonb)",
                         parameters=(run_id, command, audit_json, counts_json))


class _SqliteWriter:
    def __init__(self, url: str, schema: str | None):
        self.url = url
        self.where = ""
        if schema:
            raise UsageError("SQLite has no schemas: leave schema unset (write to another file instead)")
        path = sqlite_path(url)
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=60)
            self.conn.execute("BEGIN IMMEDIATE")
        except (OSError, sqlite3.Error) as e:
            raise Unreachable(f"cannot open {redact(url)}: {e}") from None

    def name(self, table: str) -> str:
        return ".".join(quote_ident(p) for p, _ in split_name(table))

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def lock(self) -> None:  # BEGIN IMMEDIATE already holds the write lock
        pass

    def ensure_runs(self) -> None:
        self.where = RUNS_TABLE
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.name(RUNS_TABLE)} (run_id TEXT PRIMARY KEY, "
                          "command TEXT, created_at TEXT NOT NULL, audit TEXT, row_counts TEXT)")

    def _insert(self, qname: str, df: pd.DataFrame, chunk_rows: int, prefix: tuple | None = None) -> None:
        cols = ([prefix[0]] if prefix else []) + [str(c) for c in df.columns]
        sql = f"INSERT INTO {qname} ({', '.join(quote_ident(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})"
        for start in range(0, len(df), chunk_rows):
            rows = _sqlite_rows(df, start, start + chunk_rows)
            self.conn.executemany(sql, ((prefix[1], *r) for r in rows) if prefix else rows)

    def replace_table(self, rel: str, df: pd.DataFrame, contract: Mapping[str, str], chunk_rows: int) -> None:
        self.where = rel
        qname = self.name(rel)
        types = {str(c): _CONTRACT_SQLITE[contract[c]] if _fits(contract.get(c), df[c]) else _sqlite_type(df[c])
                 for c in df.columns}
        self.conn.execute(f"DROP TABLE IF EXISTS {qname}")
        self.conn.execute(f"CREATE TABLE {qname} (" + ", ".join(f"{quote_ident(c)} {t}" for c, t in types.items()) + ")")
        self._insert(qname, df, chunk_rows)

    def replace_run_rows(self, table: str, run_id: str, df: pd.DataFrame, chunk_rows: int) -> None:
        self.where = table
        qname = self.name(table)
        parts = split_name(table)
        prag = (quote_ident(parts[0][0]) + "." if len(parts) == 2 else "") + f"table_info({quote_ident(parts[-1][0])})"
        have = {r[1] for r in self.conn.execute(f"PRAGMA {prag}")}
        types = {str(c): _sqlite_type(df[c]) for c in df.columns}
        if not have:
            self.conn.execute(f"CREATE TABLE {qname} (run_id TEXT NOT NULL, " + ", ".join(
                f"{quote_ident(c)} {t}" for c, t in types.items()) + ")")
        else:
            for c, t in types.items():
                if c not in have:
                    self.conn.execute(f"ALTER TABLE {qname} ADD COLUMN {quote_ident(c)} {t}")
        self.conn.execute(f"DELETE FROM {qname} WHERE run_id = ?", (run_id,))
        self._insert(qname, df, chunk_rows, prefix=("run_id", run_id))

    def record_run(self, run_id: str, command: str, audit_json: str, counts_json: str) -> None:
        self.where = RUNS_TABLE
        q = self.name(RUNS_TABLE)
        self.conn.execute(f"DELETE FROM {q} WHERE run_id = ?", (run_id,))
        self.conn.execute(f"INSERT INTO {q} (run_id, command, created_at, audit, row_counts) VALUES (?, ?, ?, ?, ?)",
                          (run_id, command, datetime.now().astimezone().isoformat(timespec="seconds"),
                           audit_json, counts_json))
