"""The policy frontier: candidates evaluated through the plan's own allocation, with honest metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import supervision as S
from yiwu_credit.errors import ConfigError, PlanError
from yiwu_credit.policy import load_policy
from yiwu_credit.supervision.frontier import Candidate, candidate_grid, in_force, policy_frontier


def _scored(n: int, seed: int = 0, must_rate: float = 0.002) -> pd.DataFrame:
    """A pool where tiers follow the probability (as a model's would) and p has few distinct values."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(1, 15, n), 4)
    tier = np.array(list("ABCD"))[np.searchsorted(np.quantile(p, [0.4, 0.8, 0.95]), p, side="right")]
    return pd.DataFrame({
        "tier": tier, "probability": p,
        "entity_type": rng.choice(["enterprise", "individual", "cooperative"], n, p=[0.3, 0.68, 0.02]),
        "town": rng.choice(["稠城街道", "佛堂镇", "苏溪镇"], n),
        "industry": rng.choice(["F5137", "C1811", "I6510"], n),
        "serious_dishonest": rng.random(n) < must_rate,
    }, index=pd.Index([f"E{i:07d}" for i in range(n)], name="entity_id"))


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return _scored(6000, seed=3)


def test_every_candidate_pi_is_exactly_the_plans(pool):
    cands = candidate_grid(alphas=(0.0, 1.0, 2.0))
    f = policy_frontier(pool, budget=300.0, candidates=cands)
    assert len(f.table) == len(cands) and f.table["in_force"].sum() == 1
    p = pool["probability"].to_numpy()
    for c in cands[::4]:
        plan = S.supervision_plan(pool, c.policy(), budget=300.0, n=300)
        pi = plan["pi"].to_numpy()
        # the frontier's cells give bit-identical pi to the per-entity plan
        cells = S.plan_cells(pool, ("enterprise", "cooperative", "individual"), ["serious_dishonest"], with_p=True)
        cfg = S.sampling_settings(c.policy())
        _, _, pic, _, _ = S.plan_on_cells(cells, cfg["tw"], cfg["rate"], cfg["cap"], cfg["fac"], scope=cfg["scope"],
                                          alpha=cfg["alpha"], floor=c.floor, budget=300.0, n=300)
        assert np.array_equal(pic[cells.inverse], pi), c.name
        r = f.row(c.name)
        assert r["detections"] == pytest.approx(float(pi @ p), rel=1e-12)
        assert r["share_tier_a"] == pytest.approx(pi[plan["tier"].to_numpy() == "A"].sum() / 300, rel=1e-12)
        assert r["share_below_median"] == pytest.approx(pi[p < np.median(p)].sum() / 300, rel=1e-12)
        free = ~plan["must_include"].to_numpy()
        assert r["min_pi"] == pi[free].min() >= c.floor
        assert r["max_per_year"] == plan["expected_per_year"].max()
        assert r["lift"] == pytest.approx(float(pi @ p) / (300 / len(pool) * p.sum()), rel=1e-12)


def test_in_force_reproduces_the_default_plan(pool):
    cur = in_force()
    pol = load_policy()
    assert cur.tier_weights == tuple(pol.sampling.tiers[t].weight for t in "ABCD")
    assert (cur.alpha, cur.scope) == (pol.sampling.alpha, pol.sampling.entity_type_factor_scope)
    a = S.supervision_plan(pool)
    b = S.supervision_plan(pool, cur.policy())
    assert np.array_equal(a["pi"].to_numpy(), b["pi"].to_numpy())
    assert a.attrs[S.PLAN_ATTR]["budget"] == b.attrs[S.PLAN_ATTR]["budget"]
    # the 1.1.0 behaviour is reproducible: the shipped 1.1 policy = flat within tier, factor on every tier
    old = in_force("yiwu-2022-1.1")
    assert old == Candidate("in_force", (0.25, 1, 5, 15), 0.0, "all", 1e-4)
    c = S.supervision_plan(pool, "yiwu-2022-1.1")
    d = S.supervision_plan(pool, old.policy("yiwu-2022-1.1"))
    assert np.array_equal(c["pi"].to_numpy(), d["pi"].to_numpy())
    # alpha 1 with the type factor on every tier is the 1.1.0 scale_by_probability = true
    e = S.supervision_plan(pool, Candidate("x", old.tier_weights, 1.0, "all").policy("yiwu-2022-1.1"))
    f = S.supervision_plan(pool, "yiwu-2022-1.1", scale_by_probability=True)
    assert np.array_equal(e["pi"].to_numpy(), f["pi"].to_numpy())
    assert not np.array_equal(a["pi"].to_numpy(), c["pi"].to_numpy())


def test_scope_of_the_entity_type_factor(pool):
    kw = {"budget": 300.0, "n": 300}
    for scope, risky_equal in (("all", False), ("routine", True), ("none", True)):
        plan = S.supervision_plan(pool, Candidate("x", (0.25, 1, 5, 15), 0.0, scope).policy(), **kw)
        w = plan[~plan["must_include"]].groupby(["tier", "entity_type"])["weight"].first()
        assert bool(w["D", "individual"] == w["D", "enterprise"]) is risky_equal, scope
        assert bool(w["C", "individual"] == w["C", "enterprise"]) is risky_equal, scope
        assert bool(w["A", "individual"] == w["A", "enterprise"]) is (scope == "none"), scope
        if scope != "none":
            assert w["A", "individual"] == pytest.approx(0.25 * w["A", "enterprise"])


def test_alpha_concentrates_on_risk_within_tier_and_keeps_tier_mass(pool):
    base = S.supervision_plan(pool, Candidate("x", (0.25, 1, 5, 15), 0.0, "all").policy(), n=300, budget=300.0)
    for alpha in (0.5, 2.0):
        plan = S.supervision_plan(pool, Candidate("x", (0.25, 1, 5, 15), alpha, "all").policy(), n=300, budget=300.0)
        assert plan.groupby("tier")["weight"].sum().to_numpy() == pytest.approx(
            base.groupby("tier")["weight"].sum().to_numpy(), rel=1e-9)
        d = plan[(plan["tier"] == "B") & (plan["entity_type"] == "individual") & ~plan["must_include"]]
        ratio = d["weight"] / pool.loc[d.index, "probability"] ** alpha
        assert len(d) > 100 and ratio.max() / ratio.min() == pytest.approx(1, abs=1e-6)


def test_frontier_trade_off_and_pareto(pool):
    f = policy_frontier(pool, budget=300.0, candidates=candidate_grid(alphas=(0.0, 1.0, 2.0)))
    t = f.table.set_index("name")
    # with tiers and p both informative, more concentration finds more (model belief) ...
    assert t.loc["flat/a2/none", "detections"] > t.loc["flat/a1/none", "detections"] > t.loc["flat/a0/none", "detections"]
    # ... and shifts inspections away from the low-risk half
    assert t.loc["flat/a2/none", "share_below_median"] < t.loc["flat/a0/none", "share_below_median"]
    assert t.loc["flat/a0/none", "lift"] == pytest.approx(1.0, abs=0.02)   # flat, no factor ≈ uniform
    d, b = t["detections"].to_numpy(), t["share_below_median"].to_numpy()
    for i, par in enumerate(t["pareto"]):
        dominated = np.any((d >= d[i]) & (b <= b[i]) & ((d > d[i]) | (b < b[i])))
        assert par == (not dominated)
    assert t["pareto"].any()
    # burden ratios: the entity-type factor on every tier burdens enterprises ~4× individuals per unit risk
    assert t.loc["v1.1/a0/all", "burden_enterprise"] / t.loc["v1.1/a0/all", "burden_individual"] > 3
    assert abs(t.loc["v1.1/a0/none", "burden_enterprise"] / t.loc["v1.1/a0/none", "burden_individual"] - 1) < 0.2
    bt = f.burden[f.burden["candidate"] == "in_force"]
    assert t.loc["in_force", "in_force"] and not t.loc["v1.1/a0/all", "in_force"]
    assert set(bt["dimension"]) == {"entity_type", "town", "section"}
    assert (bt.groupby("dimension")["entities"].sum() == len(pool)).all()
    md = f.to_markdown(top=5)
    assert "in_force" in md and md.count("\n") >= 6


def test_frontier_plot(pool, tmp_path):
    f = policy_frontier(pool, budget=300.0, candidates=candidate_grid(alphas=(0.0, 1.0)))
    out = f.plot(tmp_path / "frontier.png")
    assert out.stat().st_size > 5000


def test_bad_candidates_and_settings(pool):
    with pytest.raises(PlanError, match="not decreasing"):
        Candidate("bad", (1, 0.5, 5, 15))
    with pytest.raises(PlanError, match="scope"):
        Candidate("bad", (1, 1, 5, 15), scope="some")
    with pytest.raises(PlanError, match="floor"):
        Candidate("bad", (1, 1, 5, 15), floor=0)
    with pytest.raises(PlanError, match="probability"):
        policy_frontier(pool.drop(columns="probability"))
    with pytest.raises(PlanError, match="unique"):
        policy_frontier(pool, candidates=[Candidate("a", (1, 1, 1, 1)), Candidate("a", (1, 1, 2, 2))])
    raw = load_policy().raw
    import copy

    from yiwu_credit.policy import policy_from_raw
    for key, val, msg in (("alpha", 9.0, "alpha"), ("entity_type_factor_scope", "tiers", "entity_type_factor_scope")):
        r = copy.deepcopy(raw)
        r["sampling"][key] = val
        with pytest.raises(ConfigError, match=msg):
            policy_from_raw(r, "test")


# ------------------------------------------------------------------ the closed loop: candidates and drift
@pytest.fixture(scope="module")
def drifting():
    from yiwu_credit.pipeline.closed_loop import Drift, frontier_outcomes

    cands = [in_force(name="same_as_policy"), Candidate("a1.5/routine", (0.25, 1, 5, 15), 1.5, "routine"),
             Candidate("a1.5/no-floor", (1e-6, 1, 5, 15), 1.5, "routine", 1e-9)]
    return frontier_outcomes(cands, seeds=(0, 1), strategies=("uniform", "policy"), n_entities=3000, cycles=4,
                             drift=Drift(turn_rate=0.1))


@pytest.mark.slow
def test_candidates_run_through_the_loop(drifting):
    per_seed, summary = drifting
    t = per_seed.set_index(["strategy", "seed"])
    for sd in (0, 1):
        # the candidate equal to the policy in force is the policy strategy, draw for draw
        assert t.loc[("same_as_policy", sd), "violations"] == t.loc[("policy", sd), "violations"]
        assert t.loc[("uniform", sd), "lift"] == 1.0
        assert t.loc[("a1.5/no-floor", sd), "tier_a_share"] < 1e-3 < t.loc[("uniform", sd), "tier_a_share"]
    s = summary.set_index("strategy")
    assert (s["lift_lo"] <= s["lift"]).all() and (s["lift"] <= s["lift_hi"]).all() and (s["seeds"] == 2).all()


@pytest.mark.slow
def test_drift_turns_entities_and_ht_stays_unbiased():
    from yiwu_credit.pipeline.closed_loop import Drift, simulate_loop

    rows = []
    for sd in (0, 1, 2):
        res = simulate_loop(n_entities=3000, cycles=4, seed=sd, strategies=("uniform", "policy"),
                            drift=Drift(turn_rate=0.1))
        c = res.cycles
        turned = c[c["strategy"] == "policy"]["turned"].to_numpy()
        assert turned[0] == 0 and (np.diff(turned) > 0).all()        # turning starts in the second cycle
        assert c["turned_potential"].iloc[-1] > 0
        rows.append(c)
    c = pd.concat(rows)
    # Horvitz–Thompson estimates of the pool's violation rate from each campaign are unbiased while the
    # model retrains on its own (IPW) outcomes: the mean error over 3 seeds × 4 cycles × 2 strategies is
    # within 3 standard errors of 0 (fixed seeds; the errors are independent draws given the world).
    err = (c["ht_rate"] - c["true_rate"]).to_numpy()
    assert abs(err.mean()) < 3 * err.std(ddof=1) / np.sqrt(len(err))
    assert np.abs(err).max() > 0                                       # a real estimate, not the truth copied


@pytest.mark.slow
def test_drift_is_off_by_default_and_deterrence_lowers_found_entities():
    from yiwu_credit.pipeline.closed_loop import Drift, simulate_loop

    a = simulate_loop(n_entities=3000, cycles=3, seed=4, strategies=("policy",))
    b = simulate_loop(n_entities=3000, cycles=3, seed=4, strategies=("policy",), drift=Drift(turn_rate=0.0,
                                                                                            deter_factor=1.0))
    assert a.cycles["violations"].tolist() == b.cycles["violations"].tolist()   # a neutral drift changes nothing
    c = simulate_loop(n_entities=3000, cycles=3, seed=4, strategies=("policy",),
                      drift=Drift(turn_rate=0.0, deter_factor=0.01, deter_years=5))
    # deterrence: entities found in cycle 0 almost never violate again, so later true rates drop
    assert c.cycles["true_rate"].iloc[1:].sum() < a.cycles["true_rate"].iloc[1:].sum()
    assert a.cycles["turned"].eq(0).all()
    with pytest.raises(ValueError, match="Drift"):
        Drift(turn_factor=0.5)


def test_default_budget_is_clipped_into_the_band(pool):
    new = S.supervision_plan(pool)
    a = new.attrs[S.PLAN_ATTR]
    band = load_policy().sampling.overall_rate_band
    raw = S.supervision_plan(pool, budget=None, n=None, entity_type_factor_scope="routine", floor=1e-4,
                             policy=Candidate("x", (0.1, 1, 10, 30), 1.0, "routine").policy("yiwu-2022-1.1"))
    assert raw.attrs[S.PLAN_ATTR]["budget"] / len(pool) > band[1]            # the 1.2 rates alone exceed 5 %
    assert a["budget"] == pytest.approx(band[1] * len(pool), rel=1e-12)
    assert any("clipped" in note for note in a["notes"])
    old = S.supervision_plan(pool, "yiwu-2022-1.1").attrs[S.PLAN_ATTR]       # 1.1.0: not clipped
    assert not any("clipped" in note for note in old["notes"])


def test_tiers_only_table_plans_flat_within_tier_with_a_note(pool):
    tiers_only = pool.drop(columns="probability")
    a = S.supervision_plan(tiers_only, n=300, budget=300.0)
    b = S.supervision_plan(pool, n=300, budget=300.0, alpha=0.0)
    assert np.array_equal(a["pi"].to_numpy(), b["pi"].to_numpy())
    assert S.FLAT_NOTE in a.attrs[S.PLAN_ATTR]["notes"] and not a.attrs[S.PLAN_ATTR]["scale_by_probability"]
    with pytest.raises(PlanError, match="probability"):
        S.supervision_plan(tiers_only, n=300, scale_by_probability=True)
