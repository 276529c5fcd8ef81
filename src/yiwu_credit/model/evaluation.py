"""Model evaluation: AUC, KS, Brier, calibration table, bad rate per tier with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from ..policy import TIERS

__all__ = ["calibration_table", "ks_statistic", "metrics", "tier_table", "wilson"]


def wilson(k: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (95% by default)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1 + z * z / n
        mid = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov separation: max |TPR - FPR| over thresholds."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate in ``bins`` equal-count bins of p."""
    df = pd.DataFrame({"y": np.asarray(y, float), "p": np.asarray(p, float)})
    df["bin"] = pd.qcut(df["p"].rank(method="first"), bins, labels=False)
    g = df.groupby("bin").agg(n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"), k=("y", "sum"))
    g["ci_low"], g["ci_high"] = wilson(g["k"].to_numpy(), g["n"].to_numpy())
    return g.drop(columns="k").reset_index()


def tier_table(y: np.ndarray, tiers: np.ndarray, p: np.ndarray | None = None) -> pd.DataFrame:
    """Per tier: n, share, observed bad rate with a 95% Wilson interval, mean predicted p."""
    df = pd.DataFrame({"y": np.asarray(y, float), "tier": np.asarray(tiers)})
    if p is not None:
        df["p"] = np.asarray(p, float)
    g = df.groupby("tier").agg(n=("y", "size"), k=("y", "sum"))
    g = g.reindex(list(TIERS), fill_value=0)
    g["share"] = g["n"] / max(g["n"].sum(), 1)
    g["bad_rate"] = g["k"] / g["n"].where(g["n"] > 0)
    g["ci_low"], g["ci_high"] = wilson(g["k"].to_numpy(), g["n"].to_numpy())
    if p is not None:
        g["predicted"] = df.groupby("tier")["p"].mean().reindex(list(TIERS))
    return g.drop(columns="k").reset_index()


def metrics(y: np.ndarray, p: np.ndarray, tiers: np.ndarray | None = None) -> dict:
    """Headline metrics (plain floats, JSON-ready)."""
    y = np.asarray(y, float)
    p = np.asarray(p, float)
    out = {"n": int(len(y)), "base_rate": float(y.mean()), "mean_predicted": float(p.mean()),
           "auc": float(roc_auc_score(y, p)), "ks": ks_statistic(y, p), "brier": float(np.mean((p - y) ** 2))}
    if tiers is not None:
        t = tier_table(y, tiers)
        rates = t["bad_rate"].dropna().to_numpy()
        out["tier_bad_rates"] = {r.tier: (None if np.isnan(r.bad_rate) else float(r.bad_rate)) for r in t.itertuples()}
        out["tier_shares"] = {r.tier: float(r.share) for r in t.itertuples()}
        out["tiers_monotone"] = bool(np.all(np.diff(rates) >= 0))
    return out
