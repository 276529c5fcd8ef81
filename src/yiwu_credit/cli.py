"""The ``yiwu-credit`` command line. Thin: parse, call the library, print.

Exit codes: 0 success · 1 unexpected internal error · 2 usage error (bad option or date) ·
3 bad data · 4 bad configuration (catalogue, policy, roster) · 5 model bundle
missing/tampered/incompatible · 6 impossible supervision request · 7 a draw does not verify ·
8 monitoring says retrain (``monitor --fail-on-retrain``) · 9 an output could not be written
(disk full, permission) · 130/143 interrupted/terminated (no partial output is left).
User errors never print a traceback (``--debug`` does).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from ._version import __version__
from .errors import YiwuCreditError

__all__ = ["build_parser", "main"]

EXIT_INTERNAL = 1
TABLE_SUFFIXES = (".csv", ".parquet", ".xlsx")


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (temporary files) runs."""


#: set by the SIGTERM handler: a library may turn the raised _Terminated into an error of its own
#: (Cython does, when the signal lands while it parses a buffer format), so the exit code follows
#: this flag, not the exception's type
_TERM_REQUESTED: list[bool] = []


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess test
    _TERM_REQUESTED.append(True)
    raise _Terminated()


def _terminated() -> int:
    print("terminated: no output of this run was written", file=sys.stderr)
    return 143


def _date(value: str) -> str:
    """argparse type for dates: a real ISO calendar date, returned as YYYY-MM-DD."""
    from .data.dates import parse_as_of
    from .errors import UsageError

    try:
        return parse_as_of(value, "date").date().isoformat()
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("date: ")) from None


def _count(minimum: int) -> Callable[[str], int]:
    """argparse type for a whole number >= ``minimum``."""
    def parse(value: str) -> int:
        try:
            v = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{v} is less than {minimum}")
        return v
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def _out(msg: str = "") -> None:
    print(msg, flush=True)


def _progress(total: int, desc: str):
    """A progress bar on a terminal; silent otherwise (tqdm, disabled when not a TTY)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None, leave=False, file=sys.stderr)


# ----------------------------------------------------------------------------- commands

def cmd_validate(a: argparse.Namespace) -> int:
    from .data.dataset import load_dataset, validation_report
    from .errors import DataValidationError

    try:
        ds = load_dataset(a.data, as_of=a.as_of, strict=not a.lenient, profile=a.profile, encoding=a.encoding)
    except DataValidationError as e:
        _out(f"dataset {a.data}: INVALID")
        _out(str(e))
        return e.exit_code
    _out(validation_report(ds))
    _reconcile(ds)
    if a.rejects and len(ds.rejects):
        from .data.io import write_table

        write_table(ds.rejects, a.rejects)
        _out(f"rejected rows written to {a.rejects}")
    return 0 if not len(ds.rejects) else 3


def cmd_synth(a: argparse.Namespace) -> int:
    from .data import synth

    t = time.perf_counter()
    world = synth.generate(a.entities, seed=a.seed, start=a.start, end=a.end)
    data_dir, truth = world.save(a.out, format=a.format)
    from .data.io import write_table

    ros = write_table(synth.roster(max(20, a.entities // 200), seed=a.seed,
                                   entity_ids=world.dataset.entities["entity_id"].to_numpy()), Path(a.out) / "inspectors.csv")
    n_events = sum(v[0] for k, v in world.dataset.counts.items() if k != "entities")
    _out(f"synthetic world: {a.entities:,} entities, {n_events:,} event rows, seed {a.seed} "
         f"({time.perf_counter() - t:.1f} s)")
    _out(f"  dataset      {data_dir}")
    _out(f"  ground truth {truth}   (never part of the dataset)")
    _out(f"  inspectors   {ros}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .model.bundle import save_bundle
    from .model.training import train

    if a.synthetic:
        from .data import synth

        world = synth.generate(a.synthetic, seed=a.seed)
        ds, truth = world.dataset, world.truth
    else:
        from .data.dataset import load_dataset

        ds, truth = load_dataset(a.data, profile=a.profile, encoding=a.encoding), None
    params = {"learner": a.learner, "random_state": a.seed}
    res = train(ds, a.as_of, horizon=a.horizon, test_as_of=a.test_as_of, policy=a.policy,
                catalogue=a.catalogue, label_source=a.labels, truth=truth, **params)
    name = a.name or Path(a.out).name
    save_bundle(res.model, a.out, name=name, version=a.version, catalogue=res.model.catalogue,
                policy=res.model.policy, training=res.training, metrics=res.metrics, reference=res.reference)
    m = res.metrics["test_out_of_time"]
    _out(f"trained {a.learner} on {res.training['n_train']:,} entities at {res.training['as_of']}; "
         f"out-of-time at {res.training['test_as_of']}: AUC {m['auc']:.3f}, KS {m['ks']:.3f}, "
         f"Brier {m['brier']:.4f}, tiers monotone: {m['tiers_monotone']}")
    _out(res.test_tiers.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if "truth" in res.metrics:
        _out("ground truth: " + json.dumps({k: round(v, 3) for k, v in res.metrics["truth"].items()}))
    _out(f"bundle written to {a.out}")
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from .data.dataset import load_dataset
    from .data.io import write_tables
    from .errors import DataValidationError, Problem
    from .model.bundle import load_bundle
    from .pipeline.scoring import rejects_table, score_entities

    out = Path(a.out)
    rej_path = Path(a.rejects) if a.rejects else out.with_name(
        out.stem + ".rejects" + (".xlsx" if out.suffix == ".xlsx" else ".csv"))  # rejects are for people
    with _progress(4, "score") as bar:
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
        db = _db_writer(a, "score", f"score-{a.as_of}-{bundle.version}",
                        {"scores": res.scored.reset_index(), "score_rejects": rejects})
        write_tables([(res.scored.reset_index(), out), (rejects, rej_path)], before_commit=db)
        bar.update()
    _out(f"scored {len(res.scored):,} entities at {a.as_of} with {bundle.version} → {out}")
    t = res.tiering
    _out(f"tiered by policy {t.policy} (sha256 {t.policy.sha256[:12]}…, {t.method}): model tier cut-offs "
         + ", ".join(f"{k} ≤ {v:.4f}" for k, v in t.to_dict()["cutoffs"].items()) + " (columns tier_policy*)")
    _out(f"entities in {n_in:,} = scored {len(res.scored):,} + out of pool {len(res.excluded):,} "
         f"+ rejected {n_rej:,}; rejects and exclusions with reasons → {rej_path}")
    _reconcile(ds)
    for note in ds.notes:
        _out(f"note: {note}")
    for w in res.warnings:
        _out(f"warning: {w}")
    shares = res.scored["tier"].value_counts().reindex(list("ABCD"), fill_value=0)
    _out("tiers: " + "  ".join(f"{t} {n:,}" for t, n in shares.items()))
    return 0


def _db_writer(a: argparse.Namespace, command: str, default_run: str, tables: dict[str, pd.DataFrame],
               audit: dict | None = None) -> Callable[[], None] | None:
    """With ``--to-db URL``: a callable that writes this run's tables in one transaction (rows of an
    earlier run with the same run id are replaced); called before the files are renamed into place,
    so a failed database write leaves no files either."""
    if not getattr(a, "to_db", None):
        return None

    def write() -> None:
        from .data.sources.database import redact, write_run

        run_id = a.run_id or default_run
        counts = write_run(a.to_db, run_id, tables, audit=audit, command=command, schema=a.db_schema)
        _out(f"run {run_id!r} written to {redact(a.to_db)}: "
             + ", ".join(f"{t} {n:,} rows" for t, n in counts.items()) + " (one transaction; a re-run replaces it)")

    return write


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to-db", metavar="URL", help="also write the results to this database (postgresql://…, "
                   "sqlite:///…) in one transaction; credentials from the URL or PGPASSWORD etc.")
    p.add_argument("--run-id", help="the run's id in the database (default: command, date or seed, model); "
                   "re-running the same id replaces its rows")
    p.add_argument("--db-schema", help="database schema for the result tables")


def _reconcile(ds) -> None:
    """Print rows in = kept + quarantined for every table that lost rows."""
    for name, (n_in, n_kept, n_rej) in ds.counts.items():
        if n_rej:
            _out(f"quarantined {name}: {n_rej:,} of {n_in:,} rows (kept {n_kept:,}); reasons in the rejects file")


def _read(path: str, what: str) -> pd.DataFrame:
    """A CSV/Parquet table with an entity_id column, indexed by it (clear errors)."""
    from .data.io import read_table
    from .errors import DataValidationError, Problem

    p = Path(path)
    if not p.is_file():
        raise DataValidationError([Problem(what, None, f"file not found: {p}")])
    try:
        df = read_table(p, dtype={"entity_id": str, "tier": str, "town": str, "industry": str})
    except Exception as e:
        raise DataValidationError([Problem(what, None, f"cannot read {p.name}: {type(e).__name__}: {e}")]) from None
    if "entity_id" not in df.columns:
        raise DataValidationError([Problem(what, "entity_id", f"missing column in {p.name}")])
    return df.set_index("entity_id")


def cmd_plan(a: argparse.Namespace) -> int:
    from .data.io import write_tables
    from .supervision.plan import supervision_plan

    scored = _read(a.scores, "scores")
    plan = supervision_plan(scored, a.policy, n=a.n, budget=a.budget)
    db = _db_writer(a, "plan", f"plan-{Path(a.scores).stem}-n{int(round(plan['pi'].sum()))}",
                    {"plans": plan.reset_index()})
    write_tables([(plan.reset_index(), a.out)], before_commit=db)
    by = plan.groupby("tier").agg(entities=("pi", "size"), per_year=("expected_per_year", "sum"), campaign=("pi", "sum"))
    _out(f"plan for {len(plan):,} entities: {plan['expected_per_year'].sum():,.0f} inspections a year, "
         f"campaign of {plan['pi'].sum():,.0f} (Σπ); must-include {int(plan['must_include'].sum())} → {a.out}")
    _out(by.to_string(float_format=lambda x: f"{x:,.1f}"))
    return 0


def cmd_frontier(a: argparse.Namespace) -> int:
    from .data.io import write_tables
    from .supervision.frontier import candidate_grid, policy_frontier

    scored = _read(a.scores, "scores")
    budget = a.budget if a.budget is not None else (a.budget_rate * len(scored) if a.budget_rate else None)
    cands = candidate_grid(a.policy, alphas=a.alphas, scopes=a.scopes, floors=a.floors)
    f = policy_frontier(scored, budget, cands, policy=a.policy, n=a.n)
    items = [(f.table, a.out)]
    if a.burden:
        items.append((f.burden, a.burden))
    write_tables(items)
    if a.plot:
        f.plot(a.plot)
    p = f.params
    _out(f"frontier of {len(f.table)} candidate policies on {p['population']:,} entities, budget "
         f"{p['budget']:,.0f} inspections/year, campaign n = {p['n']:,} ({f.seconds:.1f} s) → {a.out}")
    cols = ["name", "detections", "lift", "share_tier_a", "share_below_median", "min_pi", "pareto"]
    t = f.table.sort_values("detections", ascending=False)
    t = pd.concat([t.head(a.top), t[t["in_force"]]]).drop_duplicates("name")[cols]
    with pd.option_context("display.width", 140, "display.float_format", "{:.4g}".format):
        _out(t.to_string(index=False))
    return 0


def cmd_draw(a: argparse.Namespace) -> int:
    from .data.io import write_tables
    from .supervision.audit import audit_json
    from .supervision.systematic import draw
    from .supervision.verification import conventional_assignments_path, read_table

    plan = _read(a.plan, "plan")
    d = draw(plan, a.n, a.seed, window=tuple(a.window) if a.window else None)
    sel = d.frame(plan).reset_index()
    audit_path = Path(a.audit) if a.audit else Path(a.out).with_suffix(".audit.json")
    if a.inspectors:
        from .supervision.inspectors import assign_inspectors, inspectors_by_entity

        prev = read_table(a.previous, "previous") if a.previous else None
        asg = assign_inspectors(d.frame(plan), a.inspectors, a.seed, previous=prev, qualification=a.qualification)
        d = d.with_inspectors(asg)           # roster hash, parameters and assignment go into the audit
        sel["inspectors"] = sel["entity_id"].map(inspectors_by_entity(asg))
        asg_path = conventional_assignments_path(audit_path)
    db = _db_writer(a, "draw", f"draw-{a.seed}", {"draws": sel, **({"assignments": asg} if a.inspectors else {})},
                    audit=d.audit)
    write_tables([(sel, a.out), *([(asg, asg_path)] if a.inspectors else []), (audit_json(d), audit_path)],
                 before_commit=db)
    _out(f"drew {len(d.selected):,} of {len(plan):,} entities with seed {a.seed!r} → {a.out}")
    if a.window:
        _out(f"campaign window {d.audit['campaign']['start']} – {d.audit['campaign']['end']} (results dated "
             f"outside it will be refused)")
    _out(f"audit record (publish it with the frame so anyone can verify) → {audit_path}")
    if a.inspectors:
        rec = d.audit["inspectors"]
        _out(f"inspectors: {len(asg):,} assignments, {rec['per_entity']} per entity, recusal honoured; roster hash "
             f"and assignment recorded in the audit → {asg_path}")
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from .supervision.verification import verify_files

    res = verify_files(a.audit, a.frame, a.policy, roster=a.inspectors, previous=a.previous,
                       assignments=a.assignments)
    _out(str(res))
    return 0 if res.ok else 7


def cmd_estimate(a: argparse.Namespace) -> int:
    from .data.io import write_tables
    from .supervision.estimates import publication_summary, tie_results, violation_rates
    from .supervision.verification import load_audit, verify

    window = (a.campaign_start, a.campaign_end) if a.campaign_start or a.campaign_end else None  # both, checked
    plan = _read(a.plan, "plan")
    results = _read(a.results, "results")
    if a.audit:
        audit = load_audit(a.audit)
        v = verify({k: x for k, x in audit.items() if k != "inspectors"}, plan)
        if not v.ok:
            _out(f"the plan {a.plan} is not the one the audited draw was made from:")
            _out(str(v))
            return 7
        drawn = audit
    else:
        drawn = _read(a.drawn, "drawn").index
    c = tie_results(results, plan, drawn=drawn, window=window, verify_plan=False)
    est = violation_rates(c, by=a.by, policy=a.policy)
    table = _published_table(a, c, drawn) if a.publish else None   # checked before anything is written
    outputs = [(est, a.out, a.excel)]
    if table is not None:
        pub = Path(a.publish)
        summary_path = pub.with_name(pub.stem + ".summary" + (".xlsx" if pub.suffix == ".xlsx" else ".csv"))
        outputs += [(table, pub, True), (publication_summary(c, est), summary_path, True)]
    write_tables(outputs)                                            # all files of the run, or none
    overall = est[est["domain"] == "all"].iloc[0]
    resp = c.response
    tot = resp.iloc[-1]
    _out(f"violation rate (Hájek, published): {overall['rate']:.2%} ± {overall['se']:.2%} "
         f"(95% CI {overall['ci_low']:.2%}–{overall['ci_high']:.2%}), n={int(overall['n'])} results of "
         f"{int(overall['drawn'])} drawn, N={int(overall['N'])}")
    _out(f"response: {int(tot['responded'])} of {int(tot['drawn'])} drawn entities have a result "
         f"({tot['response_rate']:.1%}), campaign {c.window['start']} – {c.window['end']}; weights adjusted within "
         f"{resp['adjusted_by'].iloc[0] or 'the campaign'} for non-response")
    _out(resp.drop(columns="adjusted_by").rename(columns={"class": resp["adjusted_by"].iloc[0] or "class"})
         .to_string(index=False, na_rep="", float_format=lambda x: f"{x:.3f}"))
    _out(f"estimates by {', '.join(a.by)} → {a.out}")
    if table is not None:
        _out(f"publishable results table (一公开) → {pub}; summary with the response rate "
             f"({tot['response_rate']:.1%}) → {summary_path}")
    return 0


def _published_table(a: argparse.Namespace, c, drawn) -> pd.DataFrame:
    """The 一公开 results table; its inspectors are the audit's (``--assignments`` must match them)."""
    from .errors import DataValidationError, Problem
    from .supervision.assignments import assignment_map, compare_assignments
    from .supervision.estimates import results_table

    recorded = drawn["inspectors"]["assignment"] if a.audit and "inspectors" in drawn else None
    if a.assignments:
        try:
            asg = pd.read_csv(a.assignments, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except Exception as e:
            raise DataValidationError([Problem("assignments", None, f"cannot read {a.assignments}: "
                                               f"{type(e).__name__}: {e}")]) from None
        diff = compare_assignments(recorded, assignment_map(asg), "assignments") if recorded is not None else []
        if diff:
            raise DataValidationError([Problem("assignments", "inspector_id",
                                               f"{Path(a.assignments).name} differs from the audit: {m}") for m in diff])
    elif recorded is not None:
        asg = pd.DataFrame([(e, i) for e, ins in recorded.items() for i in ins], columns=["entity_id", "inspector_id"])
        asg["slot"] = asg.groupby("entity_id").cumcount() + 1
    else:
        asg = None
    return results_table(c.results, asg, zh_columns=True)


def cmd_report(a: argparse.Namespace) -> int:
    from .data.dataset import load_dataset
    from .model.bundle import load_bundle
    from .model.labels import build_labels
    from .pipeline.scoring import score_entities
    from .report.html import write_report

    ds = load_dataset(a.data, strict=False, profile=a.profile, encoding=a.encoding)
    bundle = load_bundle(a.model)
    res = score_entities(ds, a.as_of, bundle, policy=a.policy)
    outcomes = build_labels(ds, a.as_of, policy=bundle.policy)["y"] if a.evaluate else None
    plan = _read(a.plan, "plan") if a.plan else None
    ref = bundle.reference  # the training population stored in the bundle
    if a.reference_as_of:
        from .features.build import build_features

        ref = build_features(ds, a.reference_as_of, bundle.catalogue, bundle.policy)
    from .model.monitoring import monitor

    prev = (score_entities(ds, a.previous_as_of, bundle, reasons="none", policy=a.policy).scored
            if a.previous_as_of else None)
    mon = monitor(bundle, res.scored, res.features, outcomes=outcomes, previous=prev)
    front = None
    if a.frontier is not None:
        from .supervision.frontier import policy_frontier

        front = policy_frontier(res.scored, a.frontier * len(res.scored), policy=a.policy)
    write_report(a.out, res.scored, bundle, features=res.features, outcomes=outcomes, plan=plan,
                 reference_features=ref, as_of=a.as_of, monitoring=mon, warnings=res.warnings, frontier=front,
                 policy=a.policy)
    _out(f"report for {len(res.scored):,} entities at {a.as_of} → {a.out}")
    for w in res.warnings:
        _out(f"warning: {w}")
    return 0


def cmd_monitor(a: argparse.Namespace) -> int:
    from .data.dataset import load_dataset
    from .data.io import write_text
    from .model.bundle import load_bundle
    from .model.labels import build_labels
    from .model.monitoring import monitor
    from .pipeline.scoring import score_entities

    ds = load_dataset(a.data, strict=False, profile=a.profile, encoding=a.encoding)
    bundle = load_bundle(a.model)
    res = score_entities(ds, a.as_of, bundle, reasons="none")
    prev = score_entities(ds, a.previous_as_of, bundle, reasons="none").scored if a.previous_as_of else None
    outcomes = build_labels(ds, a.as_of, policy=bundle.policy)["y"] if a.evaluate else None
    m = monitor(bundle, res.scored, res.features, outcomes=outcomes, previous=prev)
    _out(m.summary())
    if a.out:
        write_text(a.out, json.dumps(m.to_dict(), indent=2, ensure_ascii=False, default=float) + "\n")
        _out(f"monitoring record → {a.out}")
    return 0 if m.status != "retrain" or not a.fail_on_retrain else 8


def cmd_simulate_loop(a: argparse.Namespace) -> int:
    from .data.io import write_table
    from .pipeline.closed_loop import simulate_loop

    res = simulate_loop(n_entities=a.entities, cycles=a.cycles, budget_rate=a.budget_rate, seed=a.seed)
    _out(res.summary())
    out = Path(a.out)
    write_table(res.cycles, out / "cycles.csv")
    write_table(res.burden, out / "burden.csv")
    res.plot(out / "closed-loop.png")
    _out(f"per-cycle figures, burden by group and the plot → {out}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from .pipeline.demo import run_demo

    run_demo(Path(a.out), n_entities=a.entities, seed=a.seed, printer=_out)
    return 0


# ----------------------------------------------------------------------------- parser

def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="source profile: 'zh' (Chinese file names, headers and codes), a TOML "
                   "path, or 'contract' (default: the contract's own names)")
    p.add_argument("--encoding", help="encoding of CSV files (default: UTF-8 or GB18030, detected per file)")


def _floats(value: str) -> tuple[float, ...]:
    """argparse type: comma-separated non-negative numbers."""
    try:
        v = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers") from None
    if not v or any(not (x >= 0) for x in v):
        raise argparse.ArgumentTypeError(f"{value!r}: expected one or more numbers ≥ 0")
    return v


def _scopes(value: str) -> tuple[str, ...]:
    """argparse type: comma-separated entity-type factor scopes."""
    v = tuple(x.strip() for x in value.split(",") if x.strip())
    bad = [x for x in v if x not in ("all", "routine", "none")]
    if not v or bad:
        raise argparse.ArgumentTypeError(f"{value!r}: expected scopes from all, routine, none")
    return v


def _sub(sp, name: str, func: Callable, help: str, example: str) -> argparse.ArgumentParser:
    p = sp.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func, parser=p)
    return p


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="yiwu-credit", description="Credit-based risk supervision of market entities (义乌信用分级分类监管).",
        epilog="exit codes: 0 ok, 1 internal error, 2 usage, 3 bad data, 4 bad config, 5 bad model bundle, "
               "6 impossible plan, 7 draw verification failed, 8 monitor says retrain (with --fail-on-retrain), 9 output not written, 130/143 interrupted",
    )
    ap.add_argument("--version", action="version", version=f"yiwu-credit {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sp = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sp, "validate", cmd_validate, "Check a dataset against the data contract.",
             "yiwu-credit validate out/demo/world/dataset")
    p.add_argument("data", help="dataset directory (one CSV, Excel or Parquet file per table)")
    _source_args(p)
    p.add_argument("--as-of", type=_date, help="also reject events dated after this ISO date")
    p.add_argument("--lenient", action="store_true", help="quarantine bad rows instead of failing on them")
    p.add_argument("--rejects", help="with --lenient: write rejected rows to this file")

    p = _sub(sp, "synth", cmd_synth, "Generate a synthetic Yiwu market-entity world.",
             "yiwu-credit synth --entities 20000 --seed 7 --out out/world")
    p.add_argument("--entities", type=_count(1), default=20_000)
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--start", type=_date, default="2016-01-01")
    p.add_argument("--end", type=_date, default="2025-12-31")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", required=True, help="output directory (dataset/ and truth.parquet)")

    p = _sub(sp, "train", cmd_train, "Train a model bundle (features, labels, fit, out-of-time evaluation).",
             "yiwu-credit train --data out/world/dataset --as-of 2024-01-01 --out models/mine")
    p.add_argument("--data", help="dataset directory")
    _source_args(p)
    p.add_argument("--synthetic", type=_count(100), metavar="N", help="train on a synthetic world of N entities instead")
    p.add_argument("--as-of", required=True, type=_date, help="ISO date YYYY-MM-DD")
    p.add_argument("--horizon", help="label horizon, days or e.g. 365D (default: the policy's [labels].horizon_days)")
    p.add_argument("--test-as-of", type=_date, help="out-of-time test date (default as-of + horizon)")
    p.add_argument("--labels", choices=["all", "campaigns"], default="all",
                   help="'campaigns': random-campaign outcomes with inverse-probability weights")
    p.add_argument("--learner", choices=["lightgbm", "scorecard"], default="lightgbm")
    p.add_argument("--policy", help="policy name or TOML path (default yiwu-2022)")
    p.add_argument("--catalogue", help="feature catalogue TOML (default: the shipped one)")
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--name", help="bundle name (default: the output folder name)")
    p.add_argument("--version", default="1.0.0", help="bundle version")
    p.add_argument("--out", required=True, help="bundle directory to write")

    p = _sub(sp, "score", cmd_score, "Score every entity: probability, credit score, tier, reasons.",
             "yiwu-credit score --data out/world/dataset --as-of 2026-01-01 --out out/scores.xlsx --excel")
    p.add_argument("--data", required=True)
    _source_args(p)
    p.add_argument("--model", help="bundle directory or shipped name (default: models/default)")
    p.add_argument("--as-of", required=True, type=_date, help="ISO date YYYY-MM-DD")
    p.add_argument("--out", required=True, help=".csv, .parquet or .xlsx (Excel workbook)")
    p.add_argument("--rejects", help="rejects file (default: <out stem>.rejects.csv, or .xlsx with --excel)")
    p.add_argument("--excel", action="store_true", help="write Excel workbooks (--out must end in .xlsx)")
    p.add_argument("--reasons", choices=["CD", "all", "none"], default="CD",
                   help="reason codes for tiers C/D and overrides (default), everyone, or no one")
    p.add_argument("--policy", help="policy name or TOML path whose [tiers] and [overrides] tier the run "
                   "(default: the bundle's); cut-offs are fitted on the bundle's reference distribution, no refit")
    p.add_argument("--strict", action="store_true", help="fail on any bad row instead of quarantining it")
    _db_args(p)

    p = _sub(sp, "plan", cmd_plan, "Supervision plan: expected inspections per year and campaign inclusion "
             "probabilities per entity.",
             "yiwu-credit plan --scores out/scores.csv --out out/plan.csv [--n 500 | --budget 800]")
    p.add_argument("--scores", required=True, help="output of 'score' (or any table with entity_id, tier)")
    p.add_argument("--policy", help="policy name or TOML path (default yiwu-2022)")
    p.add_argument("--n", type=int, help="campaign size (default: the annual budget)")
    p.add_argument("--budget", type=float, help="inspections per year over the pool (default: policy rates)")
    p.add_argument("--out", required=True)
    _db_args(p)

    p = _sub(sp, "frontier", cmd_frontier, "Policy frontier: expected detections and burden of a family of "
             "candidate sampling policies (tier weights × alpha × entity-type factor scope × floor).",
             "yiwu-credit frontier --scores out/scores.csv --budget-rate 0.04 --out out/frontier.csv "
             "--plot out/frontier.png [--alphas 0,1,2 --scopes all,routine,none]")
    p.add_argument("--scores", required=True, help="output of 'score' (entity_id, tier, probability, ...)")
    p.add_argument("--policy", help="base policy name or TOML path (default yiwu-2022)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--budget", type=float, help="inspections per year over the pool (default: the policy's)")
    g.add_argument("--budget-rate", type=float, help="inspections per year as a share of the pool, e.g. 0.04")
    p.add_argument("--n", type=int, help="campaign size (default: the budget)")
    p.add_argument("--alphas", type=_floats, default=(0.0, 0.5, 1.0, 1.5, 2.0),
                   help="within-tier exponents: π ∝ weight · p^alpha (comma-separated, default 0,0.5,1,1.5,2)")
    p.add_argument("--scopes", type=_scopes, default=("all", "routine", "none"),
                   help="entity-type factor scopes: all, routine (tiers A–B), none (comma-separated)")
    p.add_argument("--floors", type=_floats, help="floors to try (default: the policy's min_inclusion_prob)")
    p.add_argument("--top", type=int, default=10, help="rows to print (default 10, plus the policy in force)")
    p.add_argument("--out", required=True, help="one row per candidate (.csv/.parquet/.xlsx)")
    p.add_argument("--burden", help="optional: burden ratio by entity type, town and section per candidate")
    p.add_argument("--plot", help="optional PNG: detections against the low-risk burden")

    p = _sub(sp, "draw", cmd_draw, "Draw a campaign (双随机: random entities, random inspectors) with an audit record.",
             "yiwu-credit draw --plan out/plan.csv --seed 20260101 --inspectors out/world/inspectors.csv "
             "--out out/drawn.csv")
    p.add_argument("--plan", required=True)
    p.add_argument("--seed", required=True, help="a public seed (e.g. a lottery number), int or text")
    p.add_argument("--n", type=int, help="campaign size (default: Σπ of the plan)")
    p.add_argument("--inspectors", help="inspector roster CSV: inspector_id, department, towns, qualifications, conflicts")
    p.add_argument("--previous", help="previous campaign's assignments (no inspector twice in a row on an entity)")
    p.add_argument("--qualification", help="qualification every assigned inspector must hold")
    p.add_argument("--window", nargs=2, metavar=("START", "END"),
                   help="campaign inspection period (ISO dates, inclusive), recorded in the audit; "
                        "estimate refuses results dated outside it")
    p.add_argument("--audit", help="audit JSON (default: <out>.audit.json)")
    p.add_argument("--out", required=True)
    _db_args(p)

    p = _sub(sp, "verify", cmd_verify, "Recompute a draw (entities and, with the roster, inspectors) from its "
             "audit record: OK, NOT VERIFIED or the mismatch (exit 7).",
             "yiwu-credit verify --audit out/drawn.audit.json --frame out/plan.csv --inspectors out/world/inspectors.csv")
    p.add_argument("--audit", required=True)
    p.add_argument("--frame", required=True, help="the plan the draw was made from")
    p.add_argument("--policy")
    p.add_argument("--inspectors", metavar="ROSTER",
                   help="the inspector roster: recompute the recorded inspector draw (required when the audit "
                        "records one, else NOT VERIFIED, exit 7)")
    p.add_argument("--previous", help="the previous campaign's assignments, if the draw used them")
    p.add_argument("--assignments", help="the published assignments to compare with the audit "
                   "(default: <audit stem>.inspectors.csv next to the audit, if present)")

    p = _sub(sp, "estimate", cmd_estimate, "Horvitz–Thompson/Hájek violation rates from campaign results, tied to "
             "the draw, adjusted for non-response (一公开).",
             "yiwu-credit estimate --results out/results.csv --plan out/plan.csv --audit out/drawn.audit.json "
             "--out out/estimates.csv --publish out/published.csv")
    p.add_argument("--results", required=True, help="entity_id, date, result (SAMR result codes)")
    p.add_argument("--plan", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--audit", help="the draw's audit record (checked against the plan; gives the drawn entities "
                   "and the campaign window)")
    g.add_argument("--drawn", help="the drawn entities (a table with entity_id), if there is no audit")
    p.add_argument("--campaign-start", help="campaign window start (ISO date), if the audit does not record it")
    p.add_argument("--campaign-end", help="campaign window end (ISO date, inclusive)")
    p.add_argument("--by", nargs="+", default=["tier", "town", "section"])
    p.add_argument("--policy")
    p.add_argument("--out", required=True, help=".csv, .parquet or .xlsx (Excel workbook)")
    p.add_argument("--excel", action="store_true", help="write Excel workbooks (--out must end in .xlsx)")
    p.add_argument("--publish", help="also write the publishable results table (Chinese labels) and "
                   "<publish>.summary.csv with the response rate")
    p.add_argument("--assignments", help="inspector assignments for the published table (default: the audit's)")

    p = _sub(sp, "report", cmd_report, "One self-contained HTML report: scores, tiers, performance, stability, plan.",
             "yiwu-credit report --data out/world/dataset --as-of 2025-01-01 --evaluate --out out/report.html")
    p.add_argument("--data", required=True)
    _source_args(p)
    p.add_argument("--model")
    p.add_argument("--as-of", required=True, type=_date, help="ISO date YYYY-MM-DD")
    p.add_argument("--evaluate", action="store_true",
                   help="evaluate against violations detected in the year after --as-of (needs that data)")
    p.add_argument("--plan", help="a plan from 'plan' to summarise")
    p.add_argument("--previous-as-of", type=_date, help="tier migration against a scoring run at this date")
    p.add_argument("--reference-as-of", type=_date, help="feature stability (CSI) against the population at this date "
                   "(default: the training population stored in the bundle)")
    p.add_argument("--frontier", type=float, metavar="RATE",
                   help="add the policy frontier at this budget (inspections/year as a share of the pool, e.g. 0.04)")
    p.add_argument("--policy", help="policy name or TOML path that tiers the run (default: the bundle's) and "
                   "base sampling policy of the frontier (default yiwu-2022)")
    p.add_argument("--out", required=True)

    p = _sub(sp, "monitor", cmd_monitor, "Stability (PSI/CSI vs the training population), tier migration and "
             "performance drift; flags 'retrain' by the policy's thresholds.",
             "yiwu-credit monitor --data out/world/dataset --as-of 2025-01-01 --previous-as-of 2024-07-01 --evaluate")
    p.add_argument("--data", required=True)
    _source_args(p)
    p.add_argument("--model")
    p.add_argument("--as-of", required=True, type=_date, help="ISO date YYYY-MM-DD")
    p.add_argument("--previous-as-of", type=_date, help="compare tiers with a scoring run at this date")
    p.add_argument("--evaluate", action="store_true", help="performance on violations in the year after --as-of")
    p.add_argument("--out", help="write the monitoring record (JSON)")
    p.add_argument("--fail-on-retrain", action="store_true", help="exit 8 when the status is 'retrain'")

    p = _sub(sp, "simulate-loop", cmd_simulate_loop, "The closed loop on a synthetic world: yearly score → plan → "
             "draw → observe → retrain, against uniform draws, the true-propensity ceiling, no IPW and no floor.",
             "yiwu-credit simulate-loop --entities 20000 --cycles 4 --out out/loop")
    p.add_argument("--entities", type=_count(1), default=20_000)
    p.add_argument("--cycles", type=_count(1), default=4)
    p.add_argument("--budget-rate", type=float, default=0.04, help="inspections per year as a share of the pool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/loop")

    p = _sub(sp, "demo", cmd_demo, "Run the whole pipeline on a synthetic world with the shipped model.",
             "yiwu-credit demo --out out/demo")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--entities", type=_count(1), default=20_000)
    p.add_argument("--seed", type=int, default=2022)

    return ap


def _usage_problem(a: argparse.Namespace) -> str | None:
    """Combinations of options that cannot work, caught before any work is done."""
    if a.command == "score":
        out = Path(a.out)
        if out.suffix not in TABLE_SUFFIXES:
            return f"--out {a.out}: give a file ending in {', '.join(TABLE_SUFFIXES)}"
        if a.excel and out.suffix != ".xlsx":
            return f"--excel writes an Excel workbook: give an --out ending in .xlsx (not {out.suffix})"
        if a.rejects and Path(a.rejects).suffix not in TABLE_SUFFIXES:
            return f"--rejects {a.rejects}: give a file ending in {', '.join(TABLE_SUFFIXES)}"
    if a.command == "estimate" and a.excel and Path(a.out).suffix != ".xlsx":
        return f"--excel writes an Excel workbook: give an --out ending in .xlsx (not {Path(a.out).suffix})"
    if a.command == "train" and bool(a.data) == bool(a.synthetic):
        return "give exactly one of --data DIR or --synthetic N"
    if a.command == "synth" and a.start >= a.end:
        return f"--start {a.start} must be before --end {a.end}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    problem = _usage_problem(a)
    if problem:
        a.parser.error(problem)  # exit 2 with the command's usage
    import threading

    _TERM_REQUESTED.clear()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        return _run(a)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _run(a: argparse.Namespace) -> int:
    try:
        return int(a.func(a) or 0)
    except _Terminated:
        return _terminated()
    except YiwuCreditError as e:
        if _TERM_REQUESTED:
            return _terminated()
        if a.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        if _TERM_REQUESTED:
            return _terminated()
        if a.debug:
            raise
        print(f"error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted: no output of this run was written", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so, without a traceback unless asked
        if _TERM_REQUESTED:  # a SIGTERM turned into another error on its way up
            return _terminated()
        if a.debug:
            raise
        print(f"internal error: {type(e).__name__}: {e}\n(run with --debug for the traceback; please report it)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
