"""The closed loop on a synthetic world: does credit-graded supervision find more violations with
the same number of inspections, at what burden on low-risk entities, and does retraining on its
own (risk-dependent) campaign outcomes stay honest?

:func:`simulate_loop` generates a world whose history runs to ``start_year``, strips the
generator's inspections from ``start_year`` on, and then runs ``cycles`` yearly cycles. In each
cycle every strategy scores the pool at 1 January, plans a campaign of a FIXED size
``n = round(budget_rate × pool)``, draws it (same draw seed for every strategy), observes the
outcomes of the inspected entities only, appends them to its own copy of the dataset (random
inspections with their ``inclusion_prob``, complaint-driven targeted inspections without) and
retrains on the campaign outcomes of the last ``train_window`` years.

Outcomes use common random numbers: each cycle fixes one potential outcome per pool entity (from
:func:`synth.simulate_results` on the true propensity: adverse with probability
``1 - exp(-1.2 λ)``); a strategy "finds" the outcomes of the entities it draws. Differences between
strategies are therefore due to whom they inspect, not to outcome noise. The same potential
outcomes give the truth-based model metrics over the whole pool.

Strategies (same world, budget and seeds):

* ``policy``   — the library's default policy on the current model; retrain with 1/π weights.
* ``uniform``  — π = n/N for every entity (the pre-reform 双随机 practice); retrain with 1/π.
* ``oracle``   — the same policy on tiers from the TRUE propensity (policy tier shares): the ceiling.
* ``no_ipw``   — as ``policy`` but retrained without weights.
* ``no_floor`` — as ``policy`` with tier A weight ~0 and a floor of 1e-9: A is (almost) never
  inspected, so the training data loses the low-risk region.
* any named candidate policy (``candidates=``, e.g. from :func:`yiwu_credit.supervision.frontier.candidate_grid`):
  planned with its own sampling settings, retrained with 1/π.

A drifting world (``drift=``, :class:`Drift`): from the second cycle on, each year a share of the
truly low-risk entities turns risky (their λ is multiplied for good), and a violation found by a
campaign deters: that entity's λ is multiplied by ``deter_factor`` for the next ``deter_years``
years in that strategy's world. Potential outcomes stay common random numbers (the same uniform
per entity and year; only λ differs between strategies). The features do not see the turn (the
generated records come from the background λ): only inspections can find it.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ..data.contract import TABLES
from ..data.dataset import Dataset
from ..data.dates import NAT, day_array, to_day
from ..data.io import markdown_table, save_figure
from ..data.synth import generate, simulate_results
from ..features.build import build_features, pool
from ..features.catalogue import Catalogue, load_catalogue
from ..model.bundle import Bundle, load_bundle
from ..model.estimator import TieredRiskModel
from ..model.labels import build_labels
from ..policy import TIERS, Policy, load_policy
from ..supervision import draw, supervision_plan
from ..supervision.frontier import Candidate
from .scoring import score_entities

__all__ = ["Drift", "LoopResult", "STRATEGIES", "burden_table", "frontier_outcomes", "simulate_loop"]

STRATEGIES = ("policy", "uniform", "oracle", "no_ipw", "no_floor")
_MODEL_FREE = ("oracle",)


# ============================================================== fairness and burden
def burden_table(scored_or_plan: pd.DataFrame, results: pd.DataFrame | None = None,
                 by: Sequence[str] = ("town", "entity_type", "section"),
                 policy: Policy | str | None = None) -> pd.DataFrame:
    """Burden and tier mix per group, one block per grouping variable (long format).

    ``scored_or_plan``: entity_id index with ``tier`` and the ``by`` columns (``section`` is
    derived from the first letter of ``industry`` when absent); ``expected_per_year`` (a plan)
    adds expected inspections per entity per year. ``results``: one row per inspection with
    ``entity_id`` and ``adverse`` (bool) or ``result`` (code; adverse per the policy's
    ``[labels].adverse_results``); adds realised inspections per entity and the hit rate.

    Columns: dimension, group, entities, share_A..share_D (each row sums to 1),
    expected_per_entity (inspections/year), inspections, inspections_per_entity, violations,
    hit_rate (violations / inspections).
    """
    df = scored_or_plan
    if "section" in by and "section" not in df.columns:
        if "industry" not in df.columns:
            raise ValueError("burden_table: 'section' needs a 'section' or 'industry' column")
        df = df.assign(section=df["industry"].astype(str).str[:1])
    missing = [c for c in ("tier", *by) if c not in df.columns]
    if missing:
        raise ValueError(f"burden_table: missing columns {missing}")
    base = pd.DataFrame({"tier": df["tier"].astype(str).to_numpy()}, index=df.index)
    if "expected_per_year" in df.columns:
        base["expected"] = df["expected_per_year"].to_numpy(dtype=float)
    if results is not None:
        if "adverse" in results.columns:
            adv = results["adverse"].to_numpy(dtype=bool)
        else:
            adv = results["result"].isin(load_policy(policy).labels.adverse_results).to_numpy()
        r = pd.DataFrame({"entity_id": results["entity_id"].astype(str).to_numpy(), "adv": adv})
        g = r.groupby("entity_id").agg(k=("adv", "size"), v=("adv", "sum"))
        unknown = ~g.index.isin(df.index.astype(str))
        if unknown.any():
            raise ValueError(f"burden_table: {int(unknown.sum())} result entities are not in the frame")
        g = g.reindex(df.index.astype(str), fill_value=0)
        base["inspections"] = g["k"].to_numpy(dtype=float)
        base["violations"] = g["v"].to_numpy(dtype=float)
    for t in TIERS:
        base[f"share_{t}"] = (base["tier"] == t).astype(float)
    blocks = []
    for dim in by:
        grp = base.drop(columns="tier").groupby(df[dim].astype(str).to_numpy(), sort=True)
        out = grp.mean()
        out.insert(0, "entities", grp.size())
        if "inspections" in out.columns:
            out = out.rename(columns={"inspections": "inspections_per_entity"})
            out["inspections"] = grp["inspections"].sum()
            out["violations"] = grp["violations"].sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                out["hit_rate"] = out["violations"] / out["inspections"]
        if "expected" in out.columns:
            out = out.rename(columns={"expected": "expected_per_entity"})
        out.insert(0, "group", out.index)
        out.insert(0, "dimension", dim)
        blocks.append(out.reset_index(drop=True))
    cols = ["dimension", "group", "entities", *[f"share_{t}" for t in TIERS]]
    cols += [c for c in ("expected_per_entity", "inspections", "inspections_per_entity", "violations",
                         "hit_rate") if c in blocks[0].columns]
    res = pd.concat(blocks, ignore_index=True)[cols]
    for c in ("entities", "inspections", "violations"):
        if c in res.columns:
            res[c] = res[c].astype(int)
    return res


# ============================================================== result
_SUMMARY_COLS = {
    "inspections": "sum", "violations": "sum", "hit_rate": "mean", "low_risk_share": "mean",
    "auc_truth": "mean", "calib_gap": "mean", "calib_gap_a": "mean", "auc_tier_a": "mean",
}


@dataclass
class LoopResult:
    """Output of :func:`simulate_loop`.

    ``cycles``: one row per (strategy, cycle) with inspections (campaign size n), violations
    (adverse outcomes found), hit_rate, low_risk (inspections on the true bottom ``low_risk_share``
    of propensity) and low_risk_share, tier_a_share (share of inspections in the scoring tier A),
    targeted / targeted_violations (complaint-driven inspections, common to all strategies),
    auc_truth (model probability vs potential outcomes of the whole pool), mean_pred, mean_true
    (true P(adverse | inspected) = 1 - exp(-1.2 λ)), calib_gap (= mean_pred - mean_true), the same
    in tier A (mean_pred_a, mean_true_a, calib_gap_a), auc_tier_a, n_train (training rows).
    ``burden``: :func:`burden_table` for the last cycle of ``policy``. ``params``: the run's inputs.
    """

    cycles: pd.DataFrame
    burden: pd.DataFrame
    params: dict[str, Any]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def by_strategy(self) -> pd.DataFrame:
        """Totals (inspections, violations) and per-cycle means of the other metrics."""
        c = self.cycles
        agg = {k: v for k, v in _SUMMARY_COLS.items() if k in c.columns}
        out = c.groupby("strategy", sort=False).agg(agg)
        out["violations_vs_uniform"] = out["violations"] / out.loc["uniform", "violations"] \
            if "uniform" in out.index else np.nan
        return out.reset_index()

    def summary(self) -> str:
        """Plain-text summary: parameters, per-strategy totals and means, the comparison."""
        p = self.params
        s = self.by_strategy().set_index("strategy")
        lines = [f"Closed-loop simulation: {p['n_entities']:,} entities, {p['cycles']} cycles from "
                 f"{p['start_year']}, budget {p['budget_rate']:.1%} of the pool per year, seed {p['seed']} "
                 f"({self.seconds:.0f} s)"]
        with pd.option_context("display.width", 140, "display.max_columns", 20,
                               "display.float_format", "{:.3f}".format):
            lines.append(s.to_string())
        if {"policy", "uniform"} <= set(s.index):
            pol, uni = s.loc["policy"], s.loc["uniform"]
            lines.append(f"policy vs uniform: {pol['violations'] / uni['violations']:.2f}x violations found with "
                         f"the same {int(pol['inspections']):,} inspections; low-risk burden "
                         f"{pol['low_risk_share']:.1%} vs {uni['low_risk_share']:.1%}")
        if {"oracle", "uniform", "policy"} <= set(s.index):
            o, u, q = s.loc["oracle", "violations"], s.loc["uniform", "violations"], s.loc["policy", "violations"]
            if o > u:
                lines.append(f"policy captures {(q - u) / (o - u):.0%} of the oracle's gain over uniform")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown: per-strategy summary, the per-cycle table and the burden table."""
        c = self.cycles
        show = ["strategy", "cycle", "year", "inspections", "violations", "hit_rate", "low_risk_share",
                "auc_truth", "mean_pred", "mean_true", "calib_gap_a", "auc_tier_a"]
        parts = ["### By strategy", "", markdown_table(self.by_strategy()), "",
                 "### Per cycle", "", markdown_table(c[[x for x in show if x in c.columns]]), ""]
        if len(self.burden):
            parts += ["### Burden (policy, last cycle)", "", markdown_table(self.burden), ""]
        return "\n".join(parts)

    def plot(self, path: str | Path) -> Path:
        """Write a 2×2 PNG: hit rate, violations found, low-risk burden and AUC per cycle."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        c = self.cycles
        panels = [("hit_rate", "hit rate (violations / inspection)"),
                  ("violations", "violations found per cycle"),
                  ("low_risk_share", "share of inspections on true low-risk (bottom 40%)"),
                  ("auc_truth", "model AUC vs truth (whole pool)")]
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
        for ax, (col, title) in zip(axes.ravel(), panels, strict=True):
            for s, g in c.groupby("strategy", sort=False):
                ax.plot(g["year"], g[col], marker="o", label=s)
            ax.set_title(title, fontsize=10)
            ax.set_xticks(sorted(c["year"].unique()))
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=8)
        p = self.params
        fig.suptitle(f"Closed loop: {p['n_entities']:,} entities, budget {p['budget_rate']:.0%}/yr, "
                     f"seed {p['seed']}", fontsize=11)
        fig.tight_layout()
        return save_figure(fig, path)


# ============================================================== the loop
@dataclass(frozen=True)
class Drift:
    """How the synthetic world changes over the loop's cycles (see the module docstring).

    ``turn_rate``: share of the truly low-risk pool entities (bottom ``low_risk_share`` of the
    background λ) that turn risky each year from the second cycle on; ``turn_factor``: their λ
    multiplier (for good). ``deter_factor``: λ multiplier for ``deter_years`` years after a
    violation found by a campaign (per strategy).
    """

    turn_rate: float = 0.05
    turn_factor: float = 8.0
    deter_factor: float = 0.3
    deter_years: int = 2

    def __post_init__(self) -> None:
        if not (0 <= self.turn_rate <= 1 and self.turn_factor >= 1 and 0 < self.deter_factor <= 1
                and self.deter_years >= 0):
            raise ValueError(f"Drift: need 0 ≤ turn_rate ≤ 1, turn_factor ≥ 1, 0 < deter_factor ≤ 1, "
                             f"deter_years ≥ 0; got {self}")


def _sub_seed(seed: int, *parts: Any) -> int:
    """A deterministic 32-bit seed derived from ``seed`` and labels (stable across processes)."""
    h = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(h[:4], "little")


def _no_floor_policy(pol: Policy, a_weight: float) -> Policy:
    raw = copy.deepcopy(pol.raw)
    raw["sampling"]["tiers"]["A"]["weight"] = a_weight
    raw["sampling"]["min_inclusion_prob"] = 1e-9
    raw["meta"]["name"] = f"{raw['meta']['name']}-no-floor"
    return Policy(raw=raw, source=f"{pol.source} (no floor, tier A weight {a_weight:g})")


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def _safe_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def _sorted_inspections(df: pd.DataFrame) -> pd.DataFrame:
    order = np.lexsort((day_array(df["inspected_on"]), df["entity_id"].to_numpy(dtype=object).astype(str)))
    return df.iloc[order].reset_index(drop=True)


def _inspection_rows(ids: np.ndarray, dates: np.ndarray, results: np.ndarray, pi: np.ndarray | None,
                     campaign: str | None) -> pd.DataFrame:
    k = len(ids)
    return pd.DataFrame({
        "entity_id": ids.astype(object), "inspected_on": dates.astype("datetime64[s]"),
        "result": results.astype(str), "campaign_id": np.full(k, campaign, dtype=object),
        "inclusion_prob": np.full(k, np.nan) if pi is None else pi.astype(float),
        "department": np.full(k, "market_supervision", dtype=object),
    })[TABLES["inspections"].column_names]


@dataclass
class _Strategy:
    name: str
    dataset: Dataset
    policy: Policy
    bundle: Bundle | None
    weighted: bool = True
    features: dict[int, pd.DataFrame] = field(default_factory=dict)  # year → X at 1 January


def _fit(st: _Strategy, year: int, window: int, cat: Catalogue, label_policy: Policy,
         params: dict[str, Any]) -> tuple[Bundle, int]:
    """Retrain on campaign outcomes of years (year - window, year]; features at each 1 January."""
    Xs, ys, ws = [], [], []
    for y in range(year - window + 1, year + 1):
        lab = build_labels(st.dataset, f"{y}-01-01", None, label_policy, source="campaigns")
        Xs.append(st.features[y].loc[lab.index])
        ys.append(lab["y"].to_numpy())
        ws.append(lab["weight"].to_numpy())
    X = pd.concat(Xs)
    model = TieredRiskModel(catalogue=cat, policy=label_policy, **params)
    model.fit(X, np.concatenate(ys), sample_weight=np.concatenate(ws) if st.weighted else None)
    manifest = {"name": f"loop-{st.name}", "version": str(year)}
    return Bundle(model=model, manifest=manifest, catalogue=cat, policy=label_policy, path=Path(".")), len(X)


def simulate_loop(n_entities: int = 20_000, cycles: int = 4, budget_rate: float = 0.04, seed: int = 0,
                  start_year: int = 2022, *, history_years: int = 4, train_window: int = 3,
                  strategies: Sequence[str] = STRATEGIES, low_risk_share: float = 0.4,
                  no_floor_a_weight: float = 1e-6, initial: str = "bundle",
                  policy: Policy | str | None = None, model_params: dict[str, Any] | None = None,
                  candidates: Sequence[Candidate] | dict[str, Policy] | None = None,
                  drift: Drift | None = None) -> LoopResult:
    """Run the closed loop and return per-cycle metrics for each strategy (deterministic per seed).

    Parameters
    ----------
    n_entities : entities in the synthetic world (the pool is those alive each 1 January).
    cycles : yearly cycles, the first on 1 January ``start_year``.
    budget_rate : campaign size as a share of the pool (inspections/entity/year), the same for
        every strategy.
    seed : world, draws and outcomes; the same seed gives the same table.
    history_years : years of generated history before ``start_year`` (with the generator's uniform
        2 × 2% campaigns); the initial model is trained on its last ``train_window`` years.
    train_window : years of campaign outcomes used at each retraining (≤ history_years - 1).
    strategies : subset of :data:`STRATEGIES`.
    low_risk_share : the "truly low-risk" set is the bottom share of true propensity in the pool.
    no_floor_a_weight : tier A weight of the ``no_floor`` strategy (policy: 0.25, floor 1e-4).
    initial : the cycle-0 model of every model-based strategy: ``"bundle"`` (the shipped default
        bundle, trained on a larger synthetic world with all detected violations as labels) or
        ``"history"`` (fitted on the history's uniform campaign outcomes of the last
        ``train_window`` years; at small sizes this has very few positives).
    policy : the policy (default ``yiwu-2022``); model_params go to :class:`TieredRiskModel`.
    candidates : extra strategies, each a candidate policy (:class:`~yiwu_credit.supervision.frontier.Candidate`
        applied to ``policy``, or ``{name: Policy}``), planned with its own settings, IPW retrain.
    drift : a :class:`Drift` (low-risk entities turn risky, found violations deter); None = the
        world's background λ throughout.

    Per-cycle rows also carry ``ht_rate`` (the Horvitz–Thompson estimate of the pool's campaign
    violation rate from this strategy's draw), ``true_rate`` (the mean potential outcome over the
    pool), ``turned`` (entities that have turned risky, in the pool), ``turned_violations`` (their
    violations found) and ``turned_potential`` (their potential violations this year).
    """
    t_start = time.perf_counter()
    cand_pols: dict[str, Policy] = {}
    for c in (candidates.items() if isinstance(candidates, dict) else (candidates or [])):
        name, cp = (c[0], load_policy(c[1])) if isinstance(c, tuple) else (c.name, c.policy(policy))
        if name in STRATEGIES or name in cand_pols:
            raise ValueError(f"candidate name {name!r} clashes with a strategy or another candidate")
        cand_pols[name] = cp
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise ValueError(f"unknown strategies {bad}; choose from {STRATEGIES}")
    if cycles < 1 or not (0 < budget_rate < 1) or not (1 <= train_window <= history_years - 1):
        raise ValueError("need cycles >= 1, 0 < budget_rate < 1 and 1 <= train_window <= history_years - 1")
    pol = load_policy(policy)
    cat = load_catalogue(None)
    if initial == "bundle":
        cat = load_bundle(None).catalogue
    params = {"random_state": seed, "n_jobs": 1, **(model_params or {})}
    adverse_codes = pol.labels.adverse_results
    shares = np.cumsum([pol.tiers.shares[t] for t in TIERS[:-1]])

    world = generate(n_entities, seed=seed, start=f"{start_year - history_years}-01-01",
                     end=f"{start_year + cycles - 1}-12-31")
    truth = world.truth
    ds = world.dataset
    t0 = to_day(f"{start_year}-01-01")
    ins = ds.inspections
    lr = ds.list_records
    keep_lr = ~((lr["reason"] == "unreachable") & (day_array(lr["entered_on"]) >= t0))
    base = ds.replace(inspections=ins[day_array(ins["inspected_on"]) < t0].reset_index(drop=True),
                      list_records=lr[keep_lr].reset_index(drop=True))

    # shared history: features at each 1 January and the initial model (uniform campaigns)
    hist_feats = {y: build_features(base, f"{y}-01-01", cat, pol)
                  for y in range(start_year - train_window, start_year)}
    if initial == "history":
        init = _Strategy("initial", base, pol, None, True, dict(hist_feats))
        init_bundle, n_init = _fit(init, start_year - 1, train_window, cat, pol, params)
    elif initial == "bundle":
        init_bundle, n_init = load_bundle(None), 0
    else:
        raise ValueError(f"initial must be 'bundle' or 'history', got {initial!r}")

    states = {}
    for s in strategies:
        sp = _no_floor_policy(pol, no_floor_a_weight) if s == "no_floor" else pol
        states[s] = _Strategy(s, base, sp, None if s in _MODEL_FREE else init_bundle,
                              weighted=s != "no_ipw", features=dict(hist_feats))
    for name, cp in cand_pols.items():
        states[name] = _Strategy(name, base, cp, init_bundle, weighted=True, features=dict(hist_feats))
    lam0 = truth["propensity"]
    turned = pd.Series(False, index=lam0.index)          # world-level: turned risky (common)
    deter_until = {s: pd.Series(-1, index=lam0.index) for s in states}   # per strategy: deterred through year

    ent = base.entities
    comp = base.complaints
    comp_day = day_array(comp["received_on"])
    comp_sub = comp["substantiated"].fillna(False).to_numpy(dtype=bool)
    rows: list[dict[str, Any]] = []
    last_burden = pd.DataFrame()
    n_train = {s: 0 if s in _MODEL_FREE else n_init for s in states}
    for k in range(cycles):
        year = start_year + k
        as_of = f"{year}-01-01"
        a, b = to_day(as_of), to_day(f"{year}-12-31")
        idx, _ = pool(base, a)
        ids = ent["entity_id"].to_numpy(dtype=object)[idx].astype(str)
        N = len(ids)
        n = int(round(budget_rate * N))
        lam_bg = truth["propensity"].reindex(ids).to_numpy()
        low = lam_bg <= np.quantile(lam_bg, low_risk_share)
        if drift is not None and k > 0 and drift.turn_rate > 0:
            cand = ids[low & ~turned.reindex(ids).to_numpy()]
            rng_t = np.random.default_rng(_sub_seed(seed, "turn", year))
            turned.loc[cand[rng_t.random(len(cand)) < drift.turn_rate]] = True
        turned_now = turned.reindex(ids).to_numpy()
        lam_world = lam_bg * np.where(turned_now, drift.turn_factor if drift is not None else 1.0, 1.0)
        # complaint-driven targeted inspections (common): first substantiated complaint this year
        cm = comp_sub & (comp_day >= a) & (comp_day <= b)
        cdf = pd.DataFrame({"entity_id": comp["entity_id"].to_numpy(dtype=object)[cm].astype(str),
                            "day": comp_day[cm]})
        first = cdf.groupby("entity_id", sort=True)["day"].min()
        first = first[first.index.isin(ids)]
        rng = np.random.default_rng(_sub_seed(seed, "targeted", year))
        t_day = first.to_numpy() + rng.integers(5, 40, len(first))
        closed = day_array(ent.set_index("entity_id")["closed_on"].reindex(first.index))
        ok = (t_day <= b) & ((closed == NAT) | (t_day < closed))
        t_ids = first.index.to_numpy(dtype=object)[ok]
        t_res = simulate_results(pd.Index(t_ids), truth, _sub_seed(seed, "targeted-res", year), as_of)
        t_rows = _inspection_rows(t_ids, (t_day[ok].astype("timedelta64[D]") + np.datetime64("1970-01-01")),
                                  t_res["result"].to_numpy(), None, None)
        t_adv = int(t_res["result"].isin(adverse_codes).sum())

        for s, st in states.items():
            lam = lam_world
            if drift is not None:
                lam = lam_world * np.where(deter_until[s].reindex(ids).to_numpy() >= year, drift.deter_factor, 1.0)
            p_true = 1.0 - np.exp(-1.2 * lam)
            # potential outcomes of a campaign inspection this year, one per pool entity (common random
            # numbers: the same seed and order, so only λ differs between strategies)
            pot = simulate_results(pd.Index(ids), pd.DataFrame({"propensity": lam}, index=ids),
                                   _sub_seed(seed, "campaign", year), f"{year}-04-15")
            pot_adv = pot["result"].isin(adverse_codes).to_numpy()
            pot_date = pd.to_datetime(pot["date"]).to_numpy()
            pot_res = pot["result"].to_numpy(dtype=object)
            if st.bundle is not None:
                sr = score_entities(st.dataset, as_of, st.bundle, reasons="none")
                scored = sr.scored
                st.features[year] = sr.features
                prob = scored["probability"].reindex(ids).to_numpy()
                tier = scored["tier"].reindex(ids).to_numpy(dtype=object)
            else:  # oracle: tiers from the true propensity by the policy's shares
                cuts = np.quantile(lam, shares)
                tier = np.array(TIERS, dtype=object)[np.searchsorted(cuts, lam, side="left")]
                prob = p_true
                scored = pd.DataFrame({"tier": tier, "probability": p_true},
                                      index=pd.Index(ids, name="entity_id"))
                scored = scored.join(ent.set_index("entity_id")[["entity_type", "town", "industry"]])
            if s == "uniform":
                plan = scored[["tier", "entity_type", "town", "industry"]].copy()
                plan["pi"] = n / N
                plan["expected_per_year"] = n / N
            else:
                plan = supervision_plan(scored, st.policy, n=n, budget=float(n))
            d = draw(plan, n, seed=f"{seed}:{year}")
            pos = pd.Index(ids).get_indexer(d.selected)
            found = pot_adv[pos]
            pi_sel = plan["pi"].reindex(ids).to_numpy()[pos]
            if drift is not None and drift.deter_years > 0:
                deter_until[s].loc[ids[pos][found]] = year + drift.deter_years
            r_rows = _inspection_rows(ids[pos], pot_date[pos], pot_res[pos],
                                      plan["pi"].to_numpy()[plan.index.get_indexer(d.selected)], f"SIM{year}")
            new_ins = pd.concat([st.dataset.inspections, r_rows, t_rows], ignore_index=True)
            st.dataset = st.dataset.replace(inspections=_sorted_inspections(new_ins))
            in_a = tier == "A"
            row = {
                "strategy": s, "cycle": k, "year": year, "pool": N, "inspections": len(pos),
                "violations": int(found.sum()), "hit_rate": float(found.mean()),
                "low_risk": int(low[pos].sum()), "low_risk_share": float(low[pos].mean()),
                "tier_a_share": float(in_a[pos].mean()),
                "targeted": len(t_ids), "targeted_violations": t_adv,
                "auc_truth": _safe_auc(pot_adv, prob), "mean_pred": float(prob.mean()),
                "mean_true": float(p_true.mean()), "calib_gap": float(prob.mean() - p_true.mean()),
                "mean_pred_a": _mean(prob[in_a]), "mean_true_a": _mean(p_true[in_a]),
                "calib_gap_a": _mean(prob[in_a]) - _mean(p_true[in_a]),
                "auc_tier_a": _safe_auc(pot_adv[in_a], prob[in_a]), "n_train": n_train[s],
                "ht_rate": float((found / pi_sel).sum() / N), "true_rate": float(pot_adv.mean()),
                "turned": int(turned_now.sum()), "turned_violations": int((found & turned_now[pos]).sum()),
                "turned_potential": int((pot_adv & turned_now).sum()),
            }
            rows.append(row)
            if s == "policy" and k == cycles - 1:
                res = pd.DataFrame({"entity_id": ids[pos], "adverse": found})
                last_burden = burden_table(plan, res, policy=pol)
            if st.bundle is not None and k < cycles - 1:
                st.bundle, n_train[s] = _fit(st, year, train_window, cat, pol, params)

    params_out = {"n_entities": n_entities, "cycles": cycles, "budget_rate": budget_rate, "seed": seed,
                  "start_year": start_year, "history_years": history_years, "train_window": train_window,
                  "strategies": list(strategies), "low_risk_share": low_risk_share,
                  "no_floor_a_weight": no_floor_a_weight, "initial": initial, "policy": pol.name,
                  "candidates": list(cand_pols), "drift": None if drift is None else vars(drift).copy()}
    return LoopResult(pd.DataFrame(rows), last_burden, params_out, time.perf_counter() - t_start)


# ============================================================== realised outcomes of candidate policies
def frontier_outcomes(candidates: Sequence[Candidate] | dict[str, Policy], seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
                      strategies: Sequence[str] = ("uniform", "oracle"), level: float = 0.95,
                      **loop_kw: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Realised detections of candidate policies in the closed loop, over several seeds.

    Runs :func:`simulate_loop` once per seed with ``strategies`` plus the candidates (``loop_kw``
    go to it: n_entities, cycles, budget_rate, drift, policy, ...). Returns ``(per_seed,
    summary)``: per (strategy, seed) totals over the cycles — violations, lift (violations /
    uniform's in the same world and seed), low_risk_share, tier_a_share, turned_violations and
    turned_potential; the summary has the mean over seeds and a two-sided ``level`` Student-t
    interval of the lift (seeds are independent worlds, so the interval is over worlds).
    """
    from scipy import stats

    if "uniform" not in strategies:
        raise ValueError("frontier_outcomes: 'uniform' is the baseline and must be among the strategies")
    rows = []
    for sd in seeds:
        res = simulate_loop(seed=sd, strategies=strategies, candidates=candidates, **loop_kw)
        c = res.cycles.assign(ht_err=res.cycles["ht_rate"] - res.cycles["true_rate"])
        g = c.groupby("strategy", sort=False).agg(
            violations=("violations", "sum"), inspections=("inspections", "sum"),
            low_risk_share=("low_risk_share", "mean"), tier_a_share=("tier_a_share", "mean"),
            turned_violations=("turned_violations", "sum"), turned_potential=("turned_potential", "sum"),
            ht_error=("ht_err", "mean"),
            calib_gap=("calib_gap", "mean"), seconds=("cycle", "size"))
        g["seconds"] = res.seconds
        g["lift"] = g["violations"] / g.loc["uniform", "violations"]
        g.insert(0, "seed", sd)
        rows.append(g.reset_index())
    per_seed = pd.concat(rows, ignore_index=True)
    k = len(seeds)
    q = float(stats.t.ppf(0.5 + level / 2, k - 1)) if k > 1 else float("nan")
    agg = per_seed.groupby("strategy", sort=False)
    summary = agg[["violations", "lift", "low_risk_share", "tier_a_share", "turned_violations",
                   "turned_potential", "ht_error", "calib_gap"]].mean()
    se = agg["lift"].std(ddof=1) / np.sqrt(k)
    summary.insert(2, "lift_lo", summary["lift"] - q * se)
    summary.insert(3, "lift_hi", summary["lift"] + q * se)
    summary.insert(0, "seeds", k)
    return per_seed, summary.reset_index()
