"""Tiering is its own step: cut-offs come from the policy at scoring time, fitted on the bundle's
reference distribution, so another policy's shares or thresholds take effect without a refit."""

import copy
import dataclasses
import json
import re
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from yiwu_credit import BundleError, TieredRiskModel, load_bundle
from yiwu_credit.cli import main
from yiwu_credit.data.io import sha256_file
from yiwu_credit.pipeline.scoring import Scorer, score_entities
from yiwu_credit.policy import TIERS, load_policy
from yiwu_credit.report.html import build_report
from yiwu_credit.tiering import fit_cutoffs, tier_cutoffs

AS_OF = "2025-01-01"
LEGACY = Path(__file__).parent / "data" / "bundle-0.1"  # a tiny bundle pickled in the 0.1 layout
#: Tolerance on tier shares of a fresh population (~2,450 entities, a year after training) against
#: the policy's shares: the binomial SE of a share is ≤ 0.01 at that size, plus population drift.
SHARE_TOL = 0.035


def _policy(tmp_path: Path, name: str, method: str = "shares", **tables: dict) -> Path:
    """The shipped policy renamed, with another ``[tiers]`` method and shares/thresholds (TOML)."""
    text = (resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text, count=1)
    text = re.sub(r'(?m)^method = ".*"$', f'method = "{method}"', text, count=1)
    for key, values in tables.items():
        inline = ", ".join(f"{k} = {v}" for k, v in values.items())
        text = re.sub(rf"(?m)^{key} = \{{.*\}}$", f"{key} = {{ {inline} }}", text, count=1)
    p = tmp_path / f"{name}.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def other_shares(tmp_path_factory):
    return _policy(tmp_path_factory.mktemp("pol"), "shares-20-30-30-20",
                   shares={"A": 0.2, "B": 0.3, "C": 0.3, "D": 0.2})


@pytest.fixture(scope="module")
def thresholds(tmp_path_factory):
    return _policy(tmp_path_factory.mktemp("pol"), "fixed-thresholds", method="thresholds",
                   thresholds={"A": 0.02, "B": 0.05, "C": 0.2})


@pytest.fixture(scope="module")
def default_run(world, bundle):
    return score_entities(world.dataset, AS_OF, bundle, reasons="none")


def _shares(tiers: pd.Series) -> np.ndarray:
    return tiers.value_counts(normalize=True).reindex(list(TIERS), fill_value=0).to_numpy()


def test_other_shares_take_effect_without_refit(world, bundle, default_run, other_shares):
    pol = load_policy(other_shares)
    before = bundle.model.oof_proba_.copy()
    run = score_entities(world.dataset, AS_OF, bundle, reasons="none", policy=other_shares)
    np.testing.assert_array_equal(bundle.model.oof_proba_, before)  # nothing was refitted
    np.testing.assert_array_equal(run.scored["probability"], default_run.scored["probability"])
    want = np.array([pol.tiers.shares[t] for t in TIERS])
    # exactly on the reference distribution (to ties), statistically on a fresh population
    ref = pd.Series(run.tiering.tiers(bundle.model.oof_proba_))
    np.testing.assert_allclose(_shares(ref), want, atol=2e-3)
    np.testing.assert_allclose(_shares(run.scored["model_tier"]), want, atol=SHARE_TOL)
    default_want = np.array([bundle.policy.tiers.shares[t] for t in TIERS])
    np.testing.assert_allclose(_shares(default_run.scored["model_tier"]), default_want, atol=SHARE_TOL)
    assert not np.allclose(_shares(run.scored["model_tier"]), _shares(default_run.scored["model_tier"]), atol=0.05)
    # a riskier entity never gets a better model tier
    rank = run.scored["model_tier"].map({t: i for i, t in enumerate(TIERS)})
    order = np.argsort(run.scored["probability"].to_numpy(), kind="stable")
    assert (np.diff(rank.to_numpy()[order]) >= 0).all()


def test_thresholds_policy_takes_effect(world, bundle, thresholds):
    run = score_entities(world.dataset, AS_OF, bundle, reasons="none", policy=thresholds)
    assert run.tiering.method == "thresholds" and run.tiering.cutoffs == (0.02, 0.05, 0.2)
    p = run.scored["probability"].to_numpy()
    want = np.array(TIERS)[(p > 0.02).astype(int) + (p > 0.05) + (p > 0.2)]
    np.testing.assert_array_equal(run.scored["model_tier"].to_numpy(dtype=str), want)


def test_output_records_the_policy_that_tiered_it(world, bundle, default_run, other_shares):
    pol = load_policy(other_shares)
    run = score_entities(world.dataset, AS_OF, bundle, reasons="none", policy=pol)
    assert (run.scored["tier_policy"] == f"{pol.name}@{pol.version}").all()
    assert (run.scored["tier_policy_sha256"] == pol.sha256).all()
    assert run.scored.attrs["tiering"]["policy_sha256"] == pol.sha256 == run.tiering.policy.sha256
    assert set(run.scored.attrs["tiering"]["cutoffs"]) == {"A", "B", "C"}
    assert (default_run.scored["tier_policy_sha256"] == bundle.policy.sha256).all()
    # labels follow the tiering policy too
    assert (run.scored["tier_zh"] == run.scored["tier"].map(lambda t: pol.tier_label(t, "zh"))).all()


def test_single_entity_path_tiers_with_the_same_policy(world, bundle, other_shares):
    from tests.pipeline.test_scoring import _entity  # the records of one entity

    run = score_entities(world.dataset, AS_OF, bundle, reasons="none", policy=other_shares)
    sc = Scorer(bundle, policy=other_shares)
    for eid in run.scored.index[::97][:25]:
        ent, events = _entity(world, eid)
        one = sc.score_one(ent, events, AS_OF)
        row = run.scored.loc[eid]
        assert (one["model_tier"], one["tier"], one["tier_policy_sha256"]) == (
            row["model_tier"], row["tier"], row["tier_policy_sha256"])


def test_same_policy_gives_the_frozen_cutoffs_of_older_bundles(world):
    """A bundle written before tiering was a step (format /1, pickled in the 0.1 layout) still
    loads, and its own policy gives exactly the cut-offs frozen in its manifest, hence the same
    tiers as before."""
    b = load_bundle(LEGACY)
    assert b.manifest["format"] == "yiwu-credit-bundle/1"
    assert list(b.tiering().cutoffs) == b.manifest["tier_cutoffs"]
    run = score_entities(world.dataset, AS_OF, b, reasons="none")
    p = run.scored["probability"].to_numpy()
    frozen = np.array(TIERS)[np.searchsorted(b.manifest["tier_cutoffs"], p, side="left")]
    np.testing.assert_array_equal(run.scored["model_tier"].to_numpy(dtype=str), frozen)


def test_shipped_bundle_reproduces_its_manifest_cutoffs(bundle):
    assert list(bundle.tiering().cutoffs) == bundle.manifest["tier_cutoffs"]
    assert bundle.manifest["reference"]["n"] == len(bundle.model.oof_proba_)


def test_bundle_whose_cutoffs_cannot_be_reproduced_is_refused(tmp_path):
    t = tmp_path / "b"
    shutil.copytree(LEGACY, t)
    man = json.loads((t / "manifest.json").read_text())
    man["tier_cutoffs"] = [0.01, 0.02, 0.03]  # e.g. a weighted /1 fit, whose weights were not kept
    (t / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleError, match="cut-offs .* differ from the manifest"):
        load_bundle(t)
    assert sha256_file(t / "model.joblib") == man["files"]["model.joblib"]


@pytest.mark.slow
def test_estimator_tiers_with_its_policy_parameter_without_refit(tmp_path, other_shares):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.uniform(size=3000)})
    y = (rng.uniform(size=3000) < 1 / (1 + np.exp(2 - 1.5 * X["a"]))).astype(int)
    m = TieredRiskModel(n_estimators=20, monotone=None).fit(X, y)
    learned = {k: v for k, v in vars(m).items() if k.endswith("_")}
    t_default = m.predict_tier(X)
    m.set_params(policy=str(other_shares))
    t_other = m.predict_tier(X)
    assert {k for k in vars(m) if k.endswith("_")} == set(learned)  # predicting learned nothing
    pol = load_policy(other_shares)
    # 20 small trees on two features: many tied probabilities, a tie is never split across tiers
    np.testing.assert_allclose(_shares(pd.Series(m.tiers_from_proba(m.oof_proba_))),
                               [pol.tiers.shares[t] for t in TIERS], atol=0.01)
    assert not t_default.equals(t_other)
    assert clone(m).get_params()["policy"] == str(other_shares)
    np.testing.assert_array_equal(m.predict_tier(X, policy="yiwu-2022"), t_default)


def test_weighted_reference_gives_weighted_shares():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.001, 0.5, 20_000)
    w = rng.choice([1.0, 10.0], size=len(p))
    tiers = load_policy().tiers
    cut = fit_cutoffs(p, w, tiers)
    r = np.searchsorted(cut, p, side="left")
    got = np.bincount(r, weights=w, minlength=4) / w.sum()
    np.testing.assert_allclose(got, [tiers.shares[t] for t in TIERS], atol=2e-3)
    assert not np.allclose(cut, fit_cutoffs(p, None, tiers))
    with pytest.raises(ValueError, match="non-negative"):
        fit_cutoffs(p, -w, tiers)
    with pytest.raises(ValueError, match="non-empty"):
        tier_cutoffs(np.array([]), None)


def test_report_refuses_a_run_tiered_by_another_policy(world, bundle, other_shares):
    pytest.importorskip("matplotlib")
    run = score_entities(world.dataset, AS_OF, bundle, reasons="none", policy=other_shares)
    with pytest.raises(ValueError, match="tiered by policy shares-20-30-30-20"):
        build_report(run.scored, bundle)
    page = build_report(run.scored, bundle, policy=other_shares)
    assert "shares-20-30-30-20" in page


def test_cli_score_policy(world_copy, tmp_path, capsys, other_shares):
    out = tmp_path / "scores.csv"
    assert main(["score", "--data", str(world_copy), "--as-of", AS_OF, "--out", str(out), "--reasons", "none",
                 "--policy", str(other_shares)]) == 0
    printed = capsys.readouterr().out
    assert "tiered by policy shares-20-30-30-20@" in printed
    s = pd.read_csv(out)
    assert (s["tier_policy"].str.startswith("shares-20-30-30-20@")).all()
    assert (s["tier_policy_sha256"] == load_policy(other_shares).sha256).all()


def test_policy_override_facts_follow_the_tiering_policy(world, bundle, tmp_path):
    """A tiering policy with a longer new-entity period marks more entities new (overrides are
    part of tiering); features keep the bundle's definitions."""
    raw = copy.deepcopy(bundle.policy.raw)
    raw["overrides"]["new_entity_days"] = 3 * raw["overrides"]["new_entity_days"]
    pol = dataclasses.replace(bundle.policy, raw=raw)
    base = score_entities(world.dataset, AS_OF, bundle, reasons="none")
    run = score_entities(world.dataset, AS_OF, bundle, reasons="none", policy=pol)
    assert run.scored["is_new"].sum() > base.scored["is_new"].sum()
    pd.testing.assert_frame_equal(run.features, base.features)
