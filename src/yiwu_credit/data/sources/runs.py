"""A run id names one command's run: what :func:`~yiwu_credit.data.sources.database.write_run`
checks in the run table before it replaces a run's rows.

A run id already recorded for another command is refused (its rows would otherwise stay beside
the new run's under the same id, orphans nobody replaces); for the same command, the run's rows
are removed from every table the earlier run wrote, not only from the tables written now (a draw
re-run without inspectors leaves no assignments of the earlier draw behind).
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import UsageError

__all__ = ["clear_earlier_run", "previous_run"]


def previous_run(w: Any, runs_table: str, run_id: str) -> tuple[str, list[str]] | None:
    """``(command, tables written)`` of ``run_id`` in the run table of writer ``w``, or None."""
    q = w.name(runs_table)
    if hasattr(w, "cur"):  # PostgreSQL (ADBC)
        w.cur.execute(f"SELECT command, row_counts::text FROM {q} WHERE run_id = $1", parameters=(run_id,))
        row = w.cur.fetchone()
    else:
        row = w.conn.execute(f"SELECT command, row_counts FROM {q} WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    try:
        counts = json.loads(row[1]) if row[1] else {}
    except (TypeError, ValueError):
        counts = {}
    return str(row[0] or ""), [str(t) for t in (counts if isinstance(counts, dict) else {})]


def clear_earlier_run(w: Any, runs_table: str, run_id: str, command: str, tables: list[str]) -> list[str]:
    """Delete the rows of the earlier run ``run_id`` from the tables it wrote that this run does
    not write (those it writes are replaced by the writer); returns those tables. A
    :class:`UsageError` (exit 2) when the id was used by another command."""
    prev = previous_run(w, runs_table, run_id)
    if prev is None:
        return []
    was, written = prev
    if was and command and was != command:
        raise UsageError(f"run id {run_id!r} already names a {was!r} run in {runs_table}; a run id names one "
                         f"command's run (its rows would be mixed with this {command!r} run's): give another "
                         "run id (--run-id)")
    stale = [t for t in written if t not in tables and t != runs_table]
    for t in stale:
        _delete(w, t, run_id)
    return stale


def _delete(w: Any, table: str, run_id: str) -> None:
    """Delete ``run_id``'s rows from ``table`` if the table still exists."""
    q = w.name(table)
    if hasattr(w, "cur"):
        w.cur.execute("SELECT to_regclass($1) IS NOT NULL", parameters=(q,))
        if w.cur.fetchone()[0]:
            w.cur.execute(f"DELETE FROM {q} WHERE run_id = $1", parameters=(run_id,))
        return
    import sqlite3

    try:
        w.conn.execute(f"DELETE FROM {q} WHERE run_id = ?", (run_id,))
    except sqlite3.OperationalError as e:
        if "no such table" not in str(e):
            raise
