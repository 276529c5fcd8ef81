"""Population stability: PSI of the credit score and CSI per feature (pure numpy/pandas).

The population stability index compares the distribution of a variable now (``actual``) with
its distribution when the model was trained (``expected``/reference) over a fixed set of bins::

    PSI = Σ_bins (a_i - e_i) · ln(a_i / e_i)

where ``a_i``/``e_i`` are the shares of the actual/reference population in bin ``i`` (each
floored at ``eps`` so that an empty bin gives a large but finite term). Every term is ≥ 0, so
PSI ≥ 0, and it is 0 only when the shares agree bin by bin. For fixed bins and shares the
formula is symmetric in ``a`` and ``e``; in practice the bins are quantiles of the *reference*,
so swapping the two samples changes the bins and gives a similar but not identical value.

The characteristic stability index (CSI) is the same formula applied to one input feature.

Status vocabulary (one for every check, the run and the report; :data:`STATUS`), with the
conventional PSI reading (the policy's ``[monitoring]`` section holds the values used by the
library: ``psi_warn``/``psi_retrain`` for the score, ``csi_warn``/``csi_retrain`` for features,
``auc_drop_retrain`` for discrimination; see :func:`thresholds`):

* ``stable`` (< 0.10) — nothing to do;
* ``watch`` (0.10–0.25) — the population has moved: look at what changed;
* ``retrain`` (≥ 0.25) — a major shift, or lost discrimination: re-validate and retrain.

PSI grows with the number of bins and with sampling noise in small samples (for two samples
of the same distribution its expectation is about ``(bins - 1) · (1/n_ref + 1/n_act)``), so
compare values computed with the same binning, on populations of thousands of entities.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..policy import Policy, load_policy

__all__ = ["DEFAULT_EPS", "MISSING", "STATUS", "MonitorResult", "category_shares", "csi", "migration_matrix",
           "monitor", "psi", "psi_from_samples", "psi_table", "stability_flag", "thresholds", "worst_status"]

DEFAULT_EPS = 1e-4
#: The monitoring status vocabulary, in increasing severity (checks, runs and the report).
STATUS = ("stable", "watch", "retrain")
MISSING = "(missing)"


def thresholds(policy: str | Policy | None = None) -> dict[str, float]:
    """The policy's monitoring thresholds: psi_warn, psi_retrain, csi_warn, csi_retrain, …"""
    return dataclasses.asdict(load_policy(policy).monitoring)


def worst_status(statuses: Any) -> str:
    """The most severe of some :data:`STATUS` values ('stable' for none; '' is ignored)."""
    ranks = [STATUS.index(s) for s in statuses if s]
    return STATUS[max(ranks, default=0)]


def stability_flag(value: Any, warn: float = 0.10, retrain: float = 0.25) -> Any:
    """'stable' (< warn), 'watch' (warn ≤ v < retrain) or 'retrain' (≥ retrain).

    A float gives a str; a Series gives a Series (same index); an array gives an array.
    NaN (not computable) gives ''.
    """
    v = np.asarray(value, dtype=float)
    out = np.where(np.isnan(v), "", np.where(v >= retrain, STATUS[2], np.where(v >= warn, STATUS[1], STATUS[0])))
    if isinstance(value, pd.Series):
        return pd.Series(out, index=value.index, name="status")
    return str(out) if out.ndim == 0 else out


# ------------------------------------------------------------------------ binning

def _interior(edges: np.ndarray) -> np.ndarray:
    """Interior cut points of a full edge vector (the outer edges become ±inf)."""
    e = np.asarray(edges, dtype=float).ravel()
    if e.size < 2:
        raise ValueError(f"reference_edges needs at least 2 values (1 bin), got {e.size}")
    if np.isnan(e).any():
        raise ValueError("reference_edges contains NaN")
    if np.any(np.diff(e) < 0):
        raise ValueError("reference_edges must be non-decreasing")
    return e[1:-1]


def _bin_index(cuts: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bin of each value: bin i holds [cuts[i-1], cuts[i]); -inf/+inf fall in the end bins."""
    return np.searchsorted(cuts, v, side="right")


def _psi_terms(a: np.ndarray, e: np.ndarray, eps: float) -> np.ndarray:
    a = np.maximum(np.asarray(a, float), eps)
    e = np.maximum(np.asarray(e, float), eps)
    return (a - e) * np.log(a / e)


def psi_table(reference_edges: np.ndarray, actual: np.ndarray, *, reference_shares: np.ndarray | None = None,
              eps: float = DEFAULT_EPS) -> pd.DataFrame:
    """Per-bin shares and PSI contributions of ``actual`` against reference bins.

    ``reference_edges``: the k+1 reference quantile edges (e.g. ``model.reference_scores_``, 11
    deciles); the outer two only describe the reference range — values below/above fall in the
    first/last bin. Bin i is ``[edge_i, edge_{i+1})``. ``reference_shares``: the reference share of
    each of the k bins (default 1/k each, which is what quantile edges mean). Repeated edges
    (ties in the reference) are merged and their shares summed; for heavily tied or discrete
    variables prefer :func:`psi_from_samples`, which measures the reference shares. NaN values in
    ``actual`` are ignored (the reference edges carry no missing share).

    Returns one row per (merged) bin: ``lower``, ``upper`` (the first/last bin are open:
    -inf/+inf), ``n`` (actual count), ``expected`` and ``actual`` (shares), ``contribution``
    (sums to the PSI).
    """
    cuts_all = _interior(reference_edges)
    k = cuts_all.size + 1
    shares = np.full(k, 1.0 / k) if reference_shares is None else np.asarray(reference_shares, float).ravel()
    if shares.size != k:
        raise ValueError(f"reference_shares has {shares.size} values for {k} bins")
    if np.any(shares < 0) or not np.isclose(shares.sum(), 1.0, atol=1e-6):
        raise ValueError("reference_shares must be non-negative and sum to 1")
    cuts = np.unique(cuts_all)
    # original bin i = [e_i, e_i+1) lands in the merged bin holding e_i; a zero-width bin is a
    # point mass at e_i, so its share goes where e_i goes
    e = np.asarray(reference_edges, dtype=float).ravel()
    merged = np.searchsorted(cuts, e[:-1], side="right")
    expected = np.bincount(merged, weights=shares, minlength=cuts.size + 1)
    v = np.asarray(actual, dtype=float).ravel()
    v = v[~np.isnan(v)]
    counts = np.bincount(_bin_index(cuts, v), minlength=cuts.size + 1)
    act = counts / max(v.size, 1)
    lower = np.concatenate([[-np.inf], cuts])
    upper = np.concatenate([cuts, [np.inf]])
    out = pd.DataFrame({"lower": lower, "upper": upper, "n": counts, "expected": expected, "actual": act,
                        "contribution": _psi_terms(act, expected, eps)})
    out.index.name = "bin"
    return out


def psi(reference_edges: np.ndarray, actual: np.ndarray, *, reference_shares: np.ndarray | None = None,
        eps: float = DEFAULT_EPS) -> float:
    """Population stability index of ``actual`` against reference quantile edges.

    See :func:`psi_table` for the binning. With the default equal reference shares the edges
    must be quantiles of the reference (``np.quantile(ref, np.linspace(0, 1, k + 1))``).
    Returns a float ≥ 0 (0.10 watch / 0.25 retrain by convention).
    """
    return float(psi_table(reference_edges, actual, reference_shares=reference_shares, eps=eps)["contribution"].sum())


def _sample_shares(reference: np.ndarray, actual: np.ndarray, bins: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference quantile cuts and both samples' shares, with a last 'missing' bin (NaN)."""
    r = np.asarray(reference, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    rn, an = np.isnan(r), np.isnan(a)
    rv = r[~rn]
    if rv.size == 0:
        cuts = np.array([], dtype=float)
    else:
        cuts = np.unique(np.quantile(rv, np.linspace(0, 1, bins + 1)[1:-1]))
    nb = cuts.size + 1

    def shares(x: np.ndarray, nan: np.ndarray) -> np.ndarray:
        c = np.bincount(_bin_index(cuts, x[~nan]), minlength=nb)
        return np.append(c, nan.sum()) / max(x.size, 1)

    return cuts, shares(r, rn), shares(a, an)


def psi_from_samples(reference: np.ndarray, actual: np.ndarray, bins: int = 10,
                     eps: float = DEFAULT_EPS) -> float:
    """PSI between two raw samples, with ``bins`` quantile bins of ``reference``.

    Reference shares are measured (not assumed), so ties and discrete values are handled
    exactly (tied quantiles merge into one bin). NaN values form their own 'missing' bin, so
    a change in the missing share counts as instability.
    """
    if bins < 1:
        raise ValueError(f"bins must be ≥ 1, got {bins}")
    _, e, a = _sample_shares(reference, actual, bins)
    return float(_psi_terms(a, e, eps).sum())


def category_shares(reference: pd.Series, actual: pd.Series) -> pd.DataFrame:
    """Share of each category (missing as ``'(missing)'``) in both samples: columns expected, actual."""
    def share(s: pd.Series) -> pd.Series:
        s = s.astype(object).where(s.notna(), MISSING).astype(str)
        return s.value_counts(normalize=True, sort=False)

    e, a = share(reference), share(actual)
    idx = sorted(set(e.index) | set(a.index))
    return pd.DataFrame({"expected": e.reindex(idx, fill_value=0.0), "actual": a.reindex(idx, fill_value=0.0)})


def _is_categorical(s: pd.Series) -> bool:
    return (isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s.dtype)
            or not pd.api.types.is_numeric_dtype(s.dtype))


def csi(reference_X: pd.DataFrame, actual_X: pd.DataFrame, bins: int = 10, eps: float = DEFAULT_EPS) -> pd.Series:
    """Characteristic stability index per feature (columns present in both frames, actual's order).

    Numeric columns: :func:`psi_from_samples` with ``bins`` reference quantile bins (plus a
    missing bin). Categorical, boolean and text columns: PSI over category shares (missing is a
    category). Returns a float Series named ``csi`` indexed by feature name.
    """
    common = [c for c in actual_X.columns if c in reference_X.columns]
    if not common:
        raise ValueError("reference_X and actual_X share no columns")
    vals = []
    for c in common:
        r, a = reference_X[c], actual_X[c]
        if _is_categorical(r) or _is_categorical(a):
            t = category_shares(r, a)
            vals.append(float(_psi_terms(t["actual"].to_numpy(), t["expected"].to_numpy(), eps).sum()))
        else:
            vals.append(psi_from_samples(r.to_numpy(dtype=float, na_value=np.nan),
                                         a.to_numpy(dtype=float, na_value=np.nan), bins, eps))
    return pd.Series(vals, index=pd.Index(common, name="feature"), name="csi", dtype=float)


# ------------------------------------------------------------------ monitoring a scoring run

def migration_matrix(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """Tier migration between two scoring runs: counts, rows = tier before (plus ``new``: not in
    the earlier run), columns = tier after (plus ``gone``: not in the later run)."""
    tiers = ["A", "B", "C", "D"]
    b = before.reindex(before.index.union(after.index)).fillna("new")
    a = after.reindex(b.index).fillna("gone")
    tab = pd.crosstab(pd.Categorical(b, categories=[*tiers, "new"]), pd.Categorical(a, categories=[*tiers, "gone"]),
                      dropna=False)
    tab.index.name, tab.columns.name = "before", "after"
    return tab


@dataclass
class MonitorResult:
    """Stability, migration and performance drift of one scoring run against its bundle.

    ``status`` is "stable", "watch" or "retrain" (:data:`STATUS`; policy ``[monitoring]``
    thresholds); ``reasons`` says which checks set it.
    """

    status: str
    reasons: list[str]
    psi_score: float
    csi: pd.Series | None
    migration: pd.DataFrame | None
    performance: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "reasons": self.reasons, "psi_score": self.psi_score,
            "csi": None if self.csi is None else {k: float(v) for k, v in self.csi.items()},
            "migration": None if self.migration is None else {
                str(i): {str(c): int(v) for c, v in row.items()} for i, row in self.migration.iterrows()},
            "performance": self.performance,
        }

    def summary(self) -> str:
        lines = [f"status: {self.status.upper()}" + (f" ({'; '.join(self.reasons)})" if self.reasons else ""),
                 f"score PSI vs training population: {self.psi_score:.4f}"]
        if self.csi is not None:
            top = self.csi.sort_values(ascending=False).head(3)
            lines.append("largest feature CSI: " + ", ".join(f"{k} {v:.3f}" for k, v in top.items()))
        if self.migration is not None:
            m = self.migration.loc[["A", "B", "C", "D"], ["A", "B", "C", "D"]].to_numpy()
            stay = np.trace(m) / max(m.sum(), 1)
            lines.append(f"tier migration: {stay:.1%} of entities scored in both runs kept their tier")
        if self.performance is not None:
            p = self.performance
            lines.append(f"performance on new outcomes: AUC {p['auc']:.3f} (reference {p['reference_auc']:.3f}), "
                         f"KS {p['ks']:.3f}, tiers monotone {p['tiers_monotone']}")
        return "\n".join(lines)


def monitor(bundle: Any, scored: pd.DataFrame, features: pd.DataFrame | None = None, *,
            outcomes: pd.Series | None = None, previous: pd.DataFrame | None = None) -> MonitorResult:
    """Check a scoring run (``score_entities`` output) against its bundle.

    PSI of the credit score against the training reference (``model.reference_scores_``); CSI
    of each feature against the bundle's stored training sample (``bundle.reference``); tier
    migration against a ``previous`` run; and, with ``outcomes`` (y per entity observed after the
    run), AUC/KS/calibration by tier against the bundle's out-of-time AUC.
    """
    from .evaluation import metrics, tier_table

    th = thresholds(bundle.policy)
    reasons: list[str] = []
    status = STATUS[0]

    def flag(level: str, why: str) -> None:
        nonlocal status
        reasons.append(why)
        status = worst_status((status, level))

    p_score = psi(bundle.model.reference_scores_, scored["credit_score"].to_numpy(dtype=float))
    if p_score >= th["psi_retrain"]:
        flag("retrain", f"score PSI {p_score:.3f} ≥ {th['psi_retrain']}")
    elif p_score >= th["psi_warn"]:
        flag("watch", f"score PSI {p_score:.3f} ≥ {th['psi_warn']}")
    c = None
    if features is not None and getattr(bundle, "reference", None) is not None:
        c = csi(bundle.reference, features)
        hi = c[c >= th["csi_retrain"]]
        mid = c[(c >= th["csi_warn"]) & (c < th["csi_retrain"])]
        if len(hi):
            flag("retrain", f"CSI ≥ {th['csi_retrain']} for {', '.join(hi.index[:5])}")
        elif len(mid):
            flag("watch", f"CSI ≥ {th['csi_warn']} for {', '.join(mid.index[:5])}")
    mig = migration_matrix(previous["tier"], scored["tier"]) if previous is not None else None
    perf = None
    if outcomes is not None:
        y = outcomes.reindex(scored.index)
        ok = y.notna().to_numpy()
        yv = y.to_numpy(dtype=float)[ok]
        pv = scored["probability"].to_numpy(dtype=float)[ok]
        tv = scored["tier"].to_numpy()[ok]
        perf = metrics(yv, pv, tv)
        perf["calibration_by_tier"] = tier_table(yv, tv, pv).to_dict(orient="records")
        ref_auc = bundle.manifest.get("metrics", {}).get("test_out_of_time", {}).get("auc", perf["auc"])
        perf["reference_auc"] = float(ref_auc)
        drop = ref_auc - perf["auc"]
        if drop >= th["auc_drop_retrain"]:
            flag("retrain", f"AUC fell by {drop:.3f} (≥ {th['auc_drop_retrain']})")
        if not perf["tiers_monotone"]:
            flag("watch", "observed bad rates are not monotone across tiers")
    return MonitorResult(status, reasons, float(p_score), c, mig, perf)
