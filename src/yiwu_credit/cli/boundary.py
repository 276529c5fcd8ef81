"""What every command shares at its edge: argument types, printing, reading an input table, the
database writer. One place each; the command modules only parse, call the library and print."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import pandas as pd

__all__ = [
    "TABLE_SUFFIXES", "add_command", "add_db_args", "add_source_args", "count_arg", "date_arg", "db_writer",
    "floats_arg", "say", "print_reconcile", "progress", "read_input",
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


def floats_arg(value: str) -> tuple[float, ...]:
    """argparse type: comma-separated non-negative numbers."""
    try:
        v = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers") from None
    if not v or any(not (x >= 0) for x in v):
        raise argparse.ArgumentTypeError(f"{value!r}: expected one or more numbers ≥ 0")
    return v


def say(msg: str = "") -> None:
    print(msg, flush=True)


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
               audit: dict | None = None) -> Callable[[], None] | None:
    """With ``--to-db URL``: a callable that writes this run's tables in one transaction (rows of an
    earlier run with the same run id are replaced); called before the files are renamed into place,
    so a failed database write leaves no files either."""
    if not getattr(a, "to_db", None):
        return None

    def write() -> None:
        from ..data.sources.database import redact, write_run

        run_id = a.run_id or default_run
        counts = write_run(a.to_db, run_id, tables, audit=audit, command=command, schema=a.db_schema)
        say(f"run {run_id!r} written to {redact(a.to_db)}: "
             + ", ".join(f"{t} {n:,} rows" for t, n in counts.items()) + " (one transaction; a re-run replaces it)")

    return write


def print_reconcile(ds) -> None:
    """Print rows in = kept + quarantined for every table that lost rows."""
    for name, (n_in, n_kept, n_rej) in ds.counts.items():
        if n_rej:
            say(f"quarantined {name}: {n_rej:,} of {n_in:,} rows (kept {n_kept:,}); reasons in the rejects file")


def read_input(path: str, what: str) -> pd.DataFrame:
    """A command's input table with an entity_id column, indexed by it (the one reader,
    :func:`yiwu_credit.data.tables.read_input`: exit 3 naming the file, column, rows and reason)."""
    from ..data.tables import read_input as read_one

    return read_one(path, what).set_index("entity_id")


def add_command(sp, name: str, func: Callable, help: str, example: str,
                check: Callable[[argparse.Namespace], str | None] | None = None) -> argparse.ArgumentParser:
    """A subcommand running ``func``; ``check`` returns a usage problem (exit 2) before any work."""
    p = sp.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func, parser=p, check=check)
    return p
