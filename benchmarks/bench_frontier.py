"""Benchmark and evidence for the policy frontier (issue 15).

Parts (each writes ``benchmarks/results/frontier_<part>.json`` and appends to ``frontier.md``):

* ``speed`` — :func:`policy_frontier` on 1,000,000 entities × 50 candidate policies, median of 3
  runs, against a baseline measured in the same run: one ``supervision_plan`` call on the same
  pool (the cost of planning once). The pool is a 100,000-entity synthetic world scored with the
  shipped bundle, resampled with new ids to 1M rows (so the probabilities are a real model's).
* ``loop`` — realised detections in the closed loop (:func:`frontier_outcomes`): 20,000
  entities, 4 cycles, 4% budget, seeds from --seeds (recorded: 0–9), the candidates below against uniform (the baseline,
  measured in the same worlds) and the true-propensity oracle.
* ``drift`` — the same on a drifting world (:class:`Drift`), 6 cycles: what the floor and α buy.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/bench_frontier.py --part speed loop drift
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine, measure  # noqa: E402

from yiwu_credit.data.io import markdown_table  # noqa: E402
from yiwu_credit.pipeline.closed_loop import Drift, frontier_outcomes  # noqa: E402
from yiwu_credit.supervision.frontier import Candidate, candidate_grid, policy_frontier  # noqa: E402

V11 = (0.25, 1.0, 5.0, 15.0)       # the 1.1.0 default tier weights (1/4/20/60 %)
V12 = (0.1, 1.0, 10.0, 30.0)        # the 1.2.0 default (0.3/3/30/90 %)
OLD = Candidate("1.1.0-default", V11, 0.0, "all")
LOOP_CANDIDATES = [
    OLD,
    Candidate("v1.1/a1/routine", V11, 1.0, "routine"),
    Candidate("v1.1/a1.5/routine", V11, 1.5, "routine"),
    Candidate("v1.2/a0/routine", V12, 0.0, "routine"),
    Candidate("v1.2/a0.5/routine", V12, 0.5, "routine"),
    Candidate("v1.2/a1.5/routine", V12, 1.5, "routine"),
    Candidate("v1.2/a1/all", V12, 1.0, "all"),
    Candidate("v1.2/a1/none", V12, 1.0, "none"),
    Candidate("steep/a1/routine", (0.1, 1.0, 10.0, 40.0), 1.0, "routine"),
    Candidate("flat/a2/none", (1.0, 1.0, 1.0, 1.0), 2.0, "none"),
]
DRIFT_CANDIDATES = [
    OLD,
    Candidate("v1.2/a0/routine", V12, 0.0, "routine"),
    Candidate("v1.2/a2/routine", V12, 2.0, "routine"),
    Candidate("v1.2/a2/routine/no-floor", (1e-6, 1.0, 10.0, 30.0), 2.0, "routine", 1e-9),
]


def _write(part: str, payload: dict, md: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"frontier_{part}.json").write_text(json.dumps(payload, indent=1, default=float) + "\n")
    (RESULTS / f"frontier_{part}.md").write_text(md + "\n")
    print(md, flush=True)


def part_speed(n_rows: int, repeat: int) -> None:
    from yiwu_credit.data import synth
    from yiwu_credit.model.bundle import load_bundle
    from yiwu_credit.pipeline.scoring import score_entities
    from yiwu_credit.supervision.plan import supervision_plan

    world = synth.generate(100_000, seed=7, start="2020-01-01", end="2025-12-31")
    sc = score_entities(world.dataset, "2026-01-01", load_bundle(None), reasons="none").scored
    rng = np.random.default_rng(0)
    big = sc.iloc[rng.integers(0, len(sc), n_rows)].copy()
    big.index = pd.Index([f"E{i:09d}" for i in range(n_rows)], name="entity_id")
    from yiwu_credit.supervision.frontier import TIER_WEIGHT_SETS

    sets = {k: TIER_WEIGHT_SETS[k] for k in ("v1.1", "v1.2", "flat", "mild", "steep")}
    cands = candidate_grid(tier_weights=sets, alphas=(0.0, 1.0, 1.5, 2.0), scopes=("all", "routine", "none"))[:50]
    budget = 0.04 * n_rows
    base, _ = measure(lambda: supervision_plan(big, budget=budget), repeat=repeat)
    fr_m, fr = measure(lambda: policy_frontier(big, budget, cands), repeat=repeat)
    payload = {"n_entities": n_rows, "candidates": len(cands), "cells": fr.params["cells"],
               "frontier": fr_m, "baseline_one_plan": base, "ratio_vs_one_plan": fr_m["wall_s"] / base["wall_s"],
               "target_wall_s": 10.0, "machine": machine()}
    md = (f"## Frontier speed ({time.strftime('%Y-%m-%d')})\n\n"
          f"{n_rows:,} entities ({fr.params['cells']:,} cells of identical plan inputs) × {len(cands)} candidates: "
          f"**{fr_m['wall_s']:.2f} s** wall (median of {repeat}; CPU {fr_m['cpu_s']:.2f} s, peak RSS "
          f"{fr_m['peak_rss_gib']:.2f} GiB); one `supervision_plan` on the same pool (baseline, same run): "
          f"{base['wall_s']:.2f} s → the frontier costs {fr_m['wall_s'] / base['wall_s']:.1f} plans. Target ≤ 10 s.\n\n"
          + fr.to_markdown(top=8))
    _write("speed", payload, md)


def _loop_md(title: str, summary: pd.DataFrame, params: dict) -> str:
    cols = ["strategy", "seeds", "violations", "lift", "lift_lo", "lift_hi", "low_risk_share", "tier_a_share",
            "turned_violations", "turned_potential", "ht_error", "calib_gap"]
    return (f"## {title} ({time.strftime('%Y-%m-%d')})\n\n`{json.dumps(params, default=str)}`\n\n"
            "lift = realised violations / uniform's in the same world and seed; interval = 95% Student-t over "
            "seeds.\n\n" + markdown_table(summary[[c for c in cols if c in summary.columns]], ".3f"))


def part_loop(seeds: list[int], n: int, drift: bool) -> None:
    kw = {"n_entities": n, "budget_rate": 0.04, "cycles": 6 if drift else 4}
    if drift:
        kw["drift"] = Drift()
    strategies = ("uniform", "oracle", "policy", "no_floor")
    t = time.perf_counter()
    per_seed, summary = frontier_outcomes(DRIFT_CANDIDATES if drift else LOOP_CANDIDATES, seeds,
                                          strategies=strategies, **kw)
    params = {**{k: (vars(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in kw.items()},
              "seeds": seeds, "strategies": list(strategies), "seconds": round(time.perf_counter() - t, 1)}
    part = ("drift" if drift else "loop") + ("" if seeds == [0, 1, 2, 3, 4] else "_seeds" + "-".join(map(str, seeds)))
    _write(part, {"params": params, "summary": summary.to_dict("records"), "per_seed": per_seed.to_dict("records")},
           _loop_md("Closed loop on a drifting world" if drift else "Closed loop: realised detections", summary,
                    params))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", nargs="+", default=["speed", "loop", "drift"])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--entities", type=int, default=20_000)
    a = ap.parse_args()
    for p in a.part:
        if p == "speed":
            part_speed(a.rows, a.repeat)
        elif p in ("loop", "drift"):
            part_loop(a.seeds, a.entities, p == "drift")


if __name__ == "__main__":
    main()
