"""Tests of the Horvitz–Thompson / Hájek estimates and the publishable results table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import sampling as S
from yiwu_credit.errors import DataValidationError, PlanError
from yiwu_credit.estimates import (
    RESULT_LABELS_ZH,
    ht_rate,
    korn_graubard,
    results_table,
    violation_rates,
)
from yiwu_credit.inspectors import assign_inspectors
from yiwu_credit.policy import INSPECTION_RESULTS

N, n = 2000, 200


@pytest.fixture(scope="module")
def population():
    """Synthetic frame whose violation rates rise with the tier (so pi and y are correlated)."""
    rng = np.random.default_rng(5)
    ids = pd.Index([f"91330782MA{i:08d}" for i in range(N)], name="entity_id")
    tier = rng.choice(list("ABCD"), N, p=[0.4, 0.4, 0.15, 0.05])
    rate = pd.Series(tier).map({"A": 0.02, "B": 0.06, "C": 0.2, "D": 0.45}).to_numpy()
    y = (rng.random(N) < rate).astype(int)
    frame = pd.DataFrame({"tier": tier, "town": rng.choice(["稠城街道", "佛堂镇", "苏溪镇"], N),
                          "industry": rng.choice(["F5137", "C1811", "I6510"], N),
                          "serious_dishonest": np.arange(N) < 3}, index=ids)
    plan = S.supervision_plan(frame, n=n)
    return frame, plan, y


@pytest.fixture(scope="module")
def repeated(population):
    """1,500 seeded draws: HT and Hájek estimates of the overall rate with their SEs."""
    _, plan, y = population
    pos = pd.Series(np.arange(N), index=plan.index)
    pi = plan["pi"].to_numpy()
    rows = []
    for r in range(1500):
        k = pos[S.draw(plan, n, seed=r).selected].to_numpy()
        rows.append(ht_rate(y[k], pi[k], None, N))
    return pd.DataFrame(rows)


def test_ht_is_unbiased_over_repeated_draws(population, repeated):
    """|mean − true| < 4 Monte-Carlo SEs (fails with probability ≈ 6e-5 for an unbiased estimator)."""
    true = population[2].mean()
    est = repeated["rate_ht"]
    assert abs(est.mean() - true) < 4 * est.std() / np.sqrt(len(est))
    haj = repeated["rate_hajek"]                       # Hájek: O(1/n) bias, far below its SE
    assert abs(haj.mean() - true) < 4 * haj.std() / np.sqrt(len(haj)) + 0.05 * haj.std()


def test_variance_estimator_and_interval_coverage(repeated, population):
    """The Hájek–Deville variance matches the Monte-Carlo variance within ±20%, and the published
    95% Korn–Graubard interval of the Hájek rate covers the true rate in 93–99.5% of draws
    (stated tolerances for approximate methods; normal intervals only reach ≈ 85% here)."""
    true = population[2].mean()
    for rate, se in (("rate_ht", "se_ht"), ("rate_hajek", "se_hajek")):
        ratio = (repeated[se] ** 2).mean() / repeated[rate].var()
        assert 0.8 < ratio < 1.2, (rate, ratio)
    ci = [korn_graubard(r, s, n) for r, s in zip(repeated["rate_hajek"], repeated["se_hajek"], strict=True)]
    cover = np.mean([lo <= true <= hi for lo, hi in ci])
    assert 0.93 < cover < 0.995, cover


def _results(plan: pd.DataFrame, y: np.ndarray, seed: int = 1) -> pd.DataFrame:
    d = S.draw(plan, n, seed=seed)
    pos = pd.Series(np.arange(N), index=plan.index)
    yy = y[pos[d.selected].to_numpy()]
    rng = np.random.default_rng(seed)
    bad = rng.choice(["pending", "corrected", "info_not_published", "unreachable"], len(yy))
    ok = rng.choice(["no_problem", "no_activity", "closed"], len(yy), p=[0.9, 0.05, 0.05])
    return pd.DataFrame({"result": np.where(yy == 1, bad, ok), "date": "2025-06-03"}, index=d.selected)


def test_violation_rates_table(population):
    _, plan, y = population
    res = _results(plan, y)
    t = violation_rates(res, plan)
    assert list(t.columns) == ["domain", "level", "N", "n", "violations", "rate", "se", "ci_low", "ci_high",
                               "rate_ht", "se_ht", "N_hat"]
    assert t.iloc[0][["domain", "N", "n"]].tolist() == ["all", N, n]
    for dom in ("tier", "town", "section"):
        part = t[t["domain"] == dom]
        assert part["N"].sum() == N and part["n"].sum() == n
    assert set(t.loc[t["domain"] == "section", "level"]) == {"C", "F", "I"}
    all_ = t.iloc[0]
    direct = ht_rate(res["result"].isin(["pending", "corrected", "info_not_published", "unreachable"]).to_numpy(),
                     plan.loc[res.index, "pi"].to_numpy(), None, N)
    assert all_["rate_ht"] == pytest.approx(direct["rate_ht"]) and all_["rate"] == pytest.approx(direct["rate_hajek"])
    assert (t["ci_low"] <= t["rate"]).all() and (t["rate"] <= t["ci_high"]).all()
    only_pending = violation_rates(res, plan, adverse=["pending"], by=("tier",))
    assert only_pending.iloc[0]["violations"] < all_["violations"]
    # certainty units (pi = 1) add no variance: a sample of only them has se 0
    one = ht_rate(np.array([1, 0, 1]), np.ones(3), None, 3)
    assert one["rate_ht"] == pytest.approx(2 / 3) and one["se_ht"] == 0 and one["se_hajek"] == 0


def test_estimates_refuse_bad_input(population):
    _, plan, y = population
    res = _results(plan, y)
    bad = res.copy()
    bad.iloc[2, 0] = "ok"
    with pytest.raises(DataValidationError, match=r"results\.result: unknown result code\(s\) \['ok'\]"):
        violation_rates(bad, plan)
    stranger = pd.concat([res, pd.DataFrame({"result": ["pending"], "date": ["2025-06-03"]},
                                            index=pd.Index(["91330782MA99999999"], name="entity_id"))])
    with pytest.raises(PlanError, match="91330782MA99999999.*not in the plan"):
        violation_rates(stranger, plan)
    with pytest.raises(PlanError, match="adverse"):
        violation_rates(res, plan, adverse=["bad_code"])


def test_results_table_is_publishable(population):
    frame, plan, y = population
    res = _results(plan, y)
    roster = pd.DataFrame({"inspector_id": [f"I{i:02d}" for i in range(20)], "department": "samr", "towns": "",
                           "qualifications": "", "conflicts": ""})
    assign = assign_inspectors(plan.loc[res.index], roster, seed=1, per_entity=2, max_per_inspector=30)
    t = results_table(res, assign)
    assert list(t.columns) == ["entity_id", "inspectors", "date", "result", "result_zh"]
    assert t["entity_id"].is_monotonic_increasing and len(t) == n
    assert (t["result_zh"] == t["result"].map(RESULT_LABELS_ZH)).all()
    assert t["inspectors"].str.count(";").eq(1).all() and (t["date"] == "2025-06-03").all()
    assert "tier" not in t.columns and "pi" not in t.columns          # risk tiers stay internal
    zh = results_table(res, assign, zh_columns=True)
    assert list(zh.columns) == ["统一社会信用代码", "检查人员", "检查日期", "检查结果代码", "检查结果"]
    assert set(RESULT_LABELS_ZH) == set(INSPECTION_RESULTS)
    assert RESULT_LABELS_ZH["info_false"] == "公示信息隐瞒真实情况弄虚作假"
    with pytest.raises(PlanError, match="assignments"):
        results_table(res)
    with pytest.raises(DataValidationError, match="date"):
        results_table(res.assign(date="not a date"), assign)
