"""Training labels: horizon boundaries, violation kinds, and inverse-probability weights."""

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import build_labels
from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.dataset import Dataset, empty_table

AS_OF = pd.Timestamp("2023-01-01")


@pytest.fixture()
def one(world):
    ent = world.dataset.entities.iloc[:1].copy()
    ent["established_on"] = pd.Timestamp("2015-01-01")
    ent["closed_on"] = pd.NaT
    ent["status"] = "active"
    return Dataset(entities=ent.reset_index(drop=True), **{n: empty_table(n) for n in TABLES if n != "entities"}), \
        ent["entity_id"].iloc[0]


def _with(ds, table, **cols):
    row = pd.DataFrame({k: [v] for k, v in cols.items()})
    return ds.replace(**{table: row.astype(ds.table(table).dtypes.to_dict())})


@pytest.mark.parametrize("days, expected", [(0, 0), (1, 1), (365, 1), (366, 0)])
def test_horizon_is_half_open_after_as_of(one, days, expected):
    ds, eid = one
    ds = _with(ds, "penalties", entity_id=eid, decided_on=AS_OF + pd.Timedelta(days=days), procedure="general",
               fine_cny=5000.0, domain="pricing", repaired_on=pd.NaT)
    assert build_labels(ds, AS_OF).loc[eid, "y"] == expected


@pytest.mark.parametrize("table, cols, expected", [
    ("penalties", dict(procedure="simple", fine_cny=100.0, domain="x", repaired_on=pd.NaT), 0),
    ("inspections", dict(result="no_problem", campaign_id="c", inclusion_prob=0.1, department="d"), 0),
    ("inspections", dict(result="info_false", campaign_id="c", inclusion_prob=0.1, department="d"), 1),
    ("list_records", dict(list="abnormal_operation", removed_on=pd.NaT, reason="annual_report"), 0),
    ("list_records", dict(list="abnormal_operation", removed_on=pd.NaT, reason="unreachable"), 1),
    ("list_records", dict(list="serious_dishonest", removed_on=pd.NaT, reason="x"), 1),
])
def test_violation_kinds(one, table, cols, expected):
    ds, eid = one
    date_col = {"penalties": "decided_on", "inspections": "inspected_on", "list_records": "entered_on"}[table]
    ds = _with(ds, table, entity_id=eid, **{date_col: AS_OF + pd.Timedelta(days=30)}, **cols)
    assert build_labels(ds, AS_OF).loc[eid, "y"] == expected


@pytest.mark.slow
def test_ipw_weights_make_campaign_labels_unbiased(world):
    """A risk-based campaign (π ∝ true propensity) over-samples violators; weighting by 1/π recovers
    the population rate. 300 seeded campaigns; tolerance 3 Monte-Carlo standard errors."""
    ds = world.dataset
    lab = build_labels(ds, AS_OF)
    ids = lab.index.to_numpy()
    p_true = 1 - np.exp(-world.truth.loc[ids, "propensity"].to_numpy())
    target = p_true.mean()
    w = p_true / p_true.sum()
    pi = np.minimum(1.0, 300 * w)
    base = {n: ds.table(n) for n in TABLES}
    est_w, est_u = [], []
    rng = np.random.default_rng(7)
    for _ in range(300):
        sel = rng.random(len(ids)) < pi  # Poisson sampling with known π
        adverse = rng.random(sel.sum()) < p_true[sel]
        ins = pd.DataFrame({"entity_id": ids[sel], "inspected_on": AS_OF + pd.Timedelta(days=100),
                            "result": np.where(adverse, "pending", "no_problem"), "campaign_id": "C1",
                            "inclusion_prob": pi[sel], "department": "msa"})
        d2 = Dataset(**{**base, "inspections": ins.astype(ds.inspections.dtypes.to_dict())})
        cl = build_labels(d2, AS_OF, source="campaigns")
        assert np.allclose(cl["weight"], 1 / cl["inclusion_prob"])
        est_w.append(np.average(cl["y"], weights=cl["weight"]))
        est_u.append(cl["y"].mean())
    est_w, est_u = np.array(est_w), np.array(est_u)
    se = est_w.std(ddof=1) / np.sqrt(len(est_w))
    assert abs(est_w.mean() - target) < 3 * se + 0.002, (est_w.mean(), target)
    assert est_u.mean() > target * 1.3  # unweighted: biased towards risky entities


def test_bad_source(world):
    with pytest.raises(ValueError, match="source must be"):
        build_labels(world.dataset, AS_OF, source="oracle")
