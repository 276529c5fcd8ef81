"""Supervision commands: plan, frontier, draw, verify, estimate."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .boundary import (
    add_command,
    add_db_args,
    count_arg,
    date_arg,
    db_writer,
    floats_arg,
    io_plan,
    positive_float,
    read_input,
    say,
    sha256_arg,
)

__all__ = ["PLOT_SUFFIXES", "register"]

#: image formats ``frontier --plot`` writes (the suffix chooses the format)
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def cmd_plan(a: argparse.Namespace) -> int:
    from ..data.io import write_tables
    from ..supervision.plan import resolve_plan_policy, supervision_plan

    scored = read_input(a.scores, "scores")
    pol, note = resolve_plan_policy(scored, a.policy)      # the scores' tiering policy, or refused
    if note:
        say(f"note: {note}")
    plan = supervision_plan(scored, pol, n=a.n, budget=a.budget)
    db = db_writer(a, "plan", f"plan-{Path(a.scores).stem}-n{int(round(plan['pi'].sum()))}",
                    {"plans": plan.reset_index()})
    write_tables([(plan.reset_index(), a.out)], before_commit=db)
    by = plan.groupby("tier").agg(entities=("pi", "size"), per_year=("expected_per_year", "sum"), campaign=("pi", "sum"))
    say(f"plan for {len(plan):,} entities: {plan['expected_per_year'].sum():,.0f} inspections a year, "
         f"campaign of {plan['pi'].sum():,.0f} (Σπ); must-include {int(plan['must_include'].sum())} → {a.out}")
    say(f"under policy {pol.name}@{pol.version} (sha256 {pol.sha256[:12]}…), recorded in the plan_* columns")
    say(by.to_string(float_format=lambda x: f"{x:,.1f}"))
    return 0


def cmd_frontier(a: argparse.Namespace) -> int:
    from ..data.io import write_tables
    from ..supervision.frontier import candidate_grid, policy_frontier
    from ..supervision.plan import resolve_plan_policy

    scored = read_input(a.scores, "scores")
    pol, note = resolve_plan_policy(scored, a.policy)      # the scores' tiering policy, or refused
    if note:
        say(f"note: {note}")
    budget = a.budget if a.budget is not None else (a.budget_rate * len(scored) if a.budget_rate is not None else None)
    cands = candidate_grid(pol, alphas=a.alphas, scopes=a.scopes, floors=a.floors)
    f = policy_frontier(scored, budget, cands, policy=pol, n=a.n)
    items = [(f.table, a.out)]
    if a.burden:
        items.append((f.burden, a.burden))
    # the plot is drawn before the tables are renamed into place: a failed plot leaves no table either
    write_tables(items, before_commit=(lambda: f.plot(a.plot)) if a.plot else None)
    p = f.params
    say(f"frontier of {len(f.table)} candidate policies on {p['population']:,} entities, budget "
         f"{p['budget']:,.0f} inspections/year, campaign n = {p['n']:,} ({f.seconds:.1f} s) → {a.out}")
    cols = ["name", "detections", "lift", "share_tier_a", "share_below_median", "min_pi", "pareto"]
    t = f.table.sort_values("detections", ascending=False)
    t = pd.concat([t.head(a.top), t[t["in_force"]]]).drop_duplicates("name")[cols]
    with pd.option_context("display.width", 140, "display.float_format", "{:.4g}".format):
        say(t.to_string(index=False))
    return 0


def cmd_draw(a: argparse.Namespace) -> int:
    from ..data.io import write_tables
    from ..data.paths import conventional_assignments_path, draw_audit_path
    from ..supervision.audit import audit_json
    from ..supervision.systematic import draw

    plan = read_input(a.plan, "plan")
    d = draw(plan, a.n, a.seed, window=tuple(a.window) if a.window else None)
    # the drawn list for people and the next step; the plan's record goes into the audit, not each row
    sel = d.frame(plan).reset_index()
    sel = sel.drop(columns=[c for c in sel.columns if str(c).startswith("plan_")])
    audit_path = draw_audit_path(a.out, a.audit)
    if a.inspectors:
        from ..data.tables import read_input as read_one
        from ..data.tables import unmatched_ids
        from ..supervision.inspectors import assign_inspectors, inspectors_by_entity, load_roster

        roster = load_roster(a.inspectors)
        prev = read_one(a.previous, "previous", required=("entity_id", "inspector_id")) if a.previous else None
        for w in (unmatched_ids((e for cs in roster.table["conflicts"] for e in cs), plan.index,
                                f"roster {Path(a.inspectors).name} conflicts", "the plan"),
                  unmatched_ids(prev["entity_id"] if prev is not None else (), plan.index,
                                f"previous {Path(a.previous or '').name} entity_id", "the plan"),
                  unmatched_ids(prev["inspector_id"] if prev is not None else (), roster.table.index,
                                f"previous {Path(a.previous or '').name} inspector_id", "the roster"),
                  unmatched_ids((t for ts in roster.table["towns"] for t in ts),
                                plan["town"].dropna().unique() if "town" in plan.columns else (),
                                f"roster {Path(a.inspectors).name} towns", "the plan's towns")):
            if w:
                say(w)
        asg = assign_inspectors(d.frame(plan), roster, a.seed, previous=prev, qualification=a.qualification)
        d = d.with_inspectors(asg)           # roster hash, parameters and assignment go into the audit
        sel["inspectors"] = sel["entity_id"].map(inspectors_by_entity(asg))
        asg_path = conventional_assignments_path(audit_path)
    db = db_writer(a, "draw", f"draw-{a.seed}", {"draws": sel, **({"assignments": asg} if a.inspectors else {})},
                    audit=d.audit)
    write_tables([(sel, a.out), *([(asg, asg_path)] if a.inspectors else []), (audit_json(d), audit_path)],
                 before_commit=db)
    say(f"drew {len(d.selected):,} of {len(plan):,} entities with seed {a.seed!r} → {a.out}")
    if a.window:
        say(f"campaign window {d.audit['campaign']['start']} – {d.audit['campaign']['end']} (results dated "
             f"outside it will be refused)")
    say(f"audit record (publish it with the frame so anyone can verify) → {audit_path}")
    seal = d.audit.get("seal", {}).get("sha256")
    if seal:
        say(f"audit seal sha256 {seal} (publish it with the draw: an audit edited afterwards no longer matches it)")
    if a.inspectors:
        rec = d.audit["inspectors"]
        say(f"inspectors: {len(asg):,} assignments, {rec['per_entity']} per entity, recusal honoured; roster hash "
             f"and assignment recorded in the audit → {asg_path}")
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from ..supervision.verification import verify_files

    res = verify_files(a.audit, a.frame, a.policy, roster=a.inspectors, previous=a.previous,
                       assignments=a.assignments, seal=a.seal)
    say(str(res))
    if not res.ok:
        from ..errors import VerificationFailed

        lines = [x.strip() for x in str(res).splitlines() if x.strip()]
        raise VerificationFailed(f"the draw in {a.audit} does not verify: " + " ".join(lines[:2]))
    return 0


def cmd_estimate(a: argparse.Namespace) -> int:
    from ..data.io import write_tables
    from ..data.paths import publish_summary_path
    from ..supervision.estimates import publication_summary, tie_results, violation_rates
    from ..supervision.plan import plan_policy
    from ..supervision.verification import load_audit, verify

    window = (a.campaign_start, a.campaign_end) if a.campaign_start or a.campaign_end else None  # both, checked
    plan = read_input(a.plan, "plan")
    results = read_input(a.results, "results", unique=False)   # tie_results names repeated results
    if a.audit:
        audit = load_audit(a.audit, seal=a.seal)
        v = verify(audit, plan, entities_only=True, seal=a.seal)
        if not v.ok:
            from ..errors import VerificationFailed

            raise VerificationFailed(f"the plan {a.plan} is not the one the audited draw was made from:\n{v}")
        drawn = audit
    else:
        drawn = read_input(a.drawn, "drawn").index
    c = tie_results(results, plan, drawn=drawn, window=window, verify_plan=False)
    pol, note = plan_policy(plan, a.policy)             # the plan's recorded policy, or refused
    if note:
        say(f"note: {note}")
    est = violation_rates(c, by=a.by, policy=pol)
    table = _published_table(a, c, drawn) if a.publish else None   # checked before anything is written
    outputs = [(est, a.out, a.excel)]
    if table is not None:
        pub = Path(a.publish)
        summary_path = publish_summary_path(pub)
        outputs += [(table, pub, True), (publication_summary(c, est), summary_path, True)]
    write_tables(outputs)                                            # all files of the run, or none
    overall = est[est["domain"] == "all"].iloc[0]
    resp = c.response
    tot = resp.iloc[-1]
    say(f"violation rate (Hájek, published): {overall['rate']:.2%} ± {overall['se']:.2%} "
         f"(95% CI {overall['ci_low']:.2%}–{overall['ci_high']:.2%}), n={int(overall['n'])} results of "
         f"{int(overall['drawn'])} drawn, N={int(overall['N'])}")
    say(f"response: {int(tot['responded'])} of {int(tot['drawn'])} drawn entities have a result "
         f"({tot['response_rate']:.1%}), campaign {c.window['start']} – {c.window['end']}; weights adjusted within "
         f"{resp['adjusted_by'].iloc[0] or 'the campaign'} for non-response")
    say(resp.drop(columns="adjusted_by").rename(columns={"class": resp["adjusted_by"].iloc[0] or "class"})
         .to_string(index=False, na_rep="", float_format=lambda x: f"{x:.3f}"))
    say(f"estimates by {', '.join(a.by)} → {a.out}")
    if table is not None:
        say(f"publishable results table (一公开) → {pub}; summary with the response rate "
             f"({tot['response_rate']:.1%}) → {summary_path}")
    return 0


def _published_table(a: argparse.Namespace, c, drawn) -> pd.DataFrame:
    """The 一公开 results table; its inspectors are the audit's (``--assignments`` must match them)."""
    from ..errors import DataValidationError, Problem
    from ..supervision.assignments import assignment_map, compare_assignments
    from ..supervision.estimates import results_table

    recorded = drawn["inspectors"]["assignment"] if a.audit and "inspectors" in drawn else None
    if a.assignments:
        from ..data.tables import read_input as read_one

        asg = read_one(a.assignments, "assignments", required=("entity_id", "inspector_id"))
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


def _scopes(value: str) -> tuple[str, ...]:
    """argparse type: comma-separated entity-type factor scopes."""
    v = tuple(x.strip() for x in value.split(",") if x.strip())
    bad = [x for x in v if x not in ("all", "routine", "none")]
    if not v or bad:
        raise argparse.ArgumentTypeError(f"{value!r}: expected scopes from all, routine, none")
    return v


def _window_problem(start: str | None, end: str | None, what: str) -> str | None:
    """A usage problem with a campaign window (dates already checked by ``date_arg``): start after end."""
    if start is not None and end is not None and start > end:
        return f"{what}: start {start} is after end {end}"
    return None


def _check_draw(a: argparse.Namespace) -> str | None:
    unused = [o for o, v in (("--previous", a.previous), ("--qualification", a.qualification)) if v]
    if unused and not a.inspectors:
        return f"{' and '.join(unused)} apply to the inspector draw: give --inspectors ROSTER too"
    return _window_problem(*a.window, "--window") if a.window else None


def _io_plan(a: argparse.Namespace):
    return io_plan(a, inputs=[("--scores", a.scores), ("--policy", a.policy)], outputs=[("--out", a.out)])


def _io_frontier(a: argparse.Namespace):
    return io_plan(a, inputs=[("--scores", a.scores), ("--policy", a.policy)],
                   outputs=[("--out", a.out), ("--burden", a.burden), ("--plot", a.plot)])


def _io_draw(a: argparse.Namespace):
    from ..data.paths import conventional_assignments_path, draw_audit_path

    audit = draw_audit_path(a.out, a.audit)
    return io_plan(a, inputs=[("--plan", a.plan), ("--inspectors", a.inspectors), ("--previous", a.previous)],
                   outputs=[("--out", a.out), ("--audit" if a.audit else "the audit record (default name)", audit),
                            *([("the assignments written beside the audit", conventional_assignments_path(audit))]
                              if a.inspectors else [])])


def _io_estimate(a: argparse.Namespace):
    from ..data.paths import publish_summary_path

    return io_plan(a, inputs=[("--results", a.results), ("--plan", a.plan), ("--audit", a.audit),
                              ("--drawn", a.drawn), ("--policy", a.policy), ("--assignments", a.assignments)],
                   outputs=[("--out", a.out), ("--publish", a.publish),
                            *([("the summary written beside --publish", publish_summary_path(a.publish))]
                              if a.publish else [])])


def _check_frontier(a: argparse.Namespace) -> str | None:
    if a.plot and Path(a.plot).suffix.lower() not in PLOT_SUFFIXES:
        return f"--plot {a.plot}: give a file ending in {', '.join(PLOT_SUFFIXES)} (the suffix is the image format)"
    return None


def _check_estimate(a: argparse.Namespace) -> str | None:
    if a.excel and Path(a.out).suffix.lower() != ".xlsx":
        return f"--excel writes an Excel workbook: give an --out ending in .xlsx (not {Path(a.out).suffix})"
    if (a.campaign_start is None) != (a.campaign_end is None):
        return "--campaign-start and --campaign-end: give both (the campaign window, inclusive) or neither"
    return _window_problem(a.campaign_start, a.campaign_end, "--campaign-start/--campaign-end")


def register(sp) -> None:
    """Add this group's commands to the subparsers ``sp``."""
    p = add_command(sp, "plan", cmd_plan, "Supervision plan: expected inspections per year and campaign inclusion "
             "probabilities per entity.",
             "yiwu-credit plan --scores out/scores.csv --out out/plan.csv [--n 500 | --budget 800]", io=_io_plan)
    p.add_argument("--scores", required=True, help="output of 'score' (or any table with entity_id, tier)")
    p.add_argument("--policy", help="policy name or TOML path (default: the one that tiered the scores, "
                   "column tier_policy; yiwu-2022 for a table without it); another is refused")
    p.add_argument("--n", type=count_arg(1), help="campaign size (default: the annual budget)")
    p.add_argument("--budget", type=positive_float, help="inspections per year over the pool (default: policy rates)")
    p.add_argument("--out", required=True)
    add_db_args(p)

    p = add_command(sp, "frontier", cmd_frontier, "Policy frontier: expected detections and burden of a family of "
             "candidate sampling policies (tier weights × alpha × entity-type factor scope × floor).",
             "yiwu-credit frontier --scores out/scores.csv --budget-rate 0.04 --out out/frontier.csv "
             "--plot out/frontier.png [--alphas 0,1,2 --scopes all,routine,none]",
             check=_check_frontier, io=_io_frontier)
    p.add_argument("--scores", required=True, help="output of 'score' (entity_id, tier, probability, ...)")
    p.add_argument("--policy", help="base policy name or TOML path (default: the one that tiered the scores; "
                   "yiwu-2022 for a table without tier_policy columns); another is refused")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--budget", type=positive_float, help="inspections per year over the pool (default: the policy's)")
    g.add_argument("--budget-rate", type=positive_float, help="inspections per year as a share of the pool, e.g. 0.04")
    p.add_argument("--n", type=count_arg(1), help="campaign size (default: the budget)")
    p.add_argument("--alphas", type=floats_arg, default=(0.0, 0.5, 1.0, 1.5, 2.0),
                   help="within-tier exponents: π ∝ weight · p^alpha (comma-separated, default 0,0.5,1,1.5,2)")
    p.add_argument("--scopes", type=_scopes, default=("all", "routine", "none"),
                   help="entity-type factor scopes: all, routine (tiers A–B), none (comma-separated)")
    p.add_argument("--floors", type=floats_arg, help="floors to try (default: the policy's min_inclusion_prob)")
    p.add_argument("--top", type=count_arg(1), default=10, help="rows to print (default 10, plus the policy in force)")
    p.add_argument("--out", required=True, help="one row per candidate (.csv/.parquet/.xlsx)")
    p.add_argument("--burden", help="optional: burden ratio by entity type, town and section per candidate")
    p.add_argument("--plot", help="optional image (.png, .svg or .pdf): detections against the low-risk burden")

    p = add_command(sp, "draw", cmd_draw, "Draw a campaign (双随机: random entities, random inspectors) with an audit record.",
             "yiwu-credit draw --plan out/plan.csv --seed 20260101 --inspectors out/world/inspectors.csv "
             "--out out/drawn.csv", check=_check_draw, io=_io_draw)
    p.add_argument("--plan", required=True)
    p.add_argument("--seed", required=True, help="a public seed (e.g. a lottery number), int or text")
    p.add_argument("--n", type=count_arg(1), help="campaign size (default: Σπ of the plan)")
    p.add_argument("--inspectors", help="inspector roster CSV: inspector_id, department, towns, qualifications, conflicts")
    p.add_argument("--previous", help="previous campaign's assignments (no inspector twice in a row on an entity)")
    p.add_argument("--qualification", help="qualification every assigned inspector must hold")
    p.add_argument("--window", nargs=2, metavar=("START", "END"), type=date_arg,
                   help="campaign inspection period (ISO dates, inclusive), recorded in the audit; "
                        "estimate refuses results dated outside it")
    p.add_argument("--audit", help="audit JSON (default: <out>.audit.json)")
    p.add_argument("--out", required=True)
    add_db_args(p)

    p = add_command(sp, "verify", cmd_verify, "Recompute a draw (entities and, with the roster, inspectors) from its "
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
    p.add_argument("--seal", type=sha256_arg, help="the audit seal published at draw time (draw prints it): an "
                   "audit edited and resealed afterwards is then a mismatch")

    p = add_command(sp, "estimate", cmd_estimate, "Horvitz–Thompson/Hájek violation rates from campaign results, tied to "
             "the draw, adjusted for non-response (一公开).",
             "yiwu-credit estimate --results out/results.csv --plan out/plan.csv --audit out/drawn.audit.json "
             "--out out/estimates.csv --publish out/published.csv", check=_check_estimate,
             io=_io_estimate)
    p.add_argument("--results", required=True, help="entity_id, date, result (SAMR result codes)")
    p.add_argument("--plan", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--audit", help="the draw's audit record (checked against the plan; gives the drawn entities "
                   "and the campaign window)")
    g.add_argument("--drawn", help="the drawn entities (a table with entity_id), if there is no audit")
    p.add_argument("--seal", type=sha256_arg, help="with --audit: the audit seal published at draw time")
    p.add_argument("--campaign-start", type=date_arg,
                   help="campaign window start (ISO date), if the audit does not record it")
    p.add_argument("--campaign-end", type=date_arg, help="campaign window end (ISO date, inclusive)")
    p.add_argument("--by", nargs="+", default=["tier", "town", "section"])
    p.add_argument("--policy")
    p.add_argument("--out", required=True, help=".csv, .parquet or .xlsx (Excel workbook)")
    p.add_argument("--excel", action="store_true", help="write Excel workbooks (--out must end in .xlsx)")
    p.add_argument("--publish", help="also write the publishable results table (Chinese labels) and "
                   "<publish>.summary.csv with the response rate")
    p.add_argument("--assignments", help="inspector assignments for the published table (default: the audit's)")
