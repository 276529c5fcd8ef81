"""Model commands: train, score, report, monitor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .boundary import (
    TABLE_SUFFIXES,
    add_command,
    add_db_args,
    add_source_args,
    count_arg,
    date_arg,
    db_writer,
    io_plan,
    positive_float,
    print_reconcile,
    progress,
    read_input,
    say,
)

__all__ = ["SCORE_TABLES", "register"]

#: the tables ``score --to-db`` writes (also declared to the output guard)
SCORE_TABLES = ("scores", "score_rejects")


def cmd_train(a: argparse.Namespace) -> int:
    from ..model.bundle import save_bundle
    from ..model.training import train

    if a.synthetic:
        from ..data import synth

        world = synth.generate(a.synthetic, seed=a.seed)
        ds, truth = world.dataset, world.truth
    else:
        from ..data.dataset import load_dataset

        ds, truth = load_dataset(a.data, profile=a.profile, encoding=a.encoding), None
        print_reconcile(ds)
    params = {"learner": a.learner, "random_state": a.seed}
    res = train(ds, a.as_of, horizon=a.horizon, test_as_of=a.test_as_of, policy=a.policy,
                catalogue=a.catalogue, label_source=a.labels, truth=truth, **params)
    name = a.name or Path(a.out).name
    save_bundle(res.model, a.out, name=name, version=a.version, catalogue=res.model.catalogue,
                policy=res.model.policy, training=res.training, metrics=res.metrics, reference=res.reference)
    m = res.metrics["test_out_of_time"]
    say(f"trained {a.learner} on {res.training['n_train']:,} entities at {res.training['as_of']}; "
         f"out-of-time at {res.training['test_as_of']}: AUC {m['auc']:.3f}, KS {m['ks']:.3f}, "
         f"Brier {m['brier']:.4f}, tiers monotone: {m['tiers_monotone']}")
    say(res.test_tiers.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    for w in res.warnings:
        say(f"warning: {w}")
    if "truth" in res.metrics:
        say("ground truth: " + json.dumps({k: round(v, 3) for k, v in res.metrics["truth"].items()}))
    say(f"bundle written to {a.out}")
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from ..data.dataset import load_dataset
    from ..data.io import write_tables
    from ..data.paths import score_rejects_path
    from ..errors import DataValidationError, Problem
    from ..model.bundle import load_bundle
    from ..pipeline.scoring import rejects_table, score_entities

    out = Path(a.out)
    rej_path = score_rejects_path(out, a.rejects)  # rejects are for people
    with progress(4, "score") as bar:
        bar.set_postfix_str("loading")
        ds = load_dataset(a.data, strict=a.strict, profile=a.profile, encoding=a.encoding)
        bar.update()
        bar.set_postfix_str("model")
        bundle = load_bundle(a.model)
        bar.update()
        bar.set_postfix_str("features, tiers, reasons")
        res = score_entities(ds, a.as_of, bundle, reasons=a.reasons, policy=a.policy)
        bar.update()
        rejects = rejects_table(ds, res.excluded)
        n_in, n_rej = ds.counts["entities"][0], ds.counts["entities"][2]
        if n_in != len(res.scored) + len(res.excluded) + n_rej:  # never expected: refuse rather than lose entities
            raise RuntimeError(f"entity counts do not reconcile: {n_in} in, {len(res.scored)} scored, "
                               f"{len(res.excluded)} out of pool, {n_rej} rejected")
        if not len(res.scored):
            raise DataValidationError([Problem("entities", None, f"no entity could be scored at {a.as_of}: "
                                               f"{n_rej:,} rejected, {len(res.excluded):,} outside the supervision "
                                               "pool (see validate --lenient)")])
        db = db_writer(a, "score", f"score-{a.as_of}-{bundle.version}",
                        dict(zip(SCORE_TABLES, (res.scored.reset_index(), rejects), strict=True)))
        write_tables([(res.scored.reset_index(), out), (rejects, rej_path)], before_commit=db)
        bar.update()
    say(f"scored {len(res.scored):,} entities at {a.as_of} with {bundle.version} → {out}")
    t = res.tiering
    say(f"tiered by policy {t.policy} (sha256 {t.policy.sha256[:12]}…, {t.method}): model tier cut-offs "
         + ", ".join(f"{k} ≤ {v:.4f}" for k, v in t.to_dict()["cutoffs"].items()) + " (columns tier_policy*)")
    say(f"entities in {n_in:,} = scored {len(res.scored):,} + out of pool {len(res.excluded):,} "
         f"+ rejected {n_rej:,}; rejects and exclusions with reasons → {rej_path}")
    print_reconcile(ds)
    for w in res.warnings:
        say(f"warning: {w}")
    shares = res.scored["tier"].value_counts().reindex(list("ABCD"), fill_value=0)
    say("tiers: " + "  ".join(f"{t} {n:,}" for t, n in shares.items()))
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from ..data.dataset import load_dataset
    from ..model.bundle import load_bundle
    from ..model.labels import build_labels
    from ..pipeline.scoring import score_entities
    from ..report.html import write_report

    ds = load_dataset(a.data, strict=False, profile=a.profile, encoding=a.encoding)
    print_reconcile(ds)
    bundle = load_bundle(a.model)
    res = score_entities(ds, a.as_of, bundle, policy=a.policy)
    outcomes = build_labels(ds, a.as_of, policy=bundle.policy)["y"] if a.evaluate else None
    plan = read_input(a.plan, "plan") if a.plan else None
    ref = bundle.reference  # the training population stored in the bundle
    if a.reference_as_of:
        from ..features.build import build_features

        ref = build_features(ds, a.reference_as_of, bundle.catalogue, bundle.policy)
    from ..model.monitoring import monitor

    prev = (score_entities(ds, a.previous_as_of, bundle, reasons="none", policy=a.policy).scored
            if a.previous_as_of else None)
    mon = monitor(bundle, res.scored, res.features, outcomes=outcomes, previous=prev)
    front = None
    if a.frontier is not None:
        from ..supervision.frontier import policy_frontier

        front = policy_frontier(res.scored, a.frontier * len(res.scored), policy=a.policy)
    write_report(a.out, res.scored, bundle, features=res.features, outcomes=outcomes, plan=plan,
                 reference_features=ref, as_of=a.as_of, monitoring=mon, warnings=res.warnings, frontier=front,
                 policy=a.policy)
    say(f"report for {len(res.scored):,} entities at {a.as_of} → {a.out}")
    for w in res.warnings:
        say(f"warning: {w}")
    return 0


def cmd_monitor(a: argparse.Namespace) -> int:
    from ..data.dataset import load_dataset
    from ..data.io import write_text
    from ..model.bundle import load_bundle
    from ..model.labels import build_labels
    from ..model.monitoring import monitor
    from ..pipeline.scoring import score_entities

    ds = load_dataset(a.data, strict=False, profile=a.profile, encoding=a.encoding)
    print_reconcile(ds)
    bundle = load_bundle(a.model)
    res = score_entities(ds, a.as_of, bundle, reasons="none")
    prev = score_entities(ds, a.previous_as_of, bundle, reasons="none").scored if a.previous_as_of else None
    outcomes = build_labels(ds, a.as_of, policy=bundle.policy)["y"] if a.evaluate else None
    m = monitor(bundle, res.scored, res.features, outcomes=outcomes, previous=prev)
    say(m.summary())
    if a.out:
        write_text(a.out, json.dumps(m.to_dict(), indent=2, ensure_ascii=False, default=float) + "\n")
        say(f"monitoring record → {a.out}")
    if m.status == "retrain" and a.fail_on_retrain:
        from ..errors import RetrainNeeded

        raise RetrainNeeded("monitoring says retrain (--fail-on-retrain)")
    return 0


def _check_score(a: argparse.Namespace) -> str | None:
    out = Path(a.out)
    if out.suffix.lower() not in TABLE_SUFFIXES:
        return f"--out {a.out}: give a file ending in {', '.join(TABLE_SUFFIXES)}"
    if a.excel and out.suffix.lower() != ".xlsx":
        return f"--excel writes an Excel workbook: give an --out ending in .xlsx (not {out.suffix})"
    if a.rejects and Path(a.rejects).suffix.lower() not in TABLE_SUFFIXES:
        return f"--rejects {a.rejects}: give a file ending in {', '.join(TABLE_SUFFIXES)}"
    return None


def _config_inputs(a: argparse.Namespace) -> list[tuple[str, str | None]]:
    return [(f"--{k}", getattr(a, k, None)) for k in ("policy", "catalogue", "profile")]


def _io_train(a: argparse.Namespace):
    return io_plan(a, data=a.data, inputs=[("--data", a.data), *_config_inputs(a)], out_dirs=[("--out", a.out)])


def _io_score(a: argparse.Namespace):
    from ..data.paths import score_rejects_path

    return io_plan(a, data=a.data, inputs=[("--model", a.model), *_config_inputs(a)],
                   outputs=[("--out", a.out), ("--rejects" if a.rejects else "the rejects file (default name)",
                                               score_rejects_path(a.out, a.rejects))], db_tables=SCORE_TABLES)


def _io_report(a: argparse.Namespace):
    return io_plan(a, data=a.data, inputs=[("--model", a.model), ("--plan", a.plan), *_config_inputs(a)],
                   outputs=[("--out", a.out)])


def _io_monitor(a: argparse.Namespace):
    return io_plan(a, data=a.data, inputs=[("--model", a.model), *_config_inputs(a)], outputs=[("--out", a.out)])


def _check_train(a: argparse.Namespace) -> str | None:
    from ..errors import UsageError
    from ..model.labels import horizon_days
    from ..model.training import check_test_window

    if bool(a.data) == bool(a.synthetic):
        return "give exactly one of --data DIR or --synthetic N"
    try:                                 # the library's own rules, before any work
        days = horizon_days(a.horizon) if a.horizon is not None else None
        if a.test_as_of:
            check_test_window(a.as_of, a.test_as_of, days if days is not None else 1)
    except UsageError as e:
        return f"--{str(e).replace('_', '-')}"
    return None


def register(sp) -> None:
    """Add this group's commands to the subparsers ``sp``."""
    p = add_command(sp, "train", cmd_train, "Train a model bundle (features, labels, fit, out-of-time evaluation).",
             "yiwu-credit train --data out/world/dataset --as-of 2024-01-01 --out models/mine", check=_check_train,
             io=_io_train)
    p.add_argument("--data", help="dataset directory")
    add_source_args(p)
    p.add_argument("--synthetic", type=count_arg(100), metavar="N", help="train on a synthetic world of N entities instead")
    p.add_argument("--as-of", required=True, type=date_arg, help="ISO date YYYY-MM-DD")
    p.add_argument("--horizon", help="label horizon, days or e.g. 365D (default: the policy's [labels].horizon_days)")
    p.add_argument("--test-as-of", type=date_arg, help="out-of-time test date (default as-of + horizon)")
    p.add_argument("--labels", choices=["all", "campaigns"], default="all",
                   help="'campaigns': random-campaign outcomes with inverse-probability weights")
    p.add_argument("--learner", choices=["lightgbm", "scorecard"], default="lightgbm")
    p.add_argument("--policy", help="policy name or TOML path (default yiwu-2022)")
    p.add_argument("--catalogue", help="feature catalogue TOML (default: the shipped one)")
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--name", help="bundle name (default: the output folder name)")
    p.add_argument("--version", default="1.0.0", help="bundle version")
    p.add_argument("--out", required=True, help="bundle directory to write")

    p = add_command(sp, "score", cmd_score, "Score every entity: probability, credit score, tier, reasons.",
             "yiwu-credit score --data out/world/dataset --as-of 2026-01-01 --out out/scores.xlsx --excel", check=_check_score,
             io=_io_score)
    p.add_argument("--data", required=True)
    add_source_args(p)
    p.add_argument("--model", help="bundle directory or shipped name (default: models/default)")
    p.add_argument("--as-of", required=True, type=date_arg, help="ISO date YYYY-MM-DD")
    p.add_argument("--out", required=True, help=".csv, .parquet or .xlsx (Excel workbook)")
    p.add_argument("--rejects", help="rejects file (default: <out stem>.rejects.csv, or .xlsx with --excel)")
    p.add_argument("--excel", action="store_true", help="write Excel workbooks (--out must end in .xlsx)")
    p.add_argument("--reasons", choices=["CD", "all", "none"], default="CD",
                   help="reason codes for tiers C/D and overrides (default), everyone, or no one")
    p.add_argument("--policy", help="policy name or TOML path whose [tiers] and [overrides] tier the run "
                   "(default: the bundle's); cut-offs are fitted on the bundle's reference distribution, no refit")
    p.add_argument("--strict", action="store_true", help="fail on any bad row instead of quarantining it")
    add_db_args(p)

    p = add_command(sp, "report", cmd_report, "One self-contained HTML report: scores, tiers, performance, stability, plan.",
             "yiwu-credit report --data out/world/dataset --as-of 2025-01-01 --evaluate --out out/report.html",
             io=_io_report)
    p.add_argument("--data", required=True)
    add_source_args(p)
    p.add_argument("--model")
    p.add_argument("--as-of", required=True, type=date_arg, help="ISO date YYYY-MM-DD")
    p.add_argument("--evaluate", action="store_true",
                   help="evaluate against violations detected in the year after --as-of (needs that data)")
    p.add_argument("--plan", help="a plan from 'plan' to summarise")
    p.add_argument("--previous-as-of", type=date_arg, help="tier migration against a scoring run at this date")
    p.add_argument("--reference-as-of", type=date_arg, help="feature stability (CSI) against the population at this date "
                   "(default: the training population stored in the bundle)")
    p.add_argument("--frontier", type=positive_float, metavar="RATE",
                   help="add the policy frontier at this budget (inspections/year as a share of the pool, e.g. 0.04)")
    p.add_argument("--policy", help="policy name or TOML path that tiers the run (default: the bundle's) and "
                   "base sampling policy of the frontier")
    p.add_argument("--out", required=True)

    p = add_command(sp, "monitor", cmd_monitor, "Stability (PSI/CSI vs the training population), tier migration and "
             "performance drift; flags 'retrain' by the policy's thresholds.",
             "yiwu-credit monitor --data out/world/dataset --as-of 2025-01-01 --previous-as-of 2024-07-01 --evaluate",
             io=_io_monitor)
    p.add_argument("--data", required=True)
    add_source_args(p)
    p.add_argument("--model")
    p.add_argument("--as-of", required=True, type=date_arg, help="ISO date YYYY-MM-DD")
    p.add_argument("--previous-as-of", type=date_arg, help="compare tiers with a scoring run at this date")
    p.add_argument("--evaluate", action="store_true", help="performance on violations in the year after --as-of")
    p.add_argument("--out", help="write the monitoring record (JSON)")
    p.add_argument("--fail-on-retrain", action="store_true", help="exit 8 when the status is 'retrain'")
