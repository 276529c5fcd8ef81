"""The scorecard learner and points that add up; generic tabular data; monotone and special-code settings."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import check_estimator

from yiwu_credit import TieredRiskModel, build_features, build_labels


def tabular(n=3000, seed=0):
    """Generic credit-like data with its own column names: numeric, text and a sentinel."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"income": rng.lognormal(3, 0.5, n), "utilisation": rng.uniform(size=n),
                      "noise": rng.normal(size=n), "months_on_book": rng.integers(1, 120, n).astype(float),
                      "colour": rng.choice(["red", "green", "blue", "grey"], n, p=[0.3, 0.3, 0.38, 0.02])},
                     index=pd.Index([f"id{i}" for i in range(n)], name="entity_id"))
    logit = (-2 - 0.04 * (X["income"] - 20) + 2.0 * X["utilisation"] ** 2 - 0.01 * X["months_on_book"]
             + 0.8 * (X["colour"] == "red"))
    y = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int), index=X.index)
    X.loc[X.sample(frac=0.1, random_state=seed).index, "months_on_book"] = -999.0  # "unknown"
    return X, y


MONO = {"income": "descending", "utilisation": "ascending", "noise": "none", "months_on_book": "auto"}


@pytest.fixture(scope="module")
def world_xy():
    from yiwu_credit.data import synth
    w = synth.generate(6000, seed=21)
    return build_features(w.dataset, "2024-01-01"), build_labels(w.dataset, "2024-01-01")["y"]


@pytest.fixture(scope="module")
def card(world_xy):
    X, y = world_xy
    return TieredRiskModel(learner="scorecard").fit(X, y)


@pytest.fixture(scope="module")
def generic():
    X, y = tabular()
    return X, y, TieredRiskModel(learner="scorecard", monotone=MONO, special_codes={"months_on_book": [-999]},
                                 catalogue=None).fit(X, y)


def _from_table(model, X):
    """Score rebuilt by hand from points_table_: base + the points of each entity's bin."""
    pt = model.points_table_
    total = np.full(len(X), pt.loc[pt["feature"] == "base", "points"].item())
    M = model._prepare(X, fitting=False)
    for j, c in enumerate(model.feature_names_in_):
        rows = pt[pt["feature"] == c]
        slots = model.learner_.binnings[j].slots(M[:, j])
        assert list(rows["bin"]) == model.learner_.binnings[j].labels
        total += rows["points"].to_numpy()[slots]
    return total


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["scorecard", "lightgbm"])
@pytest.mark.parametrize("calibration", ["sigmoid", None, "isotonic"])
def test_points_add_up_to_the_credit_score(world_xy, learner, calibration):
    X, y = world_xy
    m = TieredRiskModel(learner=learner, calibration=calibration, n_estimators=40).fit(X, y)
    P = m.points(X)
    score = m.credit_score(X)
    assert list(P.columns[:1]) == ["base"] and list(P.columns[1:1 + X.shape[1]]) == list(X.columns)
    assert P.index.equals(X.index)
    assert np.ptp(P["base"]) == 0
    assert np.abs(P.sum(axis=1) - score).max() < 0.01
    assert ("calibration" in P.columns) == (calibration == "isotonic")
    if calibration == "sigmoid":  # the slope is folded in: raw contributions alone do not add up
        raw = -m.pdo / np.log(2) * m.contributions(X).sum(axis=1)
        assert np.ptp(score - raw) > 1.0


@pytest.mark.slow
def test_points_table_reproduces_every_score(card, world_xy, generic):
    X, _ = world_xy
    pt = card.points_table_
    assert list(pt.columns) == ["feature", "bin", "count", "event_rate", "woe", "iv", "points"]
    np.testing.assert_allclose(_from_table(card, X), card.credit_score(X).to_numpy(), atol=0.01)
    Xg, _, mg = generic
    np.testing.assert_allclose(_from_table(mg, Xg), mg.credit_score(Xg).to_numpy(), atol=0.01)
    # an unseen category and a missing value score with neutral (0) points
    odd = Xg.iloc[:2].copy()
    odd["colour"] = ["purple", None]
    P = mg.points(odd)
    assert (P["colour"] == 0).all()
    iso = TieredRiskModel(learner="scorecard", calibration="isotonic", monotone=MONO).fit(Xg, generic[1])
    with pytest.raises(AttributeError, match="linear calibration"):
        _ = iso.points_table_


@pytest.mark.slow
def test_binning_report_iv_and_selection(card, world_xy):
    X, y = world_xy
    t = card.binning_table("compl_365d")
    assert {"bin", "count", "count_share", "event", "event_rate", "woe", "iv", "points"} <= set(t.columns)
    assert t["count"].sum() == len(X)
    assert t["event"].sum() == pytest.approx(y.sum())
    assert card.iv_["compl_365d"] == pytest.approx(t["iv"].sum())
    reg = t[~t["bin"].isin(["missing"])]["woe"].to_numpy()
    assert np.all(np.diff(reg) > 0)  # catalogue direction +1: ascending
    assert (card.binning_table("age_days")["woe"].iloc[:-1].diff().dropna() < 0).all()  # direction -1
    with pytest.raises(KeyError, match="no feature"):
        card.binning_table("nope")
    sel = TieredRiskModel(learner="scorecard", min_iv=0.02).fit(X, y)
    low = card.iv_[card.iv_ < 0.02].index
    assert len(low) and set(sel.selected_features_) == set(card.iv_[card.iv_ >= 0.02].index)
    assert (sel.points(X.iloc[:200])[list(low)] == 0).all().all()
    with pytest.raises(AttributeError, match="learner='scorecard'"):
        TieredRiskModel(n_estimators=5).fit(X, y).binning_table("age_days")


@pytest.mark.slow
def test_generic_data_directions_special_codes_and_quality(generic):
    X, y, m = generic
    tr = {c: m.learner_.binnings[j].trend for j, c in enumerate(m.feature_names_in_)}
    assert tr["income"] == "descending" and tr["utilisation"] == "ascending"
    assert tr["months_on_book"] == "descending"  # 'auto' found it
    t = m.binning_table("months_on_book")
    assert (t["bin"] == "special -999").sum() == 1
    assert t.loc[t["bin"] == "special -999", "count"].item() == (X["months_on_book"] == -999).sum()
    assert t["bin"].iloc[0].startswith("(-inf, ") and float(t["bin"].iloc[0][7:-1]) > 1  # no -999 edge
    fi = pd.Series(m.feature_importances_, index=m.feature_names_in_)
    assert fi.sum() == pytest.approx(1.0) and fi.idxmin() == "noise"
    assert m.score(X, y) > 0.7
    # LightGBM on the same data: 'auto' resolved to a sign, importances without NaN
    lg = TieredRiskModel(monotone=MONO, catalogue=None).fit(X, y)
    assert lg.monotone_constraints_ == [-1, 1, 0, -1, 0]
    assert np.isfinite(lg.feature_importances_).all() and lg.feature_importances_.sum() == pytest.approx(1.0)


@pytest.mark.slow
def test_missing_directions_warn_by_name_and_mixed_frames_say_so(world_xy):
    X, y = tabular(600)
    with pytest.warns(UserWarning, match=r"no monotone direction for column\(s\) \['income', 'utilisation', "
                                         r"'noise', 'months_on_book'\]"):
        TieredRiskModel(learner="scorecard").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TieredRiskModel(learner="scorecard", monotone=MONO).fit(X, y)  # every column given: silent
        TieredRiskModel(learner="scorecard", monotone="auto").fit(X, y)
        TieredRiskModel(learner="scorecard", monotone=None).fit(X, y)
    Xw, yw = world_xy
    mixed = Xw.iloc[:600, :3].assign(own=np.arange(600.0))
    with pytest.warns(UserWarning, match=r"\['own'\].*\['age_days', 'registered_capital', 'employees'\] take their "
                                         "direction from the catalogue by name"):
        TieredRiskModel(learner="scorecard").fit(mixed, yw.iloc[:600])
    with pytest.warns(UserWarning, match=r"LightGBM takes only.*\['noise'\]"):
        TieredRiskModel(n_estimators=5, monotone={**MONO, "noise": "peak"}).fit(X, y)


@pytest.mark.parametrize(("params", "match"), [
    ({"monotone": {"income": 2}}, "direction of column 'income' must be -1, 0, 1 or one of"),
    ({"monotone": {"income": True}}, "direction of column 'income'"),
    ({"monotone": {"income": "up"}}, "direction of column 'income'"),
    ({"monotone": {"nope": 1}}, r"monotone names column\(s\) not in X: \['nope'\]"),
    ({"monotone": {"colour": 1}}, "column 'colour' is categorical and takes no direction"),
    ({"monotone": "sideways"}, "'monotone' parameter of TieredRiskModel must be"),
    ({"special_codes": {"colour": [1]}}, "column 'colour' is categorical"),
    ({"special_codes": {"income": ["x"]}}, "special_codes of column 'income' must be finite numbers"),
    ({"special_codes": {"nope": [1]}}, "special_codes names column 'nope' not in X"),
    ({"min_bin_size": 0.7}, "'min_bin_size' parameter"),
    ({"max_n_bins": 0}, "'max_n_bins' parameter"),
    ({"missing": "drop"}, "'missing' parameter"),
    ({"learner": "forest"}, "'learner' parameter"),
    ({"min_child_samples": "many"}, "'min_child_samples' parameter"),
])
def test_every_invalid_setting_has_a_clear_error(params, match):
    X, y = tabular(300)
    with pytest.raises(ValueError, match=match):
        TieredRiskModel(**{"learner": "scorecard", "monotone": None, **params}).fit(X, y)


def test_text_and_category_columns_score_the_same(generic):
    X, _, m = generic
    Xc = X.assign(colour=X["colour"].astype("category"))
    Xo = X.assign(colour=X["colour"].astype(object))
    np.testing.assert_array_equal(m.predict_proba(X), m.predict_proba(Xc))
    np.testing.assert_array_equal(m.predict_proba(X), m.predict_proba(Xo))
    # numbers stored as objects still match categories learned as text
    Xn = pd.DataFrame({"k": np.tile([1, 2, 3], 100).astype(object), "v": np.arange(300.0)})
    yn = (np.arange(300) % 3 == 0).astype(int)
    mn = TieredRiskModel(learner="scorecard", monotone=None).fit(Xn, yn)
    assert mn.categories_["k"] == ["1", "2", "3"]
    np.testing.assert_array_equal(mn.predict_proba(Xn), mn.predict_proba(Xn.assign(k=Xn["k"].astype(str))))


@pytest.mark.slow
def test_deterministic_and_pickles(generic):
    X, y, m = generic
    again = TieredRiskModel(**m.get_params()).fit(X, y)
    np.testing.assert_array_equal(m.predict_proba(X), again.predict_proba(X))
    pd.testing.assert_frame_equal(m.points_table_, pickle.loads(pickle.dumps(m)).points_table_)


def test_old_pickles_load_with_new_parameters(bundle, world):
    """The shipped LightGBM bundle predates the scorecard parameters: it loads, clones and its points add up."""
    m = bundle.model
    assert m.get_params()["max_n_bins"] == 10 and "n_bins" not in m.get_params()
    X = build_features(world.dataset, "2026-01-01", bundle.catalogue, bundle.policy).iloc[:500]
    assert np.abs(m.points(X).sum(axis=1) - m.credit_score(X)).max() < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["lightgbm", "scorecard"])
def test_check_estimator_at_default_settings(learner, target_expected_failures):
    # Defaults that depend on data size scale (min_child_samples="auto", min_bin_size a share).
    # The one exception: cross-fitted calibration splits rows, LightGBM histograms and the WOE
    # smoothing count rows, so weight 2 is not two copies.
    expected = {"check_sample_weight_equivalence_on_dense_data":
                "cross-fitted calibration and row-count smoothing: weight 2 is not two copies",
                **target_expected_failures}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(TieredRiskModel(learner=learner), expected_failed_checks=expected, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert sum(r["status"] == "passed" for r in results) >= 52  # + 7 target checks (tests/model/conftest.py)


@pytest.fixture(scope="module")
def scorecard_bundle(tmp_path_factory, world):
    from yiwu_credit.model.bundle import load_bundle, save_bundle
    from yiwu_credit.model.training import train

    res = train(world.dataset, "2024-01-01", learner="scorecard")
    d = tmp_path_factory.mktemp("sc") / "bundle"
    save_bundle(res.model, d, name="sc", version="0.1", catalogue=res.model.catalogue,
                policy=res.model.policy, training=res.training, metrics=res.metrics, reference=res.reference)
    return load_bundle(d)


@pytest.mark.slow
def test_report_has_a_scorecard_section(scorecard_bundle, world):
    import re

    pytest.importorskip("matplotlib")
    from yiwu_credit.pipeline.scoring import score_entities
    from yiwu_credit.report.html import build_report

    b = scorecard_bundle
    page = build_report(score_entities(world.dataset, "2025-01-01", b).scored, b)
    sec = re.search(r'<section id="scorecard">(.*?)</section>', page, re.S).group(1)
    assert 'id="scorecard-iv"' in sec and 'id="scorecard-points"' in sec
    iv = b.model.iv_
    best = iv.idxmax()
    assert f'data-key="{best}"' in sec and f'data-value="{float(iv[best])!r}"' in sec
    base = b.model.points_table_.iloc[0]["points"]
    assert f'data-value="{float(base)!r}"' in sec


@pytest.mark.slow
def test_single_entity_path_scores_a_scorecard_bundle(scorecard_bundle, world):
    from yiwu_credit.data.contract import TABLES
    from yiwu_credit.pipeline.scoring import Scorer, score_entities

    b = scorecard_bundle
    batch = score_entities(world.dataset, "2025-01-01", b).scored
    sc = Scorer(b)
    ds = world.dataset

    def records(df):
        return [{k: (None if v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v)
                     else str(v.date()) if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
                for r in df.to_dict("records")]

    for eid in batch.sort_values("probability").index[-15:]:
        ent = records(ds.entities[ds.entities["entity_id"] == eid])[0]
        events = {n: records(ds.table(n)[ds.table(n)["entity_id"] == eid]) for n in TABLES if n != "entities"}
        one = sc.score_one(ent, events, "2025-01-01")
        assert one["probability"] == pytest.approx(batch.loc[eid, "probability"], abs=1e-9)
        assert one["reasons"] and one["reasons"][0][0] == batch.loc[eid, "reason_1"]
