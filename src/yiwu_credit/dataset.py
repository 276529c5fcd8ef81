"""Loading and validating a dataset: a directory of CSV or Parquet files, one per table.

Strict mode raises one :class:`DataValidationError` listing every problem (table, column, rows,
reason). Lenient mode moves bad rows to ``Dataset.rejects`` with their reasons; counts reconcile:
rows in = rows kept + rows rejected, per table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import uscc
from .contract import EVENT_TABLES, INDUSTRY_PATTERN, TABLES, Table
from .errors import DataValidationError, Problem
from .io import write_table

MAX_ROWS_SHOWN = 5
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否"}
REJECT_COLUMNS = ["table", "row", "entity_id", "column", "reason"]


@dataclass
class Dataset:
    """Typed tables of one dataset. Every table is a DataFrame with the contract's columns.

    ``rejects`` lists quarantined rows (lenient mode): table, row (1-based data row), entity_id,
    column, reason. ``counts[table] = (rows_in, rows_kept, rows_rejected)``.
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
    _codes: dict = field(default_factory=dict, repr=False)  # derived lookups (entity positions, pools)

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def entity_codes(self, name: str) -> np.ndarray:
        """Position (int64) in ``entities`` of each row's entity in table ``name``; -1 if unknown."""
        if name not in self._codes:
            self._codes[name] = index_of(self.entities["entity_id"], self.table(name)["entity_id"])
        return self._codes[name]

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
        """Write every table to ``path`` as ``<table>.<format>`` (atomic per file)."""
        path = Path(path)
        for name in TABLES:
            write_table(self.table(name), path / f"{name}.{format}")
        return path

    def replace(self, **tables: pd.DataFrame) -> Dataset:
        """A copy with some tables replaced (cached codes dropped)."""
        kw = {n: tables.get(n, self.table(n)) for n in TABLES}
        return Dataset(**kw, rejects=self.rejects, counts=dict(self.counts), source=self.source)


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
    return _coerce(TABLES[name], pd.DataFrame({c: pd.Series([], dtype=object) for c in TABLES[name].column_names}))[0]


# ----------------------------------------------------------------------------- reading

def _find(path: Path, name: str) -> Path | None:
    for ext in (".parquet", ".csv", ".csv.gz"):
        p = path / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def _read(p: Path) -> pd.DataFrame:
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    return pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")


# ----------------------------------------------------------------------------- checking

class _Findings:
    """Collects (table, column, reason, row mask) and turns them into Problems and rejects."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str | None, str, np.ndarray]] = []
        self.fatal: list[Problem] = []

    def add(self, table: str, column: str | None, reason: str, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.items.append((table, column, reason, mask))

    def problems(self) -> list[Problem]:
        out = list(self.fatal)
        for table, column, reason, mask in self.items:
            rows = np.flatnonzero(mask)
            out.append(Problem(table, column, reason, tuple(int(r) + 1 for r in rows[:MAX_ROWS_SHOWN]), len(rows)))
        return out

    def bad_rows(self, table: str, n: int) -> np.ndarray:
        bad = np.zeros(n, dtype=bool)
        for t, _, _, mask in self.items:
            if t == table:
                bad |= mask
        return bad


def _coerce(table: Table, df: pd.DataFrame, f: _Findings | None = None) -> tuple[pd.DataFrame, None]:
    """Cast every contract column to its type; unparseable values are findings."""
    out = {}
    n = len(df)
    for col in table.columns:
        raw = df[col.name]
        if col.kind in ("id", "str", "code"):
            s = raw.astype("str") if n else pd.Series([], dtype="str")
            s = s.where(raw.notna(), None).str.strip()
            s = s.where(s != "", None) if n else s
            null = s.isna().to_numpy()
            if col.kind == "code" and f is not None:
                f.add(table.name, col.name, f"not one of {list(col.codes)}", ~null & ~s.isin(col.codes).to_numpy())
            out[col.name] = s.astype("str") if not null.any() else s
        elif col.kind == "date":
            s = pd.to_datetime(raw, format="ISO8601", errors="coerce") if n else pd.Series([], dtype="datetime64[s]")
            s = s.astype("datetime64[s]") if n else s
            null = s.isna().to_numpy()
            if f is not None:
                f.add(table.name, col.name, "not an ISO date (YYYY-MM-DD)", null & raw.notna().to_numpy())
            out[col.name] = s
        elif col.kind in ("float", "int", "year"):
            s = pd.to_numeric(raw, errors="coerce").astype("float64") if n else pd.Series([], dtype="float64")
            null = s.isna().to_numpy()
            if f is not None:
                f.add(table.name, col.name, "not a number", null & raw.notna().to_numpy())
                v = s.to_numpy()
                if col.min_value is not None:
                    below = (v <= col.min_value) if col.min_exclusive else (v < col.min_value)
                    f.add(table.name, col.name, f"must be {'>' if col.min_exclusive else '>='} {col.min_value}", below & ~null)
                if col.max_value is not None:
                    f.add(table.name, col.name, f"must be <= {col.max_value}", (v > col.max_value) & ~null)
                if col.kind == "year":
                    f.add(table.name, col.name, "not a year between 1949 and 2100",
                          ~null & ((v != np.round(v)) | (v < 1949) | (v > 2100)))
            out[col.name] = s.astype("Int64") if col.kind == "year" and n else s
        elif col.kind == "bool":
            txt = raw.astype("str").str.strip().str.lower() if n else pd.Series([], dtype="str")
            val = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            if n:
                val[txt.isin(_TRUE).to_numpy()] = True
                val[txt.isin(_FALSE).to_numpy()] = False
            null = val.isna().to_numpy()
            if f is not None:
                f.add(table.name, col.name, "not a boolean (true/false)", null & raw.notna().to_numpy())
            out[col.name] = val
        else:  # pragma: no cover - contract error
            raise AssertionError(col.kind)
        if f is not None and not col.nullable:
            f.add(table.name, col.name, "missing value", raw.isna().to_numpy() if n else np.zeros(0, bool))
    return pd.DataFrame(out, index=pd.RangeIndex(n)), None


def _check_entities(df: pd.DataFrame, f: _Findings, as_of: pd.Timestamp | None) -> None:
    reasons = uscc.invalid_reasons(df["entity_id"])
    for r in pd.unique(reasons[pd.notna(reasons)]):
        if r != "missing":
            f.add("entities", "entity_id", f"invalid USCC: {r}", reasons == r)
    ids = df["entity_id"]
    f.add("entities", "entity_id", "duplicate entity_id", (ids.duplicated(keep=False) & ids.notna()).to_numpy())
    ind = df["industry"]
    f.add("entities", "industry", "not a GB/T 4754-2017 code (section letter + up to 4 digits)",
          (ind.notna() & ~ind.str.fullmatch(INDUSTRY_PATTERN).fillna(False).astype(bool)).to_numpy())
    f.add("entities", "closed_on", "before established_on", (df["closed_on"] < df["established_on"]).to_numpy())
    f.add("entities", "closed_on", "status is revoked/cancelled but closed_on is empty",
          (df["status"].isin(["revoked", "cancelled"]) & df["closed_on"].isna()).to_numpy())
    if as_of is not None:
        f.add("entities", "established_on", f"after as_of {as_of.date()}", (df["established_on"] > as_of).to_numpy())


def _check_events(name: str, df: pd.DataFrame, entities: pd.DataFrame, known: np.ndarray,
                  f: _Findings, as_of: pd.Timestamp | None) -> np.ndarray:
    table = TABLES[name]
    ids = entities["entity_id"]
    first = np.flatnonzero(~ids.duplicated(keep="first").to_numpy())  # duplicates are rejected anyway
    pos = index_of(ids.iloc[first], df["entity_id"])
    pos = np.where(pos >= 0, first[np.maximum(pos, 0)], -1)
    has_id = df["entity_id"].notna().to_numpy()
    ok_pos = pos >= 0
    f.add(name, "entity_id", "entity_id not in entities", has_id & ~ok_pos)
    rejected_entity = np.zeros(len(df), dtype=bool)
    rejected_entity[ok_pos] = ~known[pos[ok_pos]]
    f.add(name, "entity_id", "its entity was rejected", rejected_entity)
    est = np.full(len(df), np.datetime64("NaT"), dtype="datetime64[s]")
    est[ok_pos] = entities["established_on"].to_numpy()[pos[ok_pos]]
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
        year_end = pd.to_datetime(df["year"].astype("float64").fillna(1970).astype(int).astype(str) + "-12-31")
        f.add(name, "filed_on", "filed before the report year ended", (df["filed_on"] <= year_end).to_numpy())
        f.add(name, "year", "duplicate (entity_id, year)", df.duplicated(["entity_id", "year"], keep=False).to_numpy())
    if name == "tax_ratings":
        f.add(name, "year", "duplicate (entity_id, year)", df.duplicated(["entity_id", "year"], keep=False).to_numpy())
    return pos


def load_dataset(path: str | Path, as_of: str | pd.Timestamp | None = None, strict: bool = True) -> Dataset:
    """Load and validate the dataset in directory ``path``.

    ``as_of`` (optional) also rejects events dated after it and entities established after it.
    ``strict=True`` raises :class:`DataValidationError` naming every problem; ``strict=False``
    quarantines bad rows in ``Dataset.rejects`` (an entity's events go with it).
    Missing files or columns are always fatal.
    """
    path = Path(path)
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else None
    f = _Findings()
    if not path.is_dir():
        raise DataValidationError([Problem("dataset", None, f"directory not found: {path}")])
    raw: dict[str, pd.DataFrame] = {}
    for name, table in TABLES.items():
        p = _find(path, name)
        if p is None:
            if table.required:
                f.fatal.append(Problem(name, None, f"file not found: {name}.csv or {name}.parquet in {path}"))
            raw[name] = pd.DataFrame({c: pd.Series([], dtype=object) for c in table.column_names})
            continue
        try:
            df = _read(p)
        except Exception as e:  # a corrupt or unreadable file: name it
            f.fatal.append(Problem(name, None, f"cannot read {p.name}: {type(e).__name__}: {e}"))
            continue
        missing = [c for c in table.column_names if c not in df.columns]
        if missing:
            f.fatal.append(Problem(name, None, f"missing column(s) {missing} in {p.name}; found {list(df.columns)}"))
            continue
        raw[name] = df
    if f.fatal:
        raise DataValidationError(f.fatal)

    typed = {name: _coerce(TABLES[name], raw[name], f)[0] for name in TABLES}
    ent = typed["entities"]
    _check_entities(ent, f, as_of_ts)
    ent_bad = f.bad_rows("entities", len(ent))
    positions = {name: _check_events(name, typed[name], ent, ~ent_bad, f, as_of_ts) for name in EVENT_TABLES}
    problems = f.problems()
    if strict and problems:
        raise DataValidationError(problems)

    rejects, counts, kept = [], {}, {}
    for name in TABLES:
        df = typed[name]
        bad = f.bad_rows(name, len(df))
        counts[name] = (len(df), int((~bad).sum()), int(bad.sum()))
        kept[name] = df.loc[~bad].reset_index(drop=True)
        if bad.any():
            rejects.append(_rejects(name, df, f))
    rej = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(columns=REJECT_COLUMNS)
    ds = Dataset(**kept, rejects=rej, counts=counts, source=str(path))
    if counts["entities"][2] == 0:  # entity positions unchanged: reuse the lookups made while checking
        for name, pos in positions.items():
            ds._codes[name] = pos[~f.bad_rows(name, len(pos))].astype(np.int64)
    return ds


def _rejects(name: str, df: pd.DataFrame, f: _Findings) -> pd.DataFrame:
    """One row per rejected input row; all its reasons joined with '; '."""
    parts = []
    for t, col, reason, mask in f.items:
        if t == name:
            rows = np.flatnonzero(mask)
            parts.append(pd.DataFrame({"row": rows, "column": col or "", "reason": reason}))
    r = pd.concat(parts, ignore_index=True)
    r = r.groupby("row", sort=True).agg(column=("column", ";".join), reason=("reason", "; ".join)).reset_index()
    r.insert(0, "table", name)
    r.insert(2, "entity_id", df["entity_id"].to_numpy()[r["row"].to_numpy()])
    r["row"] = r["row"] + 1
    return r[REJECT_COLUMNS]


def validation_report(ds_or_error: Dataset | DataValidationError) -> str:
    """A readable multi-line report of a loaded dataset or of a validation error."""
    if isinstance(ds_or_error, DataValidationError):
        return str(ds_or_error)
    ds = ds_or_error
    lines = [f"dataset {ds.source}"]
    for name, (n_in, n_kept, n_rej) in ds.counts.items():
        lines.append(f"  {name:15s} rows in {n_in:>10,d}  kept {n_kept:>10,d}  rejected {n_rej:>8,d}")
    if len(ds.rejects):
        lines.append("rejected rows by reason:")
        for (t, reason), n in ds.rejects.groupby(["table", "reason"]).size().items():
            lines.append(f"  {t}: {reason} — {n} row(s)")
    else:
        lines.append("no problems found")
    return "\n".join(lines)
