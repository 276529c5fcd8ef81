"""The fast scoring stages against straightforward references, and the optional compiled trees.

Speed is measured in benchmarks/bench_scoring.py, never here: these tests only check that the
fast paths give the same probabilities, tiers, overrides and reasons as plain implementations.
"""

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.data.contract import TABLES
from yiwu_credit.features.build import build_features, override_facts
from yiwu_credit.model.compiled import ENABLE_ENV, CompiledTrees, available, wanted
from yiwu_credit.model.inputs import row_major
from yiwu_credit.model.reasons import MIN_CONTRIB, top_reasons
from yiwu_credit.pipeline.scoring import Scorer, score_entities
from yiwu_credit.policy import FACT_FLAGS, TIERS
from yiwu_credit.tiering.overrides import override_ranks

AS_OF = "2026-01-01"


@pytest.fixture(scope="module")
def scored(world, bundle):
    return score_entities(world.dataset, AS_OF, bundle, reasons="all")


@pytest.fixture(scope="module")
def X(world, bundle):
    return build_features(world.dataset, AS_OF, bundle.catalogue, bundle.policy)


def _entity(world, eid) -> tuple[dict, dict]:
    """One entity and its events as plain records (what Scorer.score_one takes)."""
    def records(df: pd.DataFrame) -> list[dict]:
        return [{k: (None if v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v)
                     else str(v.date()) if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
                for r in df.to_dict("records")]

    ds = world.dataset
    ent = records(ds.entities[ds.entities["entity_id"] == eid])[0]
    return ent, {n: records(ds.table(n)[ds.table(n)["entity_id"] == eid]) for n in TABLES if n != "entities"}


def _dense_contrib(learner, leaves: np.ndarray) -> np.ndarray:
    """Path attribution the plain way: gather (rows, trees, features) and sum over trees."""
    table, offsets = learner._path_table()
    return table[offsets[None, :] + leaves.astype(np.int64)].sum(axis=1, dtype=np.float64)


def _plain_notes(r: np.ndarray, f: dict, pol) -> tuple[np.ndarray, np.ndarray]:
    """The override rules with notes built string by string (the reference for the bit masks)."""
    o, rank = pol.overrides, {t: i for i, t in enumerate(TIERS)}
    r = np.array(r, dtype=int)
    notes = np.full(len(r), "", dtype=object)

    def rule(mask, new_rank, label):
        changed = mask & (new_rank != r)
        r[mask] = new_rank[mask]
        notes[changed] = np.where(notes[changed] == "", label, notes[changed] + ";" + label)

    nt = o.new_entity_tier
    rule(f["is_new"], np.full(len(r), rank[nt]), f"new_entity->{nt}")
    rule(f["new_with_record"], np.maximum(r, rank[nt]), f"new_entity_record->{nt}+")
    rule(f["abnormal_operation"], np.maximum(r, rank[o.abnormal_operation_min_tier]),
         f"abnormal_operation->{o.abnormal_operation_min_tier}+")
    rule(f["adverse_conduct"], np.maximum(r, rank[o.adverse_conduct_min_tier]),
         f"adverse_conduct->{o.adverse_conduct_min_tier}+")
    if o.heavy_penalty_rule:
        cnt, fines, days = f["recent_penalties"], f["recent_fines_cny"], int(o.heavy_penalties_days)
        ht, st = o.heavy_penalties_min_tier, o.severe_penalties_min_tier
        rule(cnt >= o.heavy_penalties_min_count, np.maximum(r, rank[ht]), f"heavy_penalties_{days}d->{ht}+")
        severe = (cnt >= o.severe_penalties_min_count) | (fines >= o.severe_penalties_min_fines_cny)
        rule(severe, np.maximum(r, rank[st]), f"severe_penalties_{days}d->{st}+")
    rule(f["serious_dishonest"], np.full(len(r), rank[o.serious_dishonest_tier]),
         f"serious_dishonest->{o.serious_dishonest_tier}")
    return r, notes


def test_probabilities_are_the_models(world, bundle, scored, X):
    p = bundle.model.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(scored.scored["probability"].to_numpy(), p)


def test_feature_matrix_equals_column_by_column(bundle, X):
    m = bundle.model
    cols = []
    for c in m.feature_names_in_:
        s = X[c]
        if c in m.categories_:
            codes = s.cat.set_categories(m.categories_[c]).cat.codes.to_numpy()
            cols.append(np.where(codes < 0, np.nan, codes))
        else:
            cols.append(s.to_numpy(dtype="float64", na_value=np.nan))
    M = m.feature_matrix(X)
    assert M.flags["C_CONTIGUOUS"] and M.dtype == np.float64
    np.testing.assert_array_equal(M, np.column_stack(cols))


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 10_000])
def test_row_major_equals_column_stack(n):
    rng = np.random.default_rng(n)
    cols = [rng.normal(size=n), np.arange(n, dtype=float), np.full(n, np.nan)]
    M = row_major(cols, n)
    assert M.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(M, np.column_stack(cols).reshape(n, 3))


def test_tiers_and_overrides_equal_the_plain_path(world, bundle, scored):
    from yiwu_credit.tiering.overrides import apply_overrides

    b, s = bundle, scored.scored
    cut = b.tiering()
    facts = override_facts(world.dataset, AS_OF, b.policy, b.catalogue)  # no shared events, own index
    model_tier = pd.Series(cut.tiers(s["probability"].to_numpy()), index=facts.index)
    final = apply_overrides(model_tier, facts, b.policy)
    assert list(s.index) == list(facts.index)
    assert (s["model_tier"].to_numpy() == model_tier.to_numpy()).all()
    assert (s["tier"].to_numpy() == final["tier"].to_numpy()).all()
    assert (s["overrides"].to_numpy() == final["overrides"].to_numpy()).all()
    for c in facts.columns:
        np.testing.assert_array_equal(s[c].to_numpy(), facts[c].to_numpy())
    assert (s["overrides"] != "").any() and s["tier"].nunique() == 4


def test_override_notes_equal_string_by_string_notes(bundle):
    rng = np.random.default_rng(3)
    n = 5000
    f = {c: rng.random(n) < 0.15 for c in FACT_FLAGS}
    f["recent_penalties"] = rng.integers(0, 5, n).astype(float)
    f["recent_fines_cny"] = rng.choice([0.0, 1e3, 1e5, 1e6], n)
    r0 = rng.integers(0, 4, n)
    got_r, got_notes = override_ranks(r0, f, bundle.policy)
    want_r, want_notes = _plain_notes(r0, f, bundle.policy)
    np.testing.assert_array_equal(got_r, want_r)
    assert list(got_notes) == list(want_notes)
    assert len(set(got_notes)) > 5


def test_sparse_path_attribution_is_bit_identical_to_the_dense_gather(bundle, X):
    L = bundle.model.learner_
    M = bundle.model.feature_matrix(X)
    leaves = L.leaves(M)
    got = L.contrib_from_leaves(leaves)
    np.testing.assert_array_equal(got, _dense_contrib(L, leaves))
    # and still adds up to the margin less the trees' root values
    np.testing.assert_allclose(got.sum(axis=1) + L.base_margin(), L.margin(M), atol=1e-5)


@pytest.mark.parametrize("k", [0, 1, 3, 8])
def test_top_reasons_equal_a_stable_descending_sort(k):
    rng = np.random.default_rng(k)
    C = rng.integers(-2, 3, size=(2000, 6)).astype(float) * 0.5  # many ties and non-positive values
    C[:10] = 0.0
    order, pos = top_reasons(C, k)
    want = np.argsort(-C, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(order, want)
    np.testing.assert_array_equal(pos, np.take_along_axis(C, want, axis=1) > MIN_CONTRIB)


def test_reasons_equal_the_plain_path(bundle, scored, X):
    m, s = bundle.model, scored.scored
    feats = {f.name: f for f in bundle.catalogue.features}
    names = list(m.feature_names_in_)
    C = _dense_contrib(m.learner_, m.learner_.leaves(m.feature_matrix(X)))
    order = np.argsort(-C, axis=1, kind="stable")[:, : m.n_reasons]
    for r in range(0, len(X), 7):  # every 7th entity, row by row
        for i in range(m.n_reasons):
            j = order[r, i]
            col = f"reason_{i + 1}"
            if C[r, j] > 1e-9:
                f = feats[names[j]]
                v = X[names[j]].iloc[[r]]
                assert (s[col].iloc[r], s[col + "_zh"].iloc[r], s[col + "_en"].iloc[r]) == (
                    names[j], f.reasons(v, "zh")[0], f.reasons(v, "en")[0]), (r, i)
            else:
                assert s[col].iloc[r] is None and s[col + "_zh"].iloc[r] is None


def test_explain_equals_reason_columns_of_the_run(bundle, scored, X):
    ex = bundle.model.explain(X)
    for c in ("reason_1", "reason_2_zh", "reason_3_en"):
        assert list(ex[c].astype(object).where(ex[c].notna(), None)) == list(scored.scored[c])


def test_single_entity_reasons_equal_batch(world, bundle, scored):
    sc = Scorer(bundle)
    s = scored.scored
    ids = list(s.index[s["reason_3"].notna()][:25]) + list(s.index[s["reason_1"].isna()][:5])
    for eid in ids:
        one = sc.score_one(*_entity(world, eid), AS_OF)
        row = s.loc[eid]
        want = [(row[f"reason_{i}"], row[f"reason_{i}_zh"], row[f"reason_{i}_en"]) for i in (1, 2, 3)
                if row[f"reason_{i}"] is not None]
        assert one["reasons"] == want, eid
        assert one["probability"] == pytest.approx(row["probability"], abs=1e-12)


def test_timings_name_every_stage(world, bundle):
    t: dict = {}
    score_entities(world.dataset, AS_OF, bundle, reasons="none", timings=t)
    stages = {"features", "model", "tiers_overrides", "reasons", "assemble"}
    assert set(t) == stages | {f"{s}_cpu" for s in stages}
    assert all(v >= 0 for v in t.values())


def test_compiled_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv(ENABLE_ENV, raising=False)
    assert not wanted(None) and wanted(True) and not wanted(False)
    monkeypatch.setenv(ENABLE_ENV, "1")
    assert wanted(None) and not wanted(False)


# ------------------------------------------------------------ compiled trees (extra "fast")
needs_fast = pytest.mark.skipif(not available(), reason="extra 'fast' (lleaves) not installed")


@needs_fast
def test_compiled_trees_give_the_same_probabilities(world, bundle, scored, tmp_path, monkeypatch):
    monkeypatch.setenv("YIWU_CREDIT_CACHE", str(tmp_path))
    fast = score_entities(world.dataset, AS_OF, bundle, reasons="all", compiled=True)
    try:
        a, b = scored.scored, fast.scored
        assert np.max(np.abs(a["probability"].to_numpy() - b["probability"].to_numpy())) <= 1e-9
        for c in ("model_tier", "tier", "overrides", "reason_1", "reason_2_zh", "reason_3_en"):
            assert list(a[c]) == list(b[c]), c
    finally:
        bundle.model.learner_._compiled = None  # the session's bundle goes back to LightGBM's predict


@needs_fast
def test_compiled_trees_are_cached_by_model_and_written_atomically(bundle, X, tmp_path):
    booster = bundle.model.learner_.booster
    M = bundle.model.feature_matrix(X)
    first = CompiledTrees(booster, tmp_path)
    assert np.max(np.abs(first.margin(M) - booster.predict(M, raw_score=True))) <= 1e-9
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temporary files left
    mtime = first.path.stat().st_mtime_ns
    again = CompiledTrees(booster, tmp_path)  # loaded, not compiled again
    assert again.path == first.path and again.path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.margin(M), first.margin(M))
    assert again.margin(M[:0]).shape == (0,)
    # another model (fewer trees) gets another file: a cached model is never read for it
    import lightgbm as lgb

    other = lgb.Booster(model_str=booster.model_to_string(num_iteration=10))
    assert CompiledTrees(other, tmp_path).path != first.path


@needs_fast
def test_a_wrong_cached_file_is_refused(bundle, tmp_path):
    import lightgbm as lgb

    booster = bundle.model.learner_.booster
    good = CompiledTrees(booster, tmp_path)
    other = lgb.Booster(model_str=booster.model_to_string(num_iteration=10))
    wrong = CompiledTrees(other, tmp_path).path
    wrong.replace(good.path)  # the file under the model's name now holds other trees
    with pytest.raises(RuntimeError, match="differ from the booster"):
        CompiledTrees(booster, tmp_path)


def test_compiled_without_the_extra_says_how_to_install(bundle, monkeypatch):
    import yiwu_credit.model.compiled as compiled

    monkeypatch.setattr(compiled, "available", lambda: False)
    with pytest.raises(ImportError, match=r"yiwu-credit\[fast\]"):
        CompiledTrees(bundle.model.learner_.booster)


def test_reason_arrays_of_some_rows_equal_those_of_the_subset(bundle, X):
    m = bundle.model
    rows = np.arange(1, len(X), 3)
    want = m.reason_arrays(X.iloc[rows])
    for got in (m.reason_arrays(X, matrix=m.feature_matrix(X), rows=rows), m.reason_arrays(X, rows=rows)):
        assert set(got) == set(want)
        for c in want:
            if c.endswith("_contrib"):
                np.testing.assert_array_equal(got[c], want[c])
            else:
                assert list(got[c]) == list(want[c]), c


# ----------------------------------------------------------- fast paths of the hot path (issue 14)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from yiwu_credit.data.columns import constant_strings, string_column  # noqa: E402
from yiwu_credit.data.dates import NAT, day_array  # noqa: E402
from yiwu_credit.features.build import events_from_arrays as _events  # noqa: E402
from yiwu_credit.features.build import sort_ids  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="019AZ中-", min_size=0, max_size=6), max_size=60),
       st.booleans())
def test_sort_ids_is_arrows_stable_bytewise_sort(ids, fixed):
    import pyarrow as pa
    import pyarrow.compute as pc

    if fixed:  # one length, as USCCs: the radix path
        ids = [(s + "000000")[:6] for s in ids]
    s = pd.Series(ids, dtype="str")
    want = pc.sort_indices(pa.array(ids, type=pa.string())).to_numpy()
    np.testing.assert_array_equal(sort_ids(s), want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=200), st.lists(st.text(max_size=4), min_size=1, max_size=6))
def test_string_column_equals_pandas_inference(codes, labels):
    codes = np.array([c % len(labels) for c in codes], dtype=np.int64)
    got = pd.Series(string_column(labels, codes))
    want = pd.Series(np.array(labels, dtype=object)[codes] if len(codes) else np.array([], dtype=object), dtype="str")
    pd.testing.assert_series_equal(got, want)
    assert pd.Series(constant_strings("政策@1.2", 3)).tolist() == ["政策@1.2"] * 3


def test_year_deadlines_equal_calendar_arithmetic(bundle):
    """Annual-report deadlines from a per-year table equal pandas' calendar for every row."""
    years = np.array([1949.0, 2020.0, np.nan, 2100.0, 2020.0, 2023.0])
    filed = np.full(len(years), NAT, dtype=np.int64)
    ev = _events("annual_reports", {"year": years, "filed_on": filed}, np.arange(len(years)),
                 int(day_array(pd.Series(pd.to_datetime(["2200-01-01"])))[0]), bundle.policy, bundle.catalogue)
    src = bundle.catalogue.sources["annual_reports"]["date_from_year"]
    ok = ~np.isnan(years)
    want = pd.to_datetime({"year": years[ok].astype(int) + 1, "month": src["month"], "day": src["day"]})
    as_of = int(day_array(pd.Series(pd.to_datetime(["2200-01-01"])))[0])
    np.testing.assert_array_equal(as_of - ev.age, day_array(want))  # rows without a year have no date


def test_plan_cells_equal_numpy_unique_on_the_byte_keys():
    """The cells of a plan (distinct (group, must, probability) keys) come in the order, with the
    inverse map and counts, of np.unique over the 16-byte keys, as before the radix path."""
    from yiwu_credit.supervision.plan import plan_cells

    rng = np.random.default_rng(3)
    n = 5000
    p = np.round(rng.random(n), 3)  # many ties
    p[:50] = 0.0
    scored = pd.DataFrame({"tier": rng.choice(list(TIERS), n), "probability": p,
                           "entity_type": rng.choice(["enterprise", "individual", "cooperative"], n),
                           "serious_dishonest": rng.random(n) < 0.05},
                          index=pd.Index([f"E{i:05d}" for i in range(n)], name="entity_id"))
    c = plan_cells(scored, ("enterprise", "individual", "cooperative"), ("serious_dishonest",), True)
    gid = (c.group.astype(np.int64) * 2 + c.must)[c.inverse]
    key = np.ascontiguousarray(np.stack([gid, c.p[c.inverse].view(np.int64)], axis=1))
    _, first, inv, cnt = np.unique(key.view(np.dtype((np.void, 16))).ravel(), return_index=True,
                                   return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(c.inverse, inv.ravel())
    np.testing.assert_array_equal(c.count, cnt)
    np.testing.assert_array_equal(c.p, p[first])
    assert len(c.count) < n  # ties were merged


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.datetimes(min_value=pd.Timestamp("1800-01-01").to_pydatetime(),
                                                   max_value=pd.Timestamp("2200-12-31").to_pydatetime())),
                max_size=40))
def test_day_array_equals_numpy_calendar_days(values):
    s = pd.Series(pd.to_datetime(values), dtype="datetime64[s]")
    a = s.to_numpy(dtype="datetime64[s]").astype("datetime64[D]")
    want = (a - np.datetime64("1970-01-01", "D")).astype(np.int64)
    want[np.isnat(a)] = NAT
    np.testing.assert_array_equal(day_array(s), want)


def test_year_deadlines_of_far_apart_years_need_no_table(bundle):
    """Years far apart (an unvalidated online record) are computed row by row, not through a
    table spanning every year between them."""
    years = np.array([2020.0, 1_000_000.0])
    ev = _events("annual_reports", {"year": years, "filed_on": np.full(2, NAT, dtype=np.int64)}, np.arange(2),
                 10**9, bundle.policy, bundle.catalogue)
    src = bundle.catalogue.sources["annual_reports"]["date_from_year"]
    want = int(day_array(pd.Series(pd.to_datetime([f"2021-{src['month']:02d}-{src['day']:02d}"])))[0])
    assert 10**9 - ev.age[0] == want and len(ev.age) == 2
