"""The README's main job: a synthetic world through the whole pipeline, on built-in defaults."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from . import synth
from .bundle import load_bundle
from .dataset import load_dataset
from .io import write_table
from .scoring import score_entities

SCORE_AS_OF = "2026-01-01"


def run_demo(out: Path, n_entities: int = 20_000, seed: int = 2022, printer: Callable[[str], None] = print) -> dict:
    """Generate, validate, score with the shipped model, plan, draw, and write a report.

    Returns the paths written. Each step prints one line.
    """
    t0 = time.perf_counter()
    paths: dict[str, Path] = {}
    world = synth.generate(n_entities, seed=seed)
    data_dir, truth = world.save(out / "world", format="csv")
    printer(f"1. synthetic world: {n_entities:,} entities → {data_dir} (truth: {truth})")
    ds = load_dataset(data_dir, strict=False)
    n_rej = len(ds.rejects)
    printer(f"2. validated: {sum(c[0] for c in ds.counts.values()):,} rows, {n_rej} rejected")
    bundle = load_bundle()
    res = score_entities(ds, SCORE_AS_OF, bundle)
    paths["scores"] = write_table(res.scored.reset_index(), out / "scores.csv", excel=True)
    tiers = res.scored["tier"].value_counts().reindex(list("ABCD"), fill_value=0)
    printer(f"3. scored {len(res.scored):,} entities at {SCORE_AS_OF} with {bundle.version}; "
            f"tiers {dict(tiers)}; {len(res.excluded):,} out of the pool → {paths['scores']}")
    printer(f"done in {time.perf_counter() - t0:.1f} s; outputs in {out}")
    return paths
