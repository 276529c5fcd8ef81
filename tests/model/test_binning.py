"""Supervised binning: the DP is exact, trends hold, weights, special codes, missing and unseen bins."""

import itertools

import numpy as np
import pytest

from yiwu_credit.model.binning import _woe, fit_binning, optimal_partition, prebin_edges


def _brute(e, n, trend, min_w, k_max, alpha=0.5):
    """Best IV over every partition (the definition the DP must meet)."""
    m, te, tn = len(e), e.sum(), n.sum()
    best = (-np.inf, None)
    for r in range(min(k_max, m)):
        for cuts in itertools.combinations(range(1, m), r):
            b = [0, *cuts, m]
            E = np.array([e[b[i]:b[i + 1]].sum() for i in range(len(b) - 1)])
            N = np.array([n[b[i]:b[i + 1]].sum() for i in range(len(b) - 1)])
            if ((E + N) < min_w).any():
                continue
            s = np.sign(np.diff(_woe(E, N, te, tn, alpha)))
            ok = {"ascending": (s > 0).all(), "descending": (s < 0).all(), "none": True,
                  "peak": (s != 0).all() and not any(s[i] < s[i + 1] for i in range(len(s) - 1)),
                  "valley": (s != 0).all() and not any(s[i] > s[i + 1] for i in range(len(s) - 1))}[trend]
            if ok:
                iv = float(((E / te - N / tn) * _woe(E, N, te, tn, alpha)).sum())
                if iv > best[0] + 1e-12:
                    best = (iv, cuts)
    return best


@pytest.mark.parametrize("trend", ["ascending", "descending", "peak", "valley", "none"])
def test_dynamic_programme_matches_brute_force(trend):
    rng = np.random.default_rng(7)
    for _ in range(25):
        m = int(rng.integers(2, 9))
        e = rng.integers(0, 20, m).astype(float)
        n = rng.integers(1, 200, m).astype(float)
        k, min_w = int(rng.integers(2, 6)), float(rng.integers(0, 150))
        cuts, iv = optimal_partition(e, n, trend, min_w, k)
        biv, bcuts = _brute(e, n, trend, min_w, k)
        if bcuts is None:
            assert len(cuts) == 0
        else:
            assert iv == pytest.approx(biv, abs=1e-9)


def _curve(shape, n=20000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    logit = {"up": x, "down": -x, "peak": 1.5 - 1.5 * x ** 2, "valley": 1.5 * x ** 2 - 3}[shape] - 2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    return x, y


@pytest.mark.parametrize("trend", ["ascending", "descending"])
def test_trend_min_bin_size_and_max_bins_hold(trend):
    x, y = _curve("up" if trend == "ascending" else "down")
    fb = fit_binning(x, y, trend=trend, min_bin_size=0.05, max_n_bins=6)
    reg = fb.table().iloc[:fb.n_bins]
    d = np.diff(reg["woe"].to_numpy())
    assert (d > 0).all() if trend == "ascending" else (d < 0).all()
    assert (reg["count_share"] >= 0.05 - 1e-12).all()
    assert 3 <= fb.n_bins <= 6
    # event rates follow the woe order
    assert np.all(np.sign(np.diff(reg["event_rate"].to_numpy())) == np.sign(d))


def test_auto_peak_and_valley_find_the_shape():
    x, y = _curve("down")
    assert fit_binning(x, y, trend="auto").trend == "descending"
    x, y = _curve("up")
    assert fit_binning(x, y, trend="auto").trend == "ascending"
    for shape in ("peak", "valley"):
        x, y = _curve(shape)
        fb = fit_binning(x, y, trend=shape)
        s = np.sign(np.diff(fb.woe[:fb.n_bins]))
        turn = int(np.argmax(s < 0)) if shape == "peak" else int(np.argmax(s > 0))
        assert 0 < turn < len(s)  # a genuine turn, then a single direction
        assert (s[:turn] == (1 if shape == "peak" else -1)).all() and (s[turn:] == -s[0]).all()
        # the shaped fit explains more than a monotone one, and 'auto' finds it
        mono = max(fit_binning(x, y, trend=t).iv for t in ("ascending", "descending"))
        assert fb.iv > mono + 0.1
        assert fit_binning(x, y, trend="auto").trend == shape


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(3)
    x, y = _curve("up", n=4000, seed=3)
    w = rng.integers(1, 4, len(x)).astype(float)
    a = fit_binning(x, y, w)
    b = fit_binning(np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int)))
    np.testing.assert_array_equal(a.edges, b.edges)
    np.testing.assert_allclose(a.weight, b.weight)
    np.testing.assert_allclose(a.event, b.event)
    # WOE differs only through the smoothing (half an average row's weight)
    np.testing.assert_allclose(a.woe, b.woe, atol=0.1)
    # and weights matter: weighting one region up moves the edges
    c = fit_binning(x, y, np.where(x > 1, 20.0, 1.0))
    assert not np.array_equal(c.edges, a.edges)


def test_prebins_are_weighted_quantiles_of_data_values_plus_supervised_cuts():
    x = np.arange(1000, dtype=float)
    w = np.where(x < 500, 3.0, 1.0)  # 75% of the weight below 500
    e = prebin_edges(x, w, 4)
    assert set(e) <= set(x)
    np.testing.assert_allclose(e, [167, 334, 500], atol=1)
    y = ((x >= 700) & (x < 760)).astype(float)  # a pocket between quantiles
    e = prebin_edges(x, w, 4, y, min_leaf=0.01)
    assert {700.0, 760.0} <= set(e) and {167.0, 334.0} <= set(e)


def test_special_codes_get_their_own_bin():
    x, y = _curve("up", seed=4)
    rng = np.random.default_rng(4)
    sentinel = rng.uniform(size=len(x)) < 0.1
    x = np.where(sentinel, -999.0, x)
    y = np.where(sentinel, (rng.uniform(size=len(x)) < 0.5).astype(float), y)  # a risky sentinel
    fb = fit_binning(x, y, trend="ascending", special_codes=[-999])
    t = fb.table()
    row = t[t["bin"] == "special -999"].iloc[0]
    assert row["count"] == sentinel.sum()
    assert row["event_rate"] == pytest.approx(y[sentinel].mean())
    assert fb.edges.min() > -5  # the sentinel does not shape the regular bins
    assert (fb.slots(np.array([-999.0])) == fb.n_bins).all()
    # without declaring it, -999 is just a low number and breaks the ascending fit
    plain = fit_binning(x, y, trend="ascending")
    assert plain.iv < fb.iv


def test_missing_policy_and_unseen_categories_are_neutral():
    x, y = _curve("up", seed=5)
    few = x.copy()
    few[:100] = np.nan  # 0.5% missing: too few for a bin
    assert fit_binning(few, y).transform(np.array([np.nan]))[0] == 0.0
    many = x.copy()
    many[:4000] = np.nan  # 20% missing, with the first rows' outcomes
    b = fit_binning(many, y)
    miss = b.table().query("bin == 'missing'").iloc[0]
    assert not miss["neutral"] and miss["woe"] != 0
    assert fit_binning(many, y, missing="neutral").transform(np.array([np.nan]))[0] == 0.0
    # a category empty in training, an unseen code and missing: WOE 0, not riskier than any bin
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3, 5000).astype(float)  # category 3 never seen
    yc = (rng.uniform(size=5000) < 0.05 + 0.05 * codes).astype(float)
    fb = fit_binning(codes, yc, categories=["a", "b", "c", "d"])
    np.testing.assert_array_equal(fb.transform(np.array([3.0, 7.0, np.nan])), [0.0, 0.0, 0.0])


def test_rare_categories_merge_by_event_rate():
    rng = np.random.default_rng(6)
    n = 20000
    codes = rng.choice(6, n, p=[0.3, 0.3, 0.2, 0.18, 0.01, 0.01]).astype(float)
    rate = np.array([0.02, 0.05, 0.10, 0.20, 0.19, 0.021])[codes.astype(int)]
    y = (rng.uniform(size=n) < rate).astype(float)
    fb = fit_binning(codes, y, categories=list("abcdef"))
    t = fb.table().iloc[:fb.n_bins]
    assert (t["count_share"] >= 0.05 - 1e-12).all()
    assert fb.cat_bin[4] == fb.cat_bin[3]  # rare risky 'e' with risky 'd'
    assert fb.cat_bin[5] == fb.cat_bin[0]  # rare safe 'f' with safe 'a'
    assert np.all(np.diff(t["woe"].to_numpy()) > 0)


def test_invalid_settings():
    with pytest.raises(ValueError, match="trend must be one of"):
        fit_binning(np.zeros(3), np.array([0, 1, 0.0]), trend="up")
    with pytest.raises(ValueError, match="missing must be one of"):
        fit_binning(np.zeros(3), np.array([0, 1, 0.0]), missing="drop")
