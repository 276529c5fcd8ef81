"""Tests of the supervision plan, the verifiable draw and joint/rotating campaigns.

Statistical tests use fixed seeds, so each outcome is deterministic; the stated significance
levels say how often a *correct* implementation would fail for an arbitrary choice of seeds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from yiwu_credit import supervision as S
from yiwu_credit.errors import ConfigError, PlanError
from yiwu_credit.policy import load_policy
from yiwu_credit.supervision.joint import (
    microstrata_select,
    origin_from_seed,
    origin_shift,
    rounding_start,
    window_share,
)
from yiwu_credit.supervision.prn import id_bytes, prn_key, prn_order

ALPHA = 0.001          # family-wise error rate of each Binomial test (Holm-corrected)


@pytest.fixture(autouse=True)
def _policy_1_1(monkeypatch):
    """The plan/draw mechanics are tested on the 1.1.0 default (flat within tier, type factor on every
    tier: group-level plans); the 1.2.0 defaults (alpha, scope) are tested in test_frontier.py."""
    monkeypatch.setattr("yiwu_credit.policy.DEFAULT_POLICY", "yiwu-2022-1.1")


def _ids(n: int, start: int = 0) -> pd.Index:
    return pd.Index([f"91330782MA{i:08d}" for i in range(start, start + n)], name="entity_id")


def _scored(n: int, seed: int = 0, must_rate: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "tier": rng.choice(list("ABCD"), n, p=[0.4, 0.4, 0.15, 0.05]),
        "probability": rng.beta(1, 15, n),
        "entity_type": rng.choice(["enterprise", "individual", "cooperative"], n, p=[0.3, 0.68, 0.02]),
        "town": rng.choice(["稠城街道", "佛堂镇", "苏溪镇"], n),
        "industry": rng.choice(["F5137", "C1811", "I6510"], n),
        "serious_dishonest": rng.random(n) < must_rate,
    }, index=_ids(n))


def _holm_rejects(pvalues: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down procedure: bool mask of rejected hypotheses at family-wise level alpha."""
    p = np.asarray(pvalues)
    order = np.argsort(p)
    m = len(p)
    rej = np.zeros(m, bool)
    for k, i in enumerate(order):
        if p[i] > alpha / (m - k):
            break
        rej[i] = True
    return rej


def _binomial_pvalues(counts: np.ndarray, reps: int, p: np.ndarray) -> np.ndarray:
    return np.array([binomtest(int(c), reps, float(min(1.0, q))).pvalue for c, q in zip(counts, p, strict=True)])


# ------------------------------------------------------------------ the PRN hash
def test_prn_hash_matches_reference_and_is_pinned():
    ids = ["91330782MA2X000198", "E1", "abcdefghij", "中文编号x", "92330782MA00000001"]
    ref = [prn_key(7, i) for i in ids]
    assert S.prn_keys(pd.Index(ids), 7).tolist() == ref                    # variable width
    assert S.prn_keys(pd.Index(ids, dtype=object), "7").tolist() == ref    # object ids, seed 7 == "7"
    fixed = list(_ids(300))
    assert S.prn_keys(pd.Index(fixed), "s").tolist() == [prn_key("s", i) for i in fixed]
    # pinned values: the hash is part of the audit format and must never drift across platforms
    assert ref[0] == 15523540817236851961
    assert S.start_from_seed(20240501) == S.start_from_seed("20240501")
    assert 0 <= S.start_from_seed(1) < S.SCALE
    u = S.prn_uniform(_ids(20000), 3)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01


def test_bad_seeds_and_ids_are_refused():
    with pytest.raises(PlanError, match="seed"):
        S.prn_keys(_ids(3), True)
    with pytest.raises(PlanError, match="seed"):
        S.prn_keys(_ids(3), "")
    with pytest.raises(PlanError, match="string"):
        S.prn_keys(pd.Index([1, 2, 3]), 1)


# ------------------------------------------------------------------ inclusion probabilities
def test_iterative_capping_textbook_case():
    pi = S.inclusion_probabilities([1, 1, 1, 1, 10], 2)
    np.testing.assert_allclose(pi, [0.25, 0.25, 0.25, 0.25, 1.0])
    pi = S.inclusion_probabilities([1, 2, 3, 100, 200], 3, floor=0.3)
    np.testing.assert_allclose(pi, [0.3, 0.3, 0.4, 1.0, 1.0])   # a·3 = 0.4, a·2 = 0.267 → floored
    assert pi.sum() == pytest.approx(3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=60), st.data())
def test_capping_properties(weights, data):
    w = np.array(weights)
    N = len(w)
    must = np.array(data.draw(st.lists(st.booleans(), min_size=N, max_size=N)))
    m = int(must.sum())
    floor = data.draw(st.sampled_from([0.0, 1e-4, 0.01, 0.05]))
    lo = max(m, int(np.ceil(m + floor * (N - m) - 1e-9)), 1 if N else 0)
    if lo > N:
        return
    n = data.draw(st.integers(lo, N))
    pi = S.inclusion_probabilities(w, n, must=must, floor=floor)
    assert np.all(pi >= 0) and np.all(pi <= 1)
    assert pi.sum() == pytest.approx(n, abs=1e-9 * max(1, n))
    assert np.all(pi[must] == 1.0)
    assert np.all(pi[~must] >= floor - 1e-15)
    free = ~must
    o = np.argsort(w[free], kind="stable")
    assert np.all(np.diff(pi[free][o]) >= -1e-12)            # order of weights preserved
    q = S.fixed_point(np.sort(pi), n)                          # exact fixed point, every unit within 1 unit
    assert int(q.sum()) == n * S.SCALE
    assert np.all(np.abs(q / S.SCALE - np.sort(pi)) <= 2.0 / S.SCALE)


def test_capping_is_independent_of_order():
    rng = np.random.default_rng(4)
    w = rng.lognormal(0, 2, 5000)
    pi = S.inclusion_probabilities(w, 700, floor=1e-3)
    perm = rng.permutation(len(w))
    assert np.array_equal(S.inclusion_probabilities(w[perm], 700, floor=1e-3), pi[perm])   # bit-identical


def test_inclusion_probabilities_refuses_impossible():
    with pytest.raises(PlanError, match="larger than the pool"):
        S.inclusion_probabilities([1, 2, 3], 4)
    with pytest.raises(PlanError, match="must-include"):
        S.inclusion_probabilities([1, 2, 3], 1, must=np.array([True, True, False]))
    with pytest.raises(PlanError, match="floor"):
        S.inclusion_probabilities(np.ones(100), 1, floor=0.05)
    with pytest.raises(PlanError, match="integer"):
        S.inclusion_probabilities([1, 2, 3], 1.5)
    with pytest.raises(PlanError, match="non-negative"):
        S.inclusion_probabilities([1, -2, 3], 1)


# ------------------------------------------------------------------ the plan
def test_plan_follows_the_policy():
    pol = load_policy()
    sc = _scored(20000, seed=1, must_rate=0.002)
    plan = S.supervision_plan(sc)
    meta = plan.attrs[S.PLAN_ATTR]
    cfg = pol.sampling
    rate = {t: cfg.tiers[t].annual_rate for t in "ABCD"}
    fac = cfg.entity_type_factor
    budget = sum(rate[t] * fac[e] for t, e in zip(sc["tier"], sc["entity_type"], strict=True))
    assert meta["budget"] == pytest.approx(budget)
    assert meta["n"] == round(budget)
    assert plan["pi"].sum() == pytest.approx(meta["n"])
    assert plan["expected_per_year"].sum() == pytest.approx(budget)
    must = sc["serious_dishonest"].to_numpy()
    assert plan["must_include"].to_numpy().tolist() == must.tolist()
    assert (plan.loc[must, "pi"] == 1).all() and (plan.loc[must, "expected_per_year"] >= 1).all()
    free = plan[~plan["must_include"]]
    # weights relative to B: tier weight × type factor; pi ∝ weight where no bound binds
    ent = free[free["entity_type"] == "enterprise"]
    w = ent.groupby("tier")["weight"].first()
    assert w.to_dict() == {t: cfg.tiers[t].weight for t in "ABCD"}
    ratio = (ent["pi"] / ent["weight"]).to_numpy()
    assert np.allclose(ratio, ratio[0])
    assert free["pi"].min() >= cfg.min_inclusion_prob
    for t in "ABCD":
        assert plan.loc[plan["tier"] == t, "expected_per_year"].max() <= max(1, cfg.tiers[t].max_per_year) + 1e-12
    assert list(plan.columns[:5]) == ["tier", "weight", "expected_per_year", "pi", "must_include"]


def test_frequency_caps_bind_and_redistribute():
    sc = _scored(2000, seed=2)
    plan = S.supervision_plan(sc, budget=2500, n=100)    # Σ caps ≈ 3000: many entities hit their tier cap
    caps = plan["tier"].map({t: load_policy().sampling.tiers[t].max_per_year for t in "ABCD"}).to_numpy()
    e, w = plan["expected_per_year"].to_numpy(), plan["weight"].to_numpy()
    at_cap = np.isclose(e, caps, rtol=1e-12)
    assert at_cap.sum() > 100 and (~at_cap).sum() > 100
    assert np.all(e <= caps * (1 + 1e-12))
    a = e[~at_cap] / w[~at_cap]
    assert a.max() / a.min() == pytest.approx(1, abs=1e-9)           # the rest ∝ weight, scaled up
    assert np.all(a[0] * w[at_cap] >= caps[at_cap] * (1 - 1e-9))       # capped units would exceed their cap
    assert e.sum() == pytest.approx(2500)
    pi = plan["pi"].to_numpy()                                         # campaign pi ∝ capped annual plan
    r = pi / e
    assert r.max() / r.min() == pytest.approx(1, abs=1e-9)
    with pytest.raises(PlanError, match="exceeds what the per-entity caps allow"):
        S.supervision_plan(sc, budget=10 ** 6)


def test_plan_is_independent_of_row_order():
    sc = _scored(5000, seed=3, must_rate=0.003)
    for scale in (False, True):
        a = S.supervision_plan(sc, n=400, scale_by_probability=scale)
        b = S.supervision_plan(sc.sample(frac=1, random_state=9), n=400, scale_by_probability=scale).loc[a.index]
        for c in ("weight", "expected_per_year", "pi"):
            assert np.array_equal(a[c].to_numpy(), b[c].to_numpy()), c


def test_scale_by_probability_keeps_tier_mass():
    sc = _scored(4000, seed=5)
    a = S.supervision_plan(sc, n=300)
    b = S.supervision_plan(sc, n=300, scale_by_probability=True)
    assert a.groupby("tier")["weight"].sum().to_numpy() == pytest.approx(b.groupby("tier")["weight"].sum().to_numpy(),
                                                                          rel=1e-9)
    d = b[(b["tier"] == "C") & (b["entity_type"] == "individual") & (b["pi"] > b["pi"].min()) & (b["pi"] < 1)]
    ratio = d["pi"] / sc.loc[d.index, "probability"]
    assert len(d) > 50 and ratio.max() / ratio.min() == pytest.approx(1, abs=1e-6)   # pi ∝ probability in tier


def test_plan_refuses_impossible_requests_clearly():
    sc = _scored(100, seed=6)
    sc.iloc[:3, sc.columns.get_loc("serious_dishonest")] = True
    with pytest.raises(PlanError, match=r"n=101 is larger than the pool of 100"):
        S.supervision_plan(sc, n=101)
    with pytest.raises(PlanError, match=r"n=2 is smaller than the 3 must-include entities \(3 serious_dishonest\)"):
        S.supervision_plan(sc, n=2)
    with pytest.raises(PlanError, match="too small for the floor"):
        S.supervision_plan(sc, n=3, floor=0.05)
    with pytest.raises(PlanError, match=r"budget=2 inspections/year is below the 3 must-include"):
        S.supervision_plan(sc, n=10, budget=2)
    bad = sc.copy()
    bad["tier"] = bad["tier"].astype(object)
    bad.iloc[5, bad.columns.get_loc("tier")] = "E"
    with pytest.raises(PlanError, match=r"scored\.tier: expected one of .*'E'.*91330782MA00000005"):
        S.supervision_plan(bad)
    bad = sc.copy()
    bad.iloc[7, bad.columns.get_loc("probability")] = 1.5
    with pytest.raises(PlanError, match=r"probability.*91330782MA00000007"):
        S.supervision_plan(bad, scale_by_probability=True)
    with pytest.raises(PlanError, match="missing column 'tier'"):
        S.supervision_plan(sc.drop(columns="tier"))
    with pytest.raises(PlanError, match="entity_type"):
        S.supervision_plan(sc.assign(entity_type="robot"))


def test_optional_columns_default_sensibly():
    sc = pd.DataFrame({"tier": ["A", "B", "C", "D"] * 25}, index=_ids(100))
    plan = S.supervision_plan(sc, n=10)
    assert not plan["must_include"].any()
    w = plan.groupby("tier")["weight"].first().to_dict()
    assert w == {"A": 0.25, "B": 1.0, "C": 5.0, "D": 15.0}          # factor 1 without entity_type


# ------------------------------------------------------------------ the draw
@pytest.fixture(scope="module")
def small_plan() -> pd.DataFrame:
    """40 entities, pi from 0.01 (floor) to 1 (must-include and capped), n = 8."""
    sc = pd.DataFrame({"tier": list("AAAAAAAAAABBBBBBBBBBBBCCCCCCCCDDDDDDDDDD"),
                       "serious_dishonest": [False] * 38 + [True, True]}, index=_ids(40))
    sc["entity_type"] = ["individual", "enterprise"] * 20
    return S.supervision_plan(sc, "yiwu-2022-1.1", n=8, floor=0.01)


@pytest.mark.slow
def test_draw_has_exact_first_order_probabilities(small_plan):
    """10,000 seeded draws: counts ~ Binomial(R, pi) for all 40 units (Holm, FWER 0.001)."""
    pi = small_plan["pi"].to_numpy()
    assert pi.min() == 0.01 and (pi == 1).sum() == 2 and len(np.unique(pi)) >= 5
    R = 10_000
    pos = pd.Series(np.arange(len(pi)), index=small_plan.index)
    counts = np.zeros(len(pi), np.int64)
    must = small_plan.index[small_plan["must_include"]]
    for r in range(R):
        d = S.draw(small_plan, 8, seed=f"test-{r}")
        assert len(d.selected) == 8 and d.selected.is_unique
        assert must.isin(d.selected).all()
        counts[pos[d.selected].to_numpy()] += 1
    assert (counts[small_plan["must_include"].to_numpy()] == R).all()
    p = _binomial_pvalues(counts, R, pi)
    assert not _holm_rejects(p).any(), np.round(p, 5)


def test_the_binomial_check_has_power_against_weighted_shuffles(small_plan):
    """Negative control: Efraimidis–Spirakis (top-n of u^(1/w)) misses pi and the same test sees it."""
    pi = small_plan["pi"].to_numpy()
    rng = np.random.default_rng(0)
    R = 10_000
    keys = rng.random((R, len(pi))) ** (1.0 / pi)
    top = np.argpartition(-keys, 8, axis=1)[:, :8]
    counts = np.bincount(top.ravel(), minlength=len(pi))
    assert _holm_rejects(_binomial_pvalues(counts, R, pi)).any()


def test_same_seed_same_draw_whatever_the_row_order():
    plan = S.supervision_plan(_scored(3000, seed=7, must_rate=0.002), n=250)
    a = S.draw(plan, 250, seed=42)
    b = S.draw(plan.sample(frac=1, random_state=1), 250, seed=42)
    assert a.selected.tolist() == b.selected.tolist()
    assert a.audit == b.audit
    c = S.draw(plan, 250, seed=43)
    assert set(c.selected) != set(a.selected)


def test_draw_refuses_bad_plans():
    plan = S.supervision_plan(_scored(50, seed=8), n=5)
    with pytest.raises(PlanError, match="not n=6"):
        S.draw(plan, 6, seed=1)
    bad = plan.copy()
    bad.iloc[3, bad.columns.get_loc("pi")] = 0.0
    with pytest.raises(PlanError, match=r"nobody is exempt.*91330782MA00000003"):
        S.draw(bad, None, seed=1)
    dup = pd.concat([plan.iloc[:3], plan.iloc[:1]])
    dup["pi"] = [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(PlanError, match="duplicate id '91330782MA00000000'"):
        S.draw(dup, 4, seed=1)


def test_fixed_point_and_partitions_reproduce_the_draw():
    """The distributed recipe (per-partition π sums → offsets → one start) gives the same sample."""
    plan = S.supervision_plan(_scored(4000, seed=9), n=333)
    seed = "partition-test"
    d = S.draw(plan, 333, seed=seed)
    ids = id_bytes(plan.index)
    order = prn_order(ids, seed)
    pi_sorted = plan["pi"].to_numpy()[order]
    q = S.fixed_point(pi_sorted, 333)
    assert int(q.sum()) == 333 * S.SCALE and np.abs(q / S.SCALE - pi_sorted).max() <= 1 / S.SCALE
    start = S.start_from_seed(seed)
    assert plan.index[order[S.systematic_select(q, start)]].tolist() == d.selected.tolist()
    # three partitions over contiguous key ranges
    cuts = [0, 1100, 2900, 4000]
    floors = [S.fixed_point(pi_sorted[a:b], 0, deficit=0) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    deficit = 333 * S.SCALE - sum(int(f.sum()) for f in floors)
    eligible = [int((f < S.SCALE).sum()) for f in floors]
    parts, offset, before = [], 0, 0
    for (a, _b), e in zip(zip(cuts[:-1], cuts[1:], strict=True), eligible, strict=True):
        share = min(e, max(0, deficit - before))
        before += e
        qp = S.fixed_point(pi_sorted[a:_b], 0, deficit=share)
        parts.append(order[a:_b][S.systematic_select(qp, start, offset)])
        offset += int(qp.sum())
    assert plan.index[np.concatenate(parts)].tolist() == d.selected.tolist()


# ------------------------------------------------------------------ audit and verification
def test_verify_confirms_and_names_each_tampering(tmp_path):
    sc = _scored(2000, seed=10, must_rate=0.002)
    plan = S.supervision_plan(sc, n=150)
    d = S.draw(plan, 150, seed=2025)
    assert S.verify(d, plan).ok
    assert S.verify(d.audit, plan.sample(frac=1, random_state=3)).ok           # row order irrelevant
    assert S.verify(d.audit, sc).ok                                            # plan rebuilt from the frame

    t = plan.copy()                                                           # pi moved between two entities
    col = t.columns.get_loc("pi")
    t.iloc[10, col] += 1e-4
    t.iloc[11, col] -= 1e-4
    r = S.verify(d.audit, t)
    assert not r.ok and [m.split(":")[0] for m in r.mismatches][:1] == ["pi_sha256"]
    t = plan.rename(index={plan.index[5]: "91330782MA99999999"})                # an entity swapped for another
    r = S.verify(d.audit, t)
    assert not r.ok and any(m.startswith("frame_sha256") for m in r.mismatches)
    r = S.verify(d.audit, plan.drop(plan.index[5]))                            # an entity removed
    assert not r.ok and "not n=150" in r.mismatches[0]

    a = dict(d.audit)
    a["selected"] = list(a["selected"])
    out_id = next(x for x in plan.index if x not in set(a["selected"]))
    swapped = a["selected"][3]
    a["selected"][3] = out_id
    r = S.verify(a, plan)
    assert not r.ok and len(r.mismatches) == 1
    assert out_id in r.mismatches[0] and swapped in r.mismatches[0]

    a = dict(d.audit, seed=2026)
    r = S.verify(a, plan)
    assert any(m.startswith("start:") and "2026" in m for m in r.mismatches)
    a = dict(d.audit, start=d.audit["start"] + 1)
    assert [m.split(":")[0] for m in S.verify(a, plan).mismatches] == ["start"]
    assert "algorithm" in S.verify(dict(d.audit, algorithm="es-shuffle"), plan).mismatches[0]

    p = S.save_audit(d, tmp_path / "audit" / "draw.json")
    assert S.load_audit(p) == d.audit
    plan.reset_index().to_csv(tmp_path / "plan.csv", index=False)
    assert S.verify_files(p, tmp_path / "plan.csv").ok
    sc.reset_index().to_csv(tmp_path / "scored.csv", index=False)
    assert S.verify_files(p, tmp_path / "scored.csv").ok
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        S.load_audit(tmp_path / "bad.json")


def test_audit_records_what_the_issue_asks_for():
    plan = S.supervision_plan(_scored(500, seed=11), n=40)
    a = S.draw(plan, 40, seed="公开摇号-2025-05").audit
    for k in ("algorithm", "algorithm_version", "seed", "start", "frame_sha256", "pi_sha256", "selected", "n",
              "prn_hash", "fixed_point_bits", "plan"):
        assert k in a
    assert a["plan"]["policy"] == "yiwu-2022-1.1" and len(a["frame_sha256"]) == 64 and len(a["selected"]) == 40


# ------------------------------------------------------------------ joint and rotating campaigns
def _dept_plans(k: int = 1) -> tuple[pd.Index, dict[str, np.ndarray], dict[str, int]]:
    """Three departments over 40·k entities with different pi levels (dept 'fire' covers 30·k)."""
    ids = _ids(40 * k)
    tiers = np.repeat(np.array(list("AAAAAAAAAABBBBBBBBBBBBCCCCCCCCDDDDDDDDDD")), k)
    samr = S.inclusion_probabilities(pd.Series(tiers).map({"A": 0.25, "B": 1, "C": 5, "D": 15}).to_numpy(), 8 * k)
    tax = S.inclusion_probabilities(pd.Series(tiers).map({"A": 1, "B": 1, "C": 3, "D": 4}).to_numpy(), 6 * k,
                                    floor=0.05)
    fire = S.inclusion_probabilities(np.ones(30 * k), 5 * k, must=np.arange(30 * k) == 30 * k - 1)
    return ids, {"samr": samr, "tax": tax, "fire": fire}, {"samr": 8 * k, "tax": 6 * k, "fire": 5 * k}


def _core_joint(ids, pis, ns, panel_seed, seed, origin):
    keys = S.prn_keys(ids, panel_seed)
    tb = S.prn_keys(ids, f"{panel_seed}\x00tiebreak")
    dist = keys - np.uint64(origin)
    rs = rounding_start(seed)
    out = {}
    for d, pi in pis.items():
        k = len(pi)
        out[d] = microstrata_select(dist[:k], tb[:k], pi, ns[d], rs)
    return out


@pytest.mark.slow
def test_joint_draw_keeps_each_departments_pi_and_saves_visits():
    """4,000 joint campaigns: each department's counts ~ Binomial(R, pi) (Holm, FWER 0.001 per
    department); the mean number of visits is well below that of independent draws."""
    ids, pis, ns = _dept_plans()
    R = 4000
    counts = {d: np.zeros(len(p), np.int64) for d, p in pis.items()}
    visits = []
    for r in range(R):
        sel = _core_joint(ids, pis, ns, f"panel-{r}", f"c-{r}", origin_from_seed(f"c-{r}"))
        union = np.zeros(40, bool)
        for d, s in sel.items():
            assert s.sum() == ns[d]
            counts[d] += s
            union[:len(s)] |= s
        visits.append(union.sum())
    for d, p in pis.items():
        assert not _holm_rejects(_binomial_pvalues(counts[d], R, p)).any(), d
    padded = [np.pad(p, (0, 40 - len(p))) for p in pis.values()]
    indep = float((1 - np.prod([1 - p for p in padded], axis=0)).sum())
    assert np.mean(visits) < indep - 3.0                           # ≈ 9.0 visits vs ≈ 15.2 independent


@pytest.mark.slow
def test_rotation_keeps_pi_exact_and_spreads_burden():
    """4,000 pairs of successive campaigns over 400 entities (origin moved by rotate's rule):
    campaign-2 counts ~ Binomial(R, pi) (Holm, FWER 0.001) and repeats are close to the overlap
    no design can avoid (sum of max(0, 2 pi - 1)), far below independent draws."""
    ids, pis, ns = _dept_plans(10)
    pis, ns = {"samr": pis["samr"]}, {"samr": ns["samr"]}
    R = 4000
    counts = np.zeros(400, np.int64)
    repeats = 0
    w = window_share(list(pis.values()))
    for r in range(R):
        o1 = origin_from_seed(f"a-{r}")
        s1 = _core_joint(ids, pis, ns, f"panel-{r}", f"a-{r}", o1)["samr"]
        o2 = (o1 + origin_shift(w, w, f"b-{r}")) % 2**64
        s2 = _core_joint(ids, pis, ns, f"panel-{r}", f"b-{r}", o2)["samr"]
        counts += s2
        repeats += int((s1 & s2).sum())
    p = pis["samr"]
    assert not _holm_rejects(_binomial_pvalues(counts, R, p)).any()
    forced = float(np.clip(2 * p - 1, 0, None).sum())              # overlap no design can avoid
    independent = float((p * p).sum())
    assert repeats / R < forced + 0.25 * (independent - forced)


def test_joint_draw_public_api_report_and_verify():
    sc = _scored(6000, seed=12, must_rate=0.001)
    plans = {"samr": S.supervision_plan(sc, n=300),
             "tax": S.supervision_plan(sc, n=200, budget=200),
             "fire": S.supervision_plan(sc[sc["entity_type"] == "enterprise"], n=120)}
    j = S.joint_draw(plans, panel_seed="panel-2025", seed=1)
    assert {d: len(v) for d, v in j.selected.items()} == {"samr": 300, "tax": 200, "fire": 120}
    rep = j.report
    assert rep["visits_joint"] == len(j.visits) < rep["visits_separate"] == 620
    assert rep["saved_vs_independent"] > 100 and rep["joint_visits"] > 0
    assert set(j.visits.loc[j.visits["n_departments"] > 1, "departments"].str.split(";").explode()) <= set(plans)
    assert S.verify(j, plans).ok
    shuffled = {d: p.sample(frac=1, random_state=4) for d, p in plans.items()}
    j_sh = S.joint_draw(shuffled, panel_seed="panel-2025", seed=1)
    assert {d: v.tolist() for d, v in j_sh.selected.items()} == {d: v.tolist() for d, v in j.selected.items()}
    j2 = S.joint_draw(plans, panel_seed="panel-2025", seed=2, previous=j)
    assert j2.report["repeat_from_previous"] < 0.6 * j2.report["repeat_expected_if_independent"]
    assert S.verify(j2.audit, plans).ok
    assert S.rotate(j, plans, 2) == j2.audit["origin"]
    bad = dict(j.audit, departments={d: dict(v) for d, v in j.audit["departments"].items()})
    bad["departments"]["tax"]["selected"] = bad["departments"]["tax"]["selected"][1:] + [plans["tax"].index[0]]
    r = S.verify(bad, plans)
    assert not r.ok and r.mismatches[0].startswith("tax.selected")
    assert not S.verify(dict(j.audit, origin=j.audit["origin"] + 1), plans).ok


def test_policy_sampling_section_is_validated():
    import copy
    import tomllib
    from importlib import resources

    from yiwu_credit.policy import policy_from_raw

    raw = tomllib.loads((resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022.toml").read_text("utf-8"))
    policy_from_raw(copy.deepcopy(raw), "ok")
    cases = [
        (("tiers", "A", "flag"), "nap", r"\[sampling.tiers.A\].flag: expected one of"),
        (("tiers", "A", "annual_rate"), 0.9, r"annual_rate 0.9 exceeds max_per_year 0.5"),
        (("tiers", "D", "max_per_year"), 0, r"max_per_year: must be > 0"),
        (("overall_rate_band",), [0.05, 0.03], r"overall_rate_band"),
        (("inspectors", "per_entity"), 2.5, r"per_entity: expected a whole number"),
        (("entity_type_factor", "robot"), 1.0, r"unknown entity type"),
        (("min_inclusion_prob",), 0, r"no entity is exempt"),
    ]
    for path, value, msg in cases:
        r = copy.deepcopy(raw)
        node = r["sampling"]
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        with pytest.raises(ConfigError, match=msg):
            policy_from_raw(r, "policy yiwu-2022")


# ------------------------------------------------------------------ malformed audits, windows, the second random
@pytest.mark.parametrize("field, value", [
    ("n", "abc"), ("seed", [1]), ("selected", 5), ("start", None), ("start", -1), ("selected", ["a", 3]),
    ("frame_sha256", "x"), ("plan", [1]), ("population", 1.5), ("campaign", {"start": "2026-13-01", "end": "x"}),
    ("inspectors", {"roster_sha256": "0" * 64}),
])
def test_malformed_audit_fields_are_config_errors_naming_file_and_field(tmp_path, field, value):
    plan = S.supervision_plan(_scored(300, seed=12), n=20)
    d = S.draw(plan, 20, seed=5)
    p = tmp_path / "a.audit.json"
    p.write_text(json.dumps({**d.audit, field: value}), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"a\.audit\.json: field '{field}"):
        S.load_audit(p)
    with pytest.raises(ConfigError, match=rf"field '{field}"):
        S.verify({**d.audit, field: value}, plan)
    for bad in ([], "x", 3):
        p.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ConfigError, match="not a yiwu-credit audit record"):
            S.load_audit(p)


def test_campaign_window_is_recorded_and_checked():
    plan = S.supervision_plan(_scored(300, seed=12), n=20)
    d = S.draw(plan, 20, seed=5, window=("2026-03-01", pd.Timestamp("2026-06-30")))
    assert d.audit["campaign"] == {"start": "2026-03-01", "end": "2026-06-30"} and S.verify(d, plan).ok
    assert "campaign" not in S.draw(plan, 20, seed=5).audit
    for w, msg in ((("2026-06-30", "2026-03-01"), "after end"), (("2026-03-01", "soon"), "end: expected an ISO date"),
                   ((None, "2026-03-01"), "start: expected")):
        with pytest.raises(PlanError, match=msg):
            S.draw(plan, 20, seed=5, window=w)


def test_verify_covers_the_inspector_draw(tmp_path):
    """Issue 11 item 6: the audit records the roster hash, the parameters and the assignment;
    verify recomputes them, compares the published file, and is never a bare OK without the roster."""
    from yiwu_credit.supervision.inspectors import assign_inspectors

    sc = _scored(600, seed=13)
    plan = S.supervision_plan(sc, n=40)
    roster = pd.DataFrame({"inspector_id": [f"ZF{i:03d}" for i in range(12)], "department": "samr",
                           "towns": ["" if i % 3 == 0 else ["稠城街道", "佛堂镇", "苏溪镇"][i % 3] for i in range(12)],
                           "qualifications": "general", "conflicts": ""})
    d = S.draw(plan, 40, seed="lottery-7")
    asg = assign_inspectors(d.frame(plan), roster, "lottery-7", per_entity=2, max_per_inspector=10)
    with pytest.raises(PlanError, match="not for the drawn entities"):
        d.with_inspectors(asg.iloc[2:])
    da = d.with_inspectors(asg)
    rec = da.audit["inspectors"]
    assert set(rec["assignment"]) == set(d.selected) and rec["seed"] == "lottery-7" and "inspectors" not in d.audit
    r = S.verify(da, plan, roster=roster, assignments=asg)
    assert r.ok and str(r).startswith("OK") and "entities: 40 of 600" in str(r) and "inspectors: roster hash" in str(r)
    bare = S.verify(da, plan)
    assert not bare.ok and not bare.mismatches and "NOT VERIFIED" in str(bare) and "entities: 40" in str(bare)
    assert not S.verify(d, plan, roster=roster).ok                 # a roster for an audit without inspectors

    # files: the published assignments are found next to the audit and compared with the record
    S.save_audit(da, tmp_path / "drawn.audit.json")
    plan.reset_index().to_csv(tmp_path / "plan.csv", index=False)
    roster.to_csv(tmp_path / "roster.csv", index=False)
    asg.to_csv(tmp_path / "drawn.inspectors.csv", index=False)
    r = S.verify_files(tmp_path / "drawn.audit.json", tmp_path / "plan.csv", roster=tmp_path / "roster.csv")
    assert r.ok and "drawn.inspectors.csv lists exactly the recorded assignment" in str(r)
    e = asg.loc[5, "entity_id"]
    t = asg.copy()
    t.loc[5, "inspector_id"] = next(i for i in roster["inspector_id"] if i not in set(asg.loc[asg["entity_id"] == e,
                                                                                              "inspector_id"]))
    t.to_csv(tmp_path / "drawn.inspectors.csv", index=False)
    r = S.verify_files(tmp_path / "drawn.audit.json", tmp_path / "plan.csv", roster=tmp_path / "roster.csv")
    assert not r.ok and r.mismatches == (f"drawn.inspectors.csv: entity {e}: the file lists "
                                         f"{sorted(t.loc[t['entity_id'] == e, 'inspector_id'])}, the audit records "
                                         f"{rec['assignment'][e]}",)
    (tmp_path / "drawn.inspectors.csv").write_bytes(b"")
    r = S.verify_files(tmp_path / "drawn.audit.json", tmp_path / "plan.csv", roster=tmp_path / "roster.csv")
    assert not r.ok and "unreadable published assignments" in r.mismatches[0]
    forged = dict(da.audit, inspectors={**rec, "assignment": {**rec["assignment"], e: ["ZF000", "ZF001"]}})
    r = S.verify(forged, plan, roster=roster)
    assert not r.ok and any(m.startswith(f"inspectors: entity {e}") for m in r.mismatches)
