"""Report sections about supervision: out-of-range features, overrides and reason codes, the
inspection plan, monitoring, the closed loop and the policy frontier."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..model.bundle import Bundle
from ..policy import POSTURE_ZH, TIERS
from .render import (
    TIER_COLORS,
    esc,
    figs_div,
    fmt_int,
    fmt_num,
    fmt_pct,
    html_table,
    note_p,
    png_img,
    skipped_p,
    status_badge,
    tier_badge,
    town_ascii,
)

__all__ = ["OVERRIDE_TEXT", "TOP_REASONS", "section_frontier", "section_loop", "section_monitoring",
           "section_overrides", "section_plan"]

TOP_REASONS = 10
OVERRIDE_TEXT = {
    "new_entity": ("新设立主体, 暂定等级", "newly established entity, provisional tier"),
    "abnormal_operation": ("列入经营异常名录", "on the abnormal-operation list"),
    "adverse_conduct": ("检查中拒绝或提供虚假信息", "refused inspection or gave false information"),
    "serious_dishonest": ("列入严重违法失信名单", "on the serious-dishonesty list"),
    "new_entity_record": ("新设立主体已有记录, 不低于暂定等级", "new entity with a record, at least the provisional tier"),
    "heavy_penalties": ("近期多次一般程序行政处罚", "repeated recent general-procedure penalties"),
    "severe_penalties": ("近期行政处罚次数或罚没金额很高", "very many recent penalties or very large recent fines"),
}

def _reason_columns(scored: pd.DataFrame) -> list[str]:
    cols = [c for c in scored.columns if re.fullmatch(r"reason_\d+", c)]
    return sorted(cols, key=lambda c: int(c.split("_")[1]))


def section_overrides(scored: pd.DataFrame, b: Bundle) -> str:
    parts = []
    if "overrides" not in scored:
        parts.append(skipped_p("无 overrides 列", "scored has no 'overrides' column"))
    else:
        ov = scored["overrides"].fillna("").astype(str)
        rules = ov[ov != ""].str.split(";").explode()
        counts = rules.value_counts().sort_index(kind="stable") if len(rules) else pd.Series(dtype=int)
        rows = []
        for rule, n in counts.items():
            zh, en = OVERRIDE_TEXT.get(re.sub(r"_\d+d$", "", str(rule).split("->")[0]), ("", ""))
            rows.append({"rule": rule, "zh": zh, "en": en, "n": int(n), "share": n / len(scored)})
        rows.append({"rule": "(none)", "zh": "未修正", "en": "model tier kept", "n": int((ov == "").sum()),
                     "share": float((ov == "").mean())})
        tab = pd.DataFrame(rows).set_index("rule", drop=False)
        parts.append(note_p("An entity can match several rules; counts are per rule that changed its tier.")
                     + html_table(tab, {"rule": "规则 rule", "zh": "中文", "en": "meaning", "n": "主体数 n",
                                    "share": "占全部 share of all"}, {"n": fmt_int, "share": lambda x: fmt_pct(x, 2)},
                              table_id="overrides"))
        if "model_tier" in scored:
            ct = pd.crosstab(scored["model_tier"].astype(str), scored["tier"].astype(str)).reindex(
                index=list(TIERS), columns=list(TIERS), fill_value=0)
            ct.columns = [f"final {t}" for t in TIERS]
            ct.insert(0, "model tier", list(TIERS))
            parts.append("<h3>模型等级 → 最终等级 Model tier → final tier</h3>"
                         + html_table(ct, fmt={c: fmt_int for c in ct.columns[1:]}, table_id="tier-transitions"))
    parts.append("<h3>C/D 类主体的主要风险原因 Most common reasons, tiers C and D</h3>")
    rcols = _reason_columns(scored)
    cd = scored[scored["tier"].astype(str).isin(["C", "D"])]
    if not rcols or len(cd) == 0 or cd[rcols].isna().all().all():
        parts.append(skipped_p("无风险原因 (评分时未计算或无 C/D 主体)",
                              "no reason codes among tiers C/D (scored with reasons='none', or no C/D entities)"))
        return "".join(parts)
    long = pd.concat([pd.DataFrame({"feature": cd[c], "rank": i + 1,
                                    "zh": cd.get(f"{c}_zh"), "en": cd.get(f"{c}_en")})
                      for i, c in enumerate(rcols)]).dropna(subset=["feature"])
    long["feature"] = long["feature"].astype(str)
    first = long[long["rank"] == 1]["feature"].value_counts()
    anyk = long.groupby("feature")["rank"].size()
    order = pd.DataFrame({"first": first.reindex(anyk.index, fill_value=0), "any": anyk})
    order = order.sort_values(["first", "any"], ascending=False, kind="stable").head(TOP_REASONS)
    names = {f.name: f for f in b.catalogue.features}

    def example(f: str, lang: str) -> str:
        t = long.loc[long["feature"] == f, lang].dropna().astype(str)
        if t.empty:
            return ""
        vc = t.groupby(t).size()
        return str(sorted(vc.items(), key=lambda kv: (-kv[1], kv[0]))[0][0])

    tab = pd.DataFrame({
        "feature": list(order.index),
        "desc_zh": [names[f].spec.zh if f in names else "" for f in order.index],
        "desc_en": [names[f].spec.en if f in names else "" for f in order.index],
        "first": order["first"].to_numpy(), "any": order["any"].to_numpy(),
        "share": order["any"].to_numpy() / len(cd),
        "example_zh": [example(f, "zh") for f in order.index], "example_en": [example(f, "en") for f in order.index],
    }, index=list(order.index))
    parts.append(note_p(f"{len(cd):,} entities in tiers C/D; up to {len(rcols)} reasons each (the features pushing "
                       "the risk up most, path attribution over the trees).")
                 + html_table(tab, {"feature": "特征 feature", "desc_zh": "中文说明", "desc_en": "description",
                                "first": "首要原因次数 as 1st reason", "any": f"前{len(rcols)}原因次数 in top {len(rcols)}",
                                "share": "占C/D比例 share of C/D", "example_zh": "示例 example (zh)",
                                "example_en": "example (en)"},
                          {"first": fmt_int, "any": fmt_int, "share": lambda x: fmt_pct(x, 1)}, table_id="reasons"))
    return "".join(parts)


def section_plan(plan: pd.DataFrame | None, b: Bundle, Figure: Any) -> str:
    if plan is None:
        return skipped_p("未提供抽查计划 plan", "no plan given (pass sampling.supervision_plan(scored))")
    missing = [c for c in ("tier", "town", "expected_per_year") if c not in plan.columns]
    if missing:
        raise ValueError(f"plan: missing column(s) {missing}; expected a frame indexed by entity_id with tier, "
                         "town, expected_per_year (and optionally pi)")
    has_pi = "pi" in plan.columns
    e = plan["expected_per_year"].astype(float)
    total = float(e.sum())
    rates = b.policy.sampling.tiers
    gt = plan.assign(_e=e, _t=plan["tier"].astype(str)).groupby("_t")
    by_tier = pd.DataFrame({"n": gt.size(), "expected": gt["_e"].sum()}).reindex(list(TIERS), fill_value=0)
    by_tier["per_entity"] = by_tier["expected"] / by_tier["n"].where(by_tier["n"] > 0)
    by_tier["share"] = by_tier["expected"] / total if total > 0 else np.nan
    by_tier["policy_rate"] = [rates[t].annual_rate for t in TIERS]
    if has_pi:
        by_tier["pi_sum"] = plan.assign(_t=plan["tier"].astype(str)).groupby("_t")["pi"].sum().reindex(
            list(TIERS), fill_value=0.0)
    by_tier.insert(0, "tier", [tier_badge(t) for t in TIERS])
    by_tier.insert(1, "zh", [b.policy.tier_label(t, "zh") for t in TIERS])
    by_tier.insert(2, "posture", [f"{POSTURE_ZH.get(rates[t].flag, '')} {rates[t].flag}" for t in TIERS])
    pct2 = lambda x: fmt_pct(x, 2)  # noqa: E731
    heads = {"tier": "等级 tier", "zh": "中文", "posture": "监管姿态 posture", "n": "主体数 n", "expected": "年预期抽查次数 expected / year",
             "per_entity": "每户年均 per entity", "share": "占抽查量 share of inspections",
             "policy_rate": "策略年抽查比例 policy annual rate", "pi_sum": "本次 Σπ (expected in campaign)",
             "town": "镇街 town", "pinyin": "pinyin", "per_100": "每百户 per 100 entities"}
    fmt = {"n": fmt_int, "expected": fmt_num(1), "per_entity": fmt_num(3), "share": pct2, "policy_rate": pct2, "pi_sum": fmt_num(1),
           "per_100": fmt_num(2)}
    tier_html = html_table(by_tier, heads, fmt, table_id="plan-tiers", raw_html=["tier"])

    town = plan["town"].astype(object).where(plan["town"].notna(), "(missing)").astype(str)
    gw = plan.assign(_e=e, _w=town).groupby("_w")
    by_town = pd.DataFrame({"n": gw.size(), "expected": gw["_e"].sum()})
    if has_pi:
        by_town["pi_sum"] = gw["pi"].sum()
    by_town = by_town.sort_values(["expected", "n"], ascending=False, kind="stable")
    by_town["per_100"] = 100 * by_town["expected"] / by_town["n"]
    by_town["share"] = by_town["expected"] / total if total > 0 else np.nan
    by_town.insert(0, "town", list(by_town.index))
    by_town.insert(1, "pinyin", town_ascii(by_town.index))
    cols = ["town", "pinyin", "n", "expected", "per_100", "share"] + (["pi_sum"] if has_pi else [])
    town_html = html_table(by_town[cols], heads, fmt, table_id="plan-towns")

    fig = Figure(figsize=(8.4, 3.4))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    ax1.bar(list(TIERS), by_tier["expected"].to_numpy(float), color=[TIER_COLORS[t] for t in TIERS])
    ax1.set(title="Expected inspections / year by tier", ylabel="inspections per year")
    y = np.arange(len(by_town))[::-1]
    ax2.barh(y, by_town["expected"].to_numpy(float), color="#1f3b63")
    ax2.set_yticks(y, list(by_town["pinyin"]))
    ax2.set(title="... by town", xlabel="inspections per year")
    fig.tight_layout()
    img = png_img(fig, "expected inspections per year by tier and town")
    summary = f"Σ expected inspections per year: <b>{total:,.1f}</b> over {len(plan):,} entities"
    if has_pi:
        summary += (f"; current campaign Σπ = <b id=\"pi-sum\">{float(plan['pi'].sum()):,.2f}</b> "
                    f"(expected campaign size 本次预期抽取户数)")
    return (note_p(summary + ".") + figs_div(img) + "<h3>按等级 By tier</h3>" + tier_html
            + "<h3>按镇街 By town</h3>" + town_html)


def section_monitoring(m: Any) -> str:
    if m is None:
        return skipped_p("未提供监测结果 (yiwu-credit monitor)", "no monitoring result given (yiwu-credit monitor)")
    parts = [f"<p>Status 状态: {status_badge(m.status)} "
             f"<b>{esc(m.status)}</b>" + (f" — {esc('; '.join(m.reasons))}" if m.reasons else "") + "</p>",
             f"<pre>{esc(m.summary())}</pre>"]
    if m.migration is not None:
        parts.append("<h3>等级迁移 Tier migration (rows: before, columns: after)</h3>"
                     + html_table(m.migration.reset_index(), {"before": "之前 before"}))
    if m.performance is not None and m.performance.get("calibration_by_tier"):
        cal = pd.DataFrame(m.performance["calibration_by_tier"])
        parts.append("<h3>分级校准 Calibration by tier on new outcomes</h3>"
                     + html_table(cal, fmt={c: fmt_pct for c in ("share", "bad_rate", "ci_low", "ci_high", "predicted")
                                        if c in cal.columns}))
    return "".join(parts)


def section_loop(loop: Any) -> str:
    if loop is None:
        return skipped_p("未提供闭环模拟 (yiwu-credit simulate-loop)", "no closed-loop result given "
                        "(yiwu-credit simulate-loop)")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        png = Path(loop.plot(Path(d) / "loop.png")).read_bytes()
    img = (f'<figure><img alt="closed loop" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
           "</figure>")
    by = loop.by_strategy().reset_index() if hasattr(loop, "by_strategy") else loop.cycles
    burden = loop.burden
    return (f"<pre>{esc(loop.summary())}</pre>" + img + "<h3>按策略汇总 By strategy</h3>" + html_table(by)
            + "<h3>抽查负担与命中率(按组) Burden and hit rate by group</h3>" + html_table(burden))


def section_frontier(frontier: Any) -> str:
    """The candidate policies: detections against the low-risk burden, the policy in force marked."""
    if frontier is None:
        return skipped_p("未提供策略前沿 (yiwu-credit frontier)", "no policy frontier given (yiwu-credit frontier)")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        png = Path(frontier.plot(Path(d) / "frontier.png")).read_bytes()
    img = (f'<figure><img alt="policy frontier" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
           "</figure>")
    p = frontier.params
    t = frontier.table.sort_values("detections", ascending=False)
    cur = t[t["in_force"]].iloc[0]
    best = t[t["pareto"] & (t["share_tier_a"] <= cur["share_tier_a"] + 1e-12)]
    note = (f"{len(t)} candidate policies on {p['population']:,} entities, the same budget "
            f"({p['budget']:,.0f} inspections/year) and campaign (n = {p['n']:,}). Detections = Σ π·p with the "
            f"model's calibrated p (its own belief; the closed loop measures realised detections). Policy in force: "
            f"{cur['detections']:,.1f} expected detections ({cur['lift']:.2f}× uniform), "
            f"{cur['share_below_median']:.1%} of inspections below the median risk.")
    if len(best):
        b = best.iloc[0]
        note += (f" Best on the frontier with tier A's share no higher: {esc(b['name'])}, "
                 f"{b['detections']:,.1f} ({b['lift']:.2f}×), {b['share_below_median']:.1%} below the median.")
    cols = ["name", "in_force", "pareto", "detections", "lift", "share_tier_a", "share_below_median", "min_pi",
            "max_per_year", "rate_A", "rate_B", "rate_C", "rate_D"]
    cols += [c for c in t.columns if c.startswith("burden_")]
    f3, pct = fmt_num(3), (lambda x: fmt_pct(x, 1))
    fmt = {c: f3 for c in cols if c not in ("name", "in_force", "pareto")}
    fmt.update({"share_tier_a": pct, "share_below_median": pct, "min_pi": lambda x: f"{x:.2g}",
                "detections": fmt_num(1)})
    return (note_p(esc(note)) + img + "<h3>候选策略 Candidates</h3>"
            + html_table(t[cols].set_index("name", drop=False), fmt=fmt, table_id="frontier-candidates"))
