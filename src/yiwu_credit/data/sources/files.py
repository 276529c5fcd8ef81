"""Reading the tables of a dataset directory: CSV (UTF-8 or GB18030/GBK), Excel ``.xlsx`` or
Parquet, one file per table, named and headed as the profile says.

Every reader returns a :class:`RawTable`: the cells (text for CSV and Excel, native types for
Parquet), each row's 1-based data row in the file, the lines that could not be parsed, and where
each contract column came from (file, header), so that every message names the original file,
header and row.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import Problem
from .profile import Profile

__all__ = ["EXTENSIONS", "RawTable", "detect_encoding", "find_table", "read_table_file", "write_dataset"]

EXTENSIONS = (".parquet", ".csv", ".csv.gz", ".xlsx")
_SNIFF = 1 << 20


class Unreadable(Exception):
    """A file that cannot be read as a table, with the reason in words."""


@dataclass
class RawTable:
    """One table as read, before typing (see the module docstring)."""

    df: pd.DataFrame
    rows: np.ndarray | None  # None: rows 1..n in order (nothing skipped)
    malformed: list[tuple[int, str | None, str]]
    file: str
    headers: dict[str, str] = field(default_factory=dict)  # contract column → source header
    encoding: str | None = None
    detail: str = ""

    def describe(self) -> str:
        fmt = self.detail or Path(self.file).suffix.lstrip(".")
        mapped = [f"{h}→{c}" for c, h in self.headers.items() if h != c]
        return (f"{self.file} ({fmt}{', ' + self.encoding if self.encoding else ''}"
                f"{'; ' + ', '.join(mapped) if mapped else ''})")


def _open(p: Path):
    return gzip.open(p, "rb") if p.name.endswith(".gz") else open(p, "rb")


def find_table(path: Path, names: tuple[str, ...], table: str, fatal: list[Problem]) -> Path | None:
    """The one file of ``table`` in ``path`` under any of ``names`` and extensions; two or more
    candidates are refused (which one is meant is not guessed)."""
    found = [path / f"{n}{ext}" for n in dict.fromkeys(names) for ext in EXTENSIONS if (path / f"{n}{ext}").is_file()]
    if len(found) > 1:
        fatal.append(Problem(table, None, f"{len(found)} files for one table: {', '.join(p.name for p in found)}; "
                                          "keep exactly one (which one is meant is not guessed)"))
        return None
    return found[0] if found else None


def _complete(head: bytes, full: bool) -> bytes:
    return head if full else head[: head.rfind(b"\n") + 1]


def detect_encoding(p: Path) -> str:
    """``utf-8`` or ``gb18030`` from the first MiB (GB18030 is a superset of GBK and GB2312);
    :class:`Unreadable` naming the offending byte when neither decodes."""
    with _open(p) as fh:
        head = fh.read(_SNIFF)
    data = _complete(head, len(head) < _SNIFF)
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        where = f"byte 0x{data[e.start]:02x} at offset {e.start}"
    try:
        data.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        raise Unreadable(f"neither UTF-8 nor GB18030/GBK text ({where}); give --encoding") from None


def _read_csv(p: Path, encoding: str | None, id_headers: tuple[str, ...] = ("entity_id",)) -> RawTable:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    enc = encoding or detect_encoding(p)
    with _open(p) as fh:
        head = fh.read(_SNIFF)
    try:
        text = _complete(head, len(head) < _SNIFF).decode(enc)
    except (UnicodeDecodeError, LookupError) as e:
        raise Unreadable(f"cannot decode as {enc}: {e}") from None
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if not first.strip():
        raise Unreadable("the file is empty (no header line)")
    names = [h.strip() for h in next(csv.reader(io.StringIO(first)))]
    id_at = next((i for i, h in enumerate(names) if h in id_headers), None)
    bad: list[tuple[int, str | None, str]] = []

    def on_bad(row: Any) -> str:
        fields = next(csv.reader(io.StringIO(row.text)), [])
        eid = fields[id_at].strip() if id_at is not None and id_at < len(fields) else None
        bad.append((int(row.number) - 1 if row.number is not None else -1, eid or None,
                    f"line has {row.actual_columns} fields, the header has {row.expected_columns}"))
        return "skip"

    try:
        t = pacsv.read_csv(
            str(p),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=[f"c{i}" for i in range(len(names))],
                                           skip_rows=1, encoding=enc),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={f"c{i}": pa.string() for i in range(len(names))},
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True,
                                                 null_values=[""]),
        )
    except pa.ArrowInvalid as e:
        if "utf8" in str(e).lower() or "utf-8" in str(e).lower():
            raise Unreadable(f"invalid {enc} text after the first MiB ({e}); give --encoding") from None
        raise
    df = pd.DataFrame({c: t.column(i).to_pandas() for i, c in enumerate(names)}) if names else pd.DataFrame()
    bad_rows = np.array(sorted(b[0] for b in bad), dtype=np.int64)
    rows = np.setdiff1d(np.arange(1, len(df) + len(bad) + 1, dtype=np.int64), bad_rows, assume_unique=True) \
        if bad else None
    return RawTable(df, rows, bad, p.name, encoding="UTF-8" if enc == "utf-8" else enc.upper())


def _cell(v: Any) -> Any:
    """An Excel cell as text the contract parser understands (dates as ISO, whole numbers without .0)."""
    if v is None or v == "":
        return None
    if isinstance(v, datetime.datetime):
        return v.isoformat(sep=" ") if (v.hour, v.minute, v.second) != (0, 0, 0) else v.date().isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return str(v)


def _read_xlsx(p: Path, sheet: str | None) -> RawTable:
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(p))
    if sheet is not None and sheet not in wb.sheet_names:
        raise Unreadable(f"no sheet {sheet!r}; sheets are {wb.sheet_names}")
    ws = wb.get_sheet_by_name(sheet) if sheet is not None else wb.get_sheet_by_index(0)
    rows = ws.to_python(skip_empty_area=False)
    while rows and all(v in (None, "") for v in rows[-1]):
        rows.pop()
    if not rows:
        raise Unreadable(f"sheet {ws.name!r} is empty (no header row)")
    names = [str(h).strip() if h is not None else "" for h in rows[0]]
    width = len(names)
    body = [[_cell(v) for v in r[:width]] + [None] * (width - len(r)) for r in rows[1:]]
    df = pd.DataFrame(body, columns=names, dtype=object) if body else pd.DataFrame({c: [] for c in names}, dtype=object)
    return RawTable(df, None, [], p.name, detail=f"xlsx, sheet {ws.name!r}")


def read_table_file(p: Path, table: str, profile: Profile, encoding: str | None = None) -> RawTable:
    """Read one table file and map its headers through ``profile`` (contract names in ``df``).

    Raises :class:`Unreadable` for a file that cannot be read, has missing or ambiguous
    columns, or (with ``strict_headers``) headers the profile does not know."""
    if p.suffix == ".parquet":
        raw = RawTable(pd.read_parquet(p), None, [], p.name, detail="parquet")
    elif p.suffix == ".xlsx":
        raw = _read_xlsx(p, profile.tables[table].sheet)
    else:
        raw = _read_csv(p, encoding, (*profile.tables[table].columns["entity_id"], "entity_id"))
    return apply_headers(raw, table, profile)


def apply_headers(raw: RawTable, table: str, profile: Profile) -> RawTable:
    """Rename the source headers to contract columns (see :meth:`Profile.header_map`)."""
    headers = [str(c) for c in raw.df.columns]
    found, missing, unmapped = profile.header_map(table, headers)
    if missing:
        raise Unreadable(f"missing column(s) {missing}; found {headers}")
    if unmapped:
        raise Unreadable(f"header(s) {unmapped} are not mapped by profile {profile.name!r}: add them to "
                         f"[tables.{table}.columns] or to its ignore list")
    raw.df = raw.df.rename(columns={h: c for c, h in found.items()})
    raw.headers = found
    return raw


def write_dataset(dataset: Any, path: str | Path, profile: str | Path | Profile = "zh", *, encoding: str = "utf-8",
                  excel: tuple[str, ...] = (), date_format: str | None = None) -> Path:
    """Write ``dataset`` as a source in ``profile``'s own names: file names, headers and code
    values mapped back from the contract (the first name of each list). CSV in ``encoding``;
    the tables in ``excel`` as ``.xlsx`` workbooks with Excel date cells. ``date_format`` (strftime)
    writes CSV dates in another format than ISO. Atomic per file; returns ``path``.

    This is what a bureau's export looks like, so a profile can be tested end to end.
    """
    from ..contract import TABLES as _TABLES
    from ..io import atomic_path, write_xlsx
    from .profile import load_profile

    prof = load_profile(profile)
    path = Path(path)
    inverse = {col: {code: src for src, code in reversed(list(m.items()))} for col, m in prof.codes.items()}
    for name, table in _TABLES.items():
        tm = prof.tables[name]
        df = dataset.table(name).copy()
        for col in table.columns:
            if col.kind == "code" and col.name in inverse:
                df[col.name] = df[col.name].map(lambda v, m=inverse[col.name]: m.get(v, v))
            elif col.kind == "bool" and "bool" in inverse:
                df[col.name] = df[col.name].astype(object).map(
                    lambda v, m=inverse["bool"]: None if v is None or v is pd.NA else m.get(str(bool(v)).lower()))
            elif col.kind == "date" and date_format and name not in excel:
                df[col.name] = df[col.name].dt.strftime(date_format)
        df = df.rename(columns={c: tm.columns[c][0] for c in table.column_names})
        stem = tm.names[0]
        if name in excel:
            with atomic_path(path / f"{stem}.xlsx") as tmp:
                write_xlsx(df, tmp, path / f"{stem}.xlsx", date_cells=True)
        else:
            with atomic_path(path / f"{stem}.csv") as tmp:
                df.to_csv(tmp, index=False, encoding=encoding)
    return path
