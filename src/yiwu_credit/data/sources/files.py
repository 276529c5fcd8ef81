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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import Problem
from ..paths import table_format
from .profile import Profile

__all__ = ["EXCEL_MAX_COLUMNS", "EXCEL_MAX_SHEET_ROWS", "EXTENSIONS", "MAX_XLSX_CELLS", "RawTable", "Unreadable", "xlsx_cell",
           "csv_header", "detect_encoding", "duplicate_headers", "find_table", "read_table_file", "write_dataset",
           "xlsx_rows"]

EXTENSIONS = (".parquet", ".csv", ".csv.gz", ".xlsx")
_SNIFF = 1 << 20
EXCEL_MAX_SHEET_ROWS = 1_048_576   # Excel's limits of a sheet
EXCEL_MAX_COLUMNS = 16_384
MAX_XLSX_CELLS = 50_000_000        # a used range larger than this is refused (a dense range is allocated)


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


def duplicate_headers(names: list[str], mapped: dict[str, str] | None = None) -> str | None:
    """Why a header row is ambiguous, or None: a header that appears twice (after stripping
    spaces), or two headers that ``mapped`` (stripped header → contract column) sends to one
    column; names the headers and their 1-based column positions. Reading such a file would keep
    one of the columns and drop the other silently."""
    seen: dict[str, tuple[int, str]] = {}
    for i, h in enumerate(names, 1):
        key = str(h).strip()
        if not key:  # a column without a header is the profile's concern (unmapped), not a duplicate
            continue
        col = (mapped or {}).get(key, key)
        if col in seen:
            j, first = seen[col]
            if first == key:
                return f"duplicate header {key!r} (columns {j} and {i}); which one is meant is not guessed"
            return (f"headers {first!r} (column {j}) and {key!r} (column {i}) both map to column {col!r}; "
                    "keep one (which one is meant is not guessed)")
        seen[col] = (i, key)
    return None


def csv_header(p: Path, encoding: str | None = None) -> tuple[str, list[str]]:
    """A CSV file's encoding (given, or :func:`detect_encoding`) and stripped header names;
    :class:`Unreadable` for an empty file, a header that cannot be decoded or duplicate headers."""
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
    dup = duplicate_headers(names)
    if dup:
        raise Unreadable(dup)
    return enc, names


def _read_csv(p: Path, encoding: str | None, id_headers: tuple[str, ...] = ("entity_id",)) -> RawTable:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    enc, names = csv_header(p, encoding)
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


def xlsx_cell(v: Any) -> Any:
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


# cell references: r="B7" (a cell; letters then digits) and r="7" (a row). Matched as bare literals
# for speed: a false match can only widen the range (a refusal), never narrow it.
_REF_COL = re.compile(rb'r="([A-Z]{1,4})[0-9]')
_REF_ROW = re.compile(rb'r="[A-Z]{0,4}([0-9]{1,9})"')


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _column_letters(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def _sheet_part(z: Any, sheet: str | None) -> tuple[str, str]:
    """(sheet name, zip member) of ``sheet`` (default: the first) from the workbook's XML."""
    import posixpath
    import xml.etree.ElementTree as ET

    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    rid = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    sheets = [(el.get("name") or "", el.get(rid) or "") for el in ET.fromstring(z.read("xl/workbook.xml"))
              .iterfind("m:sheets/m:sheet", ns)]
    if not sheets:
        raise Unreadable("the workbook has no sheets")
    if sheet is not None and sheet not in [n for n, _ in sheets]:
        raise Unreadable(f"no sheet {sheet!r}; sheets are {[n for n, _ in sheets]}")
    name, r = next((n, r) for n, r in sheets if sheet is None or n == sheet)
    rels = {el.get("Id"): el.get("Target") or "" for el in ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))}
    target = rels.get(r, "")
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    if part not in z.namelist():
        raise Unreadable(f"sheet {name!r}: its part {part!r} is missing from the workbook")
    return name, part


def _check_used_range(p: Path, sheet: str | None) -> str:
    """The sheet's name, after checking its used range from the cell references in its XML
    (streamed, nothing dims-sized is allocated): :class:`Unreadable` when the range exceeds
    Excel's limits or :data:`MAX_XLSX_CELLS`, or is mostly empty (a stray cell far from the table:
    reading it would allocate every empty cell of the range)."""
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            name, part = _sheet_part(z, sheet)
            cols: set[bytes] = set()
            rows: set[bytes] = set()
            filled = 0
            tail = b""
            with z.open(part) as fh:
                while chunk := fh.read(1 << 22):
                    buf = tail + chunk
                    cut = buf.rfind(b"<")
                    body, tail = (buf[:cut], buf[cut:]) if cut > 0 else (buf, b"")
                    found = _REF_COL.findall(body)
                    filled += len(found)
                    cols.update(found)
                    rows.update(_REF_ROW.findall(body))
    except (zipfile.BadZipFile, KeyError, OSError, SyntaxError) as e:  # ET.ParseError is a SyntaxError
        raise Unreadable(f"not a readable .xlsx workbook ({type(e).__name__}: {e})") from None
    if not filled:
        return name
    row_nums = [int(r) for r in rows]
    col_nums = [_column_number(c) for c in cols]
    lo_r, hi_r, lo_c, hi_c = min(row_nums), max(row_nums), min(col_nums), max(col_nums)
    n_rows, n_cols = hi_r - lo_r + 1, hi_c - lo_c + 1
    used = f"{_column_letters(lo_c)}{lo_r}:{_column_letters(hi_c)}{hi_r}"
    if hi_r > EXCEL_MAX_SHEET_ROWS or hi_c > EXCEL_MAX_COLUMNS:
        raise Unreadable(f"sheet {name!r}: used range {used} exceeds Excel's limits ({EXCEL_MAX_SHEET_ROWS:,} rows × "
                         f"{EXCEL_MAX_COLUMNS:,} columns); not a valid workbook")
    area = n_rows * n_cols
    if area > MAX_XLSX_CELLS or area > 20 * filled + 1_000_000:
        raise Unreadable(f"sheet {name!r}: used range {used} ({n_rows:,} rows × {n_cols:,} columns = {area:,} cells) "
                         f"holds only {filled:,} cells — a stray cell far from the table (e.g. at row {hi_r:,} or "
                         f"column {_column_letters(hi_c)}, {_column_letters(hi_c)}{hi_r}); delete it or save the "
                         f"sheet as CSV (a range over {MAX_XLSX_CELLS:,} cells or mostly empty is not read)")
    return name


def xlsx_rows(p: Path, sheet: str | None = None) -> tuple[str, list[str], list[list[Any]]]:
    """A sheet (default: the first) as (sheet name, stripped header names, data rows of raw
    cells), read within its bounded used range (see :func:`_check_used_range`); trailing empty
    rows dropped. :class:`Unreadable` for an empty sheet or duplicate headers."""
    from python_calamine import CalamineWorkbook

    name = _check_used_range(p, sheet)
    try:
        rows = CalamineWorkbook.from_path(str(p)).get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as e:  # calamine's own errors for a damaged workbook
        raise Unreadable(f"sheet {name!r}: not readable ({type(e).__name__}: {e})") from None
    while rows and all(v in (None, "") for v in rows[-1]):
        rows.pop()
    if not rows:
        raise Unreadable(f"sheet {name!r} is empty (no header row)")
    names = [str(h).strip() if h is not None else "" for h in rows[0]]
    dup = duplicate_headers(names)
    if dup:
        raise Unreadable(f"sheet {name!r}: {dup}")
    return name, names, rows[1:]


def _read_xlsx(p: Path, sheet: str | None) -> RawTable:
    name, names, data = xlsx_rows(p, sheet)
    width = len(names)
    body = [[xlsx_cell(v) for v in r[:width]] + [None] * (width - len(r)) for r in data]
    df = pd.DataFrame(body, columns=names, dtype=object) if body else pd.DataFrame({c: [] for c in names}, dtype=object)
    return RawTable(df, None, [], p.name, detail=f"xlsx, sheet {name!r}")


def read_table_file(p: Path, table: str, profile: Profile, encoding: str | None = None) -> RawTable:
    """Read one table file and map its headers through ``profile`` (contract names in ``df``).

    Raises :class:`Unreadable` for a file that cannot be read, has missing or ambiguous
    columns, or (with ``strict_headers``) headers the profile does not know."""
    if table_format(p) == "parquet":
        import pyarrow.parquet as pq

        dup = duplicate_headers([str(n) for n in pq.read_schema(p).names])
        if dup:
            raise Unreadable(dup)
        raw = RawTable(pd.read_parquet(p), None, [], p.name, detail="parquet")
    elif table_format(p) == "xlsx":
        raw = _read_xlsx(p, profile.tables[table].sheet)
    else:
        raw = _read_csv(p, encoding, (*profile.tables[table].columns["entity_id"], "entity_id"))
    return apply_headers(raw, table, profile)


def apply_headers(raw: RawTable, table: str, profile: Profile) -> RawTable:
    """Rename the source headers to contract columns (see :meth:`Profile.header_map`)."""
    headers = [str(c) for c in raw.df.columns]
    tm = profile.tables[table]
    dup = duplicate_headers(headers, {h: c for c in tm.columns for h in (c, *tm.columns[c])})
    if dup:
        raise Unreadable(dup)
    found, missing, unmapped = profile.header_map(table, headers)
    if missing:
        raise Unreadable(f"missing column(s) {missing}; found {headers}")
    if unmapped:
        raise Unreadable(f"header(s) {unmapped} are not mapped by profile {profile.name!r}: add them to "
                         f"[tables.{table}.columns] or to its ignore list")
    if any(h != c for c, h in found.items()):  # headers already the contract's: nothing to rename
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
