"""Benchmarks of the scoring hot path on the synthetic world (README: `python3 dev.py bench`).

For each size (default 100,000 and 1,000,000 entities) it measures, as the median of several
runs: load (Parquet → validated Dataset), features, the model stage, tiers and overrides, reason
codes for the entities that need them, plan and draw — wall seconds, CPU seconds, throughput
and peak RSS — and in the same run the baselines: raw LightGBM ``Booster.predict`` on the same
matrix, a plain pandas groupby-per-window feature build, and a plain ``pyarrow.parquet.read_table``
of the same files that ``load`` validates (ratio ``load_over_pyarrow_read``). Results go to
``benchmarks/results/hotpath_<n>.json``, a markdown table ``benchmarks/results/hotpath.md`` and a
row per key figure in ``benchmarks/results/history.csv`` (date, commit, figure), so a regression
shows against earlier runs. ``--fresh`` generates the worlds anew instead of the disk cache.

    python benchmarks/run.py [--sizes 100000 1000000] [--repeat 3] [--fresh]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine, measure, record_history, save, world_dir  # noqa: E402

from yiwu_credit.data import synth  # noqa: E402
from yiwu_credit.data.dataset import load_dataset  # noqa: E402
from yiwu_credit.features.build import build_features, override_facts, pool_events  # noqa: E402
from yiwu_credit.model.bundle import load_bundle  # noqa: E402
from yiwu_credit.pipeline.scoring import score_entities  # noqa: E402
from yiwu_credit.policy import TIERS  # noqa: E402
from yiwu_credit.supervision import draw, supervision_plan  # noqa: E402
from yiwu_credit.tiering.overrides import apply_overrides, fact_arrays, override_codes  # noqa: E402

AS_OF = "2026-01-01"


def baseline_features(ds, as_of: str, catalogue) -> pd.DataFrame:
    """The plain way: for every windowed count/sum feature, filter and groupby once per window."""
    a = pd.Timestamp(as_of)
    date_col = {"penalties": "decided_on", "inspections": "inspected_on", "complaints": "received_on",
                "list_records": "entered_on"}
    out = {}
    for f in catalogue.features:
        s = f.spec
        if s.aggregation not in ("count", "sum") or s.table not in date_col or f.window is None:
            continue
        df = ds.table(s.table)
        m = (df[date_col[s.table]] < a) & (df[date_col[s.table]] >= a - pd.Timedelta(days=f.window))
        for col, val in s.filter:
            m &= df[col].isin(val if isinstance(val, tuple | list) else [val])
        g = df[m].groupby("entity_id")
        out[f.name] = g.size() if s.aggregation == "count" else g[s.column].sum()
    return pd.DataFrame(out)


def single_entity(ds, bundle, k: int = 500) -> dict:
    """p50/p90 latency of Scorer.score_one (features for that entity included) over k entities."""
    from yiwu_credit.data.contract import TABLES
    from yiwu_credit.pipeline.scoring import Scorer

    def records(df: pd.DataFrame) -> list[dict]:
        out = []
        for r in df.to_dict("records"):
            out.append({c: (None if v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v)
                            else str(v.date()) if isinstance(v, pd.Timestamp) else v) for c, v in r.items()})
        return out

    sc = Scorer(bundle)
    X = build_features(ds, AS_OF, bundle.catalogue, bundle.policy)
    ids = np.random.default_rng(0).choice(X.index.to_numpy(), k, replace=False)
    sub = {n: ds.table(n)[ds.table(n)["entity_id"].isin(ids)] for n in TABLES}
    groups = {n: dict(tuple(sub[n].groupby("entity_id"))) for n in TABLES if n != "entities"}
    ents = {r["entity_id"]: r for r in records(sub["entities"])}
    cases = [(ents[i], {n: records(g[i]) if i in g else [] for n, g in groups.items()}) for i in ids]
    for e, ev in cases[:20]:  # warm up
        sc.score_one(e, ev, AS_OF)
    lat = []
    for e, ev in cases:
        t = time.perf_counter()
        sc.score_one(e, ev, AS_OF)
        lat.append(time.perf_counter() - t)
    lat_ms = np.array(lat) * 1e3
    return {"entities": k, "p50_ms": float(np.median(lat_ms)), "p90_ms": float(np.percentile(lat_ms, 90)),
            "p99_ms": float(np.percentile(lat_ms, 99)),
            "events_per_entity_mean": float(np.mean([sum(map(len, ev.values())) for _, ev in cases]))}


def run_size(n: int, repeat: int, work: Path, latency: bool = False, fresh: bool = False) -> dict:
    import pyarrow.parquet as pq

    res: dict = {"n_entities": n}
    stages: dict = {}
    if fresh:
        stages["synth_generate"], world = measure(lambda: synth.generate(n, seed=2022), 1)
        data_dir = world.dataset.save(work / f"ds{n}", format="parquet")
        del world
    else:
        data_dir = world_dir(n)  # generated once, then cached on disk
    bundle = load_bundle()

    files = sorted(data_dir.glob("*.parquet"))
    # row counts only: the tables are freed at once, so the next stage's peak RSS is its own
    stages["baseline_pyarrow_read"], _ = measure(lambda: sum(pq.read_table(p).num_rows for p in files), repeat)
    stages["load"], ds = measure(lambda: load_dataset(data_dir), repeat)
    res["n_event_rows"] = int(sum(v[0] for k, v in ds.counts.items() if k != "entities"))
    stages["features"], X = measure(lambda: build_features(ds, AS_OF, bundle.catalogue, bundle.policy), repeat)
    stages["baseline_groupby_per_window"], _ = measure(lambda: baseline_features(ds, AS_OF, bundle.catalogue), repeat)
    model = bundle.model
    stages["model_stage"], assessed = measure(lambda: model.assess(X), repeat)
    Xp = model.feature_matrix(X)
    booster = model.learner_.booster
    stages["baseline_raw_booster_predict"], _ = measure(
        lambda: booster.predict(Xp, raw_score=True, num_threads=model.n_jobs), repeat)

    # as score_entities runs it: the pool's events are built once (with the features) and shared
    events = pool_events(ds, AS_OF, bundle.policy, bundle.catalogue)
    cut = bundle.tiering(bundle.policy)
    p = assessed["probability"].to_numpy()

    def tiers():
        facts = override_facts(ds, AS_OF, bundle.policy, bundle.catalogue, events=events, index=X.index)
        rank, codes, notes = override_codes(cut.ranks(p), fact_arrays(facts), bundle.policy)
        return pd.DataFrame({"tier": np.array(TIERS)[rank], "overrides": np.array(notes, dtype=object)[codes]},
                            index=X.index)

    stages["tiers_and_overrides"], final = measure(tiers, repeat)
    # the pandas-level API (facts from scratch, tiers as a Series): what a notebook user calls
    stages["tiers_and_overrides_pandas_api"], _ = measure(lambda: apply_overrides(
        assessed["tier"], override_facts(ds, AS_OF, bundle.policy, bundle.catalogue), bundle.policy), repeat)
    need = final["tier"].isin(["C", "D"]) | (final["overrides"] != "")
    rows = np.flatnonzero(need.to_numpy())  # as score_entities runs it: rows of the model's matrix
    stages["reasons"], _ = measure(lambda: model.reason_arrays(X, model.n_reasons, matrix=Xp, rows=rows), repeat)
    stages["reasons"]["n_entities_explained"] = int(need.sum())
    stages["end_to_end_score"], scored = measure(lambda: score_entities(ds, AS_OF, bundle), 1)
    stages["plan"], plan = measure(lambda: supervision_plan(scored.scored, bundle.policy), repeat)
    stages["draw"], drawn = measure(lambda: draw(plan, None, "bench-2026"), repeat)

    def end_to_end():
        fresh = load_dataset(data_dir)  # no caches carried over
        r = score_entities(fresh, AS_OF, bundle)
        p = supervision_plan(r.scored, bundle.policy)
        return draw(p, None, "bench-2026")

    stages["end_to_end_load_to_draw"], _ = measure(end_to_end, 1)
    e2e_ds = load_dataset(data_dir)
    stages["end_to_end_features_to_draw"], _ = measure(
        lambda: draw(supervision_plan(score_entities(e2e_ds, AS_OF, bundle).scored, bundle.policy), None, "bench-2026"), 1)
    res["campaign_n"] = int(len(drawn.selected))
    if latency:
        res["single_entity"] = single_entity(ds, bundle)
    for st in stages.values():
        st["throughput_per_s"] = n / st["wall_s"] if st["wall_s"] > 0 else None
    res["stages"] = stages
    res["ratios"] = {
        "load_over_pyarrow_read": stages["load"]["wall_s"] / stages["baseline_pyarrow_read"]["wall_s"],
        "model_stage_over_raw_predict": stages["model_stage"]["wall_s"] / stages["baseline_raw_booster_predict"]["wall_s"],
        "baseline_groupby_over_features": stages["baseline_groupby_per_window"]["wall_s"] / stages["features"]["wall_s"],
        "reasons_over_model_stage": stages["reasons"]["wall_s"] / stages["model_stage"]["wall_s"],
        "reasons_over_raw_predict_per_entity": (stages["reasons"]["wall_s"] / max(int(need.sum()), 1))
        / (stages["baseline_raw_booster_predict"]["wall_s"] / n),
    }
    res["n_scored"] = int(len(scored.scored))
    return res


def markdown(results: list[dict], info: dict) -> str:
    lines = ["# Hot-path benchmarks", "",
             f"Medians of several runs (end-to-end rows: one run). Machine: {info['cpu_count']} cores, {info['platform']}, Python {info['python']}; "
             f"versions {info['versions']}; threads {info['threads']}.",
             "", "`load` is validated loading (`load_dataset`); `baseline_pyarrow_read` is a plain "
             "`pyarrow.parquet.read_table` of the same files in the same run (target: load ≤ 2× that read). "
             "The machine is shared: compare ratios measured in the same run, not absolute seconds across runs. "
             "Every run appends its key figures to [history.csv](history.csv) (date, commit, bench, "
             "n_entities, metric, value); see also [loading.md](loading.md) and [cost_curve.md](cost_curve.md).", ""]
    for r in results:
        lines += [f"## {r['n_entities']:,} entities, {r['n_event_rows']:,} event rows, campaign of "
                  f"{r['campaign_n']:,}", "",
                  "| stage | wall s (median) | CPU s | entities/s | peak RSS GiB |", "|---|---|---|---|---|"]
        for name, st in r["stages"].items():
            lines.append(f"| {name} | {st['wall_s']:.3f} | {st['cpu_s']:.3f} | {st['throughput_per_s']:,.0f} | "
                         f"{st['peak_rss_gib']:.2f} |")
        lines += ["", "Ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in r["ratios"].items()), ""]
        if "single_entity" in r:
            se = r["single_entity"]
            lines += [f"Single-entity scoring (Scorer.score_one, features included, {se['entities']} entities, "
                      f"{se['events_per_entity_mean']:.1f} events each on average): p50 {se['p50_ms']:.3f} ms, "
                      f"p90 {se['p90_ms']:.3f} ms, p99 {se['p99_ms']:.3f} ms.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fresh", action="store_true", help="generate the worlds anew (and time it)")
    a = ap.parse_args(argv)
    info = machine()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            r = run_size(n, a.repeat, Path(tmp), latency=(n == min(a.sizes)), fresh=a.fresh)
            results.append(r)
            save(f"hotpath_{n}", {"machine": info, **r})
            print(f"{n:,} entities: " + ", ".join(f"{k} {v['wall_s']:.2f}s" for k, v in r["stages"].items()), flush=True)
    (RESULTS / "hotpath.md").write_text(markdown(results, info))
    record_history("hotpath", {r["n_entities"]: {
        "load_s": r["stages"]["load"]["wall_s"], "pyarrow_read_s": r["stages"]["baseline_pyarrow_read"]["wall_s"],
        "load_over_pyarrow_read": r["ratios"]["load_over_pyarrow_read"],
        "features_s": r["stages"]["features"]["wall_s"], "end_to_end_score_s": r["stages"]["end_to_end_score"]["wall_s"],
        "model_stage_over_raw_predict": r["ratios"]["model_stage_over_raw_predict"],
        "reasons_over_model_stage": r["ratios"]["reasons_over_model_stage"],
        "tiers_and_overrides_s": r["stages"]["tiers_and_overrides"]["wall_s"],
        "load_to_draw_s": r["stages"]["end_to_end_load_to_draw"]["wall_s"],
        "load_to_draw_peak_rss_gib": r["stages"]["end_to_end_load_to_draw"]["peak_rss_gib"]} for r in results})
    print(f"results in {RESULTS}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
