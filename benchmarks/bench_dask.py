"""Benchmark: distributed scoring + plan + draw on a Dask LocalCluster vs workers and entities.

Data: synthetic worlds of 1M entities per chunk (``synth.generate(1_000_000, seed=1000 + k)``;
ids that collide with an earlier chunk are dropped with their events), each chunk written as
partitioned Parquet (``write_partitioned``, the same bucket count for all), and a world of N
entities = the first N/1M chunk directories (``read_partitioned([...])``). For each size and
worker count: ``score_distributed`` from Parquet, persisted in the workers (wall → "score"),
then ``plan_distributed`` + ``draw_distributed`` on the persisted scores ("plan+draw"). Peak RSS
of the driver (this process) and of every worker process (sampled every 20 ms), CPU seconds of
the workers and of the driver, and the machine's load average when the configuration started
(the VM is shared). At 1M the single-machine ``score_entities`` + ``supervision_plan`` + ``draw``
run in a fresh process on the chunk read into memory, and the distributed draw is checked to
select the same ids with the same audit record. At 1M every configuration runs ``--repeat``
times, interleaved (single, 1 worker, 2 workers, single, ...), and the tables show medians.

Workers are started and warmed (imports) before the clock starts, as the single process has
its imports done and its bundle loaded before its clock starts.

Writes ``benchmarks/results/dask.json`` (after every configuration, so partial runs keep their
figures; earlier runs are kept under ``history``) and ``benchmarks/results/dask.md``.

    .venv/bin/python benchmarks/bench_dask.py [--sizes 1000000 3000000 10000000] [--workers 1 2]
        [--npartitions 32] [--workdir /tmp/yiwu-bench-dask] [--budget-s 1800] [--reuse-chunks]
        [--repeat 3] [--repeat-large 1] [--large-workers 2] [--label TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, PeakRSS, machine, save  # noqa: E402

from yiwu_credit.data import synth  # noqa: E402
from yiwu_credit.data.contract import TABLES  # noqa: E402
from yiwu_credit.data.dataset import Dataset  # noqa: E402
from yiwu_credit.distributed import engine as D  # noqa: E402
from yiwu_credit.model.bundle import load_bundle  # noqa: E402
from yiwu_credit.pipeline.scoring import score_entities  # noqa: E402
from yiwu_credit.supervision.plan import supervision_plan  # noqa: E402
from yiwu_credit.supervision.systematic import draw  # noqa: E402

AS_OF = "2026-01-01"
SEED = "bench-2026"
CHUNK = 1_000_000
CHUNK_INFO = "_chunk_info.json"
GIB = 2**30


# ----------------------------------------------------------------------------- worker memory
def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_start(dask_worker: Any) -> None:
    """Sample this worker process's RSS every 20 ms into ``dask_worker._yiwu_peak``."""
    import threading

    dask_worker._yiwu_peak = _rss()
    if getattr(dask_worker, "_yiwu_sampler", None) is None:
        def loop() -> None:
            while True:
                dask_worker._yiwu_peak = max(dask_worker._yiwu_peak, _rss())
                time.sleep(0.02)
        dask_worker._yiwu_sampler = threading.Thread(target=loop, daemon=True)
        dask_worker._yiwu_sampler.start()


def _peak_get(dask_worker: Any) -> dict[str, int]:
    return {"peak": int(dask_worker._yiwu_peak), "now": _rss()}


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _warm() -> None:
    """Import the scoring stack in a worker (the single process has it imported before its clock)."""
    import lightgbm  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import yiwu_credit.distributed.engine  # noqa: F401
    import yiwu_credit.pipeline.scoring  # noqa: F401


# ----------------------------------------------------------------------------- data
def _drop_ids(ds: Dataset, drop: np.ndarray) -> Dataset:
    """The dataset without the entities whose ids are in ``drop`` (and without their events)."""
    if not len(drop):
        return ds
    keep = {}
    for name in TABLES:
        df = ds.table(name)
        m = pc.is_in(pa.array(df["entity_id"]), value_set=pa.array(drop)).to_numpy(zero_copy_only=False)
        keep[name] = df[~m].reset_index(drop=True)
    return ds.replace(**keep)


def make_chunk(k: int, workdir: Path, npartitions: int) -> dict:
    """Generate chunk k (1M entities), drop ids used by earlier chunks, write it partitioned."""
    import pyarrow.parquet as pq

    t = time.perf_counter()
    ds = synth.generate(CHUNK, seed=1000 + k).dataset
    t_gen = time.perf_counter() - t
    ids = pa.array(ds.entities["entity_id"])
    dup = np.zeros(len(ids), bool)
    for j in range(k):
        prev = pq.read_table(workdir / f"chunk-{j:02d}" / "entities", columns=["entity_id"]).column(0)
        dup |= pc.is_in(ids, value_set=prev.combine_chunks()).to_numpy(zero_copy_only=False)
    if dup.any():
        ds = _drop_ids(ds, ids.filter(pa.array(dup)).to_numpy(zero_copy_only=False))
    path = workdir / f"chunk-{k:02d}"
    if path.exists():
        shutil.rmtree(path)
    t = time.perf_counter()
    D.write_partitioned(ds, path, npartitions)
    t_write = time.perf_counter() - t
    rows = {n: len(ds.table(n)) for n in TABLES}
    info = {"chunk": k, "entities": rows["entities"], "event_rows": sum(rows.values()) - rows["entities"],
            "dropped_duplicate_ids": int(dup.sum()), "generate_s": round(t_gen, 2), "write_parquet_s": round(t_write, 2),
            "parquet_mib": round(sum(f.stat().st_size for f in path.rglob("*.parquet")) / 2**20, 1),
            "chunk_size": CHUNK, "npartitions": npartitions}
    (path / CHUNK_INFO).write_text(json.dumps(info), encoding="utf-8")
    return info


def reusable_chunk(k: int, workdir: Path, npartitions: int) -> dict | None:
    """The info of chunk k if it is already on disk with the same chunk size and bucket count."""
    p = workdir / f"chunk-{k:02d}" / CHUNK_INFO
    if not p.is_file() or not (p.parent / D.MANIFEST).is_file():
        return None
    info = json.loads(p.read_text(encoding="utf-8"))
    ok = info.get("chunk_size") == CHUNK and info.get("npartitions") == npartitions
    return {**info, "reused": True} if ok else None


def _child(args: list[str]) -> dict:
    """Run this script in a fresh process (so the driver's RSS stays its own) and parse its JSON line."""
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"{args}: exit {r.returncode}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- runs
def single_machine(path: Path, ids_out: Path) -> dict:
    """score_entities + supervision_plan + draw on the first chunk gathered into one process
    (LightGBM: 2 threads); the Parquet read is timed separately."""
    out: dict[str, Any] = {"load_avg_1min": round(os.getloadavg()[0], 2)}
    with PeakRSS() as mem:
        t = time.perf_counter()
        import dask

        with dask.config.set(scheduler="synchronous"):
            ds = D.read_partitioned(path).to_dataset()
        out["read_parquet_s"] = time.perf_counter() - t
        bundle = load_bundle()
        t, c = time.perf_counter(), time.process_time()
        scored = score_entities(ds, AS_OF, bundle).scored
        out["score_s"] = time.perf_counter() - t
        t = time.perf_counter()
        plan = supervision_plan(scored)
        d = draw(plan, None, SEED)
        out["plan_draw_s"] = time.perf_counter() - t
        out["cpu_s"] = time.process_time() - c
    out["total_s"] = out["score_s"] + out["plan_draw_s"]
    out["total_with_read_s"] = out["total_s"] + out["read_parquet_s"]
    out["pool"] = len(scored)
    out["peak_rss_gib"] = round(mem.peak / GIB, 2)
    out["selected"] = len(d.selected)
    out["audit"] = {k: d.audit[k] for k in ("n", "population", "start", "frame_sha256", "pi_sha256")}
    ids_out.write_text(json.dumps(d.audit["selected"]), encoding="utf-8")
    return out


def distributed_run(paths: list[Path], workers: int, bundle_path: str | None) -> dict:
    from distributed import Client, wait

    out: dict[str, Any] = {"workers": workers, "threads_per_worker": 1, "processes": True}
    with D.local_cluster(workers, threads_per_worker=1, dashboard_address=None,
                      memory_limit=f"{22 // workers}GiB") as cluster, Client(cluster) as client:
        client.run(_warm)
        client.run(_peak_start)
        out["load_avg_1min"] = round(os.getloadavg()[0], 2)
        with PeakRSS() as mem:
            c_w, c_d = sum(client.run(_cpu_s).values()), time.process_time()
            t = time.perf_counter()
            ddata = D.read_partitioned(paths)
            scored = D.score_distributed(ddata, AS_OF, bundle_path).persist()
            wait(scored)
            out["score_s"] = time.perf_counter() - t
            w_score = client.run(_peak_get)
            c_w2 = sum(client.run(_cpu_s).values())
            out["worker_cpu_s_score"] = c_w2 - c_w
            client.run(_peak_start)
            t = time.perf_counter()
            plan = D.plan_distributed(scored)
            d = D.draw_distributed(plan, None, SEED)
            out["plan_draw_s"] = time.perf_counter() - t
            w_draw = client.run(_peak_get)
            out["worker_cpu_s_plan_draw"] = sum(client.run(_cpu_s).values()) - c_w2
            out["driver_cpu_s"] = time.process_time() - c_d
        out["total_s"] = out["score_s"] + out["plan_draw_s"]
        out["npartitions"] = ddata.npartitions
        out["score_tasks"] = scored.npartitions
        out["population"] = d.audit["population"]
        out["selected"] = len(d.selected)
        out["driver_peak_rss_gib"] = round(mem.peak / GIB, 2)
        out["worker_peak_rss_gib_score"] = sorted(round(v["peak"] / GIB, 2) for v in w_score.values())
        out["worker_rss_gib_holding_scores"] = sorted(round(v["now"] / GIB, 2) for v in w_score.values())
        out["worker_peak_rss_gib_plan_draw"] = sorted(round(v["peak"] / GIB, 2) for v in w_draw.values())
        out["audit"] = {k: d.audit[k] for k in ("n", "population", "start", "frame_sha256", "pi_sha256")}
        out["_selected_ids"] = d.selected
        del scored, plan
    return out


def _public(r: dict) -> dict:
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items() if not k.startswith("_")}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median total (the lower middle one for an even count), with every total."""
    ordered = sorted(runs, key=lambda r: r["total_s"])
    med = dict(ordered[(len(ordered) - 1) // 2])
    med["totals_s"] = [round(r["total_s"], 2) for r in runs]
    med["repeats"] = len(runs)
    return med


# ----------------------------------------------------------------------------- report
def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def _fmt(xs: list[float] | None) -> str:
    return " / ".join(f"{x:.2f}" for x in xs) if xs else "–"


def render(payload: dict, level: str = "##") -> list[str]:
    """Markdown of one run of this script (older runs lack some fields: shown as –)."""
    m = payload["machine"]
    title = payload.get("label") or "run"
    lines = [
        f"{level} {title}", "",
        f"Machine: {m['cpu_count']} cores, {payload['memory_gib']} GiB RAM, {m['platform']}, Python {m['python']}; "
        f"dask {payload['dask']}, distributed {payload['distributed']}, {m['versions']}"
        + (f"; code {payload['commit']}" if payload.get("commit") else "") + ".",
        f"Cluster: `{payload.get('cluster', 'LocalCluster(n_workers=w, threads_per_worker=1, processes=True)')}`; "
        f"{payload['npartitions']} "
        f"buckets (one Parquet file per bucket per table per {payload['chunk']:,}-entity chunk). Single process: "
        "`score_entities` + `supervision_plan` + `draw` on the first chunk read into one fresh process (its "
        "Parquet read is timed separately and not in its total); the distributed totals include reading "
        "the Parquet files. Worker RSS is per worker process."
        + (f" Medians of {payload['repeat']} interleaved repeats at {payload['chunk']:,} entities (all totals "
           "in the last column)." if payload.get("repeat", 1) > 1 else ""), "",
        "| entities | pool | workers | score tasks | score s | plan+draw s | total s | entities/s | worker CPU s | "
        "driver peak GiB | worker peak GiB (score) | worker RSS holding scores GiB | load avg | same draw as single "
        "| all totals s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    s = payload.get("single_machine_1M")
    if s:
        ne = payload["chunks"][0]["entities"]
        lines.append(f"| {ne:,} | {s['pool']:,} | single process | 1 | {s['score_s']:.1f} | {s['plan_draw_s']:.1f} | "
                     f"{s['total_s']:.1f} | {ne / s['total_s']:,.0f} | {_num(s.get('cpu_s'))} | "
                     f"{s['peak_rss_gib']:.2f} | – | – | {s.get('load_avg_1min', '–')} | – | "
                     f"{_fmt(s.get('totals_s'))} |")
    for r in payload["runs"]:
        same = {True: "yes", False: "NO", None: "–"}[r.get("identical_to_single")]
        cpu = r.get("worker_cpu_s_score")
        cpu_s = f"{cpu + r['worker_cpu_s_plan_draw']:.1f}" if cpu is not None else "–"
        lines.append(
            f"| {r['entities']:,} | {r['population']:,} | {r['workers']} | {r.get('score_tasks', r['npartitions'])} | "
            f"{r['score_s']:.1f} | {r['plan_draw_s']:.1f} | {r['total_s']:.1f} | {r['entities'] / r['total_s']:,.0f} | "
            f"{cpu_s} | {r['driver_peak_rss_gib']:.2f} | {_fmt(r['worker_peak_rss_gib_score'])} | "
            f"{_fmt(r['worker_rss_gib_holding_scores'])} | {r.get('load_avg_1min', '–')} | {same} | "
            f"{_fmt(r.get('totals_s'))} |")
    if payload.get("ratios"):
        lines += ["", f"Ratios (distributed total / single-process total, {payload['chunk']:,} entities): "
                  + ", ".join(f"{k} = {v:.2f}" for k, v in payload["ratios"].items()) + "."]
    if payload.get("chunks"):
        g = sum(c["generate_s"] for c in payload["chunks"])
        w = sum(c["write_parquet_s"] for c in payload["chunks"])
        lines += ["", f"Data: {len(payload['chunks'])} chunk(s) of {payload['chunk']:,} entities, "
                  f"{sum(c['event_rows'] for c in payload['chunks']):,} event rows, generated in {g:.0f} s and "
                  f"written as partitioned Parquet in {w:.0f} s "
                  f"({sum(c['parquet_mib'] for c in payload['chunks']):,.0f} MiB); "
                  f"{sum(c['dropped_duplicate_ids'] for c in payload['chunks'])} colliding id(s) dropped"
                  + (" (chunks reused from an earlier run of this script; times are from that run)."
                     if any(c.get("reused") for c in payload["chunks"]) else ".")]
    for sk in payload.get("skipped", []):
        lines += ["", f"Skipped: {sk}"]
    for note in payload.get("notes", []):
        lines += ["", note]
    return lines


def write_markdown(payload: dict) -> Path:
    lines = ["# Distributed scoring on Dask (`benchmarks/bench_dask.py`)", "",
             "Newest run first; earlier runs are kept below (and under `history` in dask.json).", ""]
    lines += render(payload)
    for old in reversed(payload.get("history", [])):
        lines += ["", *render(old)]
    p = RESULTS / "dask.md"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _history() -> list[dict]:
    """Earlier runs from dask.json (the last one, then its own history)."""
    p = RESULTS / "dask.json"
    if not p.is_file():
        return []
    prev = json.loads(p.read_text(encoding="utf-8"))
    hist = prev.pop("history", [])
    prev.setdefault("label", "earlier run")
    return [*hist, prev]


def _commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], capture_output=True, text=True, check=True,
                               cwd=Path(__file__).parent.parent).stdout.strip()
        return r.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> None:
    global CHUNK
    import dask
    import distributed
    import psutil

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--npartitions", type=int, default=32)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/yiwu-bench-dask"))
    ap.add_argument("--budget-s", type=float, default=1800.0, help="skip configurations expected to end after this")
    ap.add_argument("--chunk", type=int, default=CHUNK, help="entities per chunk (smaller for a smoke run)")
    ap.add_argument("--reuse-chunks", action="store_true",
                    help="reuse chunks already in --workdir (same chunk size and bucket count)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of every configuration at one chunk (medians)")
    ap.add_argument("--repeat-large", type=int, default=1, help="repeats of the larger configurations")
    ap.add_argument("--large-workers", type=int, nargs="+", default=None,
                    help="worker counts for the sizes above one chunk (default: --workers)")
    ap.add_argument("--label", default=None, help="title of this run in dask.md")
    ap.add_argument("--make-chunk", type=int, help=argparse.SUPPRESS)      # child modes
    ap.add_argument("--single", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    CHUNK = a.chunk
    if a.make_chunk is not None:
        print(json.dumps(make_chunk(a.make_chunk, a.workdir, a.npartitions)))
        return
    if a.single is not None:
        print(json.dumps(_public(single_machine(a.single, a.workdir / "single_selected.json"))))
        return
    if any(s % CHUNK for s in a.sizes):
        ap.error(f"sizes must be multiples of the chunk size {CHUNK:,}")
    t_start = time.perf_counter()
    a.workdir.mkdir(parents=True, exist_ok=True)
    commit = _commit()
    payload: dict[str, Any] = {
        "label": a.label or f"run of {time.strftime('%Y-%m-%d %H:%M')} (code {commit})", "commit": commit,
        "machine": machine(), "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "dask": dask.__version__, "distributed": distributed.__version__, "npartitions": a.npartitions,
        "as_of": AS_OF, "seed": SEED, "chunk": CHUNK, "repeat": a.repeat, "chunks": [], "single_machine_1M": None,
        "runs": [], "ratios": {}, "skipped": [], "notes": [], "history": _history(),
        "cluster": f"engine.local_cluster(w, threads_per_worker=1): worker processes started with {D.WORKER_ENVIRON}",
    }

    def flush() -> None:
        save("dask", payload)
        write_markdown(payload)

    def over(extra_s: float) -> bool:
        return time.perf_counter() - t_start + extra_s > a.budget_s

    def single() -> dict:
        r = _child(["--single", str(paths[0]), "--workdir", str(a.workdir)])
        print(f"single machine 1M: {r}", flush=True)
        return r

    paths: list[Path] = []
    single_ids: list[str] | None = None
    rate: dict[int, float] = {}                 # seconds per million entities, by worker count
    for size in sorted(a.sizes):
        while len(paths) < size // CHUNK:
            if over((size // CHUNK - len(paths)) * 55 + sum(rate.get(w, 30) * size / 1e6 for w in a.workers)):
                break
            info = reusable_chunk(len(paths), a.workdir, a.npartitions) if a.reuse_chunks else None
            if info is None:
                info = _child(["--make-chunk", str(len(paths)), "--chunk", str(CHUNK), "--workdir", str(a.workdir),
                               "--npartitions", str(a.npartitions)])
            paths.append(a.workdir / f"chunk-{info['chunk']:02d}")
            payload["chunks"].append(info)
            print(f"chunk: {info}", flush=True)
            flush()
        if len(paths) < size // CHUNK:
            payload["skipped"].append({"entities": size, "reason": f"time budget {a.budget_s:.0f} s: only "
                                       f"{len(paths)} chunk(s) generated"})
            flush()
            break
        reps = a.repeat if size == CHUNK else a.repeat_large
        singles: list[dict] = []
        workers = a.workers if size == CHUNK or a.large_workers is None else a.large_workers
        got: dict[int, list[dict]] = {w: [] for w in workers}
        for rep in range(reps):
            if size == CHUNK:
                singles.append(single())
                single_ids = json.loads((a.workdir / "single_selected.json").read_text(encoding="utf-8"))
                payload["single_machine_1M"] = _median_run(singles)
            for w in workers:
                est = rate.get(w, max(rate.values(), default=30.0)) * size / 1e6
                if over(est):
                    if rep == 0:
                        payload["skipped"].append({"entities": size, "workers": w, "reason": f"expected ~{est:.0f} s "
                                                   f"more, beyond the {a.budget_s:.0f} s budget"})
                    continue
                r = distributed_run(paths[:size // CHUNK], w, None)
                ids = r.pop("_selected_ids")
                r["entities"] = int(sum(c["entities"] for c in payload["chunks"][:size // CHUNK]))
                s1 = singles[-1] if singles else None
                r["identical_to_single"] = (ids.tolist() == single_ids and r["audit"] == s1["audit"]) \
                    if size == CHUNK and single_ids is not None and s1 else None
                rate[w] = r["total_s"] / (size / 1e6)
                got[w].append(_public(r))
                print(f"distributed {size:,} x {w} worker(s), repeat {rep + 1}/{reps}: {_public(r)}", flush=True)
                payload["runs"] = [x for x in payload["runs"] if x["entities"] != r["entities"] or x["workers"] != w]
                med = _median_run(got[w])
                med["identical_to_single"] = None if med["identical_to_single"] is None else \
                    all(x["identical_to_single"] for x in got[w])
                payload["runs"].append(med)
                payload["runs"].sort(key=lambda x: (x["entities"], x["workers"]))
                if size == CHUNK and singles:
                    payload["ratios"][f"workers={w}"] = med["total_s"] / payload["single_machine_1M"]["total_s"]
                    payload["ratios"][f"workers={w}, single incl. its read"] = \
                        med["total_s"] / _median_of(singles, "total_with_read_s")
                flush()
    payload["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    flush()
    print(f"wrote {RESULTS / 'dask.json'} and {RESULTS / 'dask.md'} in {payload['elapsed_s']} s")


def _median_of(runs: list[dict], key: str) -> float:
    import statistics

    return statistics.median(r[key] for r in runs)


if __name__ == "__main__":
    main()
