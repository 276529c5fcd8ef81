"""Benchmark of the scoring stages of ``score_entities`` (features, model, tiers and overrides,
reason codes, assembly) at 1M entities, against raw LightGBM ``Booster.predict`` on the same
matrix measured in the same run, with and without the compiled trees (extra ``fast``).

Each repeat runs, back to back: ``score_entities`` (stage wall times from its ``timings=``),
raw ``Booster.predict`` on the model's feature matrix, the compiled margin, and a compiled
``score_entities``; medians over the repeats, ratios per repeat then medianed (the machine is
shared: ratios of neighbouring measurements are steadier than seconds). Peak RSS is sampled
during each run. ``--before SRC`` measures an older checkout's ``src`` the same way in a
subprocess (its stages timed from outside, as that version has no ``timings=``) for a
before/after table. Results: ``benchmarks/results/scoring.{json,md}``.

    python benchmarks/bench_scoring.py --data /tmp/w1m/dataset [--repeat 5] [--before /tmp/base/src]
    python -m yiwu_credit.cli synth --entities 1000000 --seed 7 --out /tmp/w1m --format parquet
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, PeakRSS, machine, save  # noqa: E402

AS_OF = "2026-01-01"
STAGES = ("features", "model", "tiers_overrides", "reasons", "assemble")


def _timed(fn: Any) -> tuple[float, float, float, Any]:
    """(wall s, CPU s, peak RSS GiB, result) of one call."""
    with PeakRSS() as mem:
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    return wall, cpu, mem.peak / 2**30, out


def _median(rows: list[dict], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def run_current(data: Path, repeat: int) -> dict:
    """This checkout: stage timings from score_entities(timings=), raw predict, compiled."""
    from yiwu_credit import load_dataset
    from yiwu_credit.model.bundle import load_bundle
    from yiwu_credit.model.compiled import available
    from yiwu_credit.pipeline.scoring import score_entities

    ds = load_dataset(data)
    b = load_bundle()
    m = b.model
    booster = m.learner_.booster
    fast = available()
    runs = []
    p_default = p_fast = None
    if fast:
        m.learner_.compiled_trees()  # compile (or load from the cache) outside the timings
    for r in range(repeat):
        t: dict[str, float] = {}
        wall, cpu, rss, res = _timed(lambda t=t: score_entities(ds, AS_OF, b, timings=t))
        M = m.feature_matrix(res.features)
        raw, raw_cpu, _, _ = _timed(lambda M=M: booster.predict(M, raw_score=True, num_threads=m.n_jobs))
        row = {**{f"{s}_s": t[s] for s in STAGES}, **{f"{s}_cpu_s": t[f"{s}_cpu"] for s in STAGES}, "total_s": wall, "total_cpu_s": cpu, "peak_rss_gib": rss,
               "raw_predict_s": raw, "raw_predict_cpu_s": raw_cpu,
               "n_scored": len(res.scored), "n_explained": int(res.scored["reason_1"].notna().sum())}
        p_default = res.scored["probability"].to_numpy()
        if fast:
            row["compiled_margin_s"] = _timed(lambda M=M: m.learner_.margin(M, compiled=True))[0]
        del res, M  # each run's peak RSS is its own
        if fast:
            tf: dict[str, float] = {}
            fw, _, frss, fres = _timed(lambda tf=tf: score_entities(ds, AS_OF, b, compiled=True, timings=tf))
            row.update({"compiled_total_s": fw, "compiled_model_s": tf["model"], "compiled_peak_rss_gib": frss})
            p_fast = fres.scored["probability"].to_numpy()
            del fres
        runs.append(row)
        print(f"repeat {r + 1}/{repeat}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                                      if isinstance(v, float)), flush=True)
    out: dict[str, Any] = {"runs": runs, "compiled_available": fast,
                           "medians": {k: _median(runs, k) for k in runs[0] if isinstance(runs[0][k], float)},
                           "n_scored": runs[0]["n_scored"], "n_explained": runs[0]["n_explained"],
                           "process_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    ratios = {"model_over_raw_predict": [x["model_s"] / x["raw_predict_s"] for x in runs],
              "reasons_over_model": [x["reasons_s"] / x["model_s"] for x in runs]}
    if fast:
        ratios["compiled_margin_over_raw_predict"] = [x["compiled_margin_s"] / x["raw_predict_s"] for x in runs]
        ratios["compiled_model_over_raw_predict"] = [x["compiled_model_s"] / x["raw_predict_s"] for x in runs]
        out["compiled_max_abs_dp"] = float(np.max(np.abs(p_fast - p_default)))
    out["ratios"] = {k: float(statistics.median(v)) for k, v in ratios.items()}
    return out


def run_before(data: Path, repeat: int) -> dict:
    """An older checkout (no ``timings=``): the same stages, called one by one as its
    score_entities calls them, plus its whole score_entities."""
    import pandas as pd

    from yiwu_credit import load_dataset
    from yiwu_credit.data.dates import Day
    from yiwu_credit.features.build import build_features, override_facts, pool_events
    from yiwu_credit.model.bundle import load_bundle
    from yiwu_credit.pipeline.scoring import score_entities
    from yiwu_credit.tiering.overrides import apply_overrides

    ds = load_dataset(data)
    b = load_bundle()
    m = b.model
    day = Day.parse(AS_OF)
    cut = b.tiering()
    runs = []
    for r in range(repeat):
        row: dict[str, Any] = {}
        row["features_s"], row["features_cpu_s"], _, (ev, X) = _timed(lambda: (lambda e: (e, build_features(
            ds, day, b.catalogue, b.policy, events=e)))(pool_events(ds, day, b.policy, b.catalogue)))
        row["model_s"], row["model_cpu_s"], _, p = _timed(lambda X=X: m.predict_proba(X)[:, 1])

        def tiers(X=X, p=p, ev=ev) -> pd.DataFrame:
            facts = override_facts(ds, day, b.policy, b.catalogue, events=ev)
            return apply_overrides(pd.Series(cut.tiers(p), index=X.index), facts, b.policy)

        row["tiers_overrides_s"], row["tiers_overrides_cpu_s"], _, final = _timed(tiers)
        need = (final["tier"].isin(["C", "D"]) | (final["overrides"] != "")).to_numpy()
        row["reasons_s"], row["reasons_cpu_s"], _, _ = _timed(
            lambda X=X, need=need: m.explain(X.iloc[np.flatnonzero(need)], m.n_reasons))
        M = m._prepare(X, fitting=False)
        row["raw_predict_s"], row["raw_predict_cpu_s"], _, _ = _timed(
            lambda M=M: m.learner_.booster.predict(M, raw_score=True, num_threads=m.n_jobs))
        del ev, X, M, final
        row["total_s"], row["total_cpu_s"], row["peak_rss_gib"], _ = _timed(lambda: score_entities(ds, AS_OF, b))
        row["n_explained"] = int(need.sum())
        runs.append(row)
        print(f"before repeat {r + 1}/{repeat}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                                             if isinstance(v, float)), flush=True)
    return {"runs": runs, "medians": {k: _median(runs, k) for k in runs[0] if isinstance(runs[0][k], float)},
            "ratios": {"model_over_raw_predict": float(statistics.median(x["model_s"] / x["raw_predict_s"] for x in runs)),
                       "reasons_over_model": float(statistics.median(x["reasons_s"] / x["model_s"] for x in runs))},
            "n_explained": runs[0]["n_explained"],
            "process_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def markdown(res: dict, info: dict) -> str:
    now, before = res["after"], res.get("before")
    med = now["medians"]
    lines = ["# Scoring stages", "",
             f"`score_entities` on {now['n_scored']:,} scored entities ({res['data']}, as_of {AS_OF}), "
             f"{now['n_explained']:,} explained (tiers C/D and overrides); medians of {len(now['runs'])} repeats. "
             f"Machine: {info['cpu_count']} cores (shared: timings are noisy, ratios are taken within each repeat), "
             f"Python {info['python']}, {info['versions']}.", "",
             "| stage | before wall s | before CPU s | after wall s | after CPU s | after wall / raw predict wall |",
             "|---|---|---|---|---|---|"]
    raw = med["raw_predict_s"]

    def cell(d: dict | None, key: str) -> str:
        return f"{d['medians'][key]:.3f}" if d and key in d["medians"] else "–"

    for s in (*STAGES, "total"):
        lines.append(f"| {s} | {cell(before, f'{s}_s')} | {cell(before, f'{s}_cpu_s')} | {med[f'{s}_s']:.3f} | "
                     f"{cell(now, f'{s}_cpu_s')} | {med[f'{s}_s'] / raw:.2f} |")
    lines.append(f"| raw `Booster.predict` (baseline) | {cell(before, 'raw_predict_s')} | "
                 f"{cell(before, 'raw_predict_cpu_s')} | {raw:.3f} | {cell(now, 'raw_predict_cpu_s')} | 1.00 |")
    if now["compiled_available"]:
        lines.append(f"| compiled margin (lleaves) | – | – | {med['compiled_margin_s']:.3f} | – | "
                     f"{med['compiled_margin_s'] / raw:.2f} |")
        lines.append(f"| model stage, compiled | – | – | {med['compiled_model_s']:.3f} | – | "
                     f"{med['compiled_model_s'] / raw:.2f} |")
        lines.append(f"| total, compiled | – | – | {med['compiled_total_s']:.3f} | – | – |")
    lines += ["", "Ratios (median of per-repeat ratios): "
              + ", ".join(f"{k} = {v:.2f}" for k, v in now["ratios"].items())
              + ("; before: " + ", ".join(f"{k} = {v:.2f}" for k, v in before["ratios"].items()) if before else ""),
              "", f"Peak RSS during score_entities: {med['peak_rss_gib']:.2f} GiB after"
              + (f", {before['medians']['peak_rss_gib']:.2f} GiB before" if before else "")
              + f" (process peak {now['process_peak_rss_gib']:.2f} GiB"
              + (f"; before {before['process_peak_rss_gib']:.2f} GiB" if before else "") + ").", ""]
    if now["compiled_available"]:
        lines += [f"Compiled trees: max |Δp| against LightGBM over all entities = {now['compiled_max_abs_dp']:.2e}; "
                  f"peak RSS {med['compiled_peak_rss_gib']:.2f} GiB.", ""]
    lines += ["CPU seconds count every thread of the process; wall seconds include waiting for the "
              "shared cores. Per-repeat figures are in scoring.json.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="dataset directory (e.g. /tmp/w1m/dataset)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", type=Path, help="src folder of an older checkout to measure for comparison")
    ap.add_argument("--mode", choices=("after", "before"), default="after", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.mode == "before":
        print("RESULT " + json.dumps(run_before(a.data, a.repeat)), flush=True)
        return 0
    res: dict[str, Any] = {"data": str(a.data), "as_of": AS_OF}
    if a.before:
        env = dict(os.environ, PYTHONPATH=str(a.before))
        proc = subprocess.run([sys.executable, __file__, "--mode", "before", "--data", str(a.data),
                               "--repeat", str(a.repeat)], env=env, capture_output=True, text=True, check=True)
        print(proc.stdout.rsplit("RESULT ", 1)[0], end="", flush=True)
        res["before"] = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
    res["after"] = run_current(a.data, a.repeat)
    info = machine()
    save("scoring", {"machine": info, **res})
    (RESULTS / "scoring.md").write_text(markdown(res, info))
    print((RESULTS / "scoring.md").read_text())
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
