"""The same pure scoring, planning and drawing functions on Dask partitions, with identical results.

Layout (see docs/distributed.md):

* **Partitioning.** Every row goes to bucket ``bucket_of(entity_id, B)``: the top 32 bits of the
  platform-independent PRN hash of the id under a fixed seed, times ``B``, shifted down 32
  (a monotone range reduction, so buckets are balanced). Entities and all their events share a
  bucket, so partition *i* of every table holds bucket *i* and exactly its events; the Dask
  frames have the bucket as index with known divisions ``(0, 1, …, B-1, B-1)``.
* **Embarrassingly parallel.** :func:`features_distributed` and :func:`score_distributed` call
  :func:`~yiwu_credit.features.build.build_features` / :func:`~yiwu_credit.pipeline.scoring.score_entities`
  unchanged on a :class:`~yiwu_credit.data.dataset.Dataset` rebuilt from one partition.
* **Orchestration only.** Plans and draws are the supervision core's public steps, run as
  tasks; nothing of the plan math, the fixed point or the audit is written here.
* **Plan: one reduction.** ``group_counts`` per partition reduces the scored rows to cells of
  identical plan inputs with counts; one task merges the cells and runs ``solve_groups``; each
  partition then gets its cells' values (``SolvedPlan.for_part``) and runs ``apply``.
* **Draw: one reduction and one shuffle.** Per partition the core's ``prepare`` on PRN-key
  ranges (ranges are contiguous in draw order); ``offsets`` on the range stats gives every range
  its share of the rounding deficit and its offset *before* the shuffle; after it each range
  sorts its entities by (key, id) (``prn_order``) and runs ``select_range``. The client feeds
  the ranges in order to the ``AuditHasher`` (~30 bytes per entity pass through it, one range
  at a time when a distributed Client is active) and builds the record with ``draw_audit``.

Dask is optional: ``pip install 'yiwu-credit[dask]'``.
"""

from __future__ import annotations

import functools
import json
import operator
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.contract import TABLES
from ..data.dataset import Dataset, load_records
from ..errors import ConfigError
from ..features.build import build_features
from ..model.bundle import Bundle, load_bundle
from ..pipeline.scoring import score_entities
from ..policy import Policy
from ..supervision.audit import AuditHasher
from ..supervision.plan import (
    CARRY,
    PLAN_ATTR,
    PLAN_COLUMNS,
    PlanCells,
    PlanPart,
    SolvedPlan,
    apply,
    as_entity_frame,
    group_counts,
    merge_plan_records,
    plan_pi,
    plan_settings,
    read_plan_record,
    solve_groups,
)
from ..supervision.prn import id_bytes, keys_of, prn_keys, prn_order, seed_text
from ..supervision.systematic import (
    Draw,
    DrawOffsets,
    RangeStats,
    draw_audit,
    offsets,
    prepare,
    select_range,
)

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from dask.delayed import Delayed

__all__ = [
    "BUCKET", "ENTITIES_PER_TASK", "WORKER_ENVIRON", "DistributedDataset", "DistributedPlan", "bucket_of",
    "draw_distributed", "features_distributed", "key_range", "local_cluster", "partition_dataset", "plan_distributed",
    "read_bucket", "read_partitioned", "score_distributed", "write_partitioned",
]

BUCKET = "bucket"                              # index name of the partitioned tables
PARTITION_SEED = "yiwu-credit/partition/v1"     # PRN seed of the bucket hash (never change: files depend on it)
MANIFEST = "_yiwu_partitioned.json"
#: entities scored per task when reading from files (whole buckets are grouped up to about this)
ENTITIES_PER_TASK = 250_000
FORMAT = "yiwu-credit/partitioned/1"
_INSTALL = "yiwu_credit.distributed.engine needs dask and distributed: pip install 'yiwu-credit[dask]'"
_U64 = np.uint64


def _dask() -> tuple[Any, Any, Any]:
    """(dask, dask.dataframe, dask.delayed), or ImportError with the install hint."""
    try:
        import dask
        import dask.dataframe as dd
        from dask import delayed
    except ImportError as e:  # pragma: no cover - exercised only without dask
        raise ImportError(_INSTALL) from e
    return dask, dd, delayed


def _no_string_conversion() -> Any:
    """Dask would turn object columns (reason texts, None) into Arrow strings; keep pandas' dtypes."""
    import dask

    return dask.config.set({"dataframe.convert-string": False})


# ============================================================== partitioning
def bucket_of(ids: pd.Series | pd.Index | Sequence[str], npartitions: int) -> np.ndarray:
    """Bucket (int64 in ``[0, npartitions)``, shape (N,)) of each entity id.

    ``((prn_key(PARTITION_SEED, id) >> 32) * npartitions) >> 32``: pure uint64 arithmetic on the
    UTF-8 bytes, so the same on every platform and in every process. Missing ids go to bucket 0.
    """
    npartitions = _check_npartitions(npartitions)
    s = pd.Series(ids) if not isinstance(ids, pd.Series) else ids
    out = np.zeros(len(s), np.int64)
    null = s.isna().to_numpy()
    ok = s if not null.any() else s[~null]
    if len(ok):
        keys = prn_keys(ok.astype("str") if ok.dtype == object else ok, PARTITION_SEED)
        b = ((keys >> _U64(32)) * _U64(npartitions)) >> _U64(32)
        out[~null] = b.astype(np.int64)
    return out


def _check_npartitions(npartitions: Any) -> int:
    if isinstance(npartitions, bool) or not isinstance(npartitions, int | np.integer) or not 1 <= npartitions < 2**31:
        raise ValueError(f"npartitions: expected an integer ≥ 1, got {npartitions!r}")
    return int(npartitions)


def _split(df: pd.DataFrame, npartitions: int) -> list[pd.DataFrame]:
    """Rows of ``df`` per bucket of their entity_id (input order kept within a bucket), bucket index."""
    b = bucket_of(df["entity_id"], npartitions)
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(npartitions + 1))
    out = df.take(order).set_axis(pd.Index(b[order], name=BUCKET))
    return [out.iloc[bounds[i]:bounds[i + 1]] for i in range(npartitions)]


def _divisions(npartitions: int) -> tuple[int, ...]:
    return (*range(npartitions), npartitions - 1)


@dataclass(frozen=True)
class DistributedDataset:
    """The seven tables as co-partitioned Dask DataFrames (index ``bucket``, one bucket per partition).

    ``source``: the directories when the tables are read lazily from :func:`write_partitioned`
    files (:func:`read_partitioned`); scoring then reads them inside its own tasks, several
    buckets at a time, instead of shipping the seven frames of every bucket between tasks.
    ``entity_rows``: the number of entities in those files (from the manifests).
    """

    tables: dict[str, dd.DataFrame]
    npartitions: int
    source: tuple[str, ...] | None = None
    entity_rows: int | None = None

    def __getitem__(self, name: str) -> dd.DataFrame:
        return self.tables[name]

    def persist(self) -> DistributedDataset:
        """Keep every table in (cluster) memory."""
        dask, _, _ = _dask()
        names = list(TABLES)
        return DistributedDataset(dict(zip(names, dask.persist(*[self.tables[n] for n in names]), strict=True)),
                                  self.npartitions)

    def to_dataset(self) -> Dataset:
        """Gather everything into one in-memory :class:`Dataset` (small data, tests)."""
        dask, _, _ = _dask()
        frames = dask.compute(*[self.tables[n] for n in TABLES])
        return Dataset(**{n: f.reset_index(drop=True) for n, f in zip(TABLES, frames, strict=True)},
                       source=f"distributed(B={self.npartitions})")


def _identity(x: Any) -> Any:
    return x


def partition_dataset(dataset: Dataset, npartitions: int) -> DistributedDataset:
    """Co-partition an in-memory dataset into ``npartitions`` buckets of entity_id (see :func:`bucket_of`).

    Partition *i* of every table holds the rows of bucket *i* (an entity and all its events);
    row order within a bucket follows the input. All columns are kept.
    """
    _, dd, _ = _dask()
    npartitions = _check_npartitions(npartitions)
    client = _client()
    tables = {}
    with _no_string_conversion():
        for name in TABLES:
            pieces = _split(dataset.table(name), npartitions)
            meta, div = pieces[0].iloc[:0], _divisions(npartitions)
            if client is not None:       # ship the pieces once instead of embedding them in every graph
                tables[name] = dd.from_delayed(client.scatter(pieces), meta=meta, divisions=div, verify_meta=False)
            else:
                tables[name] = dd.from_map(_identity, pieces, meta=meta, divisions=div, label=f"partition-{name}",
                                           enforce_metadata=False)
    return DistributedDataset(tables, npartitions)


_LOCAL_SCHEDULERS = ("sync", "synchronous", "single-threaded", "threads", "threading", "processes", "multiprocessing")


def _client() -> Any:
    """The active distributed Client, or None (no Client, or a local scheduler chosen with
    ``dask.config.set(scheduler=...)``)."""
    import dask

    if dask.config.get("scheduler", None) in _LOCAL_SCHEDULERS:
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


#: Environment a worker process needs from its start (Dask's ``distributed.nanny.pre-spawn-environ``).
#: Dask sets ``MALLOC_TRIM_THRESHOLD_`` for its workers, which also freezes glibc's mmap threshold at
#: 128 KiB: every array above it is mapped afresh and unmapped when freed, so a worker scoring 10M
#: entities took ~7M page faults (20 s of system time each). A fixed 32 MiB threshold (glibc's
#: largest) lets freed arrays be reused: 0.6M faults, 7.7 s, the 10M score 67 s → 46 s
#: (benchmarks/results/dask.md).
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": 32 * 2**20}


def local_cluster(n_workers: int | None = None, threads_per_worker: int = 1, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of worker processes started with :data:`WORKER_ENVIRON`.

    On another cluster, put the same variables under ``distributed.nanny.pre-spawn-environ`` in
    the Dask configuration of the machines that start the workers (docs/distributed.md)."""
    import dask
    from distributed import LocalCluster

    settings = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENVIRON.items()}
    with dask.config.set(settings):  # read by each nanny when it is created, kept for restarts
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True, **kwargs)


# ============================================================== Parquet, one file per bucket per table
_ARROW = {"id": pa.string(), "str": pa.string(), "code": pa.string(), "date": pa.timestamp("s"),
          "float": pa.float64(), "int": pa.float64(), "year": pa.int64(), "bool": pa.bool_()}
_PANDAS = {"id": "str", "str": "str", "code": "str", "date": "datetime64[s]", "float": "float64",
           "int": "float64", "year": "Int64", "bool": "boolean"}
_TO_PANDAS = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get


def _schema(name: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in TABLES[name].columns])


def _empty(name: str) -> pd.DataFrame:
    """Empty table with the dtypes :func:`read_partitioned` produces (bucket index)."""
    cols = {c.name: pd.Series([], dtype=_PANDAS[c.kind]) for c in TABLES[name].columns}
    return pd.DataFrame(cols, index=pd.Index([], dtype=np.int64, name=BUCKET))


def _file(path: Path, name: str, bucket: int) -> Path:
    return path / name / f"part-{bucket:05d}.parquet"


def _to_arrow(df: pd.DataFrame, name: str) -> pa.Table:
    cols = TABLES[name].column_names
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigError(f"{name}: missing column(s) {missing}")
    return pa.Table.from_pandas(df[cols], preserve_index=False).cast(_schema(name))


def _write_bucket(df: pd.DataFrame, path: str, name: str, bucket: int) -> int:
    """Write one bucket file atomically; returns its row count."""
    p = _file(Path(path), name, bucket)
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(_to_arrow(df, name), tmp)
    os.replace(tmp, p)
    return len(df)


class _ChunkWriter:
    """One open ParquetWriter per (table, bucket); each chunk adds a row group to every file."""

    def __init__(self, path: Path, npartitions: int):
        self.path, self.npartitions = path, npartitions
        self.writers: dict[tuple[str, int], pq.ParquetWriter] = {}
        self.rows = dict.fromkeys(TABLES, 0)

    def add(self, ds: Dataset) -> None:
        for name in TABLES:
            for b, piece in enumerate(_split(ds.table(name), self.npartitions)):
                key = (name, b)
                if key not in self.writers:
                    tmp = _file(self.path, name, b).with_suffix(".parquet.tmp")
                    self.writers[key] = pq.ParquetWriter(tmp, _schema(name))
                self.writers[key].write_table(_to_arrow(piece, name))
                self.rows[name] += len(piece)

    def close(self) -> None:
        for name in TABLES:
            for b in range(self.npartitions):
                w = self.writers.pop((name, b), None)
                if w is None:
                    w = pq.ParquetWriter(_file(self.path, name, b).with_suffix(".parquet.tmp"), _schema(name))
                w.close()
                p = _file(self.path, name, b)
                os.replace(p.with_suffix(".parquet.tmp"), p)


def write_partitioned(ds: Dataset | DistributedDataset | Iterable[Dataset], path: str | os.PathLike,
                      npartitions: int | None = None) -> Path:
    """Write a dataset as Parquet, one file per bucket per table: ``path/<table>/part-<bucket>.parquet``.

    ``ds``: an in-memory :class:`Dataset`; a :class:`DistributedDataset` (each partition is
    written by its own task, ``npartitions`` must be None or equal); or an iterable of Datasets
    (chunks with disjoint entities, e.g. one per million entities: each adds a row group to every
    file, so the whole never has to be in one process). Only the contract columns are written,
    with contract types. ``path/_yiwu_partitioned.json`` (written last) records the bucket count
    and row counts; :func:`read_partitioned` requires it.
    """
    path = Path(path)
    if isinstance(ds, DistributedDataset):
        if npartitions not in (None, ds.npartitions):
            raise ValueError(f"npartitions={npartitions} differs from the dataset's {ds.npartitions} buckets "
                             "(re-bucketing needs a shuffle: gather, or partition again)")
        dask, _, delayed = _dask()
        B = ds.npartitions
        _prepare_dir(path, B)
        tasks = {name: [delayed(_write_bucket)(part, str(path), name, b)
                        for b, part in enumerate(ds.tables[name].to_delayed())] for name in TABLES}
        counts = dask.compute(tasks)[0]
        rows = {name: int(sum(c)) for name, c in counts.items()}
    else:
        B = _check_npartitions(npartitions if npartitions is not None else 1)
        chunks = [ds] if isinstance(ds, Dataset) else ds
        _prepare_dir(path, B)
        w = _ChunkWriter(path, B)
        try:
            for chunk in chunks:
                w.add(chunk)
        finally:
            w.close()
        rows = w.rows
    manifest = {"format": FORMAT, "npartitions": B, "hash": f"prn-fmix64 seed={PARTITION_SEED!r}, multiply-shift",
                "tables": {name: {"rows": rows[name], "columns": TABLES[name].column_names} for name in TABLES}}
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path / MANIFEST)
    return path


def _prepare_dir(path: Path, npartitions: int) -> None:
    if (path / MANIFEST).exists():
        (path / MANIFEST).unlink()          # the dataset is incomplete until the manifest is back
    for name in TABLES:
        d = path / name
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("part-*.parquet"):
            if int(old.stem.split("-")[1]) >= npartitions:
                old.unlink()


def _read_bucket(paths: tuple[str, ...], name: str, bucket: int) -> pd.DataFrame:
    """Bucket ``bucket`` of table ``name``: its file in every directory, concatenated, contract dtypes."""
    return _read_buckets(paths, name, (bucket,))


def _read_buckets(paths: tuple[str, ...], name: str, buckets: Sequence[int]) -> pd.DataFrame:
    """Buckets ``buckets`` of table ``name`` (each: its file in every directory), concatenated in
    one Arrow table and converted once, contract dtypes, bucket index."""
    # one read per bucket of all its files (in directory order): Arrow reads them in parallel,
    # ~2x faster than a read per file for the ~70 small files of a task
    parts = [pq.read_table([str(_file(Path(p), name, b)) for p in paths]) if len(paths) > 1
             else pq.read_table(_file(Path(paths[0]), name, b)) for b in buckets]
    t = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    df = t.to_pandas(types_mapper=_TO_PANDAS)
    kinds = {c.name: c.kind for c in TABLES[name].columns}
    df = df.astype({c: _PANDAS[kinds[c]] for c in df.columns if c in kinds})
    idx = np.repeat(np.asarray(buckets, np.int64), [len(x) for x in parts])
    return df.set_axis(pd.Index(idx, name=BUCKET))


def _manifest(path: Path) -> dict[str, Any]:
    mp = path / MANIFEST
    if not mp.is_file():
        raise ConfigError(f"{path}: not a partitioned yiwu-credit dataset ({MANIFEST} not found)")
    manifest = json.loads(mp.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{mp}: unsupported format {manifest.get('format')!r}; this library reads {FORMAT}")
    return manifest


def read_partitioned(path: str | os.PathLike | Sequence[str | os.PathLike]) -> DistributedDataset:
    """Lazily read a dataset written by :func:`write_partitioned` (one task per bucket).

    ``path`` may also be a list of such directories with the same bucket count (e.g. one per load
    batch of disjoint entities): partition *i* is then bucket *i* of every directory. Types follow
    the contract as :func:`~yiwu_credit.data.dataset.load_dataset` produces them (str,
    datetime64[s], float64, Int64 years, boolean). The data is assumed valid (validate before
    writing: ``load_dataset`` on the source, or ``synth``).
    """
    _, dd, _ = _dask()
    paths = [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]
    if not paths:
        raise ConfigError("read_partitioned: no directory given")
    counts = {int(_manifest(p)["npartitions"]) for p in paths}
    if len(counts) > 1:
        raise ConfigError(f"read_partitioned: the directories have different bucket counts {sorted(counts)}")
    B = counts.pop()
    key = tuple(str(p) for p in paths)
    entity_rows = sum(int(_manifest(p)["tables"]["entities"]["rows"]) for p in paths)
    tables = {}
    with _no_string_conversion():
        for name in TABLES:
            tables[name] = dd.from_map(functools.partial(_read_bucket, key, name), list(range(B)),
                                       meta=_empty(name), divisions=_divisions(B), label=f"read-{name}",
                                       enforce_metadata=False)
    return DistributedDataset(tables, B, source=key, entity_rows=entity_rows)


def read_bucket(path: str | os.PathLike | Sequence[str | os.PathLike], bucket: int, validate: bool = False) -> Dataset:
    """One bucket of a partitioned dataset as an in-memory :class:`Dataset` (no Dask needed):
    what a Spark ``mapInPandas`` task or any other executor scores with ``score_entities``.
    ``validate``: check its rows by the loader's rules (``load_records``, strict) — buckets another system wrote."""
    paths = [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]
    B = {int(_manifest(p)["npartitions"]) for p in paths}
    if len(B) != 1 or not 0 <= bucket < min(B):
        raise ConfigError(f"read_bucket: bucket {bucket} is not in [0, {min(B)}) for every directory")
    key = tuple(str(p) for p in paths)
    tables = [_read_bucket(key, n, int(bucket)) for n in TABLES]
    return load_records(dict(zip(TABLES, tables, strict=True)), source=f"bucket {bucket}") if validate and len(tables[0]) \
        else _dataset_of(tables)  # an empty bucket is valid: nothing to check


# ============================================================== features and scores per partition
def _dataset_of(tables: Sequence[pd.DataFrame]) -> Dataset:
    return Dataset(**{n: t.reset_index(drop=True) for n, t in zip(TABLES, tables, strict=True)})


@functools.lru_cache(maxsize=4)
def _cached_bundle(path: str | None, threads: int | None = None) -> Bundle:
    """The bundle at ``path``, loaded once per process (and thread count): this process's own copy,
    so its LightGBM thread count may be set to ``threads`` without touching anyone else's model."""
    b = load_bundle(path)
    params = getattr(getattr(b.model, "learner_", None), "params", None)
    if threads is not None and isinstance(params, dict) and "num_threads" in params:
        params["num_threads"] = int(threads)
    return b


def _bundle(spec: Bundle | str | None, threads: int | None = None) -> Bundle:
    return spec if isinstance(spec, Bundle) else _cached_bundle(spec, threads)


def _worker_threads_per_host() -> dict[str, int] | None:
    """Worker threads on each host of the active distributed cluster (None without one)."""
    client = _client()
    if client is None:
        return None
    hosts: dict[str, int] = {}
    for addr, w in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        host = addr.rsplit(":", 1)[0]
        hosts[host] = hosts.get(host, 0) + int(w.get("nthreads", 1))
    return hosts or None


def _model_threads(hosts: Mapping[str, int] | None) -> int | None:
    """LightGBM threads for a task on this worker: this machine's cores shared among the worker
    threads on it (2 workers × 1 thread on 2 cores → 1 each; 1 worker → 2). None outside a worker."""
    if not hosts:
        return None
    try:
        from distributed import get_worker

        k = hosts.get(get_worker().address.rsplit(":", 1)[0])
    except (ImportError, ValueError):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // k) if k else None


def _bundle_spec(bundle: Bundle | str | os.PathLike | None) -> Bundle | str | None:
    """What tasks receive: the Bundle itself, or a path/name each worker loads (and caches) once."""
    return bundle if isinstance(bundle, Bundle) or bundle is None else str(bundle)


def _features_part(*tables: pd.DataFrame, as_of: Any, catalogue: Any, policy: Any,
                   empty: pd.DataFrame | None) -> pd.DataFrame:
    out = build_features(_dataset_of(tables), as_of, catalogue, policy)
    return empty if empty is not None and len(out) == 0 else out


def _score_part(*tables: pd.DataFrame, as_of: Any, bundle: Bundle | str | None, reasons: str,
                hosts: Mapping[str, int] | None = None, empty: pd.DataFrame | None) -> pd.DataFrame:
    b = _bundle(bundle, _model_threads(hosts))
    out = score_entities(_dataset_of(tables), as_of, b, reasons=reasons).scored
    return empty if empty is not None and len(out) == 0 else out


def _mini_tables(ddata: DistributedDataset) -> list[pd.DataFrame]:
    """A tiny synthetic dataset with the input's columns and dtypes (for meta), else the empty metas."""
    from ..data import synth

    metas = [ddata.tables[n]._meta for n in TABLES]
    try:
        mini = synth.generate(64, seed=0).dataset
        return [mini.table(n).reindex(columns=m.columns).astype(m.dtypes.to_dict()) for n, m in zip(TABLES, metas,
                                                                                                     strict=True)]
    except (ValueError, TypeError, KeyError):
        return metas


def _meta(fn: Any, ddata: DistributedDataset) -> pd.DataFrame:
    """Columns and dtypes of ``fn``'s output, from running it on a 64-entity synthetic partition."""
    try:
        out = fn(*_mini_tables(ddata), empty=None)
    except Exception:  # noqa: BLE001 - the synthetic tables may not suit a custom catalogue
        out = fn(*[ddata.tables[n]._meta for n in TABLES], empty=None)
    return out.iloc[:0]


def _from_files(buckets: Sequence[int], *, fn: Any, paths: tuple[str, ...], empty: pd.DataFrame) -> pd.DataFrame:
    """``fn`` on buckets ``buckets`` read from the files inside the task (no frames travel)."""
    return fn(*[_read_buckets(paths, n, buckets) for n in TABLES], empty=empty)


def _bucket_groups(npartitions: int, entity_rows: int | None, entities_per_task: int | None) -> list[tuple[int, ...]]:
    """Contiguous groups of buckets holding about ``entities_per_task`` entities each (whole
    buckets; one bucket per group when either count is None)."""
    g = 1
    if entity_rows and entities_per_task:
        g = max(1, min(npartitions, round(entities_per_task * npartitions / entity_rows)))
    return [tuple(range(b, min(b + g, npartitions))) for b in range(0, npartitions, g)]


def _map_tables(fn: Any, ddata: DistributedDataset, entities_per_task: int | None = None) -> dd.DataFrame:
    _, dd, _ = _dask()
    empty = _meta(fn, ddata)
    with _no_string_conversion():
        if ddata.source is not None:     # read inside the task: one task per group of buckets
            groups = _bucket_groups(ddata.npartitions, ddata.entity_rows, entities_per_task)
            return dd.from_map(functools.partial(_from_files, fn=fn, paths=ddata.source, empty=empty), groups,
                               meta=empty, label=getattr(fn, "func", fn).__name__.strip("_"),
                               enforce_metadata=False)
        return dd.map_partitions(functools.partial(fn, empty=empty), *[ddata.tables[n] for n in TABLES],
                                 meta=empty, align_dataframes=False, enforce_metadata=False)


def features_distributed(ddata: DistributedDataset, as_of: str | pd.Timestamp, catalogue: Any = None,
                         policy: Any = None, *, entities_per_task: int | None = ENTITIES_PER_TASK) -> dd.DataFrame:
    """:func:`~yiwu_credit.features.build.build_features` per partition (lazy).

    One row per entity alive at ``as_of``, index entity_id (sorted within a partition); after
    ``.compute().sort_index()`` identical to ``build_features`` on the whole dataset.
    ``entities_per_task``: see :func:`score_distributed`.
    """
    fn = functools.partial(_features_part, as_of=as_of, catalogue=catalogue, policy=policy)
    return _map_tables(fn, ddata, entities_per_task)


def score_distributed(ddata: DistributedDataset, as_of: str | pd.Timestamp,
                      bundle: Bundle | str | os.PathLike | None = None, reasons: str = "CD", *,
                      entities_per_task: int | None = ENTITIES_PER_TASK) -> dd.DataFrame:
    """:func:`~yiwu_credit.pipeline.scoring.score_entities` per partition (lazy): the ``scored`` frame.

    Same columns and dtypes; after ``.compute().sort_index()`` identical (probabilities, tiers,
    overrides, reason texts) to the single-machine ``score_entities(...).scored``. ``bundle``:
    a Bundle (shipped to the workers, used as is) or a path/name each worker loads once (default:
    the shipped bundle); a loaded-by-path model predicts with this machine's cores divided among
    the worker threads on it (LightGBM threads × worker threads ≤ cores: no oversubscription).
    The excluded list is not produced (see docs/distributed.md).

    Read from files (:func:`read_partitioned`), each task reads and scores a group of whole
    buckets of about ``entities_per_task`` entities (None: one bucket per task), so the result
    has about ``entities / entities_per_task`` partitions (unknown divisions). Every call of
    ``score_entities`` has a fixed cost; fewer, larger calls cost less in total.
    An in-memory or persisted dataset is scored one partition per task.
    """
    if reasons not in ("CD", "all", "none"):
        raise ValueError(f"reasons must be 'CD', 'all' or 'none', got {reasons!r}")
    fn = functools.partial(_score_part, as_of=as_of, bundle=_bundle_spec(bundle), reasons=reasons,
                           hosts=_worker_threads_per_host())
    return _map_tables(fn, ddata, entities_per_task)


# ============================================================== the plan: group_counts → solve_groups → apply
@dataclass(frozen=True)
class DistributedPlan:
    """A lazy supervision plan: ``parts`` (one Delayed pandas plan per partition), ``summary``
    (Delayed → the ``attrs["yiwu_credit.plan"]`` dict of :func:`~yiwu_credit.supervision.plan.supervision_plan`)
    and ``meta`` (empty frame with the plan's columns)."""

    parts: list[Delayed]
    summary: Delayed
    meta: pd.DataFrame

    @property
    def frame(self) -> dd.DataFrame:
        """The plan as a lazy Dask DataFrame (index entity_id, one partition per bucket)."""
        _, dd, _ = _dask()
        with _no_string_conversion():
            return dd.from_delayed(self.parts, meta=self.meta, verify_meta=False)

    def persist(self) -> DistributedPlan:
        """Compute and keep the partitions and the summary in (cluster) memory."""
        dask, _, _ = _dask()
        parts, summary = dask.persist(self.parts, self.summary)
        return DistributedPlan(list(parts), summary, self.meta)

    def compute(self) -> pd.DataFrame:
        """Gather the plan: one pandas frame sorted by entity_id with the plan attrs."""
        dask, _, _ = _dask()
        parts, summary = dask.compute(self.parts, self.summary)
        out = pd.concat(parts).sort_index() if parts else self.meta
        out.attrs[PLAN_ATTR] = summary
        return out


def _cells_only(part: PlanPart) -> PlanCells:
    return part.cells.counts_only()


def _for_part(solved: SolvedPlan, k: int) -> SolvedPlan:
    return solved.for_part(k)


def plan_distributed(scored: dd.DataFrame, policy: str | Path | Policy | None = None, *, n: int | None = None,
                     budget: float | None = None, floor: float | None = None,
                     scale_by_probability: bool | None = None, alpha: float | None = None,
                     entity_type_factor_scope: str | None = None) -> DistributedPlan:
    """:func:`~yiwu_credit.supervision.plan.supervision_plan` over a partitioned scored frame (lazy).

    ``scored``: e.g. :func:`score_distributed`'s result (entity_id index, ``tier``, flags...).
    The plan core's three steps: :func:`~yiwu_credit.supervision.plan.group_counts` per partition
    (cells of identical inputs with counts), one reduction running
    :func:`~yiwu_credit.supervision.plan.solve_groups` on the merged cells (with probabilities
    ~24 bytes per distinct cell travel, never the rows), then
    :func:`~yiwu_credit.supervision.plan.apply` per partition. ``pi`` and the attrs are
    bit-identical to ``supervision_plan`` on the gathered frame.
    """
    _, _, delayed = _dask()
    settings = plan_settings(policy, list(scored.columns), floor=floor, scale_by_probability=scale_by_probability,
                             alpha=alpha, scope=entity_type_factor_scope)
    with _no_string_conversion():
        preps = [delayed(group_counts, pure=True)(p, settings) for p in scored.to_delayed()]
    cells = [delayed(_cells_only, pure=True)(p) for p in preps]
    solved = delayed(solve_groups, pure=True)(cells, settings, n=n, budget=budget)
    parts = [delayed(apply, pure=True)(p, delayed(_for_part, pure=True)(solved, k)) for k, p in enumerate(preps)]
    summary = delayed(operator.attrgetter("attrs"), pure=True)(solved)
    return DistributedPlan(parts, summary, _plan_meta(scored._meta))


def _plan_meta(scored_meta: pd.DataFrame) -> pd.DataFrame:
    df = as_entity_frame(scored_meta)
    out = pd.DataFrame({"tier": df["tier"], "weight": pd.Series([], dtype=np.float64),
                        "expected_per_year": pd.Series([], dtype=np.float64), "pi": pd.Series([], dtype=np.float64),
                        "must_include": pd.Series([], dtype=bool)}, index=df.index)
    for c in CARRY:
        if c in df.columns:
            out[c] = df[c]
    for c in PLAN_COLUMNS.values():   # apply() adds the plan record as one-category columns
        out[c] = pd.Categorical([])
    out.index.name = "entity_id"
    return out


# ============================================================== the draw: prepare → offsets → select_range
def key_range(keys: np.ndarray, nranges: int) -> np.ndarray:
    """Range (int64, monotone in the key) of each PRN key: contiguous stretches of the draw order."""
    return (((keys >> _U64(32)) * _U64(nranges)) >> _U64(32)).astype(np.int64)


def _draw_prepare(part: pd.DataFrame, seed: Any, nranges: int) -> dict[str, Any]:
    """Per partition: the core's ``prepare`` on key ranges, and the (ids, q) piece of each range to ship."""
    df = as_entity_frame(part, "plan")
    pi = plan_pi(df)
    ids = id_bytes(df.index)
    prep = prepare(pi, key_range(keys_of(ids, seed), nranges), nranges)
    taken = ids.take(prep.order).to_arrow()
    b = prep.bounds
    # concat_arrays copies each slice into its own buffers: a pickled Arrow slice carries the whole
    # parent buffer, so without it every piece sent to another worker held all the partition's ids
    pieces = [(pa.concat_arrays([taken.slice(b[k], b[k + 1] - b[k])]), prep.q[b[k]:b[k + 1]].copy())
              for k in range(nranges)]
    return {"stats": prep.stats, "pieces": pieces}


def _draw_stats(prep: Mapping[str, Any]) -> RangeStats:
    return prep["stats"]


def _draw_piece(prep: Mapping[str, Any], k: int) -> tuple[pa.Array, np.ndarray]:
    return prep["pieces"][k]


def _draw_range(pieces: Sequence[tuple[pa.Array, np.ndarray]], offs: DrawOffsets, k: int, seed: Any) -> dict[str, Any]:
    """One key range: the draw order (PRN key, id), then the core's ``select_range``."""
    arr = pa.concat_arrays([p[0] for p in pieces]) if pieces else pa.array([], pa.large_string())
    q = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int64)
    ids = id_bytes(arr)
    order = prn_order(ids, seed)
    ordered, qs = ids.take(order), q[order]
    sel = select_range(qs, offs, k)
    return {"ids": ordered, "q": qs, "selected": ordered.to_arrow().filter(pa.array(sel))}


def _draw_graph(parts: Sequence[Delayed], n: int | None, seed: Any, R: int) -> tuple[Delayed, list[Delayed]]:
    """The draw's task graph, written out directly (B prepare, B stats, B×R piece, 1 offsets and
    R range tasks; ``dask.delayed`` would spend ~1 ms per call building it)."""
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    name = f"yiwu-draw-{tokenize([p.key for p in parts], n, seed_text(seed), type(seed).__name__, R)}"
    prep, stats, piece, offs, rng = (f"{name}-{s}" for s in ("prepare", "stats", "piece", "offsets", "range"))
    dsk: dict[Any, Any] = {}
    for b, p in enumerate(parts):
        dsk[(prep, b)] = (functools.partial(_draw_prepare, seed=seed, nranges=R), p.key)
        dsk[(stats, b)] = (_draw_stats, (prep, b))
        for k in range(R):
            dsk[(piece, b, k)] = (functools.partial(_draw_piece, k=k), (prep, b))
    dsk[(offs, 0)] = (functools.partial(offsets, n=n, seed=seed), [(stats, b) for b in range(len(parts))])
    for k in range(R):
        dsk[(rng, k)] = (functools.partial(_draw_range, k=k, seed=seed),
                         [(piece, b, k) for b in range(len(parts))], (offs, 0))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=list(parts))
    return Delayed((offs, 0), graph, layer=name), [Delayed((rng, k), graph, layer=name) for k in range(R)]


def _iter_computed(tasks: Sequence[Delayed]) -> Iterator[Any]:
    """Results of ``tasks`` in order: streamed one at a time through a distributed Client when one
    is active (the client then holds one result at a time), else ``dask.compute``."""
    dask, _, _ = _dask()
    client = _client()
    if client is None:
        yield from dask.compute(*tasks)
        return
    futures = client.compute(list(tasks))
    try:
        for i, f in enumerate(futures):
            yield f.result()
            f.release()
            futures[i] = None
    finally:
        for f in futures:
            if f is not None:
                f.release()


def draw_distributed(plan: DistributedPlan | dd.DataFrame, n: int | None, seed: int | str, *,
                     nranges: int | None = None, plan_attrs: Mapping[str, Any] | None = None) -> Draw:
    """:func:`~yiwu_credit.supervision.systematic.draw` on a partitioned plan: the same selected ids (in draw
    order) and the same audit record (start, frame_sha256, pi_sha256, n, population, plan).

    ``plan``: :func:`plan_distributed`'s result or any Dask frame with entity_id index and
    ``pi``. ``nranges``: key ranges of the shuffle (default: max(8, workers), at most the
    partition count; the shuffle has partitions × ranges small tasks).
    ``plan_attrs``: the plan record for the audit when ``plan`` is a bare frame.
    One graph: the draw core's ``prepare`` per partition → ``offsets`` (one small reduction) →
    the key-range shuffle → ``select_range`` per range; the client then feeds the ranges in order
    to the audit hasher and builds the record with ``draw_audit``.
    """
    _dask()
    seed_text(seed)
    if isinstance(plan, DistributedPlan):
        parts, summary = plan.parts, plan.summary
    else:
        parts, summary = list(plan.to_delayed()), None
        if plan_attrs is None and set(PLAN_COLUMNS.values()) & set(plan.columns):   # the record in the rows
            _, _, delayed = _dask()
            summary = delayed(merge_plan_records, pure=True)([delayed(read_plan_record, pure=True)(p) for p in parts])
    if nranges is None:
        client = _client()
        workers = len(client.scheduler_info().get("workers", {})) if client is not None else 1
        nranges = max(1, min(len(parts), max(8, workers)))
    R = _check_npartitions(nranges)
    info, ranges = _draw_graph(parts, n, seed, R)
    head = [info] + ([summary] if summary is not None else [])
    hasher, selected = AuditHasher(), []
    it = _iter_computed([*head, *ranges])
    got = [next(it) for _ in head]
    for r in it:
        hasher.update(r["ids"], r["q"])
        selected.append(r["selected"])
    attrs = dict(got[1]) if summary is not None else dict(plan_attrs or {})
    sel_arr = pa.concat_arrays(selected) if selected else pa.array([], pa.large_string())
    sel = pd.Index(sel_arr.to_pandas(), name="entity_id")
    return Draw(selected=sel, audit=draw_audit(seed, got[0], hasher, attrs, sel))
