"""The published inspector assignment: the table format (entity_id, inspector_id, slot) and its
comparisons, shared by the inspector draw, its verification and the published results table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..errors import PlanError

__all__ = ["assignment_map", "compare_assignments", "inspectors_by_entity"]


def inspectors_by_entity(assignments: pd.DataFrame) -> pd.Series:
    """Entity → ";"-joined inspector ids (slot order), from :func:`assign_inspectors` output."""
    a = assignments.sort_values(["entity_id", "slot"])
    s = a.groupby("entity_id", sort=True)["inspector_id"].agg(";".join)
    s.name = "inspectors"
    return s


def assignment_map(assignments: pd.DataFrame) -> dict[str, list[str]]:
    """Entity → sorted inspector ids, from a table with ``entity_id`` and ``inspector_id``."""
    a = assignments.reset_index() if "entity_id" not in assignments.columns else assignments
    missing = [c for c in ("entity_id", "inspector_id") if c not in a.columns]
    if missing:
        raise PlanError(f"assignments: missing column(s) {missing}")
    out: dict[str, list[str]] = {}
    for e, i in zip(a["entity_id"].astype(str), a["inspector_id"].astype(str), strict=True):
        out.setdefault(e, []).append(i)
    return {e: sorted(v) for e, v in sorted(out.items())}


def compare_assignments(expected: Mapping[str, Sequence[str]], got: Mapping[str, Sequence[str]], what: str,
                        expected_name: str = "the audit records", got_name: str = "found",
                        limit: int = 10) -> list[str]:
    """One message per entity whose inspectors differ (at most ``limit``, then a count)."""
    msgs = []
    for e in sorted(set(expected) | set(got)):
        a, b = sorted(expected.get(e, [])), sorted(got.get(e, []))
        if a != b:
            msgs.append(f"{what}: entity {e}: {got_name} {b or 'no inspectors'}, {expected_name} {a or 'none'}")
    if len(msgs) > limit:
        msgs = msgs[:limit] + [f"{what}: … and {len(msgs) - limit} more entities differ"]
    return msgs
