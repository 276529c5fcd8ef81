"""Where a run writes, checked against what it reads: an output never overwrites an input.

A command declares its inputs and *all* its outputs in an :class:`IoPlan` (the files written
beside a named output come from the one function per kind below, which the command also uses
to write them, so the guard and the writer cannot disagree). :func:`check_io` refuses, before
any work, an output that is the same file as an input or as another output of the run (resolved
paths: ``./``, ``..``, symbolic and hard links; case-folded on a case-insensitive file system),
an output inside a dataset directory whose name would be read as one of its tables, an output
inside another input directory (a model bundle), an output directory holding an input, a
database URL given where files are written, and a database result table that is one of the
run's input relations in the same database.

The CLI calls :func:`check_io` before any work.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "IoPlan", "case_insensitive", "check_io", "conventional_assignments_path", "dataset_table_files",
    "draw_audit_path", "publish_summary_path", "same_database", "same_location", "score_rejects_path", "table_format",
]

# ----------------------------------------------------------------------------- sidecar names

def score_rejects_path(out: str | os.PathLike, rejects: str | os.PathLike | None = None) -> Path:
    """The rejects file of ``score``: ``--rejects`` or ``<out stem>.rejects.csv`` (``.xlsx`` beside an
    Excel ``--out``)."""
    if rejects:
        return Path(rejects)
    o = Path(out)
    return o.with_name(o.stem + ".rejects" + (".xlsx" if table_format(o) == "xlsx" else ".csv"))


def table_format(path: str | os.PathLike) -> str:
    """The format a table file is read and written in, from its suffix, whatever its case
    (officials' files come as ``PLAN.XLSX``): "parquet", "xlsx", or "csv" (anything else)."""
    suffix = Path(path).suffix.lower()
    return {".parquet": "parquet", ".xlsx": "xlsx"}.get(suffix, "csv")


def draw_audit_path(out: str | os.PathLike, audit: str | os.PathLike | None = None) -> Path:
    """The audit record of ``draw``: ``--audit`` or ``<out>`` with the suffix ``.audit.json``."""
    return Path(audit) if audit else Path(out).with_suffix(".audit.json")


def conventional_assignments_path(audit_path: str | os.PathLike) -> Path:
    """Where ``yiwu-credit draw`` writes the assignments next to an audit: ``X.audit.json`` →
    ``X.inspectors.csv`` (otherwise ``<stem>.inspectors.csv``)."""
    p = Path(audit_path)
    stem = p.name[:-len(".audit.json")] if p.name.endswith(".audit.json") else p.stem
    return p.with_name(stem + ".inspectors.csv")


def publish_summary_path(publish: str | os.PathLike) -> Path:
    """The summary beside ``estimate --publish P``: ``<P stem>.summary.csv`` (``.xlsx`` for a workbook)."""
    p = Path(publish)
    return p.with_name(p.stem + ".summary" + (".xlsx" if table_format(p) == "xlsx" else ".csv"))


def dataset_table_files(names: Sequence[str]) -> tuple[str, ...]:
    """The file names a dataset directory's tables are read from, for table ``names`` (the
    extensions :func:`~yiwu_credit.data.sources.files.find_table` looks for)."""
    from .sources.files import EXTENSIONS

    return tuple(f"{n}{ext}" for n in names for ext in EXTENSIONS)


# ----------------------------------------------------------------------------- comparing paths

def case_insensitive(path: str | os.PathLike) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing ancestor) ignores case:
    the ancestor's name with its case swapped names the same directory entry. Without any
    letter in the path, the platform's default (Windows and macOS ignore case)."""
    p = Path(os.path.realpath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    for q in (p, *p.parents):
        if q.name and q.name.swapcase() != q.name:
            try:
                return os.path.samefile(q, q.with_name(q.name.swapcase()))
            except OSError:
                return False
    return sys.platform in ("win32", "darwin")


def same_location(a: str | os.PathLike, b: str | os.PathLike, *, fold: bool | None = None) -> bool:
    """Whether paths ``a`` and ``b`` name the same file or directory: equal once resolved
    (``os.path.realpath``: ``./``, ``..``, links), the same file when both exist
    (``os.path.samefile``: hard links too), or equal case-folded when ``fold`` (default: detected
    with :func:`case_insensitive`)."""
    ra, rb = os.path.realpath(a), os.path.realpath(b)
    if ra == rb:
        return True
    if fold is None:
        fold = case_insensitive(ra)
    if fold and ra.casefold() == rb.casefold():
        return True
    try:
        return os.path.exists(ra) and os.path.exists(rb) and os.path.samefile(ra, rb)
    except OSError:
        return False


def _inside(path: str | os.PathLike, directory: str | os.PathLike, fold: bool | None) -> bool:
    """Whether ``path`` lies in ``directory`` or below it (resolved, as :func:`same_location`)."""
    p = Path(os.path.realpath(path))
    return any(same_location(q, directory, fold=fold) for q in p.parents)


# ----------------------------------------------------------------------------- databases

def _db_key(url: str) -> tuple:
    from urllib.parse import urlsplit

    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        return ("sqlite",)
    s = urlsplit(url)
    return ("postgresql" if scheme == "postgres" else scheme, (s.hostname or "").lower(), s.port or 5432,
            s.path.strip("/"))


def same_database(u: str, v: str, *, fold: bool | None = None) -> bool:
    """Whether database URLs ``u`` and ``v`` name one database (SQLite: the same file; a server:
    the same host, port and database name)."""
    ku, kv = _db_key(u), _db_key(v)
    if ku != kv:
        return False
    if ku == ("sqlite",):
        from .sources.dburl import sqlite_path

        return same_location(sqlite_path(u), sqlite_path(v), fold=fold)
    return True


def _relation_key(rel: str, schema: str | None, sqlite: bool) -> tuple[str, str]:
    """``(schema, table)`` case-folded (two relations differing only in case are treated as one:
    a doubt is refused)."""
    from .sources.dburl import split_name

    parts = [p for p, _ in split_name(rel)]
    if len(parts) == 1:
        parts = [schema or ("main" if sqlite else "public"), parts[0]]
    return parts[0].casefold(), parts[1].casefold()


# ----------------------------------------------------------------------------- the plan and the rule

@dataclass
class IoPlan:
    """What one run reads and writes; each entry names the option it came from (for messages).

    ``inputs``: files or directories read (a directory input holds no output); ``datasets``:
    ``(what, directory, table names)`` where only files named like a table are read;
    ``outputs``: files written; ``out_dirs``: directories written into (no input may lie in one);
    ``db_inputs``: ``(what, url, relations)``; ``db_outputs``: ``(what, url, schema, tables)``.
    """

    inputs: list[tuple[str, str]] = field(default_factory=list)
    datasets: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    out_dirs: list[tuple[str, str]] = field(default_factory=list)
    db_inputs: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    db_outputs: list[tuple[str, str, str | None, tuple[str, ...]]] = field(default_factory=list)


def _show(path: str) -> str:
    from .sources.dburl import redact

    return redact(str(path))


def check_io(plan: IoPlan, *, fold: bool | None = None) -> str | None:
    """The first reason ``plan`` would destroy data (an output onto an input or onto another
    output; see the module docstring), or None. ``fold`` forces case-folding on or off (default:
    detected per path)."""
    from .sources.dburl import is_database_url

    files = [(w, p) for w, p in plan.inputs if p and not is_database_url(str(p))]
    outs = [(w, p) for w, p in plan.outputs if p]
    for w, p in [*outs, *plan.out_dirs]:
        if p and is_database_url(str(p)):
            return (f"{w} {_show(p)} is a database URL, not a file or directory: this option writes files "
                    "(database results go to --to-db where a command has it)")
    for i, (w, p) in enumerate(outs):
        for w_in, p_in in files:
            if same_location(p, p_in, fold=fold):
                return f"{w} {_show(p)} is the input {w_in} {_show(p_in)}: an output never overwrites an input"
            if os.path.isdir(p_in) and _inside(p, p_in, fold):
                return (f"{w} {_show(p)} lies inside the input directory {w_in} {_show(p_in)}: write it elsewhere")
        for w2, p2 in outs[:i]:
            if same_location(p, p2, fold=fold):
                return f"{w} {_show(p)} is also {w2}: two outputs of one run must be different files"
        for w_ds, d, names in plan.datasets:
            if not d or is_database_url(str(d)):
                continue
            if same_location(p, d, fold=fold):
                return f"{w} {_show(p)} is the dataset directory {w_ds} {_show(d)}"
            real = Path(os.path.realpath(p))
            if same_location(real.parent, d, fold=fold):
                f = fold if fold is not None else case_insensitive(d)
                spelled = {Path(p).name, real.name}
                hit = [n for n in names if any((n.casefold() == m.casefold()) if f else n == m for m in spelled)]
                if hit:
                    return (f"{w} {_show(p)} would be read as a table of the dataset {w_ds} {_show(d)} "
                            f"({hit[0]}): write it outside the dataset directory or under another name")
    for w, d in plan.out_dirs:
        if not d:
            continue
        for w_in, p_in in [*files, *((wd, dd) for wd, dd, _ in plan.datasets)]:
            if p_in and not is_database_url(str(p_in)) and (same_location(p_in, d, fold=fold)
                                                            or _inside(p_in, d, fold)):
                return f"{w} {_show(d)} holds the input {w_in} {_show(p_in)}: write into another directory"
    for w, url, schema, tables in plan.db_outputs:
        if not url:
            continue
        for w_in, url_in, rels in plan.db_inputs:
            if not url_in or not is_database_url(str(url_in)) or not same_database(url, url_in, fold=fold):
                continue
            sqlite = _db_key(url)[0] == "sqlite"
            read = {_relation_key(r, None, sqlite): r for r in rels}
            for t in tables:
                k = _relation_key(t, schema, sqlite)
                if k in read:
                    return (f"{w} {_show(url)}: result table {'.'.join(k)} is the input relation {read[k]} of "
                            f"{w_in} {_show(url_in)}: write the results to another schema or database")
    return None
