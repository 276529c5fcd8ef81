"""Risk evidence moves risk (issue 11 item 8): a recent penalty never lowers probability or tier;
heavy recent records reach C/D through a policy rule; values beyond the training range are flagged."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.dataset import Dataset
from yiwu_credit.features.build import build_features
from yiwu_credit.features.ranges import RANGES_FILE, RangeCheck, feature_ranges
from yiwu_credit.model.bundle import load_bundle
from yiwu_credit.model.labels import build_labels
from yiwu_credit.pipeline.scoring import Scorer, score_entities
from yiwu_credit.policy import TIERS, load_policy
from yiwu_credit.tiering.overrides import override_ranks

AS_OF = "2025-01-01"
RANK = {t: i for i, t in enumerate(TIERS)}


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v)
                 else str(v.date()) if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
            for r in df.to_dict("records")]


class _World:
    """Per-entity slices of the small world: a one-entity Dataset (batch) and plain records (online)."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.groups = {n: dict(tuple(ds.table(n).groupby("entity_id", sort=False))) for n in TABLES}

    def tables(self, eid: str) -> dict[str, pd.DataFrame]:
        return {n: self.groups[n].get(eid, self.ds.table(n).iloc[:0]).reset_index(drop=True) for n in TABLES}

    def dataset(self, eid: str, extra: list[dict]) -> Dataset:
        t = self.tables(eid)
        if extra:
            add = pd.DataFrame(extra).astype({"decided_on": "datetime64[s]", "repaired_on": "datetime64[s]"})
            t["penalties"] = pd.concat([t["penalties"], add.astype(t["penalties"].dtypes.to_dict())],
                                       ignore_index=True)
        return Dataset(**t)

    def records(self, eid: str, extra: list[dict]) -> tuple[dict, dict]:
        t = self.tables(eid)
        ent = _records(t["entities"])[0]
        events = {n: _records(t[n]) for n in TABLES if n != "entities"}
        events["penalties"] = events["penalties"] + [dict(p, decided_on=str(p["decided_on"].date()),
                                                          repaired_on=None) for p in extra]
        return ent, events


def _penalty(eid: str, days_ago: int, fine: float, as_of: str = AS_OF) -> dict:
    return {"entity_id": eid, "decided_on": pd.Timestamp(as_of) - pd.Timedelta(days=days_ago), "procedure": "general",
            "fine_cny": float(fine), "domain": "pricing", "repaired_on": pd.NaT}


@pytest.fixture(scope="module")
def small(world):
    return _World(world.dataset)


@pytest.fixture(scope="module")
def pool_ids(world, bundle):
    X = build_features(world.dataset, AS_OF, bundle.catalogue, bundle.policy)
    young = X.index[X["age_days"] <= bundle.policy.overrides.new_entity_days]
    return list(X.index), list(young)


@pytest.fixture(scope="module")
def ages(world, bundle) -> dict[str, int]:
    X = build_features(world.dataset, AS_OF, bundle.catalogue, bundle.policy)
    return X["age_days"].astype(int).to_dict()


@pytest.fixture(scope="module")
def all_a(bundle):
    """The shipped bundle tiered by its policy with thresholds that put every entity in model tier
    A (probabilities are clipped at 1 - 1e-6): whatever ends above A got there through a policy rule."""
    raw = copy.deepcopy(bundle.policy.raw)
    raw["tiers"]["method"] = "thresholds"
    raw["tiers"]["thresholds"] = {"A": 1 - 1e-6, "B": 1 - 5e-7, "C": 1 - 1e-7}
    return dataclasses.replace(bundle, policy=dataclasses.replace(bundle.policy, raw=raw))


def _both(small: _World, scorer: Scorer, eid: str, extra: list[dict]) -> tuple[pd.Series, dict]:
    row = score_entities(small.dataset(eid, extra), AS_OF, scorer.bundle, reasons="none").scored.loc[eid]
    ent, events = small.records(eid, extra)
    return row, scorer.score_one(ent, events, AS_OF)


_fines = st.one_of(st.sampled_from([0.0, 500.0, 10_000.0, 10_010.0, 50_000.0]),
                   st.floats(0, 2_000_000, allow_nan=False, allow_infinity=False))
_pen = st.tuples(st.integers(1, 365), _fines)


# derandomize: a fixed example sequence on every run (no flaky CI); 60 examples × 4 scorings ≈ 10 s
@pytest.mark.slow
@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), before=st.lists(_pen, max_size=4), new=_pen)
def test_a_recent_general_penalty_never_lowers_probability_or_tier(small, pool_ids, ages, bundle, data, before,
                                                                   new):
    everyone, young = pool_ids
    eid = data.draw(st.one_of(st.sampled_from(everyone), st.sampled_from(young)), label="entity")
    assume(ages[eid] >= 1)
    # penalties on or after the establishment date (an earlier one breaks the contract: refused online)
    before = [(min(d, ages[eid]), f) for d, f in before]
    new = (min(new[0], ages[eid]), new[1])
    scorer = _scorer(bundle)
    extra0 = [_penalty(eid, d, f) for d, f in before]
    extra1 = extra0 + [_penalty(eid, *new)]
    b0, o0 = _both(small, scorer, eid, extra0)
    b1, o1 = _both(small, scorer, eid, extra1)
    assert b1["probability"] >= b0["probability"] - 1e-12
    assert o1["probability"] >= o0["probability"] - 1e-12
    assert RANK[b1["tier"]] >= RANK[b0["tier"]], (b0["tier"], b0["overrides"], b1["tier"], b1["overrides"])
    assert RANK[o1["tier"]] >= RANK[o0["tier"]]
    assert (o1["tier"], o1["overrides"], o1["out_of_range"]) == (b1["tier"], b1["overrides"], b1["out_of_range"])


_SCORERS: dict[int, Scorer] = {}


def _scorer(bundle) -> Scorer:
    return _SCORERS.setdefault(id(bundle), Scorer(bundle))


def test_young_entity_with_a_record_keeps_the_provisional_tier(small, pool_ids, all_a):
    """A warning (never published, invisible to the model) ends is_new; the young entity must not
    drop from the provisional B to the model's A."""
    _, young = pool_ids
    scorer = Scorer(all_a)
    checked = 0
    for eid in young[:8]:
        b0, o0 = _both(small, scorer, eid, [])
        b1, o1 = _both(small, scorer, eid, [_penalty(eid, 30, 0.0)])
        if not b0["is_new"]:
            continue
        checked += 1
        assert b0["tier"] == o0["tier"] == "B" and b0["overrides"] == "new_entity->B"
        assert b1["probability"] == pytest.approx(b0["probability"], abs=1e-12)
        assert b1["tier"] == o1["tier"] == "B"
        assert b1["new_with_record"] and o1["new_with_record"] and not b1["is_new"]
        assert b1["overrides"] == o1["overrides"] == "new_entity_record->B+"
    assert checked >= 2


ISSUE_CASES = [  # (count, fine): the two cases of the issue
    (12, 50_000.0),
    (100_000, 50_000.0),
]


def _spread(eid: str, count: int, fine: float) -> list[dict]:
    days = 1 + (np.arange(count) * 364) // count  # spread over the past year
    return [_penalty(eid, int(d), fine) for d in days]


@pytest.fixture(scope="module")
def old_clean_entity(world, bundle):
    """A long-established entity with a clean record and a low model tier."""
    s = score_entities(world.dataset, AS_OF, bundle, reasons="none").scored
    X = build_features(world.dataset, AS_OF, bundle.catalogue, bundle.policy)
    ok = (s["tier"] == "A") & (X["age_days"] > 3 * 365) & (X["pen_decayed"] == 0)
    return s.index[ok][0]


@pytest.mark.slow
@pytest.mark.parametrize("count, fine", ISSUE_CASES)
def test_issue_cases_end_in_c_or_d(small, bundle, all_a, old_clean_entity, count, fine):
    eid = old_clean_entity
    extra = _spread(eid, count, fine)
    # the shipped model alone already ranks them high ...
    b, o = _both(small, _scorer(bundle), eid, extra)
    assert b["tier"] in ("C", "D") and o["tier"] == b["tier"]
    assert b["probability"] == pytest.approx(o["probability"], abs=1e-9)
    assert b["recent_penalties"] == o["recent_penalties"] == count
    assert b["recent_fines_cny"] == pytest.approx(count * fine) and o["recent_fines_cny"] == pytest.approx(count * fine)
    beyond = count > bundle.ranges["features"]["pen_general_365d"]["max"]
    assert ("pen_general_365d" in b["out_of_range"].split(";")) == beyond
    assert o["out_of_range"] == b["out_of_range"]
    # ... and the policy rule guarantees it when the model does not (every model tier A)
    b, o = _both(small, Scorer(all_a), eid, extra)
    assert b["model_tier"] == o["model_tier"] == "A"
    assert b["tier"] == o["tier"] == "D"
    assert b["overrides"] == o["overrides"] == "heavy_penalties_365d->C+;severe_penalties_365d->D+"
    assert "heavy_penalties" in b["overrides"]


def test_heavy_penalty_rule_thresholds_and_labels():
    pol = load_policy()
    o = pol.overrides
    n = 6
    cnt = np.array([0, o.heavy_penalties_min_count - 1, o.heavy_penalties_min_count,
                    o.severe_penalties_min_count, 1, 0], dtype=float)
    fines = np.array([0, 0, 0, 0, o.severe_penalties_min_fines_cny, o.severe_penalties_min_fines_cny - 1])
    f = {k: np.zeros(n, dtype=bool) for k in ("serious_dishonest", "abnormal_operation", "adverse_conduct", "is_new")}
    f.update(recent_penalties=cnt, recent_fines_cny=fines)
    r, notes = override_ranks(np.zeros(n, dtype=int), f, pol)
    assert [TIERS[i] for i in r] == ["A", "A", "C", "D", "D", "A"]
    assert list(notes) == ["", "", "heavy_penalties_365d->C+", "heavy_penalties_365d->C+;severe_penalties_365d->D+",
                           "severe_penalties_365d->D+", ""]
    # a model tier above the floor is kept and nothing is noted
    r, notes = override_ranks(np.full(n, 3), f, pol)
    assert (r == 3).all() and (notes == "").all()
    # a policy without the keys (before 1.1.0) has no such rule
    raw = copy.deepcopy(pol.raw)
    for k in [k for k in raw["overrides"] if "penalties" in k]:
        del raw["overrides"][k]
    r, notes = override_ranks(np.zeros(n, dtype=int), f, dataclasses.replace(pol, raw=raw))
    assert (r == 0).all()


def test_penalty_counts_only_recent_shown_general_penalties(small, bundle, old_clean_entity):
    eid = old_clean_entity
    extra = [_penalty(eid, 10, 20_000), _penalty(eid, 364, 20_000), _penalty(eid, 366, 20_000),  # 366: too old
             _penalty(eid, 200, 5_000),  # a low fine is shown 90 days only
             _penalty(eid, 20, 0.0),  # a warning is never shown
             dict(_penalty(eid, 30, 100.0), procedure="simple")]
    b, o = _both(small, _scorer(bundle), eid, extra)
    assert b["recent_penalties"] == o["recent_penalties"] == 2
    assert b["recent_fines_cny"] == o["recent_fines_cny"] == 40_000


# ------------------------------------------------------------------ out-of-range flags

def test_range_check_flags_numbers_and_categories():
    X = pd.DataFrame({"a": [0.0, 5.0, np.nan], "c": pd.Categorical(["x", "y", None], categories=["x", "y", "z"])})
    r = feature_ranges(X)
    assert r["features"] == {"a": {"min": 0.0, "max": 5.0}, "c": {"categories": ["x", "y"]}}
    rc = RangeCheck(r, ["a", "c"], {"c": ["x", "y", "z"]})
    Y = pd.DataFrame({"a": [-1.0, 2.0, 6.0, np.nan], "c": pd.Categorical(["x", "z", "z", None], categories=["x", "y", "z"])})
    assert list(rc.frame_flags(Y)) == ["a", "c", "a;c", ""]
    assert list(RangeCheck(None, ["a", "c"]).frame_flags(Y)) == ["", "", "", ""]


def test_bundle_stores_training_ranges(bundle):
    assert bundle.ranges is not None and bundle.ranges["source"] == "training"
    assert bundle.ranges["n"] == bundle.manifest["training"]["n_train"]
    assert set(bundle.ranges["features"]) == set(bundle.model.feature_names_in_)
    assert RANGES_FILE in bundle.manifest["files"]
    # the reference sample lies inside the full training ranges
    for name, r in bundle.ranges["features"].items():
        if "min" in r:
            v = bundle.reference[name].dropna()
            assert r["min"] <= v.min() and v.max() <= r["max"], name


def test_out_of_range_in_batch_and_online(world, small, bundle, old_clean_entity):
    s = score_entities(world.dataset, AS_OF, bundle, reasons="none").scored
    assert s["out_of_range"].map(type).eq(str).all()
    assert (s["out_of_range"] == "").mean() > 0.8
    eid = old_clean_entity
    b, o = _both(small, _scorer(bundle), eid, _spread(eid, 100, 2_000_000.0))
    flags = b["out_of_range"].split(";")
    assert {"pen_general_365d", "pen_general_1095d", "pen_fine_sum_1095d", "pen_fine_max_1095d"} <= set(flags)
    assert o["out_of_range"] == b["out_of_range"]
    b, o = _both(small, _scorer(bundle), eid, [])
    assert b["out_of_range"] == o["out_of_range"]


def test_old_bundle_without_ranges_falls_back_to_the_reference(tmp_path, bundle, small, old_clean_entity):
    d = tmp_path / "old"
    shutil.copytree(bundle.path, d)
    m = json.loads((d / "manifest.json").read_text())
    del m["files"][RANGES_FILE]
    (d / RANGES_FILE).unlink()
    (d / "manifest.json").write_text(json.dumps(m))
    old = load_bundle(d)
    assert old.ranges is None
    eid = old_clean_entity
    extra = _spread(eid, 100, 2_000_000.0)
    b, o = _both(small, Scorer(old), eid, extra)
    assert "pen_general_365d" in b["out_of_range"] and o["out_of_range"] == b["out_of_range"]
    none = dataclasses.replace(old, reference=None)
    b, o = _both(small, Scorer(none), eid, extra)
    assert b["out_of_range"] == o["out_of_range"] == ""


def test_report_counts_out_of_range(world, bundle):
    pytest.importorskip("matplotlib")
    from yiwu_credit.report.html import build_report

    s = score_entities(world.dataset, AS_OF, bundle, reasons="none").scored.copy()
    s.iloc[:7, s.columns.get_loc("out_of_range")] = "pen_general_365d;age_days"
    s.iloc[7:10, s.columns.get_loc("out_of_range")] = "age_days"
    s.iloc[10:, s.columns.get_loc("out_of_range")] = ""
    page = build_report(s, bundle)
    assert '<b id="oor-entities">10</b>' in page
    table = page.split('id="out-of-range"')[1].split("</table>")[0]
    n = {k: float(v) for k, v in re.findall(r'<tr data-key="([^"]+)">.*?data-col="n" data-value="([^"]+)"', table)}
    assert n == {"(any)": 10, "age_days": 10, "pen_general_365d": 7}


# ------------------------------------------------------------------ the synthetic world

def test_recent_penalty_predicts_next_year_in_the_synthetic_world(world):
    X = build_features(world.dataset, "2024-01-01")
    y = build_labels(world.dataset, "2024-01-01")["y"].reindex(X.index)
    pen = X["pen_general_365d"] > 0
    assert 0.03 < y.mean() < 0.08
    assert y[pen].mean() > 4 * y[~pen].mean()


def test_every_penalty_count_and_fine_feature_is_non_decreasing(bundle):
    """More penalties or larger fines can never lower risk: the monotone directions the model uses."""
    for f in bundle.catalogue.features:
        s = f.spec
        if s.table != "penalties":
            continue
        want = -1 if s.aggregation == "days_since_last" else 1
        assert s.direction == want, f.name
    mono = dict(zip(bundle.model.feature_names_in_, bundle.model.monotone_constraints_, strict=True))
    assert all(mono[n] == 1 for n in mono if n.startswith(("pen_general", "pen_fine", "pen_decayed")))


@pytest.mark.parametrize("old, new, message", [
    ("severe_penalties_min_count = 6", "severe_penalties_min_count = 2", "must be >= heavy_penalties_min_count"),
    ('heavy_penalties_min_tier = "C"', 'heavy_penalties_min_tier = "E"', "heavy_penalties_min_tier"),
    ("heavy_penalties_days = 365", "", "missing key 'heavy_penalties_days'"),
])
def test_heavy_penalty_rule_config_errors(tmp_path, old, new, message):
    from importlib import resources

    from yiwu_credit.errors import ConfigError

    text = (resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022.toml").read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / "p.toml"
    p.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_policy(p)
