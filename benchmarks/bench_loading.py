"""Validated loading against a plain pyarrow read of the same Parquet files, in the same run.

For each size (default 1,000,000 entities, the world of ``synth.generate(n, seed=2022)``, cached
on disk by ``common.world_dir``) it times, interleaved so that machine load hits all alike:

* ``pyarrow_read``: ``pyarrow.parquet.read_table`` of every table file (the baseline);
* ``pandas_read``: ``pandas.read_parquet`` of every file (the baseline plus the DataFrame);
* ``load_dataset``: the validated :class:`Dataset` (strict, no ``as_of``);

and reports medians, minima, the ratio ``load_dataset / pyarrow_read`` and the peak RSS each
step adds. ``--profile`` adds the top functions of one load on one thread (cProfile) and, when ``py-spy`` is
on PATH, a flame graph ``results/loading_flame_<n>.svg``. Results: ``results/loading.{md,json}``
and a row per figure in ``results/history.csv``.

    python benchmarks/bench_loading.py [--sizes 1000000] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine, measure, record_history, rss_bytes, save, world_dir  # noqa: E402

from yiwu_credit.data.dataset import load_dataset  # noqa: E402

STEPS = ("pyarrow_read", "pandas_read", "load_dataset")


def _steps(d: Path) -> dict:
    import pandas as pd
    import pyarrow.parquet as pq

    files = sorted(d.glob("*.parquet"))
    return {"pyarrow_read": lambda: [pq.read_table(p) for p in files],
            "pandas_read": lambda: [pd.read_parquet(p) for p in files],
            "load_dataset": lambda: load_dataset(d)}


def run_size(n: int, repeat: int, profile: bool) -> dict:
    d = world_dir(n)
    steps = _steps(d)
    for fn in steps.values():  # warm the page cache and imports
        fn()
    walls: dict[str, list[float]] = {k: [] for k in STEPS}
    peaks: dict[str, float] = dict.fromkeys(STEPS, 0.0)
    for _ in range(repeat):
        for k, fn in steps.items():
            base = rss_bytes()
            st, out = measure(fn, 1)
            del out
            walls[k].append(st["wall_s"])
            peaks[k] = max(peaks[k], st["peak_rss_gib"] - base / 2**30)
    ds = load_dataset(d)
    res = {"n_entities": n, "n_event_rows": int(sum(c[0] for t, c in ds.counts.items() if t != "entities")),
           "repeat": repeat, "steps": {k: {"median_s": statistics.median(v), "min_s": min(v),
                                            "all_s": [round(x, 4) for x in v], "peak_rss_added_gib": peaks[k]}
                                        for k, v in walls.items()}}
    del ds
    s = res["steps"]
    res["ratios"] = {"load_over_pyarrow_read_median": s["load_dataset"]["median_s"] / s["pyarrow_read"]["median_s"],
                     "load_over_pyarrow_read_min": s["load_dataset"]["min_s"] / s["pyarrow_read"]["min_s"],
                     "load_over_pandas_read_median": s["load_dataset"]["median_s"] / s["pandas_read"]["median_s"]}
    if profile:
        res["profile"] = _profile(d, n)
    return res


def _profile(d: Path, n: int) -> dict:
    from yiwu_credit.data import dataset

    workers = dataset._workers
    dataset._workers = lambda: 1  # cProfile sees only its own thread: profile the work on one
    try:
        prof = cProfile.Profile()
        prof.enable()
        load_dataset(d)
        prof.disable()
    finally:
        dataset._workers = workers
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    text = out.getvalue()
    top = text[text.index("ncalls"):] if "ncalls" in text else text
    svg = None
    spy = shutil.which("py-spy")
    if spy:
        svg = RESULTS / f"loading_flame_{n}.svg"
        code = f"from yiwu_credit.data.dataset import load_dataset; load_dataset({str(d)!r})"
        subprocess.run([spy, "record", "--rate", "250", "--output", str(svg), "--", sys.executable, "-c", code],
                       check=False, capture_output=True)
        svg = svg.name if svg.is_file() else None
    return {"cprofile_top_tottime": top.rstrip(), "flame_graph": svg}


def markdown(results: list[dict], info: dict) -> str:
    lines = ["# Loading benchmark", "",
             "Validated `load_dataset` against a plain `pyarrow.parquet.read_table` of the same files, "
             "measured in the same run, interleaved (medians; minima in brackets). "
             f"Machine: {info['cpu_count']} cores, {info['platform']}, Python {info['python']}; "
             f"versions {info['versions']}. Target: load ≤ 2× the pyarrow read.", ""]
    for r in results:
        lines += [f"## {r['n_entities']:,} entities, {r['n_event_rows']:,} event rows ({r['repeat']} runs)", "",
                  "| step | wall s median (min) | × pyarrow read | peak RSS added GiB |", "|---|---|---|---|"]
        base = r["steps"]["pyarrow_read"]["median_s"]
        for k, st in r["steps"].items():
            lines.append(f"| {k} | {st['median_s']:.3f} ({st['min_s']:.3f}) | {st['median_s'] / base:.2f} | "
                         f"{st['peak_rss_added_gib']:.2f} |")
        lines += ["", "Ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in r["ratios"].items()), ""]
        if "profile" in r:
            p = r["profile"]
            lines += ["Where one load spends its time (cProfile of a load on one thread, top 15 by own time; "
                      "the flame graph samples the real, threaded load):", "", "```",
                      p["cprofile_top_tottime"], "```", ""]
            if p["flame_graph"]:
                lines += [f"Flame graph (py-spy): [{p['flame_graph']}]({p['flame_graph']})", ""]
    lines += ["History: every run appends its figures to [history.csv](history.csv) "
              "(date, commit, bench, n_entities, metric, value).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="add a cProfile summary and a py-spy flame graph")
    a = ap.parse_args(argv)
    info = machine()
    results = []
    for n in a.sizes:
        r = run_size(n, a.repeat, a.profile)
        results.append(r)
        print(f"{n:,} entities: " + ", ".join(f"{k} {v['median_s']:.3f}s" for k, v in r["steps"].items())
              + f"; load/pyarrow read = {r['ratios']['load_over_pyarrow_read_median']:.2f}", flush=True)
    save("loading", {"machine": info, "results": results})
    (RESULTS / "loading.md").write_text(markdown(results, info), encoding="utf-8")
    record_history("loading", {r["n_entities"]: {
        "pyarrow_read_s": r["steps"]["pyarrow_read"]["median_s"], "load_s": r["steps"]["load_dataset"]["median_s"],
        "load_over_pyarrow_read": r["ratios"]["load_over_pyarrow_read_median"],
        "load_peak_rss_added_gib": r["steps"]["load_dataset"]["peak_rss_added_gib"]} for r in results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
