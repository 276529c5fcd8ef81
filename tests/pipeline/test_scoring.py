"""Batch scoring and the single-entity (online) path give the same answers."""

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import build_features
from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.dataset import load_records
from yiwu_credit.pipeline.scoring import Scorer, score_entities

AS_OF = "2026-01-01"


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for r in df.to_dict("records"):
        out.append({k: (None if v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v)
                        else str(v.date()) if isinstance(v, pd.Timestamp) else v) for k, v in r.items()})
    return out


@pytest.fixture(scope="module")
def batch(world, bundle):
    return score_entities(world.dataset, AS_OF, bundle, reasons="all")


def _entity(world, eid):
    ds = world.dataset
    ent = _records(ds.entities[ds.entities["entity_id"] == eid])[0]
    events = {n: _records(ds.table(n)[ds.table(n)["entity_id"] == eid]) for n in TABLES if n != "entities"}
    return ent, events


def test_every_entity_is_scored_or_excluded(world, batch):
    assert len(batch.scored) + len(batch.excluded) == len(world.dataset.entities)
    assert not set(batch.scored.index) & set(batch.excluded["entity_id"])
    assert set(batch.excluded["reason"]) <= {"not established before as_of",
                                             "revoked/cancelled before as_of (out of the supervision pool)"}


@pytest.mark.slow
def test_single_entity_path_matches_batch(world, batch, bundle):
    sc = Scorer(bundle)
    rng = np.random.default_rng(0)
    # a mix: random entities plus every overridden and tier-D entity (up to 60)
    special = batch.scored.index[(batch.scored["overrides"] != "") | (batch.scored["tier"] == "D")][:60]
    ids = list(rng.choice(batch.scored.index.to_numpy(), 60, replace=False)) + list(special)
    for eid in ids:
        ent, events = _entity(world, eid)
        one = sc.score_one(ent, events, AS_OF)
        row = batch.scored.loc[eid]
        assert one["probability"] == pytest.approx(row["probability"], abs=1e-9), eid
        assert (one["tier"], one["model_tier"], one["overrides"]) == (row["tier"], row["model_tier"], row["overrides"])
        assert one["is_new"] == row["is_new"] and one["abnormal_operation"] == row["abnormal_operation"]
        if one["reasons"]:
            assert one["reasons"][0][1] == row["reason_1_zh"]


def test_entity_records_give_the_build_features_row(world, bundle):
    """One entity's records, validated by load_records (the online path), give its row of the
    batch feature matrix exactly."""
    X = build_features(world.dataset, AS_OF, bundle.catalogue, bundle.policy)
    for eid in X.index[:40]:
        ent, events = _entity(world, eid)
        one = build_features(load_records({"entities": [ent], **events}), AS_OF, bundle.catalogue, bundle.policy)
        pd.testing.assert_frame_equal(one, X.loc[[eid]], check_index_type=False)


def test_single_entity_outside_pool_is_refused(world, bundle):
    sc = Scorer(bundle)
    ent, events = _entity(world, world.dataset.entities["entity_id"].iloc[0])
    # established after as_of (no events: those would break the contract, dated before it)
    with pytest.raises(ValueError, match="not in the supervision pool.*not established"):
        sc.score_one(dict(ent, established_on="2030-01-01"), {}, AS_OF)
    with pytest.raises(ValueError, match="not in the supervision pool.*revoked/cancelled"):
        sc.score_one(dict(ent, status="cancelled", closed_on="2025-06-01"), events, AS_OF)
