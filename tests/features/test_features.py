"""Point-in-time features: leakage, invariance, monotonicity, credit repair boundaries, catalogue errors."""

import tomllib
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import ConfigError, build_features, load_catalogue
from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.dataset import Dataset, empty_table
from yiwu_credit.features.build import override_facts
from yiwu_credit.features.catalogue import parse_catalogue

AS_OF = "2024-01-01"
EVENT_DATE = {"penalties": "decided_on", "inspections": "inspected_on", "complaints": "received_on",
              "list_records": "entered_on", "annual_reports": "filed_on"}


def test_one_row_per_alive_entity_sorted(world):
    X = build_features(world.dataset, AS_OF)
    cat = load_catalogue()
    assert list(X.columns) == cat.names
    assert X.index.is_unique and X.index.is_monotonic_increasing
    ent = world.dataset.entities.set_index("entity_id")
    e = ent.loc[X.index]
    assert (e["established_on"] < pd.Timestamp(AS_OF)).all()
    assert (e["closed_on"].isna() | (e["closed_on"] >= pd.Timestamp(AS_OF))).all()
    alive = (ent["established_on"] < pd.Timestamp(AS_OF)) & (ent["closed_on"].isna() | (ent["closed_on"] >= pd.Timestamp(AS_OF)))
    assert alive.sum() == len(X)


def _shift_future(ds: Dataset, rng) -> Dataset:
    """Change, add and delete events on or after AS_OF (and late filings / removals / repairs)."""
    a = pd.Timestamp(AS_OF)
    new = {}
    for name, col in EVENT_DATE.items():
        df = ds.table(name).copy()
        fut = df[col] >= a
        # delete half of the future rows, perturb the rest
        drop = fut & (rng.random(len(df)) < 0.5)
        if name == "annual_reports":  # the row is the obligation; the event is the filing
            df.loc[drop, col] = pd.NaT
        else:
            df = df.loc[~drop].copy()
        fut = df[col] >= a
        df.loc[fut, col] = df.loc[fut, col] + pd.to_timedelta(rng.integers(0, 300, fut.sum()), unit="D")
        # add future copies of random past rows, dated on or after as_of
        extra = df.sample(n=min(200, len(df)), random_state=1).copy()
        extra[col] = a + pd.to_timedelta(rng.integers(0, 400, len(extra)), unit="D")
        if name == "annual_reports":
            extra["year"] = extra["year"] + 20  # new future report years
        df = pd.concat([df, extra], ignore_index=True)
        new[name] = df
    # facts that become known only later: repairs and removals on/after as_of
    pen = new["penalties"]
    m = pen["repaired_on"].isna() & (pen["decided_on"] < a)
    pen.loc[m, "repaired_on"] = a + pd.Timedelta(days=3)
    lr = new["list_records"]
    m = lr["removed_on"].isna() & (lr["entered_on"] < a)
    lr.loc[m, "removed_on"] = a
    return ds.replace(**new)


def test_no_leakage_from_events_on_or_after_as_of(world):
    X0 = build_features(world.dataset, AS_OF)
    X1 = build_features(_shift_future(world.dataset, np.random.default_rng(0)), AS_OF)
    pd.testing.assert_frame_equal(X0, X1)


def test_events_on_as_of_day_do_not_count(world):
    ds = world.dataset
    e = ds.entities["entity_id"].iloc[0]
    row = pd.DataFrame({"entity_id": [e], "received_on": [pd.Timestamp(AS_OF)], "substantiated": [True]})
    ds2 = ds.replace(complaints=pd.concat([ds.complaints, row.astype(ds.complaints.dtypes.to_dict())], ignore_index=True))
    pd.testing.assert_frame_equal(build_features(ds, AS_OF), build_features(ds2, AS_OF))


def test_row_order_and_partitioning_do_not_change_result(world):
    ds = world.dataset
    X0 = build_features(ds, AS_OF)
    rng = np.random.default_rng(1)
    shuffled = ds.replace(**{n: ds.table(n).sample(frac=1, random_state=2).reset_index(drop=True) for n in TABLES})
    pd.testing.assert_frame_equal(X0, build_features(shuffled, AS_OF))
    # split entities into 3 partitions with their events, compute separately, concatenate
    part = rng.integers(0, 3, len(ds.entities))
    pid = dict(zip(ds.entities["entity_id"], part, strict=True))
    pieces = []
    for k in range(3):
        sub = {n: ds.table(n)[ds.table(n)["entity_id"].map(pid) == k].reset_index(drop=True) for n in TABLES}
        pieces.append(build_features(ds.replace(**sub), AS_OF))
    Xp = pd.concat(pieces).sort_index()
    pd.testing.assert_frame_equal(X0, Xp, check_categorical=True)


def _add_penalty(ds, eid, decided, procedure="general", fine=20000.0, repaired=None):
    row = pd.DataFrame({"entity_id": [eid], "decided_on": [pd.Timestamp(decided)], "procedure": [procedure],
                        "fine_cny": [fine], "domain": ["pricing"],
                        "repaired_on": [pd.Timestamp(repaired) if repaired else pd.NaT]})
    row = row.astype(ds.penalties.dtypes.to_dict())
    return ds.replace(penalties=pd.concat([ds.penalties, row], ignore_index=True))


def test_adding_a_penalty_never_lowers_a_risk_increasing_feature(world):
    ds = world.dataset
    cat = load_catalogue()
    X0 = build_features(ds, AS_OF)
    rng = np.random.default_rng(5)
    ids = rng.choice(X0.index.to_numpy(), 25, replace=False)
    ds2 = ds
    for i, eid in enumerate(ids):
        ds2 = _add_penalty(ds2, eid, pd.Timestamp(AS_OF) - pd.Timedelta(days=int(10 + 40 * i)),
                           fine=float(rng.choice([0, 500, 20000, 80000])))
    X1 = build_features(ds2, AS_OF)
    up = [f.name for f in cat.features if f.spec.direction == 1]
    a1, a0 = X1[up].to_numpy(), X0[up].to_numpy()
    assert np.array_equal(np.isnan(a1), np.isnan(a0))
    assert (np.nan_to_num(a1, nan=0) >= np.nan_to_num(a0, nan=0)).all()
    assert (X1.loc[ids, "pen_general_1095d"] >= X0.loc[ids, "pen_general_1095d"]).all()
    assert (X1.loc[ids, "pen_general_1095d"] > X0.loc[ids, "pen_general_1095d"]).sum() > 0
    down = [f.name for f in cat.features if f.spec.direction == -1 and f.spec.table == "penalties"]
    assert (X1[down].to_numpy() <= X0[down].to_numpy()).all()


@pytest.fixture()
def blank_entity(world):
    """A dataset with one clean entity (no events) established long ago."""
    ent = world.dataset.entities.iloc[:1].copy()
    ent["established_on"] = pd.Timestamp("2010-01-01")
    ent["closed_on"] = pd.NaT
    ent["status"] = "active"
    tables = {n: empty_table(n) for n in TABLES if n != "entities"}
    return Dataset(entities=ent.reset_index(drop=True), **tables), ent["entity_id"].iloc[0]


@pytest.mark.parametrize("fine, period", [(20000.0, 1095), (5000.0, 90)])
def test_general_penalty_counts_until_publicity_period_ends(blank_entity, fine, period):
    ds, eid = blank_entity
    d = pd.Timestamp("2020-03-01")
    ds = _add_penalty(ds, eid, d, fine=fine)

    def count(as_of):
        return build_features(ds, as_of).loc[eid, "pen_decayed"] > 0

    assert not count(d)                                   # the decision day itself: not yet known
    assert count(d + pd.Timedelta(days=1))
    assert count(d + pd.Timedelta(days=period - 1))        # last shown day
    assert not count(d + pd.Timedelta(days=period))        # publicity over


def test_simple_procedure_and_warnings_never_count(blank_entity):
    ds, eid = blank_entity
    ds = _add_penalty(ds, eid, "2020-03-01", procedure="simple", fine=100.0)
    ds = _add_penalty(ds, eid, "2020-04-01", procedure="general", fine=0.0)
    X = build_features(ds, "2020-06-01")
    assert X.loc[eid, "pen_general_365d"] == 0 and X.loc[eid, "pen_fine_sum_1095d"] == 0


def test_repaired_penalty_stops_counting_from_repair_day(blank_entity):
    ds, eid = blank_entity
    ds = _add_penalty(ds, eid, "2020-03-01", fine=20000.0, repaired="2020-10-01")
    assert build_features(ds, "2020-10-01").loc[eid, "pen_general_1095d"] == 1  # repair dated as_of: unknown
    assert build_features(ds, "2020-10-02").loc[eid, "pen_general_1095d"] == 0


def test_list_entry_stops_at_removal(blank_entity):
    ds, eid = blank_entity
    row = pd.DataFrame({"entity_id": [eid], "list": ["abnormal_operation"], "entered_on": [pd.Timestamp("2021-07-05")],
                        "removed_on": [pd.Timestamp("2022-01-10")], "reason": ["annual_report"]})
    ds = ds.replace(list_records=row.astype(ds.list_records.dtypes.to_dict()))
    f = lambda a: build_features(ds, a).loc[eid, ["ab_current", "ab_days_listed"]].tolist()  # noqa: E731
    assert f("2021-07-05") == [0, 0]
    assert f("2021-07-06") == [1, 1]
    assert f("2022-01-10") == [1, (pd.Timestamp("2022-01-10") - pd.Timestamp("2021-07-05")).days]
    assert f("2022-01-11") == [0, 0]
    facts = override_facts(ds, "2021-08-01")
    assert bool(facts.loc[eid, "abnormal_operation"]) and not bool(facts.loc[eid, "serious_dishonest"])


def test_annual_report_status_point_in_time(blank_entity):
    ds, eid = blank_entity
    rows = pd.DataFrame({"entity_id": [eid] * 3, "year": [2019, 2020, 2021],
                         "filed_on": [pd.Timestamp("2020-05-01"), pd.Timestamp("2021-09-01"), pd.NaT]})
    ds = ds.replace(annual_reports=rows.astype(ds.annual_reports.dtypes.to_dict()))
    x = build_features(ds, "2021-08-01").loc[eid]   # 2020 report due 2021-06-30, filed later
    assert x["ar_missing_1095d"] == 1 and x["ar_late_1095d"] == 0 and x["ar_missing_streak"] == 1
    x = build_features(ds, "2021-09-02").loc[eid]   # now filed late
    assert x["ar_missing_1095d"] == 0 and x["ar_late_1095d"] == 1 and x["ar_missing_streak"] == 0
    x = build_features(ds, "2022-07-01").loc[eid]   # 2021 report due 2022-06-30, missing
    assert x["ar_missing_streak"] == 1 and x["ar_late_1095d"] == 1


def test_entity_with_no_events_and_empty_tables(blank_entity):
    ds, eid = blank_entity
    X = build_features(ds, "2020-01-01")
    assert len(X) == 1
    x = X.loc[eid]
    assert x["pen_general_1095d"] == 0 and x["compl_365d"] == 0 and x["ab_current"] == 0
    assert x["pen_days_since_last_1095d"] == 1096
    assert np.isnan(x["insp_clean_share_1095d"]) and np.isnan(x["tax_rating"])
    facts = override_facts(ds, "2020-01-01")
    assert not facts.loc[eid].any()  # old entity, no history: not "new"


def test_windowed_cumsum_equals_one_groupby_per_window(world):
    """The fast nested-window count equals the plain baseline (pandas groupby per window)."""
    ds = world.dataset
    X = build_features(ds, AS_OF)
    a = pd.Timestamp(AS_OF)
    c = ds.complaints
    for w in (90, 365, 1095):
        m = (c["received_on"] < a) & (c["received_on"] >= a - pd.Timedelta(days=w))
        base = c[m].groupby("entity_id").size().reindex(X.index, fill_value=0)
        np.testing.assert_array_equal(X[f"compl_{w}d"].to_numpy(), base.to_numpy())


def _raw():
    return tomllib.loads((resources.files("yiwu_credit") / "resources" / "features" / "catalogue.toml").read_text("utf-8"))


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.update(table="fines"), "unknown table 'fines'"),
    (lambda f: f.update(aggregation="median"), "unknown aggregation 'median'"),
    (lambda f: f.update(filter={"colour": "red"}), "filter on unknown column 'colour'"),
    (lambda f: f.update(filter={"procedure": "secret"}), "not in"),
    (lambda f: f.update(windows=[365, 90]), "increasing"),
    (lambda f: f.update(windows=[0]), "positive whole days"),
    (lambda f: f.update(direction=2), "'direction' must be -1, 0 or 1"),
    (lambda f: f.update(reason_zh="{amount}"), "may use only {value} and {window}"),
    (lambda f: f.pop("en"), "missing or empty 'en'"),
    (lambda f: f.update(aggregation="sum", column="domain"), "needs a numeric column"),
    (lambda f: f.update(surprise=1), "unknown key"),
])
def test_bad_catalogue_entries_get_clear_errors(edit, message):
    raw = _raw()
    pen = next(f for f in raw["feature"] if f["name"] == "pen_general")
    edit(pen)
    with pytest.raises(ConfigError, match="pen_general") as ei:
        parse_catalogue(raw, "test.toml")
    assert message in str(ei.value)


def test_duplicate_feature_names_and_hash_changes():
    raw = _raw()
    h0 = parse_catalogue(raw).sha256
    raw["feature"][10]["windows"] = [180, 1095]
    assert parse_catalogue(raw).sha256 != h0
    raw["feature"].append(dict(raw["feature"][0]))
    with pytest.raises(ConfigError, match="duplicate feature name"):
        parse_catalogue(raw)
    assert load_catalogue().sha256 == load_catalogue().sha256


def test_catalogue_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_catalogue(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[catalogue\nname=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_catalogue(bad)


def test_feature_frames_own_their_columns(world):
    """Frames are built without a consolidation copy; still, writing into one frame must not
    change another (shared no-event columns are copied) nor a later build."""
    ds = world.dataset.replace(penalties=empty_table("penalties"))  # every penalty feature: the no-events path
    X1 = build_features(ds, AS_OF)
    X2 = build_features(ds, AS_OF)
    col = next(c for c in X1.columns if c.startswith("pen_") and X1[c].dtype == float)
    before = X2[col].copy()
    X1.loc[X1.index[0], col] = 12345.0
    X1[col] += 1.0
    pd.testing.assert_series_equal(X2[col], before)
    pd.testing.assert_series_equal(build_features(ds, AS_OF)[col], before)
