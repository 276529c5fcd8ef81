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

Tied to the draw (:func:`tie_results`). Results must be for drawn entities only, one each, with
a known result code and an ISO date inside the campaign window (recorded in the audit at draw
time, or given); anything else is refused with a :class:`DataValidationError` naming the rows.

Non-response. A drawn entity without a result is a non-respondent. Within each adjustment class
``h`` (default: tier) respondents' weights ``1/pi`` are multiplied by
``f_h = Σ_{drawn in h} 1/pi / Σ_{responded in h} 1/pi`` (weighting-class adjustment; assumes
results are missing at random within tier). The estimators below then run on the respondents
with ``pi_adj = pi / f_h``, i.e. response is treated as a second phase with the estimated class
response propensity; the variance ignores the estimation of ``f_h`` (stated approximation). A
class with drawn entities but no respondent cannot be adjusted and is refused.

Intervals. Violations are rare and low-tier entities carry large weights (1/pi ≈ 80 for tier
A), so the estimates are right-skewed and normal intervals under-cover (≈ 85% nominal 95% in
our simulations). Published 95% intervals are Korn–Graubard: Clopper–Pearson with the effective
sample size ``n_eff = min(n_d, R̂(1 - R̂)/v)`` (Korn & Graubard 1998), which covers ≈ 97%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.contract import INSPECTION_RESULTS, RESULT_LABELS_ZH
from ..data.dates import parse_dates
from ..errors import ConfigError, DataValidationError, PlanError, Problem, UsageError
from ..policy import Policy
from .assignments import inspectors_by_entity
from .audit import campaign_window
from .joint import JOINT_FORMAT
from .plan import plan_pi, plan_policy
from .systematic import Draw
from .verification import check_audit, check_seal, verify

__all__ = ["RESULT_LABELS_ZH", "Campaign", "ht_rate", "korn_graubard", "publication_summary", "response_rates",
           "results_table", "tie_results", "violation_rates"]



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
                                           f"of {list(INSPECTION_RESULTS)}", tuple(int(x) + 1 for x in rows[:5]),
                                           int(bad.sum()))])
    if r.index.has_duplicates:
        dup = sorted(set(r.index[r.index.duplicated()].astype(str)))[:5]
        raise DataValidationError([Problem("results", "entity_id", f"more than one result for {dup}")])
    return r


def _problem(column: str, reason: str, mask: np.ndarray, values: Sequence[Any] | None = None) -> Problem:
    """A results Problem for the rows in ``mask`` (1-based data rows), with example values."""
    rows = np.flatnonzero(mask)
    if values is not None:
        ex = list(dict.fromkeys(str(v) for v in np.asarray(values, dtype=object)[rows]))
        reason += f": {ex[:5]}" + (f" (+{len(ex) - 5} more)" if len(ex) > 5 else "")
    return Problem("results", column, reason, tuple(int(r) + 1 for r in rows[:10]), len(rows))


def _drawn_and_window(drawn: Any, window: tuple[Any, Any] | None) -> tuple[pd.Index, dict[str, str], dict | None]:
    """The drawn ids, the campaign window and the audit (when ``drawn`` is a Draw or an audit)."""
    audit = None
    if isinstance(drawn, Draw):
        audit = check_seal(drawn.audit, "drawn")
    elif isinstance(drawn, Mapping):
        audit = check_seal(check_audit(drawn), "drawn")
    if audit is not None:
        if audit.get("format") == JOINT_FORMAT:
            raise PlanError("drawn: a joint audit covers several departments; pass one department's selected ids")
        if "selected" not in audit:
            raise ConfigError("audit: missing field 'selected' (the drawn entities)")
        ids = pd.Index([str(x) for x in audit["selected"]], name="entity_id")
    elif isinstance(drawn, pd.DataFrame):
        ids = pd.Index((drawn["entity_id"] if "entity_id" in drawn.columns else drawn.index).astype(str),
                       name="entity_id")
    elif drawn is None or isinstance(drawn, str | bytes):
        raise PlanError("drawn: pass the campaign's Draw, its audit record or the drawn entity ids — estimates "
                        "are only defined for the entities the campaign drew")
    else:
        ids = pd.Index([str(x) for x in drawn], name="entity_id")
    if ids.has_duplicates:
        raise PlanError(f"drawn: duplicate entity id(s) {sorted(set(ids[ids.duplicated()]))[:5]}")
    recorded = campaign_window(audit["campaign"]["start"], audit["campaign"]["end"]) \
        if audit is not None and "campaign" in audit else None
    given = campaign_window(*window) if window is not None else None
    if recorded and given and recorded != given:
        raise UsageError(f"campaign window: {given['start']}–{given['end']} given, but the audit records "
                         f"{recorded['start']}–{recorded['end']}: omit --campaign-start/--campaign-end")
    win = given or recorded
    if win is None:
        raise PlanError("campaign window unknown: record it at draw time (draw(..., window=) / "
                        "yiwu-credit draw --window START END) or pass window=(start, end) "
                        "(--campaign-start/--campaign-end); results dated outside it are refused")
    return ids, win, audit


@dataclass(frozen=True)
class Campaign:
    """Results tied to their draw (see :func:`tie_results`).

    ``results``: the validated results indexed by ``entity_id``; ``drawn``: the drawn ids;
    ``window``: the campaign window; ``frame``: the plan (entity_id index); ``cls``: the
    non-response adjustment class of each drawn entity; ``pi_adj``: per respondent, ``pi``
    divided by its class adjustment factor (``1 / pi_adj`` is the adjusted weight).
    """

    results: pd.DataFrame
    drawn: pd.Index
    window: dict[str, str]
    frame: pd.DataFrame
    cls: pd.Series
    pi_adj: pd.Series
    response: pd.DataFrame


def tie_results(results: pd.DataFrame, plan: pd.DataFrame, *, drawn: Any, window: tuple[Any, Any] | None = None,
                adjust_by: str | None = "tier", result_col: str = "result", date_col: str = "date",
                verify_plan: bool = True) -> Campaign:
    """Validate a campaign's results against its draw and set up the non-response adjustment.

    ``drawn``: the :class:`~yiwu_credit.supervision.systematic.Draw`, its audit record (dict), or the drawn
    ids (sequence, Index, or a DataFrame with ``entity_id``). With a Draw or audit the plan is
    checked to be the one drawn from (:func:`~yiwu_credit.supervision.verification.verify` of the entity draw,
    unless ``verify_plan=False``) and the recorded campaign window is used.

    Refused with one :class:`DataValidationError` listing every problem (table ``results``,
    column, 1-based data rows, reason): no rows, missing or empty entity ids, results for
    entities not drawn, more than one result per entity, missing or unknown result codes, missing
    or unreadable dates (ISO ``YYYY-MM-DD``), dates outside the campaign window (inclusive).
    PlanError: no window known, drawn entities not in the plan, the plan not the one drawn from.

    Non-response (drawn, no result) is adjusted within the classes of ``adjust_by`` (a plan
    column, default ``tier``; None: one class): respondents' weights 1/pi are multiplied by
    ``Σ_{drawn in h} 1/pi / Σ_{responded in h} 1/pi`` (missing at random within class). A class
    with drawn entities but no respondent cannot be adjusted and is refused (DataValidationError).
    """
    ids, win, audit = _drawn_and_window(drawn, window)
    if not isinstance(results, pd.DataFrame):
        raise PlanError(f"results: expected a DataFrame, got {type(results).__name__}")
    if not isinstance(plan, pd.DataFrame):
        raise PlanError(f"plan: expected a DataFrame, got {type(plan).__name__}")
    frame = plan.set_index("entity_id") if "entity_id" in plan.columns else plan
    pi_all = pd.Series(plan_pi(frame), index=frame.index)     # PlanError unless 0 < pi ≤ 1 everywhere
    if adjust_by is not None and adjust_by not in frame.columns:
        raise PlanError(f"plan: no column {adjust_by!r} to adjust for non-response by")
    not_in_plan = frame.index.get_indexer(ids) < 0
    if not_in_plan.any():
        raise PlanError(f"plan: {int(not_in_plan.sum())} drawn entities are not in the plan "
                        f"({list(ids[not_in_plan][:5])}); pass the plan the campaign was drawn from")
    if audit is not None and verify_plan:
        v = verify(audit, frame, entities_only=True)
        if not v.ok:
            raise PlanError("plan: not the plan this campaign was drawn from (the draw does not verify: "
                            + "; ".join(v.mismatches[:3]) + ")")
    if len(results) == 0:
        raise DataValidationError([Problem("results", None, "no results: the table has a header but no data rows")])
    r = results if "entity_id" in results.columns else results.rename_axis("entity_id").reset_index()
    problems: list[Problem] = []
    missing = [c for c in ("entity_id", result_col, date_col) if c not in r.columns]
    if missing:
        raise DataValidationError([Problem("results", c, "missing column") for c in missing])
    from ..data.uscc import normalise_ids

    eid = pd.Series(normalise_ids(r["entity_id"]), index=r.index, dtype=object)  # the one id rule
    no_id = eid.isna().to_numpy()
    if no_id.any():
        problems.append(_problem("entity_id", "missing entity_id", no_id))
    undrawn = ~no_id & (ids.get_indexer(eid.to_numpy()) < 0)
    if undrawn.any():
        problems.append(_problem("entity_id", "result for an entity not drawn in this campaign (results must be "
                                 "for drawn entities only)", undrawn, eid.to_numpy()))
    dup = ~no_id & eid.duplicated(keep=False).to_numpy()
    if dup.any():
        problems.append(_problem("entity_id", "more than one result for the same entity", dup, eid.to_numpy()))
    codes = r[result_col].astype(object)
    no_code = codes.isna().to_numpy() | codes.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    if no_code.any():
        problems.append(_problem(result_col, "missing result code", no_code))
    unknown = ~no_code & ~codes.isin(INSPECTION_RESULTS).to_numpy()
    if unknown.any():
        problems.append(_problem(result_col, f"unknown result code (expected one of {list(INSPECTION_RESULTS)})",
                                 unknown, codes.to_numpy()))
    dates = parse_dates(r[date_col])
    no_date = dates.isna().to_numpy()
    if no_date.any():
        problems.append(_problem(date_col, "missing or unreadable date (expected YYYY-MM-DD)", no_date,
                                 r[date_col].to_numpy()))
    lo, hi = pd.Timestamp(win["start"]), pd.Timestamp(win["end"])
    outside = ~no_date & ((dates < lo) | (dates > hi)).to_numpy()
    if outside.any():
        problems.append(_problem(date_col, f"date outside the campaign window {win['start']} – {win['end']}",
                                 outside, dates.dt.strftime("%Y-%m-%d").to_numpy()))
    if problems:
        raise DataValidationError(problems)
    res = r.assign(entity_id=eid.to_numpy(), **{date_col: dates.to_numpy()}).set_index("entity_id")

    # non-response: weighting-class adjustment within adjust_by
    d = frame.loc[ids]
    pi_d = pi_all.loc[ids].to_numpy(dtype=np.float64)
    cls = (d[adjust_by].astype(object).where(d[adjust_by].notna(), "(missing)") if adjust_by is not None
           else pd.Series("all", index=d.index, dtype=object))
    responded = res.index.get_indexer(ids) >= 0
    tab = pd.DataFrame({"cls": cls.to_numpy(), "w": 1.0 / pi_d, "resp": responded,
                        "w_resp": np.where(responded, 1.0 / pi_d, 0.0)})
    g = tab.groupby("cls", sort=True).agg(drawn=("w", "size"), responded=("resp", "sum"), w_drawn=("w", "sum"),
                                          w_responded=("w_resp", "sum"))
    empty = g[g["responded"] == 0]
    if len(empty):
        what = adjust_by or "campaign"
        raise DataValidationError([Problem("results", "entity_id", f"{what} {lvl!r}: {int(k)} drawn entities and no "
                                           "result — non-response cannot be adjusted for within it; collect results "
                                           "for this class before estimating")
                                   for lvl, k in empty["drawn"].items()])
    g["adjustment"] = g["w_drawn"] / g["w_responded"]
    resp = pd.DataFrame({
        "class": g.index.astype(object), "drawn": g["drawn"].astype(int).to_numpy(),
        "responded": g["responded"].astype(int).to_numpy(),
    })
    resp["nonresponse"] = resp["drawn"] - resp["responded"]
    resp["response_rate"] = resp["responded"] / resp["drawn"]
    resp["weighted_response_rate"] = (g["w_responded"] / g["w_drawn"]).to_numpy()
    resp["adjustment"] = g["adjustment"].to_numpy()
    total = {"class": "all", "drawn": int(len(ids)), "responded": int(responded.sum()),
             "nonresponse": int((~responded).sum()), "response_rate": float(responded.mean()),
             "weighted_response_rate": float(tab["w_resp"].sum() / tab["w"].sum()), "adjustment": math.nan}
    resp = pd.concat([resp, pd.DataFrame([total])], ignore_index=True)
    resp.insert(0, "adjusted_by", adjust_by or "")
    cls_r = pd.Series(cls.to_numpy(), index=ids)[res.index]
    pi_adj = pi_all.loc[res.index] / g["adjustment"].reindex(cls_r.to_numpy()).to_numpy()
    return Campaign(results=res, drawn=ids, window=win, frame=frame, cls=pd.Series(cls.to_numpy(), index=ids),
                    pi_adj=pi_adj, response=resp)


def response_rates(results: pd.DataFrame, plan: pd.DataFrame, *, drawn: Any, window: tuple[Any, Any] | None = None,
                   adjust_by: str | None = "tier", result_col: str = "result", date_col: str = "date",
                   verify_plan: bool = True) -> pd.DataFrame:
    """Non-response by adjustment class (default: tier) and overall.

    One row per class plus ``all``: ``adjusted_by``, ``class``, ``drawn``, ``responded``,
    ``nonresponse``, ``response_rate`` (responded / drawn), ``weighted_response_rate``
    (Σ 1/pi over respondents / over drawn) and ``adjustment`` (the weight factor, its inverse).
    Same arguments and checks as :func:`tie_results`.
    """
    return tie_results(results, plan, drawn=drawn, window=window, adjust_by=adjust_by, result_col=result_col,
                       date_col=date_col, verify_plan=verify_plan).response


def violation_rates(results: pd.DataFrame | Campaign, plan: pd.DataFrame | None = None, *, drawn: Any = None,
                    window: tuple[Any, Any] | None = None, by: Sequence[str] = ("tier", "town", "section"),
                    adverse: Sequence[str] | None = None, policy: str | Path | Policy | None = None,
                    adjust_by: str | None = "tier", result_col: str = "result", date_col: str = "date",
                    verify_plan: bool = True) -> pd.DataFrame:
    """HT and Hájek violation rates overall and by domain, with standard errors, tied to the draw.

    Parameters
    ----------
    results : one row per inspected entity (``entity_id`` column or index) with ``result`` codes
        and ``date`` — or a :class:`Campaign` from :func:`tie_results` (then ``plan``, ``drawn``,
        ``window``, ``adjust_by`` are taken from it).
    plan : the campaign's plan over the whole frame (``pi`` and the domain columns ``tier``,
        ``town``, ``industry``); it gives each drawn entity's pi and the domain sizes N.
    drawn : **required**: the campaign's Draw, its audit record, or the drawn ids. Results for
        undrawn entities, duplicates, bad codes and dates outside the campaign window are refused
        (see :func:`tie_results`); there is no estimate without the draw.
    window : the campaign window (start, end), if the audit does not record it.
    by : domains: any plan column, or ``"section"`` (first letter of ``industry``).
    adverse : result codes counted as a violation (default: the policy's ``[labels].adverse_results``:
        anything but no_problem, no_activity and closed).
    adjust_by : non-response adjustment classes (plan column; default ``tier``).

    Non-response: respondents' weights are adjusted within ``adjust_by`` classes (see
    :func:`tie_results`); estimates and their Hájek–Deville variances are computed on the
    respondents with ``pi_adj = pi / adjustment`` (response treated as a second phase with the
    class response propensity; the variance from estimating that propensity is ignored).

    Returns one row per domain level: ``domain``, ``level``, ``N``, ``drawn``, ``n``
    (respondents), ``response_rate``, ``violations``, ``rate`` (published: Hájek), ``se``,
    ``ci_low``/``ci_high`` (95% Korn–Graubard at n respondents), ``rate_ht``, ``se_ht``, ``N_hat``.
    """
    if adverse is not None:
        unknown = set(adverse) - set(INSPECTION_RESULTS)
        if unknown:
            raise PlanError(f"adverse: unknown result code(s) {sorted(unknown)}")
    if isinstance(results, Campaign):
        c = results
    else:
        if plan is None:
            raise PlanError("violation_rates: pass the plan")
        c = tie_results(results, plan, drawn=drawn, window=window, adjust_by=adjust_by, result_col=result_col,
                        date_col=date_col, verify_plan=verify_plan)
    if adverse is None:  # the policy the plan was made under (its plan_* record), or the one given, checked
        adverse = plan_policy(c.frame, policy)[0].labels.adverse_results
    adverse = tuple(adverse)
    frame = c.frame.copy(deep=False)
    if "section" in by and "section" not in frame.columns:
        if "industry" not in frame.columns:
            raise PlanError("plan: 'section' needs an 'industry' column")
        frame["section"] = frame["industry"].astype("string").str[0].str.upper()
    for col in by:
        if col not in frame.columns:
            raise PlanError(f"plan: no column {col!r} to estimate by")
    r = c.results
    s = frame.loc[r.index]
    sd = frame.loc[c.drawn]
    pi = c.pi_adj.to_numpy(dtype=np.float64)
    y = r[result_col].isin(adverse).to_numpy(dtype=np.float64)
    rows: list[dict[str, Any]] = [{"domain": "all", "level": "all", "N": len(frame), "drawn": len(c.drawn),
                                   **ht_rate(y, pi, None, len(frame))}]
    for col in by:
        sizes = frame[col].astype(object).value_counts(dropna=False)
        lev = s[col].astype(object).to_numpy()
        lev_d = sd[col].astype(object).to_numpy()
        for level in sorted(sizes.index, key=lambda v: (v is None or v != v, str(v))):
            dom = pd.isna(lev) if pd.isna(level) else (lev == level)
            nd = int((pd.isna(lev_d) if pd.isna(level) else (lev_d == level)).sum())
            rows.append({"domain": col, "level": level, "N": int(sizes[level]), "drawn": nd,
                         **ht_rate(y, pi, dom, int(sizes[level]))})
    out = pd.DataFrame(rows)
    out["response_rate"] = np.where(out["drawn"] > 0, out["n"] / out["drawn"].where(out["drawn"] > 0, 1), np.nan)
    out["rate"], out["se"] = out.pop("rate_hajek"), out.pop("se_hajek")
    ci = [korn_graubard(r_, s_, int(k)) for r_, s_, k in zip(out["rate"], out["se"], out["n"], strict=True)]
    out["ci_low"] = [x[0] for x in ci]
    out["ci_high"] = [x[1] for x in ci]
    cols = ["domain", "level", "N", "drawn", "n", "response_rate", "violations", "rate", "se", "ci_low", "ci_high",
            "rate_ht", "se_ht", "N_hat"]
    return out[cols]


_SUMMARY_ITEMS = [
    ("campaign_start", "检查开始日期"), ("campaign_end", "检查结束日期"), ("drawn", "抽取户数"),
    ("inspected", "已公示检查结果户数"), ("not_inspected", "未取得检查结果户数"),
    ("response_rate", "检查结果公示率（已公示/抽取）"),
    ("violation_rate", "违法违规率估计（Hájek，已按未检查调整）"), ("ci_low", "95%置信区间下限"),
    ("ci_high", "95%置信区间上限"),
]


def publication_summary(campaign: Campaign, estimates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The small summary table published with the results table (一公开).

    Columns ``item``, ``item_zh``, ``value`` (text; rates as decimals with 4 places): campaign
    window, entities drawn, results published, no result, the response rate and, with
    ``estimates`` (:func:`violation_rates`), the overall published rate and its 95% interval.
    Tiers and probabilities stay internal, so non-response is published overall only.
    """
    tot = campaign.response.iloc[-1]
    vals: dict[str, str] = {
        "campaign_start": campaign.window["start"], "campaign_end": campaign.window["end"],
        "drawn": str(int(tot["drawn"])), "inspected": str(int(tot["responded"])),
        "not_inspected": str(int(tot["nonresponse"])), "response_rate": f"{float(tot['response_rate']):.4f}",
    }
    if estimates is not None:
        o = estimates[estimates["domain"] == "all"].iloc[0]
        vals.update(violation_rate=f"{o['rate']:.4f}", ci_low=f"{o['ci_low']:.4f}", ci_high=f"{o['ci_high']:.4f}")
    return pd.DataFrame([{"item": k, "item_zh": zh, "value": vals[k]} for k, zh in _SUMMARY_ITEMS if k in vals])


_ZH_COLUMNS = {"entity_id": "统一社会信用代码", "inspectors": "检查人员", "date": "检查日期",
               "result": "检查结果代码", "result_zh": "检查结果", "department": "检查部门"}


def results_table(results: pd.DataFrame, assignments: pd.DataFrame | pd.Series | None = None, *,
                  date_col: str = "date", result_col: str = "result", zh_columns: bool = False) -> pd.DataFrame:
    """Publishable results table: ``entity_id``, ``inspectors``, ``date``, ``result``, ``result_zh``.

    ``assignments``: :func:`~yiwu_credit.supervision.inspectors.assign_inspectors` output (or a Series
    entity → ";"-joined ids); otherwise an ``inspectors`` column of ``results`` is used. Risk tiers
    and probabilities are internal and never included. ``zh_columns=True`` gives Chinese headers
    (统一社会信用代码, 检查人员, 检查日期, 检查结果代码, 检查结果). Sorted by entity_id.
    """
    r = _results_frame(results, result_col)
    if assignments is not None:
        if isinstance(assignments, pd.DataFrame):
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
        dates = parse_dates(r[date_col])
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
