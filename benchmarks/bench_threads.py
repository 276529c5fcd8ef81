"""Online scoring under threads: one :class:`~yiwu_credit.pipeline.scoring.Scorer` shared by 1, 2
and 8 threads in the same run — calls per second, per-call latency p50/p99, peak RSS
(``resource.getrusage``, the process's lifetime peak after each thread count).

Requests are the records of ``synth --entities 300 --seed 23`` read from CSV as text (what a
service receives), one entity per call, as of 2026-01-01. ``--before SRC`` measures an older
checkout's ``src`` the same way in a subprocess, in the same run, for a before/after table.
Results: ``benchmarks/results/threads.{json,md}`` and ``results/history.csv``.

    python benchmarks/bench_threads.py [--calls 400] [--threads 1 2 8] [--before /work/main/src]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine, record_history, save  # noqa: E402

AS_OF = "2026-01-01"
N_ENTITIES, SEED = 300, 23


def _requests(data: Path) -> list[tuple[dict, dict]]:
    from yiwu_credit.data.contract import TABLES

    recs = {n: list(csv.DictReader(open(data / f"{n}.csv", encoding="utf-8"))) for n in TABLES}
    by = {n: {} for n in TABLES if n != "entities"}
    for n in by:
        for r in recs[n]:
            by[n].setdefault(r["entity_id"], []).append(r)
    out = []
    for e in recs["entities"]:
        if e["closed_on"] or e["established_on"] >= AS_OF:
            continue
        out.append((e, {n: g.get(e["entity_id"], []) for n, g in by.items()}))
    return out


def run(data: Path, calls: int, thread_counts: list[int]) -> dict[str, Any]:
    """Measure in this process (whatever ``yiwu_credit`` is on the path)."""
    from yiwu_credit.pipeline.scoring import Scorer

    reqs = _requests(data)
    sc = Scorer()
    for e, ev in reqs[:20]:  # warm up
        sc.score_one(e, ev, AS_OF)
    out: dict[str, Any] = {"requests": len(reqs), "events_per_request": float(np.mean(
        [sum(map(len, ev.values())) for _, ev in reqs]))}
    for t in thread_counts:
        lat: list[float] = []
        lock = threading.Lock()
        per = calls // t

        def work(k: int, per: int = per, lat: list[float] = lat, lock: threading.Lock = lock) -> None:
            mine = []
            for i in range(per):
                e, ev = reqs[(k * per + i) % len(reqs)]
                s = time.perf_counter()
                sc.score_one(e, ev, AS_OF)
                mine.append(time.perf_counter() - s)
            with lock:
                lat.extend(mine)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(t)]
        start, cpu = time.perf_counter(), time.process_time()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - start
        ms = np.array(lat) * 1e3
        out[str(t)] = {"threads": t, "calls": len(lat), "calls_per_s": len(lat) / wall,
                       "cpu_s_per_call": (time.process_time() - cpu) / len(lat),
                       "p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
                       "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        print(f"{t} thread(s): {out[str(t)]['calls_per_s']:.1f} calls/s, p50 {out[str(t)]['p50_ms']:.2f} ms, "
              f"p99 {out[str(t)]['p99_ms']:.2f} ms", file=sys.stderr, flush=True)
    return out


def _table(res: dict[str, Any], label: str, counts: list[int]) -> list[str]:
    lines = [f"| {label} | threads | calls/s | p50 ms | p99 ms | CPU ms/call | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for t in counts:
        r = res[str(t)]
        lines.append(f"| {label} | {t} | {r['calls_per_s']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['cpu_s_per_call'] * 1e3:.2f} | {r['peak_rss_mib']:.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="a CSV dataset directory (default: the synthetic world, generated)")
    ap.add_argument("--calls", type=int, default=400, help="calls per thread count (split among the threads)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2, 8])
    ap.add_argument("--before", type=Path, help="src folder of an older checkout to measure in the same run")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.data is None:
        from yiwu_credit.data import synth

        a.data, _ = synth.generate(N_ENTITIES, seed=SEED).save(Path(tempfile.mkdtemp()), format="csv")
    if a.worker:
        print("RESULT " + json.dumps(run(a.data, a.calls, a.threads)), flush=True)
        return
    res: dict[str, Any] = {"machine": machine(), "as_of": AS_OF, "world": f"synth {N_ENTITIES} seed {SEED}",
                           "lightgbm_threads_per_call": 1}
    if a.before:
        cmd = [sys.executable, __file__, "--worker", "--data", str(a.data), "--calls", str(a.calls),
               "--threads", *map(str, a.threads)]
        env = dict(os.environ, PYTHONPATH=str(a.before))
        got = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        res["before"] = json.loads(next(x for x in got.stdout.splitlines() if x.startswith("RESULT "))[7:])
        res["before_src"] = str(a.before)
    res["after"] = run(a.data, a.calls, a.threads)
    save("threads", res)
    record_history("threads", {N_ENTITIES: {f"{k}_t{t}": res["after"][str(t)][k] for t in a.threads
                                            for k in ("calls_per_s", "p50_ms", "p99_ms")}})
    lines = ["# Online scoring under threads (Scorer shared by 1, 2, 8 threads)", "",
             f"One call = one entity's records (CSV text) of synth {N_ENTITIES} seed {SEED}, as of {AS_OF}; "
             f"{a.calls} calls per thread count. Machine: {res['machine'].get('cpu_count')} CPUs (shared).", ""]
    if a.before:
        lines += _table(res["before"], "before", a.threads) + [""]
    lines += _table(res["after"], "after", a.threads)
    (RESULTS / "threads.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
