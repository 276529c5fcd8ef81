"""Report sections about the model: score distribution and tiers, evaluation against outcomes,
feature importance, the scorecard, stability (PSI / CSI) and the training metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..features.ranges import bundle_ranges
from ..model.bundle import Bundle
from ..model.evaluation import calibration_table, metrics, tier_table
from ..model.monitoring import csi, psi_table, stability_flag
from ..policy import TIERS
from ..tiering.cutoffs import TierCutoffs
from .render import (
    TIER_COLORS,
    esc,
    figs_div,
    fmt_int,
    fmt_num,
    fmt_pct,
    html_table,
    is_missing,
    note_p,
    png_img,
    skipped_p,
    status_badge,
    tier_badge,
    tier_shares,
)

__all__ = ["TOP_FEATURES", "section_evaluation", "section_importance", "section_scorecard", "section_scores",
           "section_stability", "section_training"]

TOP_FEATURES = 15


def section_scores(scored: pd.DataFrame, b: Bundle, cut: TierCutoffs, Figure: Any) -> str:
    model, pol = b.model, b.policy
    score = scored["credit_score"].to_numpy(dtype=float)
    tiers = scored["tier"].astype(str).to_numpy()
    cut_scores = model.credit_points(np.asarray(cut.cutoffs, float))
    lo, hi = np.floor(np.nanmin(score) / 10) * 10, np.ceil(np.nanmax(score) / 10) * 10
    bins = np.linspace(lo, max(hi, lo + 10), 61)
    fig = Figure(figsize=(7.6, 3.4))
    ax = fig.subplots()
    ax.hist([score[tiers == t] for t in TIERS], bins=bins, stacked=True, color=[TIER_COLORS[t] for t in TIERS],
            label=[f"{t}: {pol.tier_label(t, 'en')}" for t in TIERS])
    for (t1, t2), c in zip(zip(TIERS[:-1], TIERS[1:], strict=True), cut_scores, strict=True):
        ax.axvline(c, color="#333", ls="--", lw=0.9)
        ax.annotate(f"{t1}|{t2}\n{c:.0f}", (c, 1), xycoords=("data", "axes fraction"), xytext=(0, 2),
                    textcoords="offset points", va="bottom", ha="center", fontsize=7.5)
    ax.set_xlabel("credit score (points; higher = better credit)")
    ax.set_ylabel("entities")
    ax.set_title("Credit score by final tier (dashed: model cut-offs)", pad=26)
    ax.legend(loc="upper left")
    img = png_img(fig, "credit score histogram by tier")

    share = tier_shares(scored["tier"])
    n = scored["tier"].value_counts().reindex(list(TIERS), fill_value=0)
    model_share = tier_shares(scored["model_tier"]) if "model_tier" in scored else pd.Series(np.nan, index=list(TIERS))
    train_share = b.manifest.get("metrics", {}).get("train_oof", {}).get("tier_shares", {})
    g = scored.groupby(scored["tier"].astype(str))
    prob = g["probability"].mean() if "probability" in scored else pd.Series(dtype=float)
    tab = pd.DataFrame({
        "tier": [tier_badge(t) for t in TIERS],
        "zh": [pol.tier_label(t, "zh") for t in TIERS], "en": [pol.tier_label(t, "en") for t in TIERS],
        "n": n.to_numpy(), "share": share.to_numpy(), "model_share": model_share.to_numpy(),
        "train_share": [train_share.get(t, np.nan) for t in TIERS],
        "mean_p": prob.reindex(list(TIERS)).to_numpy(),
        "score_min": g["credit_score"].min().reindex(list(TIERS)).to_numpy(),
        "score_max": g["credit_score"].max().reindex(list(TIERS)).to_numpy(),
    }, index=list(TIERS))
    heads = {"tier": "等级 tier", "zh": "中文", "en": "English", "n": "主体数 n", "share": "占比 share",
             "model_share": "模型等级占比 model tier share (before overrides)",
             "train_share": "训练期占比 training share", "mean_p": "平均违法概率 mean P(violation)",
             "score_min": "最低分 min score", "score_max": "最高分 max score"}
    fmt = {"n": fmt_int, "share": lambda x: fmt_pct(x, 2), "model_share": lambda x: fmt_pct(x, 2),
           "train_share": lambda x: fmt_pct(x, 2), "mean_p": lambda x: fmt_pct(x, 2), "score_min": fmt_num(1),
           "score_max": fmt_num(1)}
    cuts = ", ".join(f"{t1}|{t2}: P ≤ {p:.4f} ↔ score ≥ {s:.1f}" for t1, t2, p, s in
                     zip(TIERS[:-1], TIERS[1:], cut.cutoffs, cut_scores, strict=True))
    q = np.nanquantile(score, [0.05, 0.5, 0.95])
    return (figs_div(img) + note_p(f"Score quantiles 5% / 50% / 95%: {q[0]:.1f} / {q[1]:.1f} / {q[2]:.1f}. "
                               f"Model cut-offs on the calibrated probability ({esc(cut.method)} of policy "
                               f"{esc(cut.policy)}, fitted on the bundle's reference distribution): {esc(cuts)}. Colours and the "
                               "table show the final tier, after policy overrides.")
            + html_table(tab, heads, fmt, table_id="tier-shares", raw_html=["tier"]))


def _outcome_y(outcomes: pd.Series | pd.DataFrame, index: pd.Index) -> pd.Series:
    if isinstance(outcomes, pd.DataFrame):
        if "y" not in outcomes.columns:
            raise ValueError("outcomes: a DataFrame needs a 'y' column (0/1), indexed by entity_id")
        outcomes = outcomes["y"]
    y = pd.Series(outcomes).reindex(index).dropna()
    if not y.isin([0, 1]).all():
        raise ValueError("outcomes: y must be 0/1")
    return y.astype(int)


def section_evaluation(scored: pd.DataFrame, b: Bundle, outcomes: Any, Figure: Any) -> str:
    if outcomes is None:
        return skipped_p("未提供事后结果 outcomes", "no outcomes given (pass outcomes=y indexed by entity_id)")
    from matplotlib.ticker import MaxNLocator
    from sklearn.metrics import roc_curve

    y_s = _outcome_y(outcomes, scored.index)
    if len(y_s) == 0 or y_s.nunique() < 2:
        return skipped_p("结果与评分主体无交集或只有一类", f"outcomes match {len(y_s)} scored entities and "
                        "do not contain both classes")
    sub = scored.loc[y_s.index]
    y, p, tiers = y_s.to_numpy(), sub["probability"].to_numpy(float), sub["tier"].astype(str).to_numpy()
    m = metrics(y, p, tiers)
    thr = b.policy.monitoring
    ref_auc = b.manifest.get("metrics", {}).get("test_out_of_time", {}).get("auc")
    drop = (ref_auc - m["auc"]) if ref_auc is not None else np.nan
    head = pd.DataFrame({"value": [
        fmt_int(m["n"]), fmt_pct(m["base_rate"], 2), fmt_pct(m["mean_predicted"], 2), f"{m['auc']:.3f}",
        f"{m['ks']:.3f}", f"{m['brier']:.4f}", "yes 是" if m["tiers_monotone"] else "NO 否",
        "—" if is_missing(drop) else f"{drop:+.3f} (retrain if ≥ {thr.auc_drop_retrain:.2f}: "
        f"{'retrain 需重训' if drop >= thr.auc_drop_retrain else 'stable 稳定'})",
    ]}, index=["matched entities 匹配主体数", "observed violation rate 实际违法率", "mean predicted 平均预测概率",
               "AUC", "KS", "Brier", "bad rate rises A→D 违法率随等级单调上升",
               "AUC drop vs training out-of-time AUC 较训练期下降"])
    head.insert(0, "metric", list(head.index))
    head.index = ["n", "base_rate", "mean_predicted", "AUC", "KS", "Brier", "monotone", "auc_drop"]
    head_html = html_table(head, {"metric": "指标 metric", "value": "值 value"},
                       table_id="eval-metrics")

    tt = tier_table(y, tiers, p)
    tt.index = list(tt["tier"])
    fig = Figure(figsize=(5.2, 3.3))
    ax = fig.subplots()
    rate = tt["bad_rate"].to_numpy(float)
    err = np.vstack([rate - tt["ci_low"].to_numpy(float), tt["ci_high"].to_numpy(float) - rate])
    x = np.arange(len(TIERS))
    ax.bar(x, np.nan_to_num(rate), color=[TIER_COLORS[t] for t in TIERS], yerr=np.nan_to_num(err), capsize=4)
    ax.plot(x, tt["predicted"].to_numpy(float), "kD", ms=5, label="mean predicted")
    ax.set_xticks(x, list(TIERS))
    ax.set_ylabel("violation rate")
    ax.set_title("Observed violation rate by tier (95% Wilson)")
    ax.legend(loc="upper left")
    img_tier = png_img(fig, "bad rate per tier with 95% Wilson intervals")
    ttab = pd.DataFrame({"tier": [tier_badge(t) for t in TIERS], "zh": [b.policy.tier_label(t, "zh") for t in TIERS],
                         "n": tt["n"].to_numpy(), "share": tt["share"].to_numpy(), "bad_rate": rate,
                         "ci_low": tt["ci_low"].to_numpy(float), "ci_high": tt["ci_high"].to_numpy(float),
                         "predicted": tt["predicted"].to_numpy(float)}, index=list(TIERS))
    pct2 = lambda x: fmt_pct(x, 2)  # noqa: E731
    ttab_html = html_table(ttab, {"tier": "等级 tier", "zh": "中文", "posture": "监管姿态 posture", "n": "主体数 n", "share": "占比 share",
                              "bad_rate": "违法率 bad rate", "ci_low": "95% CI low", "ci_high": "95% CI high",
                              "predicted": "平均预测 predicted"},
                       {"n": fmt_int, "share": pct2, "bad_rate": pct2, "ci_low": pct2, "ci_high": pct2, "predicted": pct2},
                       table_id="tier-bad-rates", raw_html=["tier"])

    fpr, tpr, _ = roc_curve(y, p)
    fig = Figure(figsize=(3.6, 3.4))
    ax = fig.subplots()
    ax.plot(fpr, tpr, color="#1f3b63", lw=1.6, label=f"model (AUC = {m['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="#999", ls=":", lw=1, label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve", xlim=(0, 1), ylim=(0, 1))
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    img_roc = png_img(fig, "ROC curve")

    npos, nneg = int(y.sum()), int(len(y) - y.sum())
    flagged = (tpr * npos + fpr * nneg) / len(y)
    k = int(np.argmax(tpr - fpr))
    fig = Figure(figsize=(4.4, 3.4))
    ax = fig.subplots()
    ax.plot(flagged, tpr, color=TIER_COLORS["D"], lw=1.5, label="violators")
    ax.plot(flagged, fpr, color=TIER_COLORS["A"], lw=1.5, label="non-violators")
    ax.vlines(flagged[k], fpr[k], tpr[k], color="#333", lw=1.2)
    ax.annotate(f"KS = {m['ks']:.3f}\nat top {100 * flagged[k]:.0f}%", (flagged[k], (tpr[k] + fpr[k]) / 2),
                xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set(xlabel="share of entities, riskiest first", ylabel="cumulative share",
           title="KS: separation of the two groups", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right")
    img_ks = png_img(fig, "KS curve")

    cal = calibration_table(y, p, bins=10)
    fig = Figure(figsize=(4.0, 3.4))
    ax = fig.subplots()
    obs = cal["observed"].to_numpy(float)
    cerr = np.vstack([obs - cal["ci_low"].to_numpy(float), cal["ci_high"].to_numpy(float) - obs])
    top = float(max(cal["predicted"].max(), cal["ci_high"].max())) * 1.05
    ax.plot([0, top], [0, top], color="#999", ls=":", lw=1, label="perfect calibration")
    ax.errorbar(cal["predicted"], obs, yerr=cerr, fmt="o", color="#1f3b63", ms=4, capsize=3,
                label="decile (95% Wilson)")
    ax.set(xlabel="mean predicted probability", ylabel="observed violation rate",
           title="Calibration by decile of P", xlim=(0, top), ylim=(0, top))
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.legend(loc="upper left")
    img_cal = png_img(fig, "calibration plot")
    cal_tab = cal.assign(decile=cal["bin"] + 1)[["decile", "n", "predicted", "observed", "ci_low", "ci_high"]]
    cal_html = html_table(cal_tab.set_index("decile", drop=False),
                      {"decile": "十分位 decile", "n": "n", "predicted": "预测 predicted", "observed": "实际 observed",
                       "ci_low": "95% CI low", "ci_high": "95% CI high"},
                      {"decile": fmt_int, "n": fmt_int, "predicted": pct2, "observed": pct2, "ci_low": pct2,
                       "ci_high": pct2}, table_id="calibration")
    return (note_p(f"{len(y):,} of {len(scored):,} scored entities have an outcome (y = violation detected in the "
                  "horizon after as_of). Tiers are the final tiers, after policy overrides.")
            + head_html + "<h3>违法率分级 Violation rate by tier</h3>" + figs_div(img_tier) + ttab_html
            + "<h3>区分度与校准 Discrimination and calibration</h3>" + figs_div(img_roc, img_ks, img_cal) + cal_html)


def section_importance(b: Bundle, Figure: Any) -> str:
    fi = b.model.feature_importance()
    total = float(fi.sum())
    top = (fi / total if total > 0 else fi * 0).head(TOP_FEATURES)
    fig = Figure(figsize=(6.4, 0.28 * len(top) + 1.0))
    ax = fig.subplots()
    ax.barh(np.arange(len(top))[::-1], top.to_numpy(), color="#1f3b63")
    ax.set_yticks(np.arange(len(top))[::-1], list(top.index))
    ax.set_xlabel("share of total gain" if b.model.learner == "lightgbm" else "share of total importance")
    ax.set_title(f"Top {len(top)} features ({b.model.learner})")
    img = png_img(fig, "feature importance")
    names = {f.name: f for f in b.catalogue.features}
    arrows = {1: "↑ more = riskier 越多越高风险", -1: "↓ more = safer 越多越低风险", 0: "— none 无约束"}
    tab = pd.DataFrame({
        "rank": np.arange(1, len(top) + 1), "feature": list(top.index),
        "zh": [names[c].spec.zh if c in names else "" for c in top.index],
        "en": [names[c].spec.en if c in names else "" for c in top.index],
        "family": [names[c].spec.family if c in names else "" for c in top.index],
        "direction": [arrows[names[c].spec.direction] if c in names else "" for c in top.index],
        "share": top.to_numpy(),
    }, index=list(top.index))
    return figs_div(img) + html_table(tab, {"rank": "#", "feature": "特征 feature", "zh": "中文说明", "en": "description",
                                     "family": "类别 family", "direction": "单调方向 direction",
                                     "share": "重要性占比 importance share"},
                               {"rank": fmt_int, "share": lambda x: fmt_pct(x, 1)}, table_id="importance")


def section_scorecard(b: Bundle) -> str:
    """IV per feature and the points table (learner="scorecard"); a note for other learners."""
    m = b.model
    if m.learner != "scorecard":
        return note_p(f"学习器为 {m.learner}, 无评分卡; 评分卡见 learner=\"scorecard\"。 The learner is {m.learner}: "
                     "this section shows the points table of a learner='scorecard' model.")
    iv = m.iv_
    sel = set(m.selected_features_)
    names = {f.name: f for f in b.catalogue.features}
    nb = {c: m.learner_.binnings[j].n_bins for j, c in enumerate(m.feature_names_in_)}
    trend = {c: m.learner_.binnings[j].trend for j, c in enumerate(m.feature_names_in_)}
    order = iv.sort_values(ascending=False, kind="stable")
    ivt = pd.DataFrame({"feature": list(order.index), "zh": [names[c].spec.zh if c in names else "" for c in order.index],
                        "iv": order.to_numpy(), "bins": [nb[c] for c in order.index],
                        "trend": [trend[c] for c in order.index],
                        "selected": ["yes 是" if c in sel else "no 否" for c in order.index]}, index=list(order.index))
    pts = m.points_table_
    top = [c for c in order.index if c in sel][:TOP_FEATURES]
    shown = pts[pts["feature"].isin(["base", *top])].copy()
    shown["key"] = shown["feature"] + ":" + shown["bin"]
    shown = shown.set_index("key")
    text = note_p("信用分 = 基础分 + 各特征所在分箱的分数 (已含校准)。 Credit score = base points + the points of the "
                 "entity's bin in every feature (calibration folded in); WOE = ln(违规占比/未违规占比), "
                 "positive = riskier than the population.")
    return (text + "<h3>信息值 Information value (IV)</h3>"
            + html_table(ivt, {"feature": "特征 feature", "zh": "中文说明", "iv": "IV", "bins": "分箱数 bins",
                           "trend": "趋势 trend", "selected": "入模 selected"},
                     {"iv": fmt_num(4), "bins": fmt_int}, table_id="scorecard-iv")
            + f"<h3>评分表 Points table (top {len(top)} features by IV)</h3>"
            + html_table(shown[["feature", "bin", "count", "event_rate", "woe", "iv", "points"]],
                     {"feature": "特征 feature", "bin": "分箱 bin", "count": "样本数 count",
                      "event_rate": "违规率 event rate", "woe": "WOE", "iv": "IV", "points": "分数 points"},
                     {"count": fmt_int, "event_rate": lambda x: fmt_pct(x, 2), "woe": fmt_num(3), "iv": fmt_num(4),
                      "points": fmt_num(2)}, table_id="scorecard-points"))


def _bin_label(lo: float, hi: float) -> str:
    if np.isinf(lo):
        return f"<{hi:.0f}"
    if np.isinf(hi):
        return f">={lo:.0f}"
    return f"{lo:.0f}-{hi:.0f}"


def section_stability(scored: pd.DataFrame, b: Bundle, features: pd.DataFrame | None,
                       reference_features: pd.DataFrame | None, Figure: Any) -> str:
    thr = b.policy.monitoring
    ref = getattr(b.model, "reference_scores_", None)
    parts = []
    if ref is None:
        parts.append(skipped_p("模型无参考分布", "the model has no reference_scores_"))
    else:
        t = psi_table(np.asarray(ref, float), scored["credit_score"].to_numpy(float))
        value = float(t["contribution"].sum())
        status = stability_flag(value, thr.psi_warn, thr.psi_retrain)
        labels = [_bin_label(lo, hi) for lo, hi in zip(t["lower"], t["upper"], strict=True)]
        fig = Figure(figsize=(7.6, 3.0))
        ax = fig.subplots()
        x = np.arange(len(t))
        ax.bar(x - 0.2, t["expected"], width=0.4, color="#9aa7b8", label="training reference")
        ax.bar(x + 0.2, t["actual"], width=0.4, color="#1f3b63", label="this population")
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel("share of entities")
        ax.set_title(f"Credit score by training decile: PSI = {value:.3f} ({status})")
        ax.legend(loc="upper left")
        img = png_img(fig, "PSI of the credit score")
        tab = pd.DataFrame({"bin": labels, "n": t["n"].to_numpy(), "expected": t["expected"].to_numpy(),
                            "actual": t["actual"].to_numpy(), "contribution": t["contribution"].to_numpy()},
                           index=labels)
        train_as_of = b.manifest.get("training", {}).get("as_of", "?")
        parts.append(
            f'<p>PSI of the credit score vs the training population ({esc(train_as_of)}): <b id="psi-value">'
            f"{value:.4f}</b> {status_badge(status)} — thresholds from policy: watch ≥ {thr.psi_warn:.2f}, "
            f"retrain ≥ {thr.psi_retrain:.2f} (信用分人群稳定性指数, 关注/需重训阈值).</p>"
            + figs_div(img)
            + html_table(tab, {"bin": "分数区间 score bin", "n": "n", "expected": "参考占比 reference share",
                           "actual": "当前占比 actual share", "contribution": "PSI 贡献 contribution"},
                     {"n": fmt_int, "expected": lambda x: fmt_pct(x, 1), "actual": lambda x: fmt_pct(x, 1),
                      "contribution": fmt_num(4)}, table_id="psi-bins"))
    parts.append(_out_of_range(scored, b))
    parts.append("<h3>特征稳定性 CSI per feature</h3>")
    if reference_features is None:
        parts.append(skipped_p("未提供参考特征 reference_features",
                              "no reference_features given (pass the training feature matrix for CSI)"))
    elif features is None:
        parts.append(skipped_p("未提供当前特征 features", "reference_features given but no features (pass "
                              "score_entities(...).features)"))
    else:
        c = csi(reference_features, features).sort_values(ascending=False, kind="stable")
        st = stability_flag(c, thr.csi_warn, thr.csi_retrain)
        names = {f.name: f for f in b.catalogue.features}
        top = c.head(TOP_FEATURES)
        fig = Figure(figsize=(6.4, 0.28 * len(top) + 1.0))
        ax = fig.subplots()
        ax.barh(np.arange(len(top))[::-1], top.to_numpy(),
                color=["#c62828" if s == "retrain" else "#ef8c00" if s == "watch" else "#1f3b63" for s in st.head(len(top))])
        ax.axvline(thr.csi_warn, color="#ef8c00", ls="--", lw=1, label=f"watch {thr.csi_warn:.2f}")
        ax.axvline(thr.csi_retrain, color="#c62828", ls="--", lw=1, label=f"retrain {thr.csi_retrain:.2f}")
        ax.set_yticks(np.arange(len(top))[::-1], list(top.index))
        ax.set_xlabel("CSI")
        ax.set_title(f"Feature stability, top {len(top)}")
        ax.legend(loc="lower right")
        img = png_img(fig, "CSI per feature")
        tab = pd.DataFrame({"feature": list(c.index), "zh": [names[f].spec.zh if f in names else "" for f in c.index],
                            "csi": c.to_numpy(), "status": [status_badge(s) for s in st]}, index=list(c.index))
        n_watch, n_retrain = int((st == "watch").sum()), int((st == "retrain").sum())
        parts.append(note_p(f"{len(c)} features compared; {n_watch} to watch, {n_retrain} at the retrain level "
                           f"(watch ≥ {thr.csi_warn:.2f}, retrain ≥ {thr.csi_retrain:.2f}).")
                     + figs_div(img) + html_table(tab, {"feature": "特征 feature", "zh": "中文说明", "csi": "CSI",
                                                 "status": "状态 status"}, {"csi": fmt_num(4)},
                                           table_id="csi", raw_html=["status"]))
    return "".join(parts)


def _out_of_range(scored: pd.DataFrame, b: Bundle) -> str:
    """Entities with feature values beyond the training range, in all and by feature."""
    head = "<h3>超出训练范围的特征 Features beyond the training range</h3>"
    if "out_of_range" not in scored:
        return head + skipped_p("无 out_of_range 列", "scored has no 'out_of_range' column")
    r = bundle_ranges(b)
    if r is None:
        return head + note_p("The bundle stores no training ranges and no reference sample: nothing can be flagged.")
    oor = scored["out_of_range"].fillna("").astype(str)
    flagged = oor != ""
    counts = oor[flagged].str.split(";").explode().value_counts().sort_index(kind="stable")
    counts = counts.sort_values(ascending=False, kind="stable")
    names = {f.name: f for f in b.catalogue.features}
    rows = [{"feature": "(any)", "zh": "至少一个特征", "n": int(flagged.sum()), "share": float(flagged.mean())}]
    rows += [{"feature": str(f), "zh": names[f].spec.zh if f in names else "", "n": int(n), "share": n / len(scored)}
             for f, n in counts.items()]
    tab = pd.DataFrame(rows).set_index("feature", drop=False)
    return head + note_p(
        f"<b id=\"oor-entities\">{int(flagged.sum()):,}</b> entities ({fmt_pct(flagged.mean(), 2)}) have at least one "
        f"feature beyond the range seen in training (source: {esc(str(r.get('source')))}, "
        f"{int(r.get('n', 0)):,} entities); the model scores such values like the edge of that range, so policy "
        "rules, not the model, must handle them (超出训练数据范围的主体, 模型按范围边界评分).") + html_table(
        tab, {"feature": "特征 feature", "zh": "中文说明", "n": "主体数 n", "share": "占全部 share of all"},
        {"n": fmt_int, "share": lambda x: fmt_pct(x, 2)}, table_id="out-of-range")


def section_training(b: Bundle) -> str:
    mt = b.manifest.get("metrics", {})
    sets = [k for k in ("train_oof", "test_out_of_time") if k in mt]
    if not sets:
        return skipped_p("清单中无训练指标", "the bundle manifest has no training metrics")
    rows = [("n", "样本数 n", fmt_int), ("base_rate", "违法率 base rate", lambda x: fmt_pct(x, 2)),
            ("mean_predicted", "平均预测 mean predicted", lambda x: fmt_pct(x, 2)), ("auc", "AUC", fmt_num(3)),
            ("ks", "KS", fmt_num(3)), ("brier", "Brier", fmt_num(4))]
    data: dict[str, list[Any]] = {"metric": [r[1] for r in rows]}
    for s in sets:
        data[s] = [r[2](mt[s].get(r[0])) for r in rows]
    for t in TIERS:
        data["metric"].append(f"{t} 违法率 bad rate")
        for s in sets:
            data[s].append(fmt_pct(mt[s].get("tier_bad_rates", {}).get(t), 2))
    for t in TIERS:
        data["metric"].append(f"{t} 占比 share")
        for s in sets:
            data[s].append(fmt_pct(mt[s].get("tier_shares", {}).get(t), 2))
    tab = pd.DataFrame(data)
    tr = b.manifest.get("training", {})
    info = ", ".join(f"{k} = {v}" for k, v in sorted(tr.items()) if k != "data_fingerprint")
    out = (note_p(f"From the bundle manifest ({esc(b.version)}): {esc(info)}. train_oof = out-of-fold on the "
                 "training population; test_out_of_time = a later population and later outcomes.")
           + html_table(tab.set_index("metric", drop=False), {"metric": "指标 metric", "train_oof": "训练集(折外) train OOF",
                                                          "test_out_of_time": "跨期测试 out of time"},
                    table_id="training-metrics"))
    truth = mt.get("truth")
    if truth:
        tt = pd.DataFrame({"metric": list(truth), "value": [f"{float(v):.3f}" for v in truth.values()]})
        out += (note_p("Synthetic training data: agreement with the simulator's true propensity.")
                + html_table(tt.set_index("metric", drop=False), table_id="truth-metrics"))
    return out
