"""Reading and atomically writing tables and files (CSV, Parquet or Excel, chosen by extension).

Every write goes to a temporary file next to its target and is renamed onto it only when the
whole output is complete; :func:`atomic_outputs` extends that to a *set* of files written by one
run (scores and their rejects, a draw and its audit): they appear together or not at all. A
write that fails (disk full, no permission) raises :class:`~yiwu_credit.errors.OutputError`
naming the path, and leaves no temporary file behind.

CSV and Excel outputs are read by people in spreadsheets, so text cells that a spreadsheet would
run as a formula (starting with ``= + - @``, tab or CR; OWASP "CSV injection") are written to CSV
with a leading apostrophe (the reader, :func:`yiwu_credit.data.tables.read_input`, removes it again, so a round trip is exact); Excel
workbooks hold every text cell as a text cell, never a formula.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import OutputError
from .paths import table_format

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "EXCEL_MAX_ROWS", "atomic_outputs", "atomic_path", "markdown_table", "neutralise_formulas",
    "restore_formulas", "save_figure", "sha256_file", "write_bytes", "write_table", "write_tables", "write_text", "write_xlsx",
]

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXCEL_MAX_ROWS = 1_048_575  # 2^20 rows less the header
_BLOCKED = {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())


def _temp_for(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
    return Path(tmp)


def _output_error(e: OSError, path: Path, written: Sequence[str] = (), unwritten: Sequence[Path] = ()) -> OutputError:
    """The error for ``path``; ``written``: what of the run is already in place (then the message
    says so, and which files are not, instead of claiming nothing was written)."""
    why = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EFBIG: "file too large for this file system or limit"}.get(e.errno or -1, e.strerror or str(e))
    if written:
        return OutputError(f"cannot write {path}: {why}; ALREADY WRITTEN: {'; '.join(written)}; NOT written: "
                           f"{', '.join(str(u) for u in unwritten) or path} (re-run to complete the set)")
    return OutputError(f"cannot write {path}: {why}; nothing was written (no partial output is left)")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP held back while a set of files is renamed into place, then delivered.

    Blocking them for this thread (``pthread_sigmask``) is not enough: the kernel may hand the
    signal to another thread (a worker pool's), whose C handler records it, and Python then runs
    the handler in the main thread between two renames. So, in the main thread, the Python-level
    handlers are also replaced by ones that only note the signal; after the renames the handlers
    are restored and the noted signals raised again."""
    import threading

    pending: list[int] = []
    saved: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for s in _BLOCKED:
            with contextlib.suppress(ValueError, OSError):
                saved[s] = signal.signal(s, lambda signum, frame: pending.append(signum))
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)   # a signal held by the kernel is noted now
        for s, handler in saved.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)                             # delivered to the restored handler


@contextlib.contextmanager
def atomic_outputs(*paths: str | os.PathLike, written: list[str] | None = None) -> Iterator[list[Path]]:
    """Yield one temporary path per target; rename them all onto their targets only if the block
    succeeds. The renames run with SIGINT/SIGTERM held back, so an interrupted run leaves either
    the previous set of files or the new one, never a mix, and no temporary files. ``written``:
    what the block committed elsewhere (a database transaction appends its description), named
    with the files already renamed if a rename fails."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for t in targets:
            try:
                temps.append(_temp_for(t))
            except OSError as e:
                raise _output_error(e, t) from None
        try:
            yield temps
        except OSError as e:  # a writer that failed without naming its target
            where = Path(e.filename) if e.filename else targets[0]
            raise _output_error(e, targets[temps.index(where)] if where in temps else where) from None
        with _signals_held():
            done = list(written or [])
            for i, (tmp, t) in enumerate(zip(temps, targets, strict=True)):
                try:
                    os.replace(tmp, t)
                except OSError as e:
                    raise _output_error(e, t, done, targets[i:]) from None
                done.append(str(t))
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    with atomic_outputs(path) as (tmp,):
        yield tmp


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a matplotlib figure atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        plt.close(fig)
    return path


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _text_columns(df: pd.DataFrame) -> list:
    return [c for c in df.columns if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])]


def _guarded(s: pd.Series) -> np.ndarray:
    """Cells that start with a trigger once any leading apostrophes are set aside."""
    t = s.astype("string").str.lstrip("'")
    return t.str[:1].isin(FORMULA_TRIGGERS).fillna(False).to_numpy(dtype=bool)


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells starting with ``= + - @``, tab or CR begin with an
    apostrophe, so a spreadsheet shows them as text instead of running them (numeric columns
    are left alone; a cell that already starts with apostrophes before a trigger gets one more,
    so :func:`restore_formulas` is an exact inverse). Returns ``df`` itself when no cell needs it."""
    out = None
    for c in _text_columns(df):
        hit = _guarded(df[c])
        if hit.any():
            if out is None:
                out = df.copy()
            col = np.array(df[c].astype(object).to_numpy(), dtype=object)
            col[hit] = np.array(["'" + str(v) for v in col[hit]], dtype=object)
            out[c] = col
    return df if out is None else out


def restore_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`neutralise_formulas` (in place on a freshly read frame; returns it)."""
    for c in _text_columns(df):
        hit = df[c].astype("string").str.startswith("'").fillna(False).to_numpy(dtype=bool) & _guarded(df[c])
        if hit.any():
            col = np.array(df[c].astype(object).to_numpy(), dtype=object)
            col[hit] = np.array([str(v)[1:] for v in col[hit]], dtype=object)
            df[c] = col
    return df


def write_xlsx(df: pd.DataFrame, tmp: Path, target: Path, date_cells: bool = False) -> None:
    """One sheet: a bold frozen header, text cells as text (never formulas), sensible widths;
    date columns as ISO text, or as Excel date cells with ``date_cells``."""
    import xlsxwriter

    if len(df) > EXCEL_MAX_ROWS:
        raise OutputError(f"cannot write {target}: {len(df):,} rows is more than an Excel sheet holds "
                          f"({EXCEL_MAX_ROWS:,}); write .csv or .parquet instead")
    wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(target.stem[:31] or "Sheet1")
    bold, text = wb.add_format({"bold": True}), wb.add_format({"num_format": "@"})
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    kinds, cols = [], []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            kinds.append("bool")
        elif pd.api.types.is_numeric_dtype(s):
            kinds.append("num")
            s = s.astype("float64").where(np.isfinite(s.to_numpy(dtype="float64", na_value=np.nan)))
        elif date_cells and pd.api.types.is_datetime64_any_dtype(s):
            kinds.append("date")
            s = s.dt.to_pydatetime() if len(s) else s
            s = pd.Series(s, dtype=object)
        else:
            kinds.append("text")
            if pd.api.types.is_datetime64_any_dtype(s):
                s = s.dt.strftime("%Y-%m-%d")
        values = np.array(s.astype(object).to_numpy(), dtype=object)
        values[pd.isna(values)] = None
        cols.append(values)
    for j, c in enumerate(df.columns):
        sample = [str(v) for v in cols[j][:2000] if v is not None]
        width = max([len(str(c))] + [len(v) + sum(ord(ch) > 0x2E80 for ch in v) for v in sample])  # CJK: 2 wide
        ws.set_column(j, j, min(60, width + 2), {"text": text, "date": day}.get(kinds[j]))
        ws.write_string(0, j, str(c), bold)
    ws.freeze_panes(1, 0)
    writers = {"num": ws.write_number, "bool": ws.write_boolean, "text": ws.write_string,
               "date": lambda r, c, v: ws.write_datetime(r, c, v, day)}
    convert = {"num": float, "bool": bool, "text": str, "date": lambda v: v}
    for i in range(len(df)):
        for j, kind in enumerate(kinds):
            v = cols[j][i]
            if v is not None:
                writers[kind](i + 1, j, convert[kind](v))
    wb.close()


def _write_one(df: pd.DataFrame, tmp: Path, target: Path, *, excel: bool, index: bool, neutralise: bool) -> None:
    if table_format(target) == "parquet":
        df.to_parquet(tmp, index=index)
        return
    if index:
        df = df.reset_index()
    if table_format(target) == "xlsx":  # every text cell is written as text, never as a formula
        write_xlsx(df, tmp, target)
    else:
        df = neutralise_formulas(df) if neutralise else df
        # a bare CR inside a cell is only quoted when CR is part of the line terminator
        cr = any(df[c].astype("string").str.contains("\r", regex=False).any() for c in _text_columns(df))
        df.to_csv(tmp, index=False, encoding="utf-8-sig" if excel else "utf-8", lineterminator="\r\n" if cr else "\n")


def write_tables(items: Sequence[tuple], *, excel: bool = False, index: bool = False,
                 neutralise: bool = True, before_commit: Callable[[], object] | None = None) -> list[Path]:
    """Write the outputs of one run as one set: all appear, or none (see :func:`atomic_outputs`).

    ``items``: ``(table, path)`` or ``(table, path, excel)`` where ``table`` is a DataFrame, or a
    str written as UTF-8 text (an audit record). A table's format follows its path's extension:
    ``.parquet``, ``.xlsx`` (Excel workbook) or CSV (anything else; ``excel=True`` adds a UTF-8
    byte-order mark so Excel shows Chinese text). ``neutralise`` guards CSV text cells against
    formula injection. ``before_commit`` runs once every file is written and before any is renamed
    into place (a database transaction of the same run): if it fails, no file appears; if it
    succeeds and a rename then fails, the error names what it returned (what it wrote) and the
    files that are in place and those that are not.
    """
    paths = [Path(it[1]) for it in items]
    written: list[str] = []
    with atomic_outputs(*paths, written=written) as temps:
        for it, tmp, target in zip(items, temps, paths, strict=True):
            obj, bom = it[0], it[2] if len(it) > 2 else excel
            if isinstance(obj, str):
                tmp.write_text(obj, encoding="utf-8")
            else:
                _write_one(obj, tmp, target, excel=bom, index=index, neutralise=neutralise)
        if before_commit is not None:
            done = before_commit()
            written.append(str(done) if done else "the database transaction (committed)")
    return paths


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, excel: bool = False, index: bool = False,
                neutralise: bool = True) -> Path:
    """Write one table atomically (see :func:`write_tables` for formats and options)."""
    return write_tables([(df, path)], excel=excel, index=index, neutralise=neutralise)[0]


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table (no tabulate dependency)."""
    def cell(v: object) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else format(float(v), floatfmt)
        return str(v)
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else "---" for c in df.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])
