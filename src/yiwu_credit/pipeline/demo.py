"""The README's main job: a synthetic world through the whole pipeline, on built-in defaults."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..data import synth
from ..data.dataset import load_dataset
from ..data.io import write_table
from ..model.bundle import load_bundle
from ..model.labels import build_labels
from ..supervision import draw, save_audit, supervision_plan, verify
from ..supervision.estimates import publication_summary, results_table, tie_results, violation_rates
from ..supervision.inspectors import assign_inspectors, inspectors_by_entity
from .scoring import score_entities

__all__ = ["SCORE_AS_OF", "EVAL_AS_OF", "CAMPAIGN_WINDOW", "run_demo"]

SCORE_AS_OF = "2026-01-01"
EVAL_AS_OF = "2025-01-01"
CAMPAIGN_WINDOW = ("2026-01-01", "2026-03-31")   # simulated results fall in the 60 days after SCORE_AS_OF


def run_demo(out: Path, n_entities: int = 20_000, seed: int = 2022, printer: Callable[[str], None] = print) -> dict:
    """Generate, validate, score with the shipped model, plan, draw entities and inspectors,
    verify the draw, estimate from simulated results, and write the report.

    Returns the paths written; each step prints one line.
    """
    t0 = time.perf_counter()
    out = Path(out)
    paths: dict[str, Path] = {}
    world = synth.generate(n_entities, seed=seed)
    paths["dataset"], paths["truth"] = world.save(out / "world", format="csv")
    paths["roster"] = write_table(synth.roster(max(20, n_entities // 200), seed=seed,
                                               entity_ids=world.dataset.entities["entity_id"].to_numpy()),
                                  out / "world" / "inspectors.csv")
    printer(f"1. synthetic world: {n_entities:,} entities → {paths['dataset']} (ground truth kept apart: "
            f"{paths['truth']})")
    ds = load_dataset(paths["dataset"], strict=False)
    printer(f"2. validated {sum(c[0] for c in ds.counts.values()):,} rows: {len(ds.rejects)} rejected")
    bundle = load_bundle()
    res = score_entities(ds, SCORE_AS_OF, bundle)
    paths["scores"] = write_table(res.scored.reset_index(), out / "scores.csv", excel=True)
    paths["excluded"] = write_table(res.excluded, out / "scores.rejects.csv", excel=True)
    tiers = res.scored["tier"].value_counts().reindex(list("ABCD"), fill_value=0)
    printer(f"3. scored {len(res.scored):,} entities at {SCORE_AS_OF} with {bundle.version}: "
            + ", ".join(f"{t} {n:,}" for t, n in tiers.items())
            + f"; {len(res.excluded):,} out of the pool → {paths['scores']}")
    plan = supervision_plan(res.scored, bundle.policy)
    paths["plan"] = write_table(plan.reset_index(), out / "plan.csv")
    printer(f"4. plan: {plan['expected_per_year'].sum():,.0f} inspections a year; campaign Σπ = {plan['pi'].sum():,.0f}"
            f" → {paths['plan']}")
    campaign_seed = f"{seed}-{SCORE_AS_OF}"
    d = draw(plan, None, campaign_seed, window=CAMPAIGN_WINDOW)
    asg = assign_inspectors(d.frame(plan), paths["roster"], campaign_seed, policy=bundle.policy)
    d = d.with_inspectors(asg)                       # the second random goes into the audit too
    drawn = d.frame(plan).assign(inspectors=lambda f: f.index.map(inspectors_by_entity(asg)))
    paths["drawn"] = write_table(drawn.reset_index(), out / "drawn.csv", excel=True)
    paths["audit"] = save_audit(d, out / "drawn.audit.json")
    paths["assignments"] = write_table(asg, out / "drawn.inspectors.csv")
    ok = verify(d.audit, plan, bundle.policy, roster=paths["roster"], assignments=paths["assignments"])
    printer(f"5. drew {len(d.selected):,} entities and {asg['inspector_id'].nunique()} inspectors (seed "
            f"{campaign_seed!r}); audit verifies: {ok.ok} (entities and inspectors) → {paths['drawn']}, "
            f"{paths['audit']}")
    results = synth.simulate_results(d.selected, world.truth, seed, SCORE_AS_OF)
    paths["results"] = write_table(results, out / "results.csv")
    campaign = tie_results(results, plan, drawn=d)   # refuses undrawn entities, duplicates, dates outside
    est = violation_rates(campaign, policy=bundle.policy)
    paths["estimates"] = write_table(est, out / "estimates.csv", excel=True)
    paths["published"] = write_table(results_table(campaign.results, asg, zh_columns=True),
                                     out / "published.csv", excel=True)
    paths["summary"] = write_table(publication_summary(campaign, est), out / "published.summary.csv", excel=True)
    o = est[est["domain"] == "all"].iloc[0]
    printer(f"6. published estimate of the violation rate: {o['rate']:.1%} (95% CI {o['ci_low']:.1%}–"
            f"{o['ci_high']:.1%}), {int(o['n'])} of {int(o['drawn'])} drawn entities with a result "
            f"({o['response_rate']:.0%}); hit rate in the sample "
            f"{results['result'].isin(bundle.policy.labels.adverse_results).mean():.1%}"
            f" → {paths['estimates']}, {paths['published']}, {paths['summary']}")
    try:
        from ..report.html import write_report
    except ImportError:  # pragma: no cover - matplotlib is the [report] extra
        printer("7. report skipped: pip install 'yiwu-credit[report]'")
    else:
        from ..model.monitoring import monitor
        from .closed_loop import simulate_loop

        ev = score_entities(ds, EVAL_AS_OF, bundle, reasons="none")
        outcomes = build_labels(ds, EVAL_AS_OF, policy=bundle.policy)["y"]
        mon = monitor(bundle, res.scored, res.features, previous=ev.scored)
        loop = simulate_loop(n_entities=min(n_entities, 8_000), cycles=3, seed=seed)
        printer(f"7. monitoring: {mon.status} (score PSI {mon.psi_score:.3f}); closed loop: "
                + loop.summary().splitlines()[-2].strip())
        paths["report"] = write_report(out / "report.html", res.scored, bundle, features=res.features, plan=plan,
                                       reference_features=bundle.reference, as_of=SCORE_AS_OF, monitoring=mon,
                                       loop=loop, warnings=res.warnings)
        ev_mon = monitor(bundle, ev.scored, ev.features, outcomes=outcomes)
        paths["evaluation"] = write_report(out / "evaluation.html", ev.scored, bundle, features=ev.features,
                                           outcomes=outcomes, reference_features=bundle.reference, as_of=EVAL_AS_OF,
                                           monitoring=ev_mon)
        printer(f"8. reports → {paths['report']} (current scores, plan, monitoring, closed loop), "
                f"{paths['evaluation']} (scored at {EVAL_AS_OF}, checked against the following year's violations)")
    printer(f"done in {time.perf_counter() - t0:.1f} s; everything is in {out}/")
    return paths
