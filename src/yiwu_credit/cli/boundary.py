"""What every command shares at its edge: argument types, printing, reading an input table, the
database writer. One place each; the command modules only parse, call the library and print."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from ..data.paths import IoPlan

__all__ = [
    "TABLE_SUFFIXES", "add_command", "add_db_args", "add_source_args", "count_arg", "date_arg", "db_writer",
    "floats_arg", "io_plan", "positive_float", "say", "print_reconcile", "progress", "read_input", "sha256_arg",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".xlsx")


def date_arg(value: str) -> str:
    """argparse type for dates: a real ISO calendar date, returned as YYYY-MM-DD."""
    from ..data.dates import parse_as_of
    from ..errors import UsageError

    try:
        return parse_as_of(value, "date").date().isoformat()
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("date: ")) from None


def count_arg(minimum: int) -> Callable[[str], int]:
    """argparse type for a whole number >= ``minimum``."""
    def parse(value: str) -> int:
        try:
            v = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{v} is less than {minimum}")
        return v
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def positive_float(value: str) -> float:
    """argparse type for a finite number > 0 (``nan``, ``inf``, ``0`` and negatives are refused)."""
    import math

    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a finite number > 0")
    return v


positive_float.__name__ = "number > 0"


def sha256_arg(value: str) -> str:
    """argparse type for a SHA-256 written in hex (64 digits; case and surrounding spaces ignored)."""
    v = value.strip().lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise argparse.ArgumentTypeError(f"{value!r} is not a SHA-256 (64 hexadecimal digits)")
    return v


def floats_arg(value: str) -> tuple[float, ...]:
    """argparse type: comma-separated finite numbers ≥ 0."""
    import math

    try:
        v = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers") from None
    if not v or any(not (math.isfinite(x) and x >= 0) for x in v):
        raise argparse.ArgumentTypeError(f"{value!r}: expected one or more finite numbers ≥ 0")
    return v


def say(msg: str = "") -> None:
    """Print a line to stdout. When stdout's reader has gone (``yiwu-credit ... | head``), the rest
    of the output is dropped quietly and the command carries on: files are written as usual and the
    exit code is the command's own (an INVALID dataset still exits 3)."""
    if _STDOUT_CLOSED:
        return
    try:
        print(msg, flush=True)
    except BrokenPipeError:
        _STDOUT_CLOSED.append(True)
        try:  # no second error when Python flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
            pass


#: set once stdout's reader has gone: the process prints nothing more to stdout
_STDOUT_CLOSED: list[bool] = []


def progress(total: int, desc: str):
    """A progress bar on a terminal; silent otherwise (tqdm, disabled when not a TTY)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None, leave=False, file=sys.stderr)


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="source profile: 'zh' (Chinese file names, headers and codes), a TOML "
                   "path, or 'contract' (default: the contract's own names)")
    p.add_argument("--encoding", help="encoding of CSV files (default: UTF-8 or GB18030, detected per file)")


def add_db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to-db", metavar="URL", help="also write the results to this database (postgresql://…, "
                   "sqlite:///…) in one transaction; credentials from the URL or PGPASSWORD etc.")
    p.add_argument("--run-id", help="the run's id in the database (default: command, date or seed, model); "
                   "re-running the same id replaces its rows")
    p.add_argument("--db-schema", help="database schema for the result tables")


def db_writer(a: argparse.Namespace, command: str, default_run: str, tables: dict[str, pd.DataFrame],
               audit: dict | None = None) -> Callable[[], str] | None:
    """With ``--to-db URL``: a callable that writes this run's tables in one transaction (rows of an
    earlier run with the same run id are replaced) and returns what it wrote; called before the
    files are renamed into place, so a failed database write leaves no files either (and a failed
    rename after it says that the database holds the run)."""
    if not getattr(a, "to_db", None):
        return None

    def write() -> str:
        from ..data.sources.database import write_run
        from ..data.sources.dburl import redact

        run_id = a.run_id or default_run
        counts = write_run(a.to_db, run_id, tables, audit=audit, command=command, schema=a.db_schema)
        done = f"run {run_id!r} written to {redact(a.to_db)}: " + ", ".join(f"{t} {n:,} rows" for t, n in counts.items())
        say(f"{done} (one transaction; a re-run of {command} with this run id replaces it)")
        return done

    return write


def print_reconcile(ds, notes: bool = True) -> None:
    """Print rows in = kept + quarantined for every table that lost rows, and the loader's notes
    (values mapped or grouped, e.g. reasons read as ``other``): every command that loads a
    dataset prints them, so nothing that changes a label or a feature passes unsaid."""
    for name, (n_in, n_kept, n_rej) in ds.counts.items():
        if n_rej:
            say(f"quarantined {name}: {n_rej:,} of {n_in:,} rows (kept {n_kept:,}); reasons in the rejects file")
    for note in ds.notes if notes else ():
        say(f"note: {note}")


def read_input(path: str, what: str, unique: bool = True) -> pd.DataFrame:
    """A command's input table with an entity_id column, indexed by it (the one reader,
    :func:`yiwu_credit.data.tables.read_input`: exit 3 naming the file, column, rows and reason).
    ``unique``: each entity once (scores, plans, drawn lists); results explain their own repeats."""
    from ..data.tables import read_input as read_one

    return read_one(path, what, unique=("entity_id",) if unique else ()).set_index("entity_id")


def io_plan(a: argparse.Namespace, *, inputs: Sequence[tuple[str, str | None]] = (),
            outputs: Sequence[tuple[str, str | os.PathLike | None]] = (), data: str | None = None,
            out_dirs: Sequence[tuple[str, str | None]] = (), db_tables: Sequence[str] = ()) -> IoPlan:
    """A command's inputs and outputs for :func:`~yiwu_credit.data.paths.check_io`.

    ``inputs``: ``(option, value)`` read as files or directories (a value that names no existing
    file, a shipped policy say, is left out); ``data``: the dataset (directory or database URL,
    tables named by ``a.profile``); ``outputs``: every file the run writes, sidecars included;
    ``db_tables``: the result tables written with ``--to-db``."""
    from ..data.paths import IoPlan, dataset_table_files

    plan = IoPlan(inputs=[(w, str(v)) for w, v in inputs if v and Path(v).exists()],
                  outputs=[(w, str(v)) for w, v in outputs if v], out_dirs=[(w, v) for w, v in out_dirs if v])
    if data:
        names = _dataset_names(getattr(a, "profile", None))
        if names is not None:
            from ..data.sources.dburl import is_database_url

            if is_database_url(data):
                plan.db_inputs.append(("--data", data, names))
            else:
                plan.datasets.append(("--data", data, dataset_table_files(names)))
    if getattr(a, "to_db", None) and db_tables:
        from ..data.sources.database import RUNS_TABLE

        plan.db_outputs.append(("--to-db", a.to_db, getattr(a, "db_schema", None), (*db_tables, RUNS_TABLE)))
    return plan


def _dataset_names(profile: str | None) -> tuple[str, ...] | None:
    """Every file or relation name the profile reads tables from; None when the profile does not
    load (the command then fails on it before writing anything)."""
    from ..data.sources.profile import load_profile
    from ..errors import YiwuCreditError

    try:
        prof = load_profile(profile)
    except YiwuCreditError:
        return None
    return tuple(dict.fromkeys(n for t in prof.tables.values() for n in t.names))


def add_command(sp, name: str, func: Callable, help: str, example: str,
                check: Callable[[argparse.Namespace], str | None] | None = None,
                io: Callable[[argparse.Namespace], IoPlan] | None = None) -> argparse.ArgumentParser:
    """A subcommand running ``func``; ``check`` returns a usage problem (exit 2) before any work;
    ``io`` declares what the run reads and writes, checked (exit 2) before any work so that no
    output overwrites an input or another output."""
    p = sp.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func, parser=p, check=check, io=io)
    return p
