from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.model.monitoring import (
    csi,
    psi,
    psi_from_samples,
    psi_table,
    stability_flag,
    thresholds,
)
from yiwu_credit.policy import load_policy

DECILES = np.linspace(0, 1, 11)


def test_psi_against_own_quantiles_is_about_zero():
    rng = np.random.default_rng(1)
    ref = rng.normal(550, 30, 20_000)
    edges = np.quantile(ref, DECILES)
    assert psi(edges, ref) < 1e-6  # the reference itself: exactly 10% per bin
    fresh = rng.normal(550, 30, 20_000)  # a new sample of the same population
    assert psi(edges, fresh) < 0.01
    assert psi_from_samples(ref, fresh) < 0.01


def test_shifted_distribution_exceeds_act_threshold():
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 1, 20_000)
    edges = np.quantile(ref, DECILES)
    assert psi(edges, rng.normal(0.6, 1, 20_000)) > 0.25
    assert psi(edges, rng.normal(0, 1.8, 20_000)) > 0.25  # spread change, same mean
    # for a normal mean shift of d sd, PSI ≈ d² (the symmetric KL divergence): 0.4 sd → watch
    assert 0.10 <= psi(edges, rng.normal(0.4, 1, 20_000)) < 0.25


def test_hand_computed_example():
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # 4 bins, 25% each by assumption
    actual = np.array([0.5, 0.5, 1.5, 2.5, 2.5, 2.5, 3.5, 3.5])  # shares .25 .125 .375 .25
    # (.125-.25)·ln(.5) + (.375-.25)·ln(1.5) = .125·ln 3
    assert psi(edges, actual) == pytest.approx(0.125 * math.log(3), rel=1e-12)
    t = psi_table(edges, actual)
    assert t["n"].tolist() == [2, 1, 3, 2]
    assert t["actual"].tolist() == [0.25, 0.125, 0.375, 0.25]
    assert t["contribution"].sum() == pytest.approx(psi(edges, actual))


def test_out_of_range_values_fall_in_end_bins_and_nan_is_ignored():
    edges = np.array([0.0, 1.0, 2.0])
    t = psi_table(edges, np.array([-5.0, 0.5, 1.5, 99.0, np.nan, np.inf]))
    assert t["n"].tolist() == [2, 3]
    assert t["actual"].sum() == pytest.approx(1.0)


def test_empty_bin_uses_eps_floor():
    edges = np.array([0.0, 1.0, 2.0])
    got = psi(edges, np.full(4, 0.5), eps=1e-4)
    want = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert got == pytest.approx(want)
    assert math.isfinite(got)


def test_psi_is_non_negative_and_roughly_symmetric():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.gamma(rng.uniform(0.5, 5), 1, 2000)
        b = rng.gamma(rng.uniform(0.5, 5), 1, 2000)
        assert psi_from_samples(a, b) >= 0
        assert (psi_table(np.quantile(a, DECILES), b)["contribution"] >= 0).all()
    # swapping roles changes the bins (they are reference quantiles): similar, not identical
    a, b = rng.normal(0, 1, 20_000), rng.normal(0.5, 1, 20_000)
    ab, ba = psi_from_samples(a, b), psi_from_samples(b, a)
    assert ab != ba
    assert ab == pytest.approx(ba, rel=0.2)


def test_tied_edges_are_merged():
    edges = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])  # 40% point mass at 0
    t = psi_table(edges, np.array([0, 0, 1, 2, 3, 5.0]))
    assert len(t) == 4
    assert t["expected"].sum() == pytest.approx(1.0)
    # the zero-width bins' shares land in the bin holding 0
    assert t.loc[t["lower"] == 0.0, "expected"].item() == pytest.approx(0.6)


def test_psi_from_samples_handles_discrete_values_and_missing():
    rng = np.random.default_rng(4)
    counts = rng.poisson(0.3, 10_000).astype(float)  # mostly zeros: many tied quantiles
    assert psi_from_samples(counts, rng.poisson(0.3, 10_000).astype(float)) < 0.01
    assert psi_from_samples(counts, rng.poisson(1.0, 10_000).astype(float)) > 0.25
    with_nan = counts.copy()
    with_nan[: 3000] = np.nan  # 30% newly missing counts as instability
    assert psi_from_samples(counts, with_nan) > 0.25


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="at least 2"):
        psi(np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        psi(np.array([0.0, 2.0, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="sum to 1"):
        psi(np.array([0.0, 1.0, 2.0]), np.array([1.0]), reference_shares=np.array([0.3, 0.3]))
    with pytest.raises(ValueError, match="3 bins"):
        psi(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0]), reference_shares=np.array([0.5, 0.5]))


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "age_days": rng.gamma(2, 1500, n),
        "compl_365d": rng.poisson(0.4, n).astype(float),
        "registered_capital": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 1, n)),
        "tax_rating": rng.integers(0, 5, n).astype(float),
        "town": pd.Categorical(rng.choice(["稠城街道", "佛堂镇", "苏溪镇"], n, p=[0.5, 0.3, 0.2])),
    })


def test_csi_flags_only_the_shifted_feature():
    rng = np.random.default_rng(5)
    ref, now = _frame(rng, 20_000), _frame(rng, 20_000)
    now["compl_365d"] = rng.poisson(1.2, len(now)).astype(float)  # complaints tripled
    c = csi(ref, now)
    assert list(c.index) == list(now.columns)
    assert c.idxmax() == "compl_365d"
    assert c["compl_365d"] > 0.25
    assert (c.drop("compl_365d") < 0.01).all()
    flags = stability_flag(c)
    assert flags["compl_365d"] == "retrain"
    assert (flags.drop("compl_365d") == "stable").all()


def test_csi_categorical_by_category_share():
    rng = np.random.default_rng(6)
    ref, now = _frame(rng, 20_000), _frame(rng, 20_000)
    now["town"] = pd.Categorical(rng.choice(["稠城街道", "佛堂镇", "苏溪镇", "义亭镇"], len(now),
                                            p=[0.2, 0.2, 0.2, 0.4]))
    c = csi(ref, now)
    assert c.idxmax() == "town"
    assert c["town"] > 0.25
    assert csi(ref, ref).max() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="no columns"):
        csi(ref[["town"]], now[["age_days"]])


def test_flags_and_policy_thresholds():
    assert stability_flag(0.0999) == "stable"
    assert stability_flag(0.10) == "watch"
    assert stability_flag(0.2499) == "watch"
    assert stability_flag(0.25) == "retrain"
    assert stability_flag(float("nan")) == ""
    s = stability_flag(pd.Series([0.05, 0.3], index=["x", "y"]), warn=0.2, retrain=0.5)
    assert s.to_dict() == {"x": "stable", "y": "watch"}
    thr = thresholds()
    assert thr == {k: float(v) for k, v in load_policy().raw["monitoring"].items()}
    assert thr["psi_warn"] < thr["psi_retrain"]


# ------------------------------------------------------------------ monitoring a scoring run

def _scored(bundle, world, as_of):
    from yiwu_credit.pipeline.scoring import score_entities

    return score_entities(world.dataset, as_of, bundle, reasons="none")


def test_migration_matrix_counts_reconcile():
    from yiwu_credit.model.monitoring import migration_matrix

    before = pd.Series(["A", "B", "C", "D", "A"], index=list("vwxyz"))
    after = pd.Series(["A", "C", "C", "B"], index=list("vwxq"))
    m = migration_matrix(before, after)
    assert m.loc["A", "A"] == 1 and m.loc["B", "C"] == 1 and m.loc["C", "C"] == 1
    assert m.loc["D", "gone"] == 1 and m.loc["A", "gone"] == 1 and m.loc["new", "B"] == 1
    assert m.to_numpy().sum() == len(before.index.union(after.index))


def test_monitor_ok_on_the_same_kind_of_population(bundle, world):
    from yiwu_credit.model.labels import build_labels
    from yiwu_credit.model.monitoring import monitor

    r = _scored(bundle, world, "2025-01-01")
    prev = _scored(bundle, world, "2024-07-01").scored
    y = build_labels(world.dataset, "2025-01-01")["y"]
    m = monitor(bundle, r.scored, r.features, outcomes=y, previous=prev)
    assert m.psi_score < 0.1 and m.csi is not None and (m.csi < 0.1).all()
    assert m.status in ("stable", "watch")
    assert m.migration.loc[["A", "B", "C", "D"], ["A", "B", "C", "D"]].to_numpy().sum() > 0
    assert m.performance["auc"] > 0.55
    assert "status" in m.to_dict() and "PSI" in m.summary()


def test_monitor_flags_retrain_on_shift_and_on_lost_performance(bundle, world):
    from yiwu_credit.model.monitoring import monitor

    r = _scored(bundle, world, "2025-01-01")
    shifted = r.scored.assign(credit_score=r.scored["credit_score"] - 60)
    feats = r.features.assign(compl_365d=r.features["compl_365d"] + 3)
    m = monitor(bundle, shifted, feats)
    assert m.status == "retrain"
    assert any("PSI" in x for x in m.reasons) and any("compl_365d" in x for x in m.reasons)
    noise = pd.Series(np.random.default_rng(0).integers(0, 2, len(r.scored)), index=r.scored.index)
    m2 = monitor(bundle, r.scored, outcomes=noise)
    assert m2.status == "retrain" and any("AUC fell" in x for x in m2.reasons)
