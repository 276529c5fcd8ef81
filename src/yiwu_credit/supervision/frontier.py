"""The supervision-policy frontier: what each candidate policy would find, and whom it would burden.

:func:`policy_frontier` evaluates a family of candidate policies on one scored pool with the SAME
budget and campaign size. Every candidate's π is computed by :func:`yiwu_credit.supervision.plan.plan_on_cells`,
the function :func:`~yiwu_credit.supervision.plan.supervision_plan` itself uses, so a candidate's π is exactly
the π of ``supervision_plan(scored, candidate.policy(base), budget=..., n=...)`` (tested).

The family (:func:`candidate_grid`) varies the tier weights, the within-tier scaling
π ∝ weight · p^alpha, the scope of the entity-type factor (every tier, the routine tiers A–B, none)
and the floor. Metrics are the model's own belief (calibrated p); :func:`yiwu_credit.pipeline.closed_loop.
frontier_outcomes` measures realised detections against a synthetic truth.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.io import markdown_table, save_figure
from ..errors import PlanError
from ..policy import TIERS, Policy, load_policy, policy_from_raw
from .allocation import check_budget, check_n
from .plan import (
    SCOPES,
    as_entity_frame,
    plan_cells,
    plan_on_cells,
    resolve_plan_policy,
    sampling_settings,
)

__all__ = ["Candidate", "Frontier", "candidate_grid", "candidate_plan", "in_force", "policy_frontier",
           "TIER_WEIGHT_SETS"]

#: Named tier-weight sets (A, B, C, D), relative to B: the 1.1.0 default (rates 1/4/20/60 %), the
#: 1.2.0 default (0.3/3/30/90 %), flat, and a steeper set beyond the sourced D range.
TIER_WEIGHT_SETS: dict[str, tuple[float, float, float, float]] = {
    "v1.1": (0.25, 1.0, 5.0, 15.0),
    "v1.2": (0.1, 1.0, 10.0, 30.0),
    "flat": (1.0, 1.0, 1.0, 1.0),
    "mild": (0.5, 1.0, 3.0, 6.0),
    "steep": (0.1, 1.0, 10.0, 40.0),
}
BURDEN_DIMS: tuple[str, ...] = ("entity_type", "town", "section")


@dataclass(frozen=True)
class Candidate:
    """One candidate policy: tier weights (A..D, relative to B), alpha (π ∝ weight · p^alpha within
    tier; 0 = flat), the entity-type factor ``scope`` (``"all"``, ``"routine"`` = A–B, ``"none"``) and
    the ``floor`` (minimum campaign π of every active entity)."""

    name: str
    tier_weights: tuple[float, float, float, float]
    alpha: float = 0.0
    scope: str = "all"
    floor: float = 1e-4

    def __post_init__(self) -> None:
        w = tuple(float(x) for x in self.tier_weights)
        if len(w) != 4 or any(not x > 0 for x in w) or list(w) != sorted(w):
            raise PlanError(f"candidate {self.name}: tier weights must be 4 positive values not decreasing "
                            f"from A to D, got {self.tier_weights}")
        if not (0 <= self.alpha <= 4):
            raise PlanError(f"candidate {self.name}: alpha {self.alpha} is outside [0, 4]")
        if self.scope not in SCOPES:
            raise PlanError(f"candidate {self.name}: scope must be one of {list(SCOPES)}, got {self.scope!r}")
        if not (0 < self.floor <= 1):
            raise PlanError(f"candidate {self.name}: floor {self.floor} must be in (0, 1]")
        object.__setattr__(self, "tier_weights", w)

    def policy(self, base: Policy | str | None = None) -> Policy:
        """The base policy with this candidate's sampling settings (validated; name gets the suffix)."""
        pol = load_policy(base)
        raw = copy.deepcopy(pol.raw)
        s = raw["sampling"]
        for t, w in zip(TIERS, self.tier_weights, strict=True):
            s["tiers"][t]["weight"] = w
        s["scale_by_probability"] = self.alpha > 0
        s["alpha"] = float(self.alpha)
        s["entity_type_factor_scope"] = self.scope
        s["min_inclusion_prob"] = float(self.floor)
        raw["meta"]["name"] = f"{pol.name}+{self.name}"
        return policy_from_raw(raw, f"{pol.source} (candidate {self.name})")


def in_force(policy: Policy | str | None = None, name: str = "in_force") -> Candidate:
    """The candidate equal to the policy's own sampling settings."""
    pol = load_policy(policy)
    cfg = sampling_settings(pol)
    return Candidate(name, tuple(cfg["tw"]), cfg["alpha"], cfg["scope"], float(pol.sampling.min_inclusion_prob))


def candidate_grid(policy: Policy | str | None = None, *,
                   tier_weights: Mapping[str, Sequence[float]] | None = None,
                   alphas: Iterable[float] = (0.0, 0.5, 1.0, 1.5, 2.0), scopes: Iterable[str] = SCOPES,
                   floors: Iterable[float] | None = None) -> list[Candidate]:
    """The candidate family: the policy in force first, then every combination of named tier-weight
    sets (default :data:`TIER_WEIGHT_SETS` without "mild"), alphas, scopes and floors (default: the
    policy's floor). Names read ``<weights>/a<alpha>/<scope>[/f<floor>]``; duplicates of the
    policy in force are dropped."""
    pol = load_policy(policy)
    cur = in_force(pol)
    sets = tier_weights or {k: v for k, v in TIER_WEIGHT_SETS.items() if k != "mild"}
    floors = list(floors) if floors is not None else [cur.floor]
    out = [cur]
    for wn, w in sets.items():
        for a in alphas:
            for sc in scopes:
                for f in floors:
                    name = f"{wn}/a{a:g}/{sc}" + (f"/f{f:g}" if len(floors) > 1 else "")
                    c = Candidate(name, tuple(w), float(a), sc, float(f))
                    if replace(c, name=cur.name) != cur:
                        out.append(c)
    return out


@dataclass
class Frontier:
    """Output of :func:`policy_frontier`.

    ``table``: one row per candidate — name, in_force, tier weights (w_A..w_D), alpha, scope, floor;
    ``detections`` (expected violations found by one campaign, Σ π·p with calibrated p),
    ``lift`` (vs uniform π = n/N), ``share_tier_a`` and ``share_below_median`` (shares of the
    campaign's expected inspections on tier A and on entities below the median p), ``min_pi`` (over
    active entities not must-included), ``max_per_year`` (largest expected inspections per entity
    per year), ``rate_A..rate_D`` (expected inspections per entity per year in each tier),
    ``burden_<type>`` (inspections per entity relative to mean risk, per entity type) and
    ``burden_town_min/max``, ``burden_section_min/max``; ``pareto`` marks candidates no other
    beats on both detections (higher) and share_below_median (lower).
    ``burden``: long table (candidate, dimension, group, entities, per_entity, mean_p, ratio) where
    ratio = (inspections per entity in the group / overall) ÷ (mean p in the group / overall):
    1 means burden in proportion to risk.
    """

    table: pd.DataFrame
    burden: pd.DataFrame
    params: dict[str, Any]
    seconds: float = 0.0
    candidates: list[Candidate] = field(default_factory=list, repr=False)

    def row(self, name: str) -> pd.Series:
        return self.table.set_index("name").loc[name]

    def to_markdown(self, top: int | None = None) -> str:
        """Markdown table of the candidates (sorted by detections), the policy in force marked."""
        cols = ["name", "in_force", "pareto", "detections", "lift", "share_tier_a", "share_below_median", "min_pi",
                "max_per_year", "rate_A", "rate_B", "rate_C", "rate_D"]
        cols += [c for c in self.table.columns if c.startswith("burden_")]
        t = self.table.sort_values("detections", ascending=False)
        if top is not None:
            t = pd.concat([t.head(top), t[t["in_force"]]]).drop_duplicates("name")
        return markdown_table(t[[c for c in cols if c in t.columns]], ".4g")

    def plot(self, path: str | Path, ax: Any = None) -> Path | None:
        """Detections against the low-risk burden (share below the median risk); policy in force
        marked, Pareto candidates joined. Writes a PNG when ``ax`` is None."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = self.table
        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(7.5, 5))
        for sc, g in t.groupby("scope", sort=False):
            ax.scatter(g["share_below_median"], g["detections"], s=14 + 10 * g["alpha"], alpha=0.6,
                       label=f"type factor: {sc}")
        p = t[t["pareto"]].sort_values("share_below_median")
        ax.plot(p["share_below_median"], p["detections"], color="k", lw=1, label="frontier")
        cur = t[t["in_force"]]
        ax.scatter(cur["share_below_median"], cur["detections"], marker="*", s=220, color="red", zorder=5,
                   label="policy in force")
        ax.set_xlabel("share of inspections on entities below the median risk")
        ax.set_ylabel("expected detections per campaign (Σ π·p)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if not own:
            return None
        ax.set_title(f"Policy frontier: {self.params['population']:,} entities, n = {self.params['n']:,}", fontsize=10)
        fig.tight_layout()
        return save_figure(fig, path)


def candidate_plan(scored: pd.DataFrame, candidate: Candidate, budget: float | None = None, *,
                   policy: Policy | str | None = None, n: int | None = None) -> pd.DataFrame:
    """The full plan of one candidate: ``supervision_plan(scored, candidate.policy(policy), ...)``."""
    from .plan import supervision_plan

    return supervision_plan(scored, candidate.policy(policy), budget=budget, n=n)


def _dim_codes(df: pd.DataFrame, dim: str) -> tuple[np.ndarray, np.ndarray] | None:
    if dim == "section":
        if "section" in df.columns:
            s = df["section"]
        elif "industry" in df.columns:
            s = df["industry"].astype(str).str[:1]
        else:
            return None
    elif dim in df.columns:
        s = df[dim]
    else:
        return None
    codes, uniq = pd.factorize(s.astype(str), sort=True)
    return codes.astype(np.intp), np.asarray(uniq, dtype=object)


def policy_frontier(scored: pd.DataFrame, budget: float | None = None,
                    candidates: Sequence[Candidate] | None = None, *, policy: Policy | str | None = None,
                    n: int | None = None) -> Frontier:
    """Evaluate candidate policies on one scored pool at the same budget and campaign size.

    Parameters
    ----------
    scored : entity_id index with ``tier``, ``probability`` (calibrated), optionally
        ``entity_type``, ``town``, ``industry`` and the policy's must-include flags.
    budget : inspections per year over the pool; default the policy in force's own budget.
    candidates : default :func:`candidate_grid` of ``policy``; the policy in force is added if absent.
    policy : the base policy (tier rates, caps, entity-type factors, must-include rules); default
        the policy that tiered ``scored`` (:func:`~yiwu_credit.supervision.plan.resolve_plan_policy`).
    n : campaign size; default the budget rounded (one campaign a year, so π = expected_per_year).

    Returns a :class:`Frontier`; DataValidationError for duplicated entity ids. Cost: the pool is reduced once to cells of identical inputs; each
    candidate is then a plan on the cells plus three weighted counts over the entities.
    """
    t0 = time.perf_counter()
    budget = None if budget is None else check_budget(budget)   # before any work: nan, inf, 0, < 0 refused
    pol = load_policy(policy) if policy is not None else resolve_plan_policy(as_entity_frame(scored), None)[0]
    s = pol.sampling
    base = sampling_settings(pol)
    cur = in_force(pol)
    cands = list(candidates) if candidates is not None else candidate_grid(pol)
    if not any(replace(c, name=cur.name) == cur for c in cands):
        cands = [cur, *cands]
    names = [c.name for c in cands]
    if len(set(names)) != len(names):
        raise PlanError("candidates: names must be unique")
    df = as_entity_frame(scored)
    if "probability" not in df.columns:
        raise PlanError("scored: the frontier needs a calibrated 'probability' column")
    cells = plan_cells(df, base["etypes"], list(s.must_include), with_p=True)
    N, cnt, p = cells.N, cells.count.astype(np.float64), cells.p
    if budget is None:
        budget = plan_on_cells(cells, np.asarray(cur.tier_weights), base["rate"], base["cap"], base["fac"],
                               scope=cur.scope, alpha=cur.alpha, floor=cur.floor, band=base["band"])[3]
    budget = check_budget(budget)
    if n is not None:
        check_n(n, N, 0, 0.0)
    n = int(n) if n is not None else min(N, max(1, int(round(budget))))
    # unit-weighted median of p over the pool, from the cells
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(cnt[order])
    median = float(p[order][np.searchsorted(cum, 0.5 * N)])
    below = p < median
    tier_n = np.bincount(cells.tier, weights=cnt, minlength=4)
    sum_p = float(np.dot(cnt, p))
    dims = {d: _dim_codes(df, d) for d in BURDEN_DIMS}
    dims = {d: v for d, v in dims.items() if v is not None}
    p_unit = p[cells.inverse]
    dim_n = {d: np.bincount(c, minlength=len(u)) for d, (c, u) in dims.items()}
    dim_p = {d: np.bincount(c, weights=p_unit, minlength=len(u)) for d, (c, u) in dims.items()}
    rows, burden = [], []
    for c in cands:
        _, e, pi, _, _ = plan_on_cells(cells, np.asarray(c.tier_weights), base["rate"], base["cap"], base["fac"],
                                       scope=c.scope, alpha=c.alpha, floor=c.floor, budget=budget, n=n)
        det = float(np.dot(cnt * pi, p))
        free = ~cells.must
        row: dict[str, Any] = {
            "name": c.name, "in_force": replace(c, name=cur.name) == cur,
            **{f"w_{t}": w for t, w in zip(TIERS, c.tier_weights, strict=True)},
            "alpha": c.alpha, "scope": c.scope, "floor": c.floor,
            "detections": det, "lift": det / (n / N * sum_p) if sum_p > 0 else np.nan,
            "share_tier_a": float(np.dot(cnt[cells.tier == 0], pi[cells.tier == 0])) / n,
            "share_below_median": float(np.dot(cnt[below], pi[below])) / n,
            "min_pi": float(pi[free].min()) if free.any() else np.nan,
            "max_per_year": float(e.max()),
        }
        et_ = np.bincount(cells.tier, weights=cnt * e, minlength=4)
        for k, t in enumerate(TIERS):
            row[f"rate_{t}"] = float(et_[k] / tier_n[k]) if tier_n[k] else np.nan
        e_unit = e[cells.inverse]
        mean_e = float(e_unit.mean())
        for d, (codes, uniq) in dims.items():
            per = np.bincount(codes, weights=e_unit, minlength=len(uniq)) / np.maximum(dim_n[d], 1)
            mp = dim_p[d] / np.maximum(dim_n[d], 1)
            ratio = (per / mean_e) / np.where(mp > 0, mp / (sum_p / N), np.nan)
            burden.append(pd.DataFrame({"candidate": c.name, "dimension": d, "group": uniq, "entities": dim_n[d],
                                        "per_entity": per, "mean_p": mp, "ratio": ratio}))
            if d == "entity_type":
                row.update({f"burden_{g}": float(r) for g, r in zip(uniq, ratio, strict=True)})
            else:
                row[f"burden_{d}_min"], row[f"burden_{d}_max"] = float(np.nanmin(ratio)), float(np.nanmax(ratio))
        rows.append(row)
    table = pd.DataFrame(rows)
    d, b = table["detections"].to_numpy(), table["share_below_median"].to_numpy()
    table.insert(2, "pareto", [not np.any(((d >= d[i]) & (b <= b[i])) & ((d > d[i]) | (b < b[i])))
                               for i in range(len(d))])
    params = {"policy": pol.name, "policy_version": pol.version, "population": N, "budget": budget, "n": n,
              "median_p": median, "candidates": len(cands), "cells": len(cells.count)}
    return Frontier(table, pd.concat(burden, ignore_index=True) if burden else pd.DataFrame(), params,
                    time.perf_counter() - t0, cands)
