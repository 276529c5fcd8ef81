"""Benchmarks of the scoring hot path on the synthetic world (README: `python3 dev.py bench`).

For each size (default 100,000 and 1,000,000 entities) it measures, as the median of several
runs: load (Parquet → validated Dataset), features, the model stage, tiers and overrides, reason
codes for the entities that need them, plan and draw — wall seconds, CPU seconds, throughput
and peak RSS — and in the same run the baselines: raw LightGBM ``Booster.predict`` on the same
matrix, and a plain pandas groupby-per-window feature build. Results go to
``benchmarks/results/hotpath_<n>.json`` and a markdown table ``benchmarks/results/hotpath.md``.

    python benchmarks/run.py [--sizes 100000 1000000] [--repeat 3]
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
from common import RESULTS, machine, measure, save  # noqa: E402

from yiwu_credit import synth  # noqa: E402
from yiwu_credit.bundle import load_bundle  # noqa: E402
from yiwu_credit.dataset import load_dataset  # noqa: E402
from yiwu_credit.features import build_features, override_facts  # noqa: E402
from yiwu_credit.policy import apply_overrides  # noqa: E402
from yiwu_credit.scoring import score_entities  # noqa: E402

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
            m &= df[col].isin(val if isinstance(val, list) else [val])
        g = df[m].groupby("entity_id")
        out[f.name] = g.size() if s.aggregation == "count" else g[s.column].sum()
    return pd.DataFrame(out)


def run_size(n: int, repeat: int, work: Path) -> dict:
    res: dict = {"n_entities": n}
    t = time.perf_counter()
    world = synth.generate(n, seed=2022)
    res["synth_s"] = time.perf_counter() - t
    res["n_event_rows"] = int(sum(v[0] for k, v in world.dataset.counts.items() if k != "entities"))
    data_dir = world.dataset.save(work / f"ds{n}", format="parquet")
    del world
    bundle = load_bundle()
    stages: dict = {}

    stages["load"], ds = measure(lambda: load_dataset(data_dir), repeat=1)
    stages["features"], X = measure(lambda: build_features(ds, AS_OF, bundle.catalogue, bundle.policy), repeat)
    stages["baseline_groupby_per_window"], _ = measure(lambda: baseline_features(ds, AS_OF, bundle.catalogue), repeat)
    model = bundle.model
    stages["model_stage"], assessed = measure(lambda: model.assess(X), repeat)
    Xp = model._prepare(X, fitting=False)
    booster = model.learner_.booster
    stages["baseline_raw_booster_predict"], _ = measure(
        lambda: booster.predict(Xp, raw_score=True, num_threads=model.n_jobs), repeat)

    def tiers():
        facts = override_facts(ds, AS_OF, bundle.policy, bundle.catalogue)
        return apply_overrides(assessed["tier"], facts, bundle.policy)

    stages["tiers_and_overrides"], final = measure(tiers, repeat)
    need = final["tier"].isin(["C", "D"]) | (final["overrides"] != "")
    stages["reasons"], _ = measure(lambda: model.explain(X.loc[need.to_numpy()]), 1)
    stages["reasons"]["n_entities_explained"] = int(need.sum())
    stages["end_to_end_score"], scored = measure(lambda: score_entities(ds, AS_OF, bundle), 1)
    for st in stages.values():
        st["throughput_per_s"] = n / st["wall_s"] if st["wall_s"] > 0 else None
    res["stages"] = stages
    res["ratios"] = {
        "model_stage_over_raw_predict": stages["model_stage"]["wall_s"] / stages["baseline_raw_booster_predict"]["wall_s"],
        "baseline_groupby_over_features": stages["baseline_groupby_per_window"]["wall_s"] / stages["features"]["wall_s"],
        "reasons_over_raw_predict_per_entity": (stages["reasons"]["wall_s"] / max(int(need.sum()), 1))
        / (stages["baseline_raw_booster_predict"]["wall_s"] / n),
    }
    res["n_scored"] = int(len(scored.scored))
    return res


def markdown(results: list[dict], info: dict) -> str:
    lines = ["# Hot-path benchmarks", "",
             f"Machine: {info['cpu_count']} cores, {info['platform']}, Python {info['python']}; "
             f"versions {info['versions']}; threads {info['threads']}.", ""]
    for r in results:
        lines += [f"## {r['n_entities']:,} entities, {r['n_event_rows']:,} event rows "
                  f"(synthetic world generated in {r['synth_s']:.1f} s)", "",
                  "| stage | wall s (median) | CPU s | entities/s | peak RSS GiB |", "|---|---|---|---|---|"]
        for name, st in r["stages"].items():
            lines.append(f"| {name} | {st['wall_s']:.3f} | {st['cpu_s']:.3f} | {st['throughput_per_s']:,.0f} | "
                         f"{st['peak_rss_gib']:.2f} |")
        lines += ["", "Ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in r["ratios"].items()), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    info = machine()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            r = run_size(n, a.repeat, Path(tmp))
            results.append(r)
            save(f"hotpath_{n}", {"machine": info, **r})
            print(f"{n:,} entities: " + ", ".join(f"{k} {v['wall_s']:.2f}s" for k, v in r["stages"].items()), flush=True)
    (RESULTS / "hotpath.md").write_text(markdown(results, info))
    print(f"results in {RESULTS}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
