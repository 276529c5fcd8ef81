"""Joint checks (综合查一次) and burden rotation: coordinated draws of several departments.

Departments share permanent random numbers (a *panel seed*) and an origin on the PRN circle.
Within each department, entities with equal ``pi`` form a micro-stratum; the stratum sample size
is the integer part of ``N_h * pi_h`` plus one with probability equal to the fractional part
(systematic over strata, so the total is exactly ``n``), and the sample is the ``m_h`` entities
nearest after the origin. That is simple random sampling within strata, so each department's
``pi`` is exact, while departments select the same low-PRN entities → one joint visit.
Successive campaigns move the origin past the previous campaign's window (by a PRN-independent
amount), so entities just inspected are unlikely to be drawn again and probabilities stay exact.
``JOINT_MICROSTRATA`` is this design as a :class:`~yiwu_credit.supervision.audit.SamplingDesign`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PlanError
from .audit import (
    ALGORITHM_VERSION,
    SEED,
    UINT64,
    AuditHasher,
    FieldSpec,
    VerifyResult,
    audit_header,
    check_fields,
    diff_ids,
    id_list,
    is_num,
    precheck,
    seal_audit,
    seed_value,
)
from .fixedpoint import SCALE, SCALE_BITS, deficit_shares, quantise, systematic_select
from .plan import as_entity_frame, plan_pi
from .prn import M64, derive_seed, id_bytes, keys_of, prn_order, seed_text, subseed
from .systematic import DRAW_FIELDS, campaign_size, pi_total

__all__ = ["JOINT_ALGORITHM", "JOINT_FORMAT", "JOINT_MICROSTRATA", "JointDraw", "JointMicrostrata", "joint_draw",
           "microstrata_select", "origin_from_seed", "origin_shift", "rotate",
           "rounding_start", "window_share"]

JOINT_ALGORITHM = "prn-sequential-srs-microstrata"
JOINT_FORMAT = "yiwu-credit/joint-audit/1"
_U64 = np.uint64


@dataclass(frozen=True)
class JointDraw:
    """Coordinated campaigns of several departments.

    ``selected``: department → ids; ``visits``: one row per visited entity (``departments``
    ";"-joined, ``n_departments``); ``report``: visit counts and savings; ``audit``: JSON-ready.
    """

    selected: dict[str, pd.Index]
    visits: pd.DataFrame
    report: dict[str, Any]
    audit: dict[str, Any]


def origin_from_seed(seed: Any) -> int:
    return derive_seed("joint-origin", seed)


def rounding_start(seed: Any) -> int:
    return derive_seed("joint-rounding", seed, SCALE_BITS)


def window_share(pis: Sequence[np.ndarray]) -> float:
    """Share of the PRN circle a campaign occupies: the largest non-certainty pi level (+2 sd of
    the arc its stratum's run covers)."""
    wmax = 0.0
    for pi in pis:
        levels, counts = np.unique(pi, return_counts=True)
        keep = levels < 1.0
        if keep.any():
            lv, ct = levels[keep], counts[keep]
            wmax = max(wmax, float(np.max(np.minimum(1.0, lv + 2.0 * np.sqrt(lv * (1 - lv) / ct)))))
    return wmax


def origin_shift(prev_window: float, window: float, seed: Any) -> int:
    """PRN-independent origin shift (uint64) past the previous window.

    If both windows fit on the circle the shift is uniform on ``[prev_window, 1 - window]`` (fresh
    randomness, so the next sample cannot be predicted from the published panel); otherwise it is
    the midpoint of ``[1 - window, prev_window]``, which minimises the forced overlap of the
    highest-probability entities.
    """
    free = 1.0 - prev_window - window
    if free > 0:
        frac = prev_window + derive_seed("joint-rotate", seed) / 2.0**64 * free
    else:
        frac = 0.5 * (1.0 - window + prev_window)
    return int(min(max(frac, 0.0), 1.0 - 2.0**-53) * 2.0**64) & M64


def _plans_window(plans: Mapping[str, pd.DataFrame]) -> float:
    return window_share([plan_pi(as_entity_frame(p, f"plans[{d!r}]"), f"plans[{d!r}]") for d, p in plans.items()])


def rotate(previous: JointDraw | Mapping[str, Any], plans: Mapping[str, pd.DataFrame], seed: int | str) -> int:
    """Origin (uint64 on the PRN circle) for the campaign after ``previous``.

    The origin moves past the previous campaign's window by a uniformly random amount within the
    free arc. The shift depends only on the seeds and the plans (not on the PRNs), so every
    campaign's inclusion probabilities stay exact, while entities just inspected sit behind the
    new origin and are drawn again only if the new window wraps around to them.
    """
    a = previous.audit if isinstance(previous, JointDraw) else previous
    if a.get("format") != JOINT_FORMAT:
        raise PlanError("rotate: previous must be a joint_draw result or its audit record")
    return (int(a["origin"]) + origin_shift(float(a["window"]), _plans_window(plans), seed)) & M64


def microstrata_select(dist: np.ndarray, tiebreak: np.ndarray, pi: np.ndarray, n: int, round_start: int) -> np.ndarray:
    """Fixed-size, exactly-π selection by micro-strata of equal pi: bool (N,).

    Stratum h (entities with pi = pi_h, N_h of them) gets m_h = floor(X_h) or floor(X_h) + 1 where
    X_h = N_h * pi_h in fixed point (the strata, in increasing pi, are the segments of the
    fixed-point rule), rounded up by systematic selection over strata (so Σ m_h = n and
    E[m_h] = X_h); it takes the m_h entities with the smallest ``dist`` (then ``tiebreak``).
    """
    levels, inv = np.unique(pi, return_inverse=True)
    nh = np.bincount(inv, minlength=len(levels)).astype(np.int64)
    ph = quantise(levels)
    x = nh * ph
    d = int(n) * SCALE - int(x.sum())
    elig = np.where(ph < SCALE, nh, 0) if d > 0 else np.where((ph > 1) & (ph < SCALE), nh, 0)
    x += deficit_shares(elig, d, f"pi does not sum to n={n}")
    base = x >> SCALE_BITS
    frac = x - (base << SCALE_BITS)
    m = base + systematic_select(frac, round_start)
    order = np.lexsort((tiebreak, dist, inv))
    inv_s = inv[order]
    first = np.cumsum(nh) - nh
    rank = np.arange(len(pi)) - first[inv_s]
    sel = np.zeros(len(pi), bool)
    sel[order] = rank < m[inv_s]
    return sel


def _joint_parts(plans: Mapping[str, pd.DataFrame], panel_seed: Any, seed: Any, origin: int) -> dict[str, Any]:
    if not plans:
        raise PlanError("joint_draw: no department plans given")
    rs = rounding_start(seed)
    out: dict[str, Any] = {}
    for dept in sorted(plans):
        what = f"plans[{dept!r}]"
        plan = as_entity_frame(plans[dept], what)
        pi = plan_pi(plan, what)
        n = campaign_size(pi_total(pi), len(pi), None, what)
        ids = id_bytes(plan.index)
        keys = keys_of(ids, panel_seed)
        tb = keys_of(ids, subseed(panel_seed, "tiebreak"))
        dist = keys - _U64(origin)
        sel = microstrata_select(dist, tb, pi, n, rs)
        rows = np.flatnonzero(sel)
        rows = rows[np.lexsort((tb[rows], dist[rows]))]
        order = prn_order(ids, panel_seed)
        h = AuditHasher()
        h.update(ids.take(order), np.floor(pi[order] * SCALE).astype(np.int64))
        out[dept] = {"n": n, "population": len(pi), "selected": plan.index[rows],
                     "pi": pd.Series(pi, index=plan.index), "frame_sha256": h.frame_sha256, "pi_sha256": h.pi_sha256}
    return out


def _visits(parts: Mapping[str, Any]) -> pd.DataFrame:
    long = pd.concat([pd.DataFrame({"entity_id": np.asarray(p["selected"], dtype=object), "department": d})
                      for d, p in parts.items()], ignore_index=True)
    g = long.groupby("entity_id", sort=True)["department"]
    v = pd.DataFrame({"departments": g.agg(lambda s: ";".join(sorted(s))), "n_departments": g.size()})
    v.index.name = "entity_id"
    return v


def _independent_visits(parts: Mapping[str, Any], among: pd.Index | None = None) -> float:
    """Expected visits if departments drew independently: Σ_i 1 - Π_d (1 - pi_i^d)."""
    pis = pd.concat({d: p["pi"] for d, p in parts.items()}, axis=1).fillna(0.0)
    if among is not None:
        pis = pis.reindex(among).fillna(0.0)
    return float((1.0 - (1.0 - pis).prod(axis=1)).sum())


def joint_draw(plans: Mapping[str, pd.DataFrame], *, panel_seed: int | str, seed: int | str,
               previous: JointDraw | Mapping[str, Any] | None = None) -> JointDraw:
    """Coordinated draws for several departments over the same population (综合查一次).

    Parameters
    ----------
    plans : department → plan (entity_id index, ``pi`` summing to that department's n). Plans
        may cover different entities (each department's own remit).
    panel_seed : permanent-random-number seed shared by all departments and kept across the
        campaigns of a rotation period.
    seed : this campaign's seed (origin and rounding).
    previous : the previous campaign (JointDraw or its audit): the origin then moves past its
        window (see :func:`rotate`) to spread the burden.

    Each department's sample has exactly its n and its own exact pi (simple random sampling
    within strata of equal pi; see :func:`microstrata_select`). Departments select the entities
    nearest after a shared origin, so an entity drawn by several gets one joint visit.
    ``report`` gives ``visits_joint``, ``visits_separate`` (Σ n), ``visits_independent_expected``,
    ``saved_vs_independent``, ``saved_vs_separate`` and, with ``previous``, repeats.
    """
    return JOINT_MICROSTRATA.select(plans, panel_seed=panel_seed, seed=seed, previous=previous)


_JOINT_FIELDS: dict[str, FieldSpec] = {
    "algorithm": DRAW_FIELDS["algorithm"], "algorithm_version": DRAW_FIELDS["algorithm_version"],
    "panel_seed": SEED, "seed": SEED, "origin": UINT64,
    "window": ("a number in [0, 1]", lambda v: is_num(v) and 0 <= v <= 1),
    "departments": ("an object department → draw", lambda v: isinstance(v, Mapping)
                    and all(isinstance(x, Mapping) for x in v.values())),
    "previous": ("null or an object {origin, window, seed}", lambda v: v is None or isinstance(v, Mapping)),
    "seal": DRAW_FIELDS["seal"],
}


class JointMicrostrata:
    """Joint, rotating micro-strata draws (``joint_draw``) as a
    :class:`~yiwu_credit.supervision.audit.SamplingDesign`."""

    format = JOINT_FORMAT
    algorithm = JOINT_ALGORITHM
    version = ALGORITHM_VERSION

    def select(self, plans: Mapping[str, pd.DataFrame], *, panel_seed: int | str, seed: int | str,
               previous: JointDraw | Mapping[str, Any] | None = None) -> JointDraw:
        """:func:`joint_draw`."""
        seed_text(panel_seed)
        if previous is None:
            origin, prev = origin_from_seed(seed), None
        else:
            pa_ = previous.audit if isinstance(previous, JointDraw) else previous
            origin = rotate(pa_, plans, seed)
            prev = {"origin": int(pa_["origin"]), "window": float(pa_["window"]), "seed": pa_.get("seed"),
                    "visits": sorted({x for d in pa_["departments"].values() for x in d["selected"]})}
        parts = _joint_parts(plans, panel_seed, seed, origin)
        visits = _visits(parts)
        sep = sum(p["n"] for p in parts.values())
        indep = _independent_visits(parts)
        report: dict[str, Any] = {
            "departments": len(parts), "visits_joint": len(visits), "visits_separate": sep,
            "visits_independent_expected": round(indep, 3), "saved_vs_independent": round(indep - len(visits), 3),
            "saved_vs_separate": sep - len(visits), "joint_visits": int((visits["n_departments"] > 1).sum()),
        }
        if prev is not None:
            pv = pd.Index(prev["visits"])
            report["repeat_from_previous"] = int(visits.index.isin(pv).sum())
            report["repeat_expected_if_independent"] = round(_independent_visits(parts, pv), 3)
        window = window_share([p["pi"].to_numpy() for p in parts.values()])
        audit = self.audit(panel_seed, seed, origin, window, prev, parts, report)
        return JointDraw(selected={d: pd.Index(p["selected"], name="entity_id") for d, p in parts.items()},
                         visits=visits, report=report, audit=audit)

    @staticmethod
    def audit(panel_seed: Any, seed: Any, origin: int, window: float, prev: Mapping[str, Any] | None,
              parts: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
        """The joint audit record."""
        head = audit_header(JOINT_FORMAT, JOINT_ALGORITHM, seed)
        del head["seed"]
        return seal_audit({**head, "panel_seed": seed_value(panel_seed), "seed": seed_value(seed), "origin": origin,
                "window": window, "rounding_start": rounding_start(seed),
                "previous": None if prev is None else {k: prev[k] for k in ("origin", "window", "seed")},
                "departments": {d: {"n": p["n"], "population": p["population"], "frame_sha256": p["frame_sha256"],
                                    "pi_sha256": p["pi_sha256"], "selected": id_list(p["selected"])}
                                for d, p in parts.items()},
                "report": dict(report)})

    def check(self, audit: Mapping[str, Any], source: str) -> None:
        """Field types of the record and of each department's draw (ConfigError)."""
        check_fields(audit, _JOINT_FIELDS, source)
        for d, dep in (audit.get("departments") or {}).items():
            check_fields(dep, {k: DRAW_FIELDS[k] for k in ("n", "population", "frame_sha256", "pi_sha256",
                                                            "selected")}, source, f"departments.{d}.")
        prev = audit.get("previous")
        if isinstance(prev, Mapping):
            check_fields(prev, {k: _JOINT_FIELDS[k] for k in ("origin", "window", "seed")}, source, "previous.")

    def verify(self, audit: Mapping[str, Any], frame: Any, **kwargs: Any) -> VerifyResult:
        """Recompute every department's draw from the record and ``frame`` (department → plan)."""
        if not isinstance(frame, Mapping):
            return VerifyResult(False, ("joint audit: pass a mapping department → plan",))
        plans = frame
        bad = precheck(audit, self, ("algorithm", "algorithm_version", "panel_seed", "seed", "origin", "window",
                                   "departments"))
        if bad is not None:
            return bad
        mm: list[str] = []
        prev = audit.get("previous")
        try:
            window = _plans_window(plans)
            if prev is None:
                expect = origin_from_seed(audit["seed"])
            else:
                expect = (int(prev["origin"]) + origin_shift(float(prev["window"]), window, audit["seed"])) & M64
            parts = _joint_parts(plans, audit["panel_seed"], audit["seed"], int(audit["origin"]))
        except PlanError as e:
            return VerifyResult(False, (f"plans: {e}",))
        if int(audit["origin"]) != expect:
            mm.append(f"origin: {audit['origin']} does not follow from seed {audit['seed']!r} (expected {expect})")
        if abs(float(audit["window"]) - window) > 1e-12:
            mm.append(f"window: audit records {audit['window']}, the plans give {window}")
        if set(audit["departments"]) != set(parts):
            mm.append(f"departments: audit has {sorted(audit['departments'])}, plans have {sorted(parts)}")
        for d in sorted(set(audit["departments"]) & set(parts)):
            a, r = audit["departments"][d], parts[d]
            for k in ("frame_sha256", "pi_sha256"):
                if a.get(k) != r[k]:
                    mm.append(f"{d}.{k}: recomputed {r[k][:12]}… != recorded {str(a.get(k))[:12]}…")
            mm += diff_ids(a.get("selected", []), id_list(r["selected"]), f"{d}.selected")
        return VerifyResult(not mm, tuple(mm), {"origin": expect, "window": window})


JOINT_MICROSTRATA = JointMicrostrata()
