"""The 双随机 entity draw: systematic PPS in PRN order, exactly π, verifiable from the seed.

Entities are ordered by ``prn_keys(seed, entity_id)`` (ties by id), ``pi`` is held in fixed
point (:mod:`~yiwu_credit.supervision.fixedpoint`), one start ``u`` in ``[0, 2**36)`` comes from
the seed, and unit *i* is selected iff a point ``u + j * 2**36`` falls in its cumulative
interval: exactly n entities, each with probability exactly ``pi_int / 2**36``, whatever the row
order.

The draw is three steps over *ranges* — consecutive stretches of the draw order — so any
executor can run it (one machine: chunks of the sorted frame; Dask: PRN-key ranges):

    prep = prepare(pi, ranges, R)           # per partition: fixed point, per-range sums and counts
    offs = offsets([p.stats ...], n, seed)  # global: n, each range's deficit share and offset, start
    sel = select_range(q_k, offs, k)        # per range, in draw order: exact selection

and :func:`draw_audit` builds the one audit record from the :class:`AuditHasher` fed range by
range. ``SYSTEMATIC_PPS`` is this design as a :class:`~yiwu_credit.supervision.audit.SamplingDesign`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, PlanError
from ..policy import Policy, load_policy
from .allocation import check_n
from .audit import (
    ALGORITHM_VERSION,
    COUNT,
    IDS,
    OPT_SHA,
    OPT_STRS,
    POSITIVE,
    SEED,
    SHA256,
    START,
    AuditHasher,
    FieldSpec,
    VerifyResult,
    audit_header,
    campaign_window,
    check_fields,
    diff_ids,
    id_list,
    is_date,
    is_num,
    precheck,
    seal_audit,
)
from .fixedpoint import (
    SCALE,
    SCALE_BITS,
    deficit_shares,
    quantise,
    spread_deficit,
    systematic_select,
)
from .plan import as_entity_frame, plan_pi, plan_record, supervision_plan
from .prn import IdBytes, derive_seed, id_bytes, prn_order, seed_text

__all__ = [
    "AUDIT_FORMAT", "DRAW_ALGORITHM", "DRAW_FIELDS", "SYSTEMATIC_PPS", "Draw", "DrawOffsets", "Prepared", "RangeStats",
    "SystematicPPS", "campaign_size", "draw", "draw_audit", "offsets", "pi_total", "prepare", "select_range", "start_from_seed",
]

DRAW_ALGORITHM = "systematic-pps-in-prn-order"
AUDIT_FORMAT = "yiwu-credit/draw-audit/1"


def start_from_seed(seed: Any) -> int:
    """The systematic start ``u`` in ``[0, SCALE)``: the top 36 bits of SHA-256 of the seed."""
    return derive_seed("start", seed, SCALE_BITS)


# ============================================================== the core: prepare → offsets → select_range
@dataclass(frozen=True)
class RangeStats:
    """Per-range sums of one partition: entities, Σ pi_int, units eligible to gain / lose a
    deficit unit (each (R,) int64), and the partition's population and float Σπ."""

    population: int
    pi_sum: float
    count: np.ndarray
    q_sum: np.ndarray
    add: np.ndarray
    remove: np.ndarray

    @staticmethod
    def concat(parts: Sequence[RangeStats], pi_sum: float | None = None) -> RangeStats:
        """Successive ranges of one frame (e.g. chunks of the draw order) as one partition's stats."""
        return RangeStats(sum(p.population for p in parts),
                          math.fsum(p.pi_sum for p in parts) if pi_sum is None else float(pi_sum),
                          *(np.concatenate([getattr(p, f) for p in parts]) for f in ("count", "q_sum", "add", "remove")))


@dataclass(frozen=True)
class Prepared:
    """A partition after :func:`prepare`: ``q`` (int64 π) of its rows grouped by range — range
    *k* is rows ``order[bounds[k]:bounds[k + 1]]`` (``order`` None: input order, one range) — and
    the range ``stats`` the global step needs."""

    q: np.ndarray
    order: np.ndarray | None
    bounds: np.ndarray
    stats: RangeStats


def pi_total(pi: np.ndarray) -> float:
    """Σπ of a plan (exactly rounded below a million entities)."""
    return math.fsum(pi.tolist()) if len(pi) < 1_000_000 else float(pi.sum())


def campaign_size(total: float, population: int, n: int | None, what: str = "plan") -> int:
    """The campaign size: ``n``, or round(Σπ) when None; PlanError unless Σπ (``total``) is n."""
    if n is None:
        n = int(round(total))
    check_n(n, population, 0, 0.0)
    if abs(total - n) > 1e-6 * max(1.0, n):
        raise PlanError(f"{what}: pi sums to {total:.6f}, not n={n}; rebuild it with supervision_plan(..., n={n})")
    return int(n)


def prepare(pi: np.ndarray, ranges: np.ndarray | None = None, nranges: int = 1, *,
            out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> Prepared:
    """Step 1, per partition: validated ``pi`` (0 < pi ≤ 1) in fixed point and per-range stats.

    ``ranges`` (N,) int in ``[0, nranges)``, monotone in the draw order (each range a consecutive
    stretch of it); None = one range. ``out``/``scratch`` (one range only) avoid allocations.
    """
    pi = np.asarray(pi, np.float64)
    if ranges is None:
        q = quantise(pi, out, scratch=scratch)
        below = q < SCALE
        one = np.ones(1, np.int64)
        stats = RangeStats(len(pi), pi_total(pi), one * len(q), one * int(q.sum()),
                           one * int(np.count_nonzero(below)), one * int(np.count_nonzero(below & (q > 1))))
        return Prepared(q, None, np.array([0, len(q)]), stats)
    q = quantise(pi)
    r = np.asarray(ranges, np.int64)
    order = np.argsort(r, kind="stable")
    bounds = np.searchsorted(r[order], np.arange(nranges + 1))
    qs = q[order]
    c = np.concatenate([[0], np.cumsum(qs)])
    below = q < SCALE
    stats = RangeStats(len(pi), pi_total(pi), np.diff(bounds), c[bounds[1:]] - c[bounds[:-1]],
                       np.bincount(r[below], minlength=nranges),
                       np.bincount(r[below & (q > 1)], minlength=nranges))
    return Prepared(qs, order, bounds, stats)


@dataclass(frozen=True)
class DrawOffsets:
    """Step 2's result: the campaign size ``n``, the ``population``, the systematic ``start`` and
    per range its signed deficit ``share`` and ``offset`` (Σ pi_int of all earlier ranges mod SCALE)."""

    n: int
    population: int
    start: int
    share: np.ndarray
    offset: np.ndarray


def offsets(stats: Sequence[RangeStats], n: int | None, seed: Any) -> DrawOffsets:
    """Step 2, global: resolve and check ``n`` (default round(Σπ)), split the fixed-point deficit
    over the ranges (first eligible units in draw order) and give each range its offset."""
    population = int(sum(st.population for st in stats))
    n = campaign_size(math.fsum(st.pi_sum for st in stats), population, n)
    R = len(stats[0].count) if stats else 0
    sums = [sum(int(st.q_sum[k]) for st in stats) for k in range(R)]
    d = n * SCALE - sum(sums)
    elig = np.sum([st.add if d > 0 else st.remove for st in stats], axis=0).astype(np.int64) if stats \
        else np.zeros(0, np.int64)
    share = deficit_shares(elig, d, f"pi does not sum to n={n}")
    offs, acc = np.zeros(R, np.int64), 0
    for k in range(R):
        offs[k] = acc % SCALE
        acc += sums[k] + int(share[k])
    return DrawOffsets(n, population, start_from_seed(seed), share, offs)


def select_range(q: np.ndarray, offs: DrawOffsets, k: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Step 3, per range: ``q`` (int64 π of range ``k`` in draw order) takes its deficit share in
    place, then the systematic selection with the global start and the range's offset: bool (N_k,)."""
    spread_deficit(q, int(offs.share[k]), f"pi does not sum to n={offs.n}")
    return systematic_select(q, offs.start, int(offs.offset[k]), out=out)


# ============================================================== one machine
def _draw_arrays(ids: IdBytes, pi: np.ndarray, n: int | None, seed: Any, chunk: int = 1 << 18
                 ) -> tuple[DrawOffsets, np.ndarray, AuditHasher]:
    """The core on one frame, ranges = chunks of the draw order: offsets, selected rows, hashes."""
    N = ids.n
    order = prn_order(ids, seed)
    fbuf = np.empty(max(1, min(chunk, N)))
    qbuf = np.empty(len(fbuf), np.int64)
    spans = [(s0, min(N, s0 + chunk)) for s0 in range(0, N, chunk)]
    stats = []
    for s0, s1 in spans:                                  # pass 1: per-chunk sums in draw order
        x = np.take(pi, order[s0:s1], out=fbuf[:s1 - s0], mode="clip")
        stats.append(prepare(x, out=qbuf[:s1 - s0], scratch=x).stats)
    offs = offsets([RangeStats.concat(stats, pi_sum=pi_total(pi))], n, seed)
    hasher, ibuf, picked = AuditHasher(), np.empty(len(fbuf), np.int64), []
    for k, (s0, s1) in enumerate(spans):                  # pass 2: select and hash, range by range
        o = order[s0:s1]
        x = np.take(pi, o, out=fbuf[:s1 - s0], mode="clip")
        q = quantise(x, qbuf[:s1 - s0], scratch=x)
        picked.append(o[select_range(q, offs, k, out=ibuf[:s1 - s0])])
        hasher.update(ids.take(o), q)
    rows = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return offs, rows, hasher


def draw_audit(seed: Any, offs: DrawOffsets, hasher: AuditHasher, plan: Mapping[str, Any] | None,
               selected: pd.Index | Sequence[str], window: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The audit record of a systematic draw (the one builder, for every executor)."""
    audit = {**audit_header(AUDIT_FORMAT, DRAW_ALGORITHM, seed), "start": offs.start, "n": offs.n,
             "population": offs.population, "frame_sha256": hasher.frame_sha256, "pi_sha256": hasher.pi_sha256,
             "plan": dict(plan or {}), "selected": id_list(selected)}
    if window is not None:
        audit["campaign"] = dict(window)
    return seal_audit(audit)


@dataclass(frozen=True)
class Draw:
    """A drawn campaign: ``selected`` ids in draw order and the ``audit`` record (JSON-ready)."""

    selected: pd.Index
    audit: dict[str, Any]

    def frame(self, plan: pd.DataFrame) -> pd.DataFrame:
        """The plan rows of the selected entities (in draw order)."""
        return plan.loc[self.selected]

    def with_inspectors(self, assignments: pd.DataFrame) -> Draw:
        """This draw with the inspector assignment (the second random) recorded in its audit.

        ``assignments``: the unchanged result of :func:`~yiwu_credit.supervision.inspectors.assign_inspectors`
        for exactly the selected entities. The audit gains ``inspectors``: the roster hash, the
        assignment parameters and the assignment (entity → sorted inspector ids), which
        :func:`~yiwu_credit.supervision.verification.verify` recomputes when given the roster.
        """
        from .inspectors import inspector_record

        rec = inspector_record(assignments)
        got, want = set(rec["assignment"]), {str(x) for x in self.selected}
        if got != want:
            extra, missing = sorted(got - want)[:5], sorted(want - got)[:5]
            raise PlanError(f"assignments: not for the drawn entities (not drawn: {extra}; drawn without "
                            f"inspectors: {missing})")
        return Draw(selected=self.selected, audit=seal_audit({**self.audit, "inspectors": rec}))


def _compute(plan: pd.DataFrame, n: int | None, seed: Any) -> tuple[pd.DataFrame, DrawOffsets, pd.Index, AuditHasher]:
    plan = as_entity_frame(plan, "plan")
    if len(plan) == 0:
        raise PlanError("plan: no entities to draw from (the plan is empty)")
    pi = plan_pi(plan)
    offs, rows, hasher = _draw_arrays(id_bytes(plan.index), pi, n, seed)
    return plan, offs, plan.index[rows], hasher


def draw(plan: pd.DataFrame, n: int | None, seed: int | str, *, window: tuple[Any, Any] | None = None) -> Draw:
    """Draw a campaign of exactly ``n`` entities with inclusion probabilities ``plan['pi']``.

    Systematic PPS over the entities ordered by ``prn_keys(seed, entity_id)`` with ``pi`` as
    int64 fixed point and one start from SHA-256 of ``seed`` (see the module docstring). The
    result depends only on the set of (entity_id, pi) and the seed, not on row order.
    ``n=None`` takes n from the plan (``round(sum(pi))``). Must-includes (pi = 1) are always in.
    ``window=(start, end)``: the campaign's inspection period (ISO dates, inclusive), recorded in
    the audit as ``campaign``; estimates refuse results dated outside it.
    """
    return SYSTEMATIC_PPS.select(plan, n, seed, window=window)


# ============================================================== the design (select, audit, check, verify)
_PLAN_FIELDS: dict[str, FieldSpec] = {
    "policy": ("a policy name (string) or null", lambda v: v is None or isinstance(v, str)),
    "policy_sha256": OPT_SHA,
    "budget": ("a positive number or null", lambda v: v is None or (is_num(v) and v > 0)),
    "floor": ("a number in [0, 1] or null", lambda v: v is None or (is_num(v) and 0 <= v <= 1)),
    "scale_by_probability": ("true, false or null", lambda v: v is None or isinstance(v, bool)),
}
_INSPECTOR_FIELDS: dict[str, FieldSpec] = {
    "algorithm": ("a string", lambda v: isinstance(v, str)),
    "roster_sha256": SHA256, "roster_size": POSITIVE, "seed": SEED, "per_entity": POSITIVE,
    "max_per_inspector": POSITIVE,
    "no_repeat_consecutive": ("true or false", lambda v: isinstance(v, bool)),
    "qualification": OPT_STRS, "departments": OPT_STRS, "previous_sha256": OPT_SHA,
    "assignment": ("an object entity_id → list of inspector ids",
                   lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and IDS[1](x) for k, x in v.items())),
}
_INSPECTOR_REQUIRED = ("roster_sha256", "seed", "per_entity", "max_per_inspector", "no_repeat_consecutive",
                       "assignment")
#: field types of a systematic draw's record (also those of each department in a joint record)
DRAW_FIELDS: dict[str, FieldSpec] = {
    "algorithm": ("a string", lambda v: isinstance(v, str)),
    "algorithm_version": ("a string", lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))),
    "seed": SEED, "start": START, "n": COUNT, "population": COUNT, "frame_sha256": SHA256, "pi_sha256": SHA256,
    "selected": IDS,
    "plan": ("an object (or null)", lambda v: v is None or isinstance(v, Mapping)),
    "campaign": ("an object {start, end}", lambda v: isinstance(v, Mapping)),
    "inspectors": ("an object", lambda v: isinstance(v, Mapping)),
    "seal": ("an object {scheme, sha256, fields}", lambda v: isinstance(v, Mapping)),
}

class SystematicPPS:
    """Systematic PPS in PRN order (``draw``), as a :class:`~yiwu_credit.supervision.audit.SamplingDesign`."""

    format = AUDIT_FORMAT
    algorithm = DRAW_ALGORITHM
    version = ALGORITHM_VERSION

    def select(self, plan: pd.DataFrame, n: int | None, seed: int | str, *,
               window: tuple[Any, Any] | None = None) -> Draw:
        """:func:`draw`."""
        win = None if window is None else campaign_window(*window)
        seed_text(seed)
        plan, offs, selected, hasher = _compute(plan, n, seed)
        audit = self.audit(seed, offs, hasher, plan_record(plan), selected, win)
        return Draw(selected=pd.Index(selected, name="entity_id"), audit=audit)

    audit = staticmethod(draw_audit)

    def check(self, audit: Mapping[str, Any], source: str) -> None:
        """Field types of the record, its plan, campaign window and inspector block (ConfigError)."""
        check_fields(audit, DRAW_FIELDS, source)
        if isinstance(audit.get("plan"), Mapping):
            check_fields(audit["plan"], _PLAN_FIELDS, source, "plan.")
        if "campaign" in audit:
            c = audit["campaign"]
            for k in ("start", "end"):
                if not is_date(c.get(k)):
                    raise ConfigError(f"{source}: field 'campaign.{k}': expected an ISO date YYYY-MM-DD, "
                                      f"got {c.get(k)!r}")
            if c["start"] > c["end"]:
                raise ConfigError(f"{source}: field 'campaign': start {c['start']} is after end {c['end']}")
        if "inspectors" in audit:
            ins = audit["inspectors"]
            miss = [k for k in _INSPECTOR_REQUIRED if k not in ins]
            if miss:
                raise ConfigError(f"{source}: field 'inspectors' lacks {miss}")
            check_fields(ins, _INSPECTOR_FIELDS, source, "inspectors.")

    def verify(self, audit: Mapping[str, Any], frame: pd.DataFrame, *, policy: str | Path | Policy | None = None,
               roster: Any = None, previous: Any = None,
               assignments: pd.DataFrame | str | os.PathLike | None = None) -> VerifyResult:
        """Recompute the draw from the record and the plan (or the scored frame: the plan is rebuilt
        with the recorded policy and parameters), then the inspector draw when recorded."""
        bad = precheck(audit, self, ("algorithm", "algorithm_version", "seed", "start", "n", "frame_sha256",
                                   "pi_sha256", "selected"))
        if bad is not None:
            return bad
        mm: list[str] = []
        frame = as_entity_frame(frame, "frame")
        if "pi" not in frame.columns:
            p = dict(audit.get("plan") or {})
            try:
                pol = load_policy(policy or p.get("policy"))
            except ConfigError as e:
                return VerifyResult(False, (f"policy: cannot load {policy or p.get('policy')!r}: {e}",))
            if p.get("policy_sha256") and pol.sha256 != p["policy_sha256"]:
                mm.append(f"policy: {pol.name} hashes to {pol.sha256[:12]}…, the audit recorded "
                          f"{p['policy_sha256'][:12]}…")
            try:
                frame = supervision_plan(frame, pol, n=int(audit["n"]), budget=p.get("budget"), floor=p.get("floor"),
                                         scale_by_probability=p.get("scale_by_probability"))
            except PlanError as e:
                return VerifyResult(False, tuple(mm + [f"plan: cannot rebuild the plan from the frame: {e}"]))
        try:
            start = start_from_seed(audit["seed"])
        except PlanError as e:
            return VerifyResult(False, tuple(mm + [f"seed: {e}"]))
        try:
            frame, offs, selected, hasher = _compute(frame, int(audit["n"]), audit["seed"])
        except PlanError as e:
            return VerifyResult(False, tuple(mm + [f"frame: {e}"]))
        rec = {"n": offs.n, "population": offs.population, "start": offs.start,
               "frame_sha256": hasher.frame_sha256, "pi_sha256": hasher.pi_sha256, "selected": id_list(selected)}
        if int(audit["start"]) != start:
            mm.append(f"start: {audit['start']} does not follow from seed {audit['seed']!r} (expected {start})")
        if "population" in audit and int(audit["population"]) != rec["population"]:
            mm.append(f"population: audit records {audit['population']} entities, the frame has {rec['population']}")
        if audit["frame_sha256"] != rec["frame_sha256"]:
            mm.append(f"frame_sha256: the candidate frame differs from the one drawn from "
                      f"({rec['frame_sha256'][:12]}… != {str(audit['frame_sha256'])[:12]}…)")
        if audit["pi_sha256"] != rec["pi_sha256"]:
            mm.append(f"pi_sha256: the inclusion probabilities differ from those drawn with "
                      f"({rec['pi_sha256'][:12]}… != {str(audit['pi_sha256'])[:12]}…)")
        mm += diff_ids(audit["selected"], rec["selected"], "selected")
        checked = [] if mm else [f"entities: {offs.n:,} of {offs.population:,} drawn recompute exactly from seed "
                                 f"{audit['seed']!r} and the frame (start, frame and pi hashes, selected ids)"]
        unverified: list[str] = []
        if "inspectors" in audit:
            from .inspectors import verify_assignment

            ins = verify_assignment(audit["inspectors"], frame.loc[selected], roster, previous=previous,
                                    published=assignments)
            mm += ins.mismatches
            unverified += ins.unverified
            checked += ins.checked
        elif roster is not None or assignments is not None:
            mm.append("inspectors: a roster or assignments file was given but the audit records no inspector draw "
                      "(draw with --inspectors records it)")
        else:
            checked.append("inspectors: none recorded in the audit (no inspector draw to verify)")
        ok = not mm and not unverified
        return VerifyResult(ok, tuple(mm), rec, tuple(checked), tuple(unverified))


SYSTEMATIC_PPS = SystematicPPS()
