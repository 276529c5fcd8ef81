"""Published estimates from a campaign's inspection results (一公开).

Estimators, for a sample ``s`` drawn with inclusion probabilities ``pi`` (the plan's), a 0/1
violation indicator ``y`` and a domain indicator ``d`` (tier, town, industry section):

* Horvitz–Thompson: ``Y_d = Σ_s d y / pi``; rate ``Y_d / N_d`` with ``N_d`` the known number of
  active entities of the domain in the frame. Design-unbiased.
* Hájek (ratio): ``Y_d / N̂_d`` with ``N̂_d = Σ_s d / pi``. Slightly biased (O(1/n)) but
  self-normalising and usually more precise for domains, whose sample size is random.
  **The Hájek rate is the published figure**; the HT rate is reported alongside.

Variance. Systematic PPS has no unbiased variance estimator. Both the systematic draw in PRN
order and the micro-stratified joint draw are high-entropy fixed-size designs, so we use the
Hájek–Deville approximation (Deville 1999; Tillé 2006, §7.5)::

    v(Σ z/pi) = 1/(1 - Σ a_k²) · Σ_k c_k (z_k/pi_k - Ĝ)²,   c_k = 1 - pi_k,
    a_k = c_k / Σ c,   Ĝ = Σ a_k z_k/pi_k,

with ``z = d·y`` for the HT total and the linearised ``z = d (y - R̂)/N̂_d`` for the Hájek ratio.
Certainty units (pi = 1) add no variance.

Intervals. Violations are rare and low-tier entities carry large weights (1/pi ≈ 80 for tier
A), so the estimates are right-skewed and normal intervals under-cover (≈ 85% nominal 95% in
our simulations). Published 95% intervals are Korn–Graubard: Clopper–Pearson with the effective
sample size ``n_eff = min(n_d, R̂(1 - R̂)/v)`` (Korn & Graubard 1998), which covers ≈ 97%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contract import RESULT_LABELS_ZH
from .errors import DataValidationError, PlanError, Problem
from .policy import INSPECTION_RESULTS, Policy, load_policy

__all__ = ["RESULT_LABELS_ZH", "ht_rate", "korn_graubard", "results_table", "violation_rates"]



def _deville_var(z: np.ndarray, pi: np.ndarray) -> float:
    """Hájek–Deville approximate variance of the HT total Σ z/pi (fixed-size high-entropy design)."""
    c = 1.0 - pi
    sc = c.sum()
    if sc <= 0 or len(z) < 2:
        return 0.0
    a = c / sc
    denom = 1.0 - float((a * a).sum())
    if denom <= 0:
        return 0.0
    zc = z / pi
    g = float((a * zc).sum())
    return float((c * (zc - g) ** 2).sum()) / denom


def ht_rate(y: np.ndarray, pi: np.ndarray, domain: np.ndarray | None = None, N: float | None = None) -> dict[str, float]:
    """Violation rate of a domain from one sample.

    Parameters
    ----------
    y : (n,) 0/1 violation indicators of the sampled entities.
    pi : (n,) their inclusion probabilities.
    domain : (n,) bool membership of the domain (default: everyone).
    N : known population size of the domain (for the HT rate; default: the HT estimate).

    Returns ``n`` (sampled in domain), ``violations``, ``N_hat``, ``rate_ht``, ``se_ht``,
    ``rate_hajek``, ``se_hajek``.
    """
    y = np.asarray(y, dtype=np.float64)
    pi = np.asarray(pi, dtype=np.float64)
    d = np.ones(len(y), bool) if domain is None else np.asarray(domain, dtype=bool)
    if not (len(y) == len(pi) == len(d)):
        raise PlanError("ht_rate: y, pi and domain must have the same length")
    if len(pi) and not ((pi > 0) & (pi <= 1)).all():
        raise PlanError("ht_rate: pi must be in (0, 1]")
    dy = d * y
    total = float((dy / pi).sum())
    n_hat = float((d / pi).sum())
    big_n = n_hat if N is None else float(N)
    out: dict[str, float] = {"n": int(d.sum()), "violations": int(dy.sum()), "N_hat": n_hat}
    out["rate_ht"] = total / big_n if big_n > 0 else math.nan
    out["se_ht"] = math.sqrt(_deville_var(dy, pi)) / big_n if big_n > 0 else math.nan
    if n_hat > 0:
        r = total / n_hat
        out["rate_hajek"] = r
        out["se_hajek"] = math.sqrt(_deville_var(d * (y - r) / n_hat, pi))
    else:
        out["rate_hajek"] = out["se_hajek"] = math.nan
    return out


def korn_graubard(rate: float, se: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Korn–Graubard interval for a proportion: Clopper–Pearson at the effective sample size."""
    from scipy.stats import beta

    if n <= 0 or not math.isfinite(rate):
        return math.nan, math.nan
    v = se * se
    n_eff = min(float(n), rate * (1 - rate) / v) if v > 0 else float(n)
    x = rate * n_eff
    a = (1 - level) / 2
    lo = float(beta.ppf(a, x, n_eff - x + 1)) if x > 0 else 0.0
    hi = float(beta.ppf(1 - a, x + 1, n_eff - x)) if x < n_eff else 1.0
    return lo, hi


def _results_frame(results: pd.DataFrame, result_col: str) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise PlanError(f"results: expected a DataFrame, got {type(results).__name__}")
    r = results.set_index("entity_id") if "entity_id" in results.columns else results
    if result_col not in r.columns:
        raise DataValidationError([Problem("results", result_col, "missing column")])
    codes = r[result_col].astype(object)
    bad = ~codes.isin(INSPECTION_RESULTS).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        vals = sorted({str(v) for v in codes[bad]})[:5]
        raise DataValidationError([Problem("results", result_col, f"unknown result code(s) {vals}; expected one "
                                           f"of {list(INSPECTION_RESULTS)}", tuple(int(x) for x in rows[:5]),
                                           int(bad.sum()))])
    if r.index.has_duplicates:
        dup = sorted(set(r.index[r.index.duplicated()].astype(str)))[:5]
        raise DataValidationError([Problem("results", "entity_id", f"more than one result for {dup}")])
    return r


def violation_rates(results: pd.DataFrame, plan: pd.DataFrame, *, by: Sequence[str] = ("tier", "town", "section"),
                    adverse: Sequence[str] | None = None, policy: str | Path | Policy | None = None,
                    result_col: str = "result") -> pd.DataFrame:
    """HT and Hájek violation rates overall and by domain, with standard errors.

    Parameters
    ----------
    results : one row per inspected entity (``entity_id`` index or column) with ``result`` codes.
    plan : the campaign's plan over the whole frame (``pi`` and the domain columns ``tier``,
        ``town``, ``industry``); it gives each sampled entity's pi and the domain sizes N.
    by : domains: any plan column, or ``"section"`` (first letter of ``industry``).
    adverse : result codes counted as a violation (default: the policy's ``[labels].adverse_results``:
        anything but no_problem, no_activity and closed).

    Returns one row per domain level: ``domain``, ``level``, ``N``, ``n``, ``violations``,
    ``rate`` (published: Hájek), ``se``, ``ci_low``/``ci_high`` (95% Korn–Graubard), ``rate_ht``,
    ``se_ht``, ``N_hat``.
    """
    adverse = tuple(load_policy(policy).labels["adverse_results"] if adverse is None else adverse)
    unknown = set(adverse) - set(INSPECTION_RESULTS)
    if unknown:
        raise PlanError(f"adverse: unknown result code(s) {sorted(unknown)}")
    r = _results_frame(results, result_col)
    plan = plan.set_index("entity_id") if "entity_id" in plan.columns else plan
    if "pi" not in plan.columns:
        raise PlanError("plan: missing column 'pi'")
    missing = ~r.index.isin(plan.index)
    if missing.any():
        raise PlanError(f"results: entity {list(r.index[missing][:5])} not in the plan (frame) of this campaign")
    frame = plan.copy(deep=False)
    if "section" in by and "section" not in frame.columns:
        if "industry" not in frame.columns:
            raise PlanError("plan: 'section' needs an 'industry' column")
        frame["section"] = frame["industry"].astype("string").str[0].str.upper()
    for col in by:
        if col not in frame.columns:
            raise PlanError(f"plan: no column {col!r} to estimate by")
    s = frame.loc[r.index]
    pi = s["pi"].to_numpy(dtype=np.float64)
    y = r[result_col].isin(adverse).to_numpy(dtype=np.float64)
    rows: list[dict[str, Any]] = [{"domain": "all", "level": "all", "N": len(frame), **ht_rate(y, pi, None, len(frame))}]
    for col in by:
        sizes = frame[col].astype(object).value_counts(dropna=False)
        lev = s[col].astype(object).to_numpy()
        for level in sorted(sizes.index, key=lambda v: (v is None or v != v, str(v))):
            dom = pd.isna(lev) if pd.isna(level) else (lev == level)
            rows.append({"domain": col, "level": level, "N": int(sizes[level]), **ht_rate(y, pi, dom, int(sizes[level]))})
    out = pd.DataFrame(rows)
    out["rate"], out["se"] = out.pop("rate_hajek"), out.pop("se_hajek")
    ci = [korn_graubard(r_, s_, int(k)) for r_, s_, k in zip(out["rate"], out["se"], out["n"], strict=True)]
    out["ci_low"] = [c[0] for c in ci]
    out["ci_high"] = [c[1] for c in ci]
    cols = ["domain", "level", "N", "n", "violations", "rate", "se", "ci_low", "ci_high", "rate_ht", "se_ht", "N_hat"]
    return out[cols]


_ZH_COLUMNS = {"entity_id": "统一社会信用代码", "inspectors": "检查人员", "date": "检查日期",
               "result": "检查结果代码", "result_zh": "检查结果", "department": "检查部门"}


def results_table(results: pd.DataFrame, assignments: pd.DataFrame | pd.Series | None = None, *,
                  date_col: str = "date", result_col: str = "result", zh_columns: bool = False) -> pd.DataFrame:
    """Publishable results table: ``entity_id``, ``inspectors``, ``date``, ``result``, ``result_zh``.

    ``assignments``: :func:`~yiwu_credit.inspectors.assign_inspectors` output (or a Series
    entity → ";"-joined ids); otherwise an ``inspectors`` column of ``results`` is used. Risk tiers
    and probabilities are internal and never included. ``zh_columns=True`` gives Chinese headers
    (统一社会信用代码, 检查人员, 检查日期, 检查结果代码, 检查结果). Sorted by entity_id.
    """
    r = _results_frame(results, result_col)
    if assignments is not None:
        if isinstance(assignments, pd.DataFrame):
            from .inspectors import inspectors_by_entity

            insp = inspectors_by_entity(assignments)
        else:
            insp = assignments
        ins = insp.reindex(r.index.astype(str))
        if ins.isna().any():
            raise PlanError(f"assignments: no inspectors recorded for entity {list(r.index[ins.isna().to_numpy()][:5])}")
        ins = ins.to_numpy()
    elif "inspectors" in r.columns:
        ins = r["inspectors"].astype(str).to_numpy()
    else:
        raise PlanError("results_table: pass assignments or give results an 'inspectors' column")
    if date_col in r.columns:
        dates = pd.to_datetime(r[date_col], errors="coerce")
        if dates.isna().any():
            bad = list(r.index[dates.isna().to_numpy()][:5])
            raise DataValidationError([Problem("results", date_col, f"missing or unreadable date for {bad}")])
        date = dates.dt.strftime("%Y-%m-%d").to_numpy()
    else:
        raise DataValidationError([Problem("results", date_col, "missing column")])
    out = pd.DataFrame({"entity_id": r.index.astype(str), "inspectors": ins, "date": date,
                        "result": r[result_col].astype(str).to_numpy()})
    out["result_zh"] = out["result"].map(RESULT_LABELS_ZH)
    if "department" in r.columns:
        out["department"] = r["department"].astype(str).to_numpy()
    out = out.sort_values("entity_id", ignore_index=True)
    return out.rename(columns=_ZH_COLUMNS) if zh_columns else out
