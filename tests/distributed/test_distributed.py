"""yiwu_credit.distributed.engine: the same features, scores, plan and draw on Dask partitions.

One 200,000-entity synthetic world, a 2-worker in-process LocalCluster; every distributed result
is compared exactly (``check_exact``) with the single-machine function on the whole dataset,
for 3 and 7 partitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask")
pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
pytestmark = pytest.mark.slow    # a 200,000-entity world on a local cluster

import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from yiwu_credit import supervision as S  # noqa: E402
from yiwu_credit.data import synth  # noqa: E402
from yiwu_credit.data.contract import TABLES  # noqa: E402
from yiwu_credit.distributed import engine as D  # noqa: E402
from yiwu_credit.errors import ConfigError, PlanError  # noqa: E402
from yiwu_credit.features.build import build_features  # noqa: E402
from yiwu_credit.pipeline.scoring import score_entities  # noqa: E402

AS_OF = "2026-01-01"
N_ENTITIES = 200_000


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def big():
    return synth.generate(N_ENTITIES, seed=2024).dataset


@pytest.fixture(scope="module")
def ref(big, bundle):
    """Single-machine scores and plan on the whole dataset."""
    scored = score_entities(big, AS_OF, bundle).scored
    return {"scored": scored, "plan": S.supervision_plan(scored)}


@pytest.fixture(scope="module")
def parts(client, big, bundle):
    """The big world on 3 and 7 partitions, with persisted distributed scores."""
    out = {}
    for k in (3, 7):
        ddata = D.partition_dataset(big, k)
        out[k] = {"data": ddata, "scored": D.score_distributed(ddata, AS_OF, bundle).persist()}
    return out


def _exact(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# ----------------------------------------------------------------------------- partitioning
def test_bucket_hash_is_pinned_balanced_and_handles_missing_ids():
    ids = pd.Series(["91330782MA28A0000X", "92330782MA2EXAMPLE", "x", None, "合作社"])
    b = D.bucket_of(ids, 8)
    assert b.dtype == np.int64 and b[3] == 0
    assert b.tolist() == D.bucket_of(ids.tolist(), 8).tolist()          # list, Series: same
    keys = S.prn_keys(["91330782MA28A0000X"], D.PARTITION_SEED)
    assert b[0] == int((int(keys[0]) >> 32) * 8 >> 32)
    many = D.bucket_of(pd.Series([f"id{i}" for i in range(80_000)]), 8)
    counts = np.bincount(many, minlength=8)
    assert counts.min() > 9_500 and counts.max() < 10_500
    with pytest.raises(ValueError, match="npartitions"):
        D.bucket_of(ids, 0)


def test_partitions_are_co_partitioned_and_lossless(parts, big):
    ddata = parts[7]["data"]
    assert ddata.npartitions == 7 and all(ddata[n].npartitions == 7 for n in TABLES)
    assert ddata["entities"].divisions == (0, 1, 2, 3, 4, 5, 6, 6)
    for name in ("entities", "penalties", "inspections"):
        got = ddata[name].compute()
        assert len(got) == len(big.table(name))
        assert (got.index.to_numpy() == D.bucket_of(got["entity_id"], 7)).all()
    back = parts[3]["data"].to_dataset()
    for name in TABLES:
        key = TABLES[name].column_names[:2]
        a = back.table(name).sort_values(key, kind="stable").reset_index(drop=True)
        b = big.table(name).sort_values(key, kind="stable").reset_index(drop=True)
        _exact(a, b)


# ----------------------------------------------------------------------------- features and scores
def test_features_identical(parts, big):
    X = build_features(big, AS_OF)
    _exact(D.features_distributed(parts[3]["data"], AS_OF).compute().sort_index(), X)


def test_scores_identical_and_independent_of_partitioning(parts, ref):
    s3 = parts[3]["scored"].compute().sort_index()
    s7 = parts[7]["scored"].compute().sort_index()
    _exact(s3, ref["scored"])
    _exact(s7, s3)
    assert s3["reason_1"].notna().sum() > 1000                     # reasons were computed and compared
    assert (s3["overrides"] != "").sum() > 100
    assert parts[3]["scored"].dtypes.equals(ref["scored"].dtypes)  # meta matches the partitions


# ----------------------------------------------------------------------------- plan
@pytest.mark.parametrize("k", [3, 7])
def test_plan_pi_identical(parts, ref, k):
    plan = D.plan_distributed(parts[k]["scored"]).compute()
    _exact(plan, ref["plan"])
    assert plan.attrs == ref["plan"].attrs


def test_plan_with_n_budget_and_probability_scaling(parts, ref):
    kw = {"n": 3000, "budget": 9000.0}
    _exact(D.plan_distributed(parts[7]["scored"], **kw).compute(), S.supervision_plan(ref["scored"], **kw))
    kw = {"n": 2500, "scale_by_probability": True}
    got = D.plan_distributed(parts[3]["scored"], **kw).compute()
    want = S.supervision_plan(ref["scored"], **kw)
    _exact(got, want)
    assert got.attrs == want.attrs


def test_plan_errors_surface_as_plan_errors(parts):
    with pytest.raises(PlanError, match="larger than the pool"):
        D.plan_distributed(parts[3]["scored"], n=10**7).compute()
    with pytest.raises(PlanError, match="floor"):
        D.plan_distributed(parts[3]["scored"], floor=0.0)
    with pytest.raises(PlanError, match="tier"):
        D.plan_distributed(parts[3]["scored"].drop(columns=["tier"]))


# ----------------------------------------------------------------------------- draw
@pytest.mark.parametrize(("k", "seed", "nranges"), [(3, 42, None), (7, "2026-Q1 义乌", 5), (7, 7, 1), (3, 99, 13)])
def test_draw_identical_selected_ids_and_audit(parts, ref, k, seed, nranges):
    plan = D.plan_distributed(parts[k]["scored"])
    got = D.draw_distributed(plan, None, seed, nranges=nranges)
    want = S.draw(ref["plan"], None, seed)
    assert got.selected.equals(want.selected)                      # same ids, same (draw) order
    assert got.audit == want.audit                                 # start, frame/pi hashes, plan record
    assert S.verify(got.audit, ref["plan"]).ok


def test_draw_on_a_bare_frame_with_negative_deficit_and_given_n(client, ref):
    """pi slightly above n (within tolerance): the fixed point removes units from the first eligible."""
    plan = ref["plan"][["pi"]].copy()
    n = int(round(plan["pi"].sum()))
    lost = n * S.SCALE - int(np.floor(plan["pi"].to_numpy() * S.SCALE).sum())   # the floors' shortfall
    free = plan["pi"] < 1
    plan.loc[free, "pi"] *= 1 + (lost + len(plan) // 4) / (n * S.SCALE)         # now ~N/4 units too many
    excess = int(np.floor(plan["pi"].to_numpy() * S.SCALE).sum()) - n * S.SCALE
    assert 0 < excess < int(free.sum())
    ddf = dd.from_pandas(plan.sample(frac=1, random_state=3), npartitions=4)
    got = D.draw_distributed(ddf, n, 5, plan_attrs={"note": "bare"})
    want = S.draw(plan, n, 5)
    assert got.selected.equals(want.selected)
    # the plan block differs (given vs the plan's record), so does the seal over it; the rest is equal
    assert {k: v for k, v in got.audit.items() if k not in ("plan", "seal")} == \
        {k: v for k, v in want.audit.items() if k not in ("plan", "seal")}
    assert got.audit["plan"] == {"note": "bare"}
    from yiwu_credit.supervision.audit import seal_audit

    assert seal_audit(got.audit) == got.audit                 # sealed over what it records


def test_draw_errors(client, ref):
    plan = ref["plan"][["pi"]].iloc[:5000].assign(pi=40 / 5000)
    dup = pd.concat([plan.iloc[:-1], plan.iloc[:1]])
    with pytest.raises(PlanError, match="duplicate"):
        D.draw_distributed(dd.from_pandas(dup, npartitions=3), 40, 1)
    with pytest.raises(PlanError, match="not n=41"):
        D.draw_distributed(dd.from_pandas(plan, npartitions=3), 41, 1)
    bad = plan.assign(pi=0.0)
    with pytest.raises(PlanError, match="nobody is exempt"):
        D.draw_distributed(dd.from_pandas(bad, npartitions=2), 40, 1)


def test_local_scheduler_without_the_cluster(client, bundle):
    """The same functions under dask's synchronous scheduler (no Client involved)."""
    import dask

    ds = synth.generate(5_000, seed=9).dataset
    ref_scored = score_entities(ds, AS_OF, bundle).scored
    with dask.config.set(scheduler="sync"):
        scored = D.score_distributed(D.partition_dataset(ds, 3), AS_OF, bundle)
        _exact(scored.compute().sort_index(), ref_scored)
        got = D.draw_distributed(D.plan_distributed(scored, n=300), 300, 3)
    want = S.draw(S.supervision_plan(ref_scored, n=300), 300, 3)
    assert got.selected.equals(want.selected) and got.audit == want.audit


# ----------------------------------------------------------------------------- Parquet
@pytest.fixture(scope="module")
def small():
    return synth.generate(12_000, seed=77).dataset


def test_parquet_round_trip_scores_identically(client, small, bundle, tmp_path):
    want = score_entities(small, AS_OF, bundle).scored
    D.write_partitioned(small, tmp_path / "one", 4)
    got = D.read_partitioned(tmp_path / "one")
    assert got.npartitions == 4 and got["entities"].divisions == (0, 1, 2, 3, 3)
    _exact(D.score_distributed(got, AS_OF, bundle).compute().sort_index(), want)
    one = D.read_bucket(tmp_path / "one", 2)                        # one bucket, no Dask
    assert (D.bucket_of(one.entities["entity_id"], 4) == 2).all()
    s2 = score_entities(one, AS_OF, bundle).scored
    _exact(s2, want.loc[s2.index])
    # in chunks of disjoint entities (what a province-scale load does), and from a DistributedDataset
    ids = small.entities["entity_id"]
    half = ids.isin(ids.iloc[::2])
    chunks = [small.replace(**{n: small.table(n)[small.table(n)["entity_id"].isin(ids[m])] for n in TABLES})
              for m in (half, ~half)]
    D.write_partitioned(iter(chunks), tmp_path / "chunks", 4)
    D.write_partitioned(got, tmp_path / "again")
    for i, c in enumerate(chunks):
        D.write_partitioned(c, tmp_path / f"batch{i}", 4)
    for d in ("chunks", "again", ["batch0", "batch1"]):
        again = D.read_partitioned([tmp_path / x for x in d] if isinstance(d, list) else tmp_path / d)
        _exact(D.score_distributed(again, AS_OF, bundle).compute().sort_index(), want)
        for name in TABLES:
            assert again[name].map_partitions(len).compute().tolist() == \
                got[name].map_partitions(len).compute().tolist()


def test_read_partitioned_needs_the_manifest_and_equal_bucket_counts(small, tmp_path):
    with pytest.raises(ConfigError, match="not a partitioned"):
        D.read_partitioned(tmp_path)
    D.write_partitioned(small, tmp_path / "b2", 2)
    D.write_partitioned(small, tmp_path / "b3", 3)
    with pytest.raises(ConfigError, match="different bucket counts"):
        D.read_partitioned([tmp_path / "b2", tmp_path / "b3"])


def test_reading_tasks_group_buckets_and_score_plan_draw_identically(client, small, bundle, tmp_path):
    """From files, each task reads and scores a group of whole buckets; any grouping gives the same
    scores, plan and draw as the single machine."""
    want = score_entities(small, AS_OF, bundle).scored
    want_draw = S.draw(S.supervision_plan(want, n=400), 400, "grouped")
    D.write_partitioned(small, tmp_path / "six", 6)
    ddata = D.read_partitioned(tmp_path / "six")
    assert ddata.source == (str(tmp_path / "six"),) and ddata.entity_rows == len(small.entities)
    for per_task, nparts in ((None, 6), (4_000, 3), (6_000, 2), (10**9, 1)):
        scored = D.score_distributed(ddata, AS_OF, bundle, entities_per_task=per_task)
        assert scored.npartitions == nparts
        _exact(scored.compute().sort_index(), want)
        got = D.draw_distributed(D.plan_distributed(scored, n=400), 400, "grouped")
        assert got.selected.equals(want_draw.selected) and got.audit == want_draw.audit
    _exact(D.features_distributed(ddata, AS_OF, entities_per_task=4_000).compute().sort_index(),
           build_features(small, AS_OF))
    # persisted tables are scored partition by partition, as before
    kept = ddata.persist()
    assert kept.source is None and D.score_distributed(kept, AS_OF, bundle).npartitions == 6


def test_model_threads_share_the_cores_among_the_workers_of_a_host(client):
    import os

    hosts = D._worker_threads_per_host()
    assert sum(hosts.values()) == 2                                  # the fixture: 2 workers x 1 thread
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert client.submit(D._model_threads, hosts, pure=False).result() == max(1, cores // 2)
    assert D._model_threads(hosts) is None                           # not inside a worker
    assert D._model_threads(None) is None


@pytest.mark.slow
def test_local_cluster_starts_workers_with_the_worker_environ():
    """Worker processes get WORKER_ENVIRON before they start (glibc reads it only then), and keep
    it across a restart."""
    import os

    from yiwu_credit.distributed.engine import WORKER_ENVIRON, local_cluster

    with local_cluster(1, dashboard_address=None) as cluster, Client(cluster) as c:
        want = {k: str(v) for k, v in WORKER_ENVIRON.items()}
        got = c.run(lambda: {k: os.environ.get(k) for k in WORKER_ENVIRON})
        assert list(got.values()) == [want]
        c.restart()
        assert list(c.run(lambda: {k: os.environ.get(k) for k in WORKER_ENVIRON}).values()) == [want]


def test_read_bucket_validates_by_the_loaders_rules(small, bundle, tmp_path):
    """A bucket read with ``validate=True`` goes through load_records: a valid bucket gives the
    same tables; one with a row breaking the contract is refused, naming table, column and row."""
    from yiwu_credit.errors import DataValidationError

    D.write_partitioned(small, tmp_path / "ok", 4)
    plain, checked = D.read_bucket(tmp_path / "ok", 1), D.read_bucket(tmp_path / "ok", 1, validate=True)
    for n in TABLES:
        pd.testing.assert_frame_equal(checked.table(n), plain.table(n))
    pen = small.penalties.copy()
    pen.loc[0, "fine_cny"] = -5.0
    D.write_partitioned(small.replace(penalties=pen), tmp_path / "bad", 4)
    k = int(D.bucket_of(pen["entity_id"].iloc[[0]], 4)[0])
    with pytest.raises(DataValidationError, match="penalties.fine_cny: must be >= 0"):
        D.read_bucket(tmp_path / "bad", k, validate=True)
    # a bucket no entity falls in is valid: nothing to check, not "a header but no data"
    one = small.replace(entities=small.entities.iloc[:1], **{n: small.table(n).iloc[:0] for n in TABLES if n != "entities"})
    D.write_partitioned(one, tmp_path / "sparse", 4)
    empty = next(b for b in range(4) if b != int(D.bucket_of(one.entities["entity_id"], 4)[0]))
    assert len(D.read_bucket(tmp_path / "sparse", empty, validate=True).entities) == 0
