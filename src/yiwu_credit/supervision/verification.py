"""Checking a published draw (一公开): read the audit record, dispatch to its design, recompute.

``DESIGNS`` lists every sampling design by its audit ``format``; :func:`check_audit` and
:func:`verify` dispatch on it (a new design is one entry here, see
:class:`~yiwu_credit.supervision.audit.SamplingDesign`). :func:`verify_files` is what
``yiwu-credit verify`` runs. Nothing here imports a machine-learning library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.paths import conventional_assignments_path
from ..errors import ConfigError, VerificationFailed
from ..policy import Policy
from .audit import SEAL, SamplingDesign, VerifyResult, seal_problems
from .joint import JOINT_MICROSTRATA, JointDraw
from .plan import read_plan_record
from .systematic import SYSTEMATIC_PPS, Draw

__all__ = ["DESIGNS", "check_audit", "check_seal", "conventional_assignments_path", "load_audit", "published_seal_problems", "verify",
           "verify_files"]

#: audit ``format`` → the design that wrote it
DESIGNS: dict[str, SamplingDesign] = {d.format: d for d in (SYSTEMATIC_PPS, JOINT_MICROSTRATA)}


def check_audit(audit: Any, source: str = "audit") -> dict[str, Any]:
    """Check the types of an audit record's fields; ConfigError naming ``source`` and the field.

    Only fields that are present are checked here (:func:`verify` names missing ones).
    """
    if not isinstance(audit, Mapping):
        raise ConfigError(f"{source}: not a yiwu-credit audit record (expected a JSON object, got "
                          f"{type(audit).__name__})")
    design = DESIGNS.get(audit.get("format"))  # type: ignore[arg-type]
    if design is None:
        raise ConfigError(f"{source}: not a yiwu-credit audit record (format {audit.get('format')!r})")
    design.check(audit, source)
    return dict(audit)


def check_seal(audit: Mapping[str, Any], source: str = "audit") -> dict[str, Any]:
    """The record, if its seal holds: :class:`~yiwu_credit.errors.VerificationFailed` (exit 7) naming
    ``source`` and each field changed since the draw, or the missing seal. What a step that relies
    on the record without recomputing it (estimate: the campaign window, the drawn ids) calls."""
    mm, unverified = seal_problems(audit)
    if mm or unverified:
        raise VerificationFailed(f"{source}: the audit record is not the one the draw wrote; refused:\n"
                                 + "\n".join(f"  - {m}" for m in mm + unverified))
    return dict(audit)


def published_seal_problems(audit: Mapping[str, Any], seal: str | None) -> list[str]:
    """The record's seal against the value published at draw time (``draw`` prints it): the seal
    alone can be remade by whoever edits the record, the published value cannot. None: not checked."""
    if seal is None:
        return []
    got = (audit.get(SEAL) or {}).get("sha256") if isinstance(audit.get(SEAL), Mapping) else None
    want = str(seal).strip().lower()
    if got != want:
        return [f"seal: the record's seal {str(got)[:16]}… is not the published seal {want[:16]}… (the record was "
                "edited and resealed, or it is another draw's)"]
    return []


def _plan_record_problems(audit: Mapping[str, Any], frame: Any) -> list[str]:
    """The frame's own plan record (``plan_*`` columns) against the one the audit recorded: a plan
    file whose record was edited (another policy, budget or floor) is not the plan drawn from."""
    if not isinstance(frame, pd.DataFrame) or not audit.get("plan"):
        return []
    rec = read_plan_record(frame, "frame")
    if rec is None:
        return []
    def canon(x: Any) -> str:
        return json.dumps(x, sort_keys=True, ensure_ascii=False, default=str)
    diff = sorted(k for k in set(rec) | set(audit["plan"]) if canon(rec.get(k)) != canon(audit["plan"].get(k)))
    return [f"plan record: the frame's plan_* columns differ from the audit's plan record in {diff}"] if diff else []


def load_audit(path: str | os.PathLike, *, sealed: bool = True, seal: str | None = None) -> dict[str, Any]:
    """Read an audit record written by :func:`~yiwu_credit.supervision.audit.save_audit` (ConfigError if
    malformed). ``sealed``: refuse a record whose seal does not hold or that has none
    (:func:`check_seal`, exit 7); ``verify_files`` reads with ``sealed=False`` and reports it instead."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"audit file not found: {p}")
    try:
        audit = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid JSON: {e}") from None
    audit = check_audit(audit, str(p))
    if not sealed:
        return audit
    audit = check_seal(audit, str(p))
    problems = published_seal_problems(audit, seal)
    if problems:
        raise VerificationFailed(f"{p}: " + "; ".join(problems))
    return audit


def verify(audit: Mapping[str, Any] | Draw | JointDraw,
           plan_or_frame: pd.DataFrame | Mapping[str, pd.DataFrame],
           policy: str | Path | Policy | None = None, *, roster: Any = None, previous: Any = None,
           assignments: pd.DataFrame | str | os.PathLike | None = None, entities_only: bool = False,
           seal: str | None = None) -> VerifyResult:
    """Recompute a draw from its audit record and the candidate frame; name every mismatch.

    ``plan_or_frame``: the plan (with ``pi``) the draw used, or the scored frame — the plan is
    then rebuilt with the policy and parameters recorded in the audit (``policy`` overrides the
    recorded policy name, e.g. a TOML path). For a joint audit pass the mapping department → plan.
    Checks: algorithm/version, that ``start`` follows from ``seed``, the frame and pi hashes, n,
    and the selected ids.

    The second random: when the audit records an inspector assignment (``inspectors``), pass the
    ``roster`` (and ``previous`` if one was used): the roster hash is checked and the assignment
    recomputed. Without the roster the result is *not ok* and says the inspector draw was not
    verified. ``assignments``: the published assignments (table or CSV path with ``entity_id``,
    ``inspector_id``), compared with the recorded assignment; an unreadable file is a mismatch.
    Field types are checked first (ConfigError).

    The seal: every field of the record is checked against the seal made at draw time (a field
    changed, added or removed is a mismatch; a record without a seal is NOT VERIFIED), so what is
    not recomputed — the campaign window, the plan record — is covered too. ``entities_only``:
    check the seal, recompute the entity draw, and leave the recorded inspector draw to the seal
    (what ``estimate`` needs). ``seal``: the seal published at draw time, compared with the
    record's (anyone can remake a seal over an edited record; nobody can change the published one).
    A frame that carries a plan record (``plan_*`` columns) must carry the audit's.
    """
    if isinstance(audit, Draw | JointDraw):
        audit = audit.audit
    audit = check_audit(audit)
    seal_mm, seal_unverified = seal_problems(audit)
    design_audit = {k: v for k, v in audit.items() if k != "inspectors"} if entities_only else audit
    res = DESIGNS[audit["format"]].verify(design_audit, plan_or_frame, policy=policy, roster=roster,
                                          previous=previous, assignments=assignments)
    sealed = not seal_mm and not seal_unverified
    named = {m.split(":", 1)[0] for m in res.mismatches}   # a field the recomputation already names
    seal_mm = [m for m in seal_mm if "'" not in m or m.split("'")[1] not in named]
    checked = res.checked if not sealed else (
        *res.checked, "seal: every recorded field (campaign window, plan record, parameters, …) is as sealed"
        + ("" if seal is not None else f"; the seal is {audit[SEAL]['sha256']}: compare it with the one published at "
           "draw time (or pass it: --seal)"))
    mismatches = (*res.mismatches, *seal_mm, *published_seal_problems(audit, seal),
                  *_plan_record_problems(audit, plan_or_frame))
    unverified = (*res.unverified, *seal_unverified)
    if seal is not None and not published_seal_problems(audit, seal):
        checked = (*checked, "seal: the record's seal is the published one")
    return VerifyResult(not mismatches and not unverified, mismatches, res.recomputed, checked, unverified)




def verify_files(audit_path: str | os.PathLike, frame_path: str | os.PathLike | Mapping[str, str | os.PathLike],
                 policy: str | Path | Policy | None = None, *, roster: str | os.PathLike | None = None,
                 previous: str | os.PathLike | None = None,
                 assignments: str | os.PathLike | None = None, seal: str | None = None) -> VerifyResult:
    """:func:`verify` on files: an audit JSON and a plan/scored table (CSV or Parquet; for a joint
    audit a mapping department → table path; read by the one reader, exit 3 if missing or
    unreadable). This is what ``yiwu-credit verify`` runs.

    ``roster`` / ``previous``: the inspector roster and the previous campaign's assignments
    (CSV) to recompute the recorded inspector draw. ``assignments``: the published assignments
    file; by default the conventional file next to the audit (``X.audit.json`` →
    ``X.inspectors.csv``) is checked when it exists.
    """
    from ..data.tables import read_input

    audit = load_audit(audit_path, sealed=False)   # the seal is reported by verify, with the rest
    if isinstance(frame_path, Mapping):
        return verify(audit, {d: read_input(p, f"frame {d}", unique=("entity_id",)) for d, p in frame_path.items()},
                      policy, seal=seal)
    frame = read_input(frame_path, "frame", unique=("entity_id",))
    prev = read_input(previous, "previous", required=("entity_id", "inspector_id")) if previous is not None else None
    asg = Path(assignments) if assignments is not None else None
    if asg is None and "inspectors" in audit and conventional_assignments_path(audit_path).is_file():
        asg = conventional_assignments_path(audit_path)
    return verify(audit, frame, policy, roster=roster, previous=prev, assignments=asg, seal=seal)
