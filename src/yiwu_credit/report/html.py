"""The readable report: one self-contained HTML page about a scoring run.

:func:`build_report` turns a scored population (``score_entities(...).scored``) and its bundle
into a single HTML string: UTF-8, inline CSS, every chart an embedded base64 PNG drawn with
matplotlib's Agg renderer, no scripts and no external URLs, so the file can be mailed or archived
and opens offline. Sections whose input is not given are skipped with a one-line note.

Charts carry English/ASCII text only (matplotlib's default fonts have no CJK glyphs; towns are
labelled in pinyin); Chinese labels live in the HTML tables. The output is deterministic: the
same inputs give the same bytes (no timestamps; PNG metadata stripped).

matplotlib is an optional dependency: ``pip install 'yiwu-credit[report]'``.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..data.io import write_text
from ..features.ranges import bundle_ranges
from ..model.bundle import Bundle, load_bundle
from ..model.evaluation import calibration_table, metrics, tier_table
from ..model.monitoring import csi, psi_table, stability_flag
from ..supervision.policy import POSTURE_ZH, TIERS

#: (anchor, Chinese heading, English heading) of each report section, in order.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("scores", "信用分与分级分布", "Score distribution and tiers"),
    ("evaluation", "模型效果(事后结果)", "Evaluation against outcomes"),
    ("importance", "特征重要性", "Feature importance"),
    ("scorecard", "评分卡与分箱", "Scorecard and binning"),
    ("stability", "稳定性监测", "Stability (PSI / CSI)"),
    ("overrides", "策略修正与风险原因", "Overrides and reason codes"),
    ("plan", "双随机抽查计划", "Inspection plan"),
    ("monitoring", "监测与迁移", "Monitoring: migration and drift"),
    ("loop", "闭环模拟与抽查负担", "Closed loop and inspection burden"),
    ("frontier", "抽查策略前沿", "Policy frontier"),
    ("training", "训练指标", "Training metrics"),
)
TITLE_ZH = "义乌市市场主体信用风险分级分类监管报告"
TITLE_EN = "Yiwu market entities: credit risk tiers report"
TIER_COLORS = {"A": "#2e7d32", "B": "#1f77b4", "C": "#ef8c00", "D": "#c62828"}
DPI = 100
TOP_FEATURES = 15
TOP_REASONS = 10
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_TOWN_PINYIN = {
    "稠城街道": "Choucheng", "福田街道": "Futian", "江东街道": "Jiangdong", "稠江街道": "Choujiang",
    "北苑街道": "Beiyuan", "后宅街道": "Houzhai", "廿三里街道": "Niansanli", "城西街道": "Chengxi",
    "佛堂镇": "Fotang", "苏溪镇": "Suxi", "上溪镇": "Shangxi", "大陈镇": "Dachen", "义亭镇": "Yiting",
    "赤岸镇": "Chi'an", "其他": "Other",
}
_OVERRIDE_TEXT = {
    "new_entity": ("新设立主体, 暂定等级", "newly established entity, provisional tier"),
    "abnormal_operation": ("列入经营异常名录", "on the abnormal-operation list"),
    "adverse_conduct": ("检查中拒绝或提供虚假信息", "refused inspection or gave false information"),
    "serious_dishonest": ("列入严重违法失信名单", "on the serious-dishonesty list"),
    "new_entity_record": ("新设立主体已有记录, 不低于暂定等级", "new entity with a record, at least the provisional tier"),
    "heavy_penalties": ("近期多次一般程序行政处罚", "repeated recent general-procedure penalties"),
    "severe_penalties": ("近期行政处罚次数或罚没金额很高", "very many recent penalties or very large recent fines"),
}
_STATUS_ZH = {"stable": "稳定", "watch": "关注", "act": "需处置", "": "—"}

_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",
"Helvetica Neue",Arial,sans-serif;color:#222;margin:0;background:#f5f6f8;line-height:1.5}
main{max-width:1120px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:1.6em;margin:.2em 0 .1em}h1 .en{display:block;font-size:.6em;color:#555;font-weight:400}
h2{font-size:1.25em;border-bottom:2px solid #1f3b63;padding-bottom:4px;margin-top:2em;color:#1f3b63}
h3{font-size:1.02em;margin:1.4em 0 .4em;color:#333}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.86em}
th,td{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}td[data-col="zh"],td[data-col="n"]{white-space:nowrap}
.figs{display:flex;flex-wrap:wrap;gap:12px;margin:.5em 0}
.figs img{max-width:100%;height:auto;border:1px solid #e3e6ea}
.note{color:#555;font-size:.88em;margin:.3em 0}.warn{color:#8a3b12;background:#fdecea;padding:6px 10px}.skipped{color:#8a6d3b;background:#fcf8e3;padding:6px 10px;
border-left:4px solid #f0ad4e}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;color:#fff}
.s-stable{background:#2e7d32}.s-watch{background:#ef8c00}.s-act{background:#c62828}
.tier{display:inline-block;min-width:1.4em;text-align:center;border-radius:3px;color:#fff;font-weight:700}
.t-A{background:#2e7d32}.t-B{background:#1f77b4}.t-C{background:#ef8c00}.t-D{background:#c62828}
nav ol{columns:2;font-size:.9em}nav a{color:#1f3b63}
.meta td:first-child{color:#555}
footer{margin-top:3em;color:#888;font-size:.8em}
"""


# ------------------------------------------------------------------------ small helpers

def _mpl() -> Any:
    """matplotlib's Figure class (Agg), or a clear ImportError."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised by a monkeypatched test
        raise ImportError("the HTML report needs matplotlib, an optional dependency: "
                          "pip install 'yiwu-credit[report]'") from e
    return matplotlib, Figure


_RC = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "legend.fontsize": 8, "legend.frameon": False, "figure.dpi": DPI, "savefig.dpi": DPI,
    "svg.hashsalt": "yiwu-credit", "path.simplify": True,
}


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _isnan(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and np.isnan(x))


def _pct(x: Any, d: int = 1) -> str:
    return "—" if _isnan(x) else f"{100 * float(x):.{d}f}%"


def _f(d: int) -> Callable[[Any], str]:
    return lambda x: "—" if _isnan(x) else f"{float(x):,.{d}f}"


def _int(x: Any) -> str:
    return "—" if _isnan(x) else f"{int(x):,}"


def _tier_badge(t: str) -> str:
    return f'<span class="tier t-{_esc(t)}">{_esc(t)}</span>'


def _status_badge(s: str) -> str:
    if not s:
        return "—"
    return f'<span class="badge s-{s}">{_esc(s)} {_esc(_STATUS_ZH[s])}</span>'


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _skipped(zh: str, en: str) -> str:
    return f'<p class="skipped">Skipped: {_esc(en)} · 已跳过: {_esc(zh)}</p>'


def _table(df: pd.DataFrame, headers: dict[str, str] | None = None,
           fmt: dict[str, Callable[[Any], str]] | None = None, *, table_id: str | None = None,
           raw_html: Iterable[str] = ()) -> str:
    """An HTML table of ``df`` (columns in order). ``fmt`` formats cells; numeric cells also carry
    their exact value in ``data-value``. Columns in ``raw_html`` are inserted unescaped."""
    headers, fmt, raw = headers or {}, fmt or {}, set(raw_html)
    head = "".join(f"<th>{_esc(headers.get(c, c))}</th>" for c in df.columns)
    rows = []
    for key, rec in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        cells = []
        for c, v in zip(df.columns, rec, strict=True):
            text = v if c in raw else _esc(fmt[c](v) if c in fmt else ("—" if _isnan(v) else v))
            numeric = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
            if numeric and not _isnan(v):
                cells.append(f'<td class="num" data-col="{_esc(c)}" data-value="{float(v)!r}">{text}</td>')
            else:
                cells.append(f'<td data-col="{_esc(c)}">{text}</td>')
        rows.append(f'<tr data-key="{_esc(key)}">{"".join(cells)}</tr>')
    tid = f' id="{_esc(table_id)}"' if table_id else ""
    return f"<table{tid}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _img(fig: Any, alt: str) -> str:
    data = base64.b64encode(_png(fig)).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _figs(*imgs: str) -> str:
    return f'<div class="figs">{"".join(imgs)}</div>'


def _score_of(model: Any, p: np.ndarray | float) -> np.ndarray:
    """Credit score (points) of probability ``p`` with the model's points scale."""
    p = np.asarray(p, float)
    factor = model.pdo / np.log(2)
    return model.base_points + factor * (np.log((1 - p) / p) - np.log(model.base_odds))


def _town_ascii(names: Iterable[str]) -> list[str]:
    out = []
    for i, n in enumerate(names):
        s = str(n)
        out.append(_TOWN_PINYIN.get(s, s if s.isascii() else f"town #{i + 1}"))
    return out


def _tier_shares(s: pd.Series) -> pd.Series:
    return s.value_counts(normalize=True).reindex(list(TIERS), fill_value=0.0)


# ------------------------------------------------------------------------ sections

def _header(scored: pd.DataFrame, b: Bundle, title: str | None, as_of: Any) -> tuple[str, str]:
    pol = b.policy
    if title:
        h1 = f"<h1>{_esc(title)}</h1>"
        doc_title = title
    else:
        h1 = f'<h1>{_esc(TITLE_ZH)}<span class="en">{_esc(TITLE_EN)}</span></h1>'
        doc_title = f"{TITLE_ZH} · {TITLE_EN}"
    if as_of is None:
        as_of_text = "— (not given)"
    else:
        try:
            as_of_text = str(pd.Timestamp(as_of).date())
        except (ValueError, TypeError):
            as_of_text = str(as_of)
    cat = b.catalogue
    meta = pd.DataFrame({"value": [
        as_of_text, b.version, b.manifest.get("learner", b.model.learner),
        f"{cat.name} {cat.version}", f"{pol.name} {pol.version} · {pol.title.zh}",
        f"{len(scored):,}", f"yiwu_credit {__version__}",
    ]}, index=["评估日期 as_of", "模型版本 model", "算法 learner", "特征目录 catalogue", "监管策略 policy",
               "主体数 entities scored", "生成工具 generated by"])
    meta_rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in meta["value"].items())
    toc = "".join(f'<li><a href="#{a}">{_esc(zh)} · {_esc(en)}</a></li>' for a, zh, en in SECTIONS)
    return (f"<title>{_esc(doc_title)}</title>", f'{h1}<table class="meta">{meta_rows}</table>'
            f"<nav><ol>{toc}</ol></nav>")


def _section_scores(scored: pd.DataFrame, b: Bundle, Figure: Any) -> str:
    model, pol = b.model, b.policy
    score = scored["credit_score"].to_numpy(dtype=float)
    tiers = scored["tier"].astype(str).to_numpy()
    cut_scores = _score_of(model, np.asarray(model.tier_cutoffs_, float))
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
    img = _img(fig, "credit score histogram by tier")

    share = _tier_shares(scored["tier"])
    n = scored["tier"].value_counts().reindex(list(TIERS), fill_value=0)
    model_share = _tier_shares(scored["model_tier"]) if "model_tier" in scored else pd.Series(np.nan, index=list(TIERS))
    train_share = b.manifest.get("metrics", {}).get("train_oof", {}).get("tier_shares", {})
    g = scored.groupby(scored["tier"].astype(str))
    prob = g["probability"].mean() if "probability" in scored else pd.Series(dtype=float)
    tab = pd.DataFrame({
        "tier": [_tier_badge(t) for t in TIERS],
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
    fmt = {"n": _int, "share": lambda x: _pct(x, 2), "model_share": lambda x: _pct(x, 2),
           "train_share": lambda x: _pct(x, 2), "mean_p": lambda x: _pct(x, 2), "score_min": _f(1),
           "score_max": _f(1)}
    cuts = ", ".join(f"{t1}|{t2}: P ≤ {p:.4f} ↔ score ≥ {s:.1f}" for t1, t2, p, s in
                     zip(TIERS[:-1], TIERS[1:], model.tier_cutoffs_, cut_scores, strict=True))
    q = np.nanquantile(score, [0.05, 0.5, 0.95])
    return (_figs(img) + _note(f"Score quantiles 5% / 50% / 95%: {q[0]:.1f} / {q[1]:.1f} / {q[2]:.1f}. "
                               f"Model cut-offs on the calibrated probability: {_esc(cuts)}. Colours and the "
                               "table show the final tier, after policy overrides.")
            + _table(tab, heads, fmt, table_id="tier-shares", raw_html=["tier"]))


def _outcome_y(outcomes: pd.Series | pd.DataFrame, index: pd.Index) -> pd.Series:
    if isinstance(outcomes, pd.DataFrame):
        if "y" not in outcomes.columns:
            raise ValueError("outcomes: a DataFrame needs a 'y' column (0/1), indexed by entity_id")
        outcomes = outcomes["y"]
    y = pd.Series(outcomes).reindex(index).dropna()
    if not y.isin([0, 1]).all():
        raise ValueError("outcomes: y must be 0/1")
    return y.astype(int)


def _section_evaluation(scored: pd.DataFrame, b: Bundle, outcomes: Any, Figure: Any) -> str:
    if outcomes is None:
        return _skipped("未提供事后结果 outcomes", "no outcomes given (pass outcomes=y indexed by entity_id)")
    from matplotlib.ticker import MaxNLocator
    from sklearn.metrics import roc_curve

    y_s = _outcome_y(outcomes, scored.index)
    if len(y_s) == 0 or y_s.nunique() < 2:
        return _skipped("结果与评分主体无交集或只有一类", f"outcomes match {len(y_s)} scored entities and "
                        "do not contain both classes")
    sub = scored.loc[y_s.index]
    y, p, tiers = y_s.to_numpy(), sub["probability"].to_numpy(float), sub["tier"].astype(str).to_numpy()
    m = metrics(y, p, tiers)
    thr = b.policy.monitoring
    ref_auc = b.manifest.get("metrics", {}).get("test_out_of_time", {}).get("auc")
    drop = (ref_auc - m["auc"]) if ref_auc is not None else np.nan
    head = pd.DataFrame({"value": [
        _int(m["n"]), _pct(m["base_rate"], 2), _pct(m["mean_predicted"], 2), f"{m['auc']:.3f}",
        f"{m['ks']:.3f}", f"{m['brier']:.4f}", "yes 是" if m["tiers_monotone"] else "NO 否",
        "—" if _isnan(drop) else f"{drop:+.3f} (retrain if > {thr.auc_drop_retrain:.2f}: "
        f"{'RETRAIN 需重训' if drop > thr.auc_drop_retrain else 'ok'})",
    ]}, index=["matched entities 匹配主体数", "observed violation rate 实际违法率", "mean predicted 平均预测概率",
               "AUC", "KS", "Brier", "bad rate rises A→D 违法率随等级单调上升",
               "AUC drop vs training out-of-time AUC 较训练期下降"])
    head.insert(0, "metric", list(head.index))
    head.index = ["n", "base_rate", "mean_predicted", "AUC", "KS", "Brier", "monotone", "auc_drop"]
    head_html = _table(head, {"metric": "指标 metric", "value": "值 value"},
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
    img_tier = _img(fig, "bad rate per tier with 95% Wilson intervals")
    ttab = pd.DataFrame({"tier": [_tier_badge(t) for t in TIERS], "zh": [b.policy.tier_label(t, "zh") for t in TIERS],
                         "n": tt["n"].to_numpy(), "share": tt["share"].to_numpy(), "bad_rate": rate,
                         "ci_low": tt["ci_low"].to_numpy(float), "ci_high": tt["ci_high"].to_numpy(float),
                         "predicted": tt["predicted"].to_numpy(float)}, index=list(TIERS))
    pct2 = lambda x: _pct(x, 2)  # noqa: E731
    ttab_html = _table(ttab, {"tier": "等级 tier", "zh": "中文", "posture": "监管姿态 posture", "n": "主体数 n", "share": "占比 share",
                              "bad_rate": "违法率 bad rate", "ci_low": "95% CI low", "ci_high": "95% CI high",
                              "predicted": "平均预测 predicted"},
                       {"n": _int, "share": pct2, "bad_rate": pct2, "ci_low": pct2, "ci_high": pct2, "predicted": pct2},
                       table_id="tier-bad-rates", raw_html=["tier"])

    fpr, tpr, _ = roc_curve(y, p)
    fig = Figure(figsize=(3.6, 3.4))
    ax = fig.subplots()
    ax.plot(fpr, tpr, color="#1f3b63", lw=1.6, label=f"model (AUC = {m['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="#999", ls=":", lw=1, label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve", xlim=(0, 1), ylim=(0, 1))
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    img_roc = _img(fig, "ROC curve")

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
    img_ks = _img(fig, "KS curve")

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
    img_cal = _img(fig, "calibration plot")
    cal_tab = cal.assign(decile=cal["bin"] + 1)[["decile", "n", "predicted", "observed", "ci_low", "ci_high"]]
    cal_html = _table(cal_tab.set_index("decile", drop=False),
                      {"decile": "十分位 decile", "n": "n", "predicted": "预测 predicted", "observed": "实际 observed",
                       "ci_low": "95% CI low", "ci_high": "95% CI high"},
                      {"decile": _int, "n": _int, "predicted": pct2, "observed": pct2, "ci_low": pct2,
                       "ci_high": pct2}, table_id="calibration")
    return (_note(f"{len(y):,} of {len(scored):,} scored entities have an outcome (y = violation detected in the "
                  "horizon after as_of). Tiers are the final tiers, after policy overrides.")
            + head_html + "<h3>违法率分级 Violation rate by tier</h3>" + _figs(img_tier) + ttab_html
            + "<h3>区分度与校准 Discrimination and calibration</h3>" + _figs(img_roc, img_ks, img_cal) + cal_html)


def _section_importance(b: Bundle, Figure: Any) -> str:
    fi = b.model.feature_importance()
    total = float(fi.sum())
    top = (fi / total if total > 0 else fi * 0).head(TOP_FEATURES)
    fig = Figure(figsize=(6.4, 0.28 * len(top) + 1.0))
    ax = fig.subplots()
    ax.barh(np.arange(len(top))[::-1], top.to_numpy(), color="#1f3b63")
    ax.set_yticks(np.arange(len(top))[::-1], list(top.index))
    ax.set_xlabel("share of total gain" if b.model.learner == "lightgbm" else "share of total importance")
    ax.set_title(f"Top {len(top)} features ({b.model.learner})")
    img = _img(fig, "feature importance")
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
    return _figs(img) + _table(tab, {"rank": "#", "feature": "特征 feature", "zh": "中文说明", "en": "description",
                                     "family": "类别 family", "direction": "单调方向 direction",
                                     "share": "重要性占比 importance share"},
                               {"rank": _int, "share": lambda x: _pct(x, 1)}, table_id="importance")


def _section_scorecard(b: Bundle) -> str:
    """IV per feature and the points table (learner="scorecard"); a note for other learners."""
    m = b.model
    if m.learner != "scorecard":
        return _note(f"学习器为 {m.learner}, 无评分卡; 评分卡见 learner=\"scorecard\"。 The learner is {m.learner}: "
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
    text = _note("信用分 = 基础分 + 各特征所在分箱的分数 (已含校准)。 Credit score = base points + the points of the "
                 "entity's bin in every feature (calibration folded in); WOE = ln(违规占比/未违规占比), "
                 "positive = riskier than the population.")
    return (text + "<h3>信息值 Information value (IV)</h3>"
            + _table(ivt, {"feature": "特征 feature", "zh": "中文说明", "iv": "IV", "bins": "分箱数 bins",
                           "trend": "趋势 trend", "selected": "入模 selected"},
                     {"iv": _f(4), "bins": _int}, table_id="scorecard-iv")
            + f"<h3>评分表 Points table (top {len(top)} features by IV)</h3>"
            + _table(shown[["feature", "bin", "count", "event_rate", "woe", "iv", "points"]],
                     {"feature": "特征 feature", "bin": "分箱 bin", "count": "样本数 count",
                      "event_rate": "违规率 event rate", "woe": "WOE", "iv": "IV", "points": "分数 points"},
                     {"count": _int, "event_rate": lambda x: _pct(x, 2), "woe": _f(3), "iv": _f(4),
                      "points": _f(2)}, table_id="scorecard-points"))


def _bin_label(lo: float, hi: float) -> str:
    if np.isinf(lo):
        return f"<{hi:.0f}"
    if np.isinf(hi):
        return f">={lo:.0f}"
    return f"{lo:.0f}-{hi:.0f}"


def _section_stability(scored: pd.DataFrame, b: Bundle, features: pd.DataFrame | None,
                       reference_features: pd.DataFrame | None, Figure: Any) -> str:
    thr = b.policy.monitoring
    ref = getattr(b.model, "reference_scores_", None)
    parts = []
    if ref is None:
        parts.append(_skipped("模型无参考分布", "the model has no reference_scores_"))
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
        img = _img(fig, "PSI of the credit score")
        tab = pd.DataFrame({"bin": labels, "n": t["n"].to_numpy(), "expected": t["expected"].to_numpy(),
                            "actual": t["actual"].to_numpy(), "contribution": t["contribution"].to_numpy()},
                           index=labels)
        train_as_of = b.manifest.get("training", {}).get("as_of", "?")
        parts.append(
            f'<p>PSI of the credit score vs the training population ({_esc(train_as_of)}): <b id="psi-value">'
            f"{value:.4f}</b> {_status_badge(status)} — thresholds from policy: watch ≥ {thr.psi_warn:.2f}, "
            f"act ≥ {thr.psi_retrain:.2f} (信用分人群稳定性指数, 关注/需处置阈值).</p>"
            + _figs(img)
            + _table(tab, {"bin": "分数区间 score bin", "n": "n", "expected": "参考占比 reference share",
                           "actual": "当前占比 actual share", "contribution": "PSI 贡献 contribution"},
                     {"n": _int, "expected": lambda x: _pct(x, 1), "actual": lambda x: _pct(x, 1),
                      "contribution": _f(4)}, table_id="psi-bins"))
    parts.append(_out_of_range(scored, b))
    parts.append("<h3>特征稳定性 CSI per feature</h3>")
    if reference_features is None:
        parts.append(_skipped("未提供参考特征 reference_features",
                              "no reference_features given (pass the training feature matrix for CSI)"))
    elif features is None:
        parts.append(_skipped("未提供当前特征 features", "reference_features given but no features (pass "
                              "score_entities(...).features)"))
    else:
        c = csi(reference_features, features).sort_values(ascending=False, kind="stable")
        st = stability_flag(c, thr.csi_warn, thr.csi_retrain)
        names = {f.name: f for f in b.catalogue.features}
        top = c.head(TOP_FEATURES)
        fig = Figure(figsize=(6.4, 0.28 * len(top) + 1.0))
        ax = fig.subplots()
        ax.barh(np.arange(len(top))[::-1], top.to_numpy(),
                color=["#c62828" if s == "act" else "#ef8c00" if s == "watch" else "#1f3b63" for s in st.head(len(top))])
        ax.axvline(thr.csi_warn, color="#ef8c00", ls="--", lw=1, label=f"watch {thr.csi_warn:.2f}")
        ax.axvline(thr.csi_retrain, color="#c62828", ls="--", lw=1, label=f"act {thr.csi_retrain:.2f}")
        ax.set_yticks(np.arange(len(top))[::-1], list(top.index))
        ax.set_xlabel("CSI")
        ax.set_title(f"Feature stability, top {len(top)}")
        ax.legend(loc="lower right")
        img = _img(fig, "CSI per feature")
        tab = pd.DataFrame({"feature": list(c.index), "zh": [names[f].spec.zh if f in names else "" for f in c.index],
                            "csi": c.to_numpy(), "status": [_status_badge(s) for s in st]}, index=list(c.index))
        n_watch, n_act = int((st == "watch").sum()), int((st == "act").sum())
        parts.append(_note(f"{len(c)} features compared; {n_watch} to watch, {n_act} to act on "
                           f"(watch ≥ {thr.csi_warn:.2f}, act ≥ {thr.csi_retrain:.2f}).")
                     + _figs(img) + _table(tab, {"feature": "特征 feature", "zh": "中文说明", "csi": "CSI",
                                                 "status": "状态 status"}, {"csi": _f(4)},
                                           table_id="csi", raw_html=["status"]))
    return "".join(parts)


def _out_of_range(scored: pd.DataFrame, b: Bundle) -> str:
    """Entities with feature values beyond the training range, in all and by feature."""
    head = "<h3>超出训练范围的特征 Features beyond the training range</h3>"
    if "out_of_range" not in scored:
        return head + _skipped("无 out_of_range 列", "scored has no 'out_of_range' column")
    r = bundle_ranges(b)
    if r is None:
        return head + _note("The bundle stores no training ranges and no reference sample: nothing can be flagged.")
    oor = scored["out_of_range"].fillna("").astype(str)
    flagged = oor != ""
    counts = oor[flagged].str.split(";").explode().value_counts().sort_index(kind="stable")
    counts = counts.sort_values(ascending=False, kind="stable")
    names = {f.name: f for f in b.catalogue.features}
    rows = [{"feature": "(any)", "zh": "至少一个特征", "n": int(flagged.sum()), "share": float(flagged.mean())}]
    rows += [{"feature": str(f), "zh": names[f].spec.zh if f in names else "", "n": int(n), "share": n / len(scored)}
             for f, n in counts.items()]
    tab = pd.DataFrame(rows).set_index("feature", drop=False)
    return head + _note(
        f"<b id=\"oor-entities\">{int(flagged.sum()):,}</b> entities ({_pct(flagged.mean(), 2)}) have at least one "
        f"feature beyond the range seen in training (source: {_esc(str(r.get('source')))}, "
        f"{int(r.get('n', 0)):,} entities); the model scores such values like the edge of that range, so policy "
        "rules, not the model, must handle them (超出训练数据范围的主体, 模型按范围边界评分).") + _table(
        tab, {"feature": "特征 feature", "zh": "中文说明", "n": "主体数 n", "share": "占全部 share of all"},
        {"n": _int, "share": lambda x: _pct(x, 2)}, table_id="out-of-range")


def _reason_columns(scored: pd.DataFrame) -> list[str]:
    cols = [c for c in scored.columns if re.fullmatch(r"reason_\d+", c)]
    return sorted(cols, key=lambda c: int(c.split("_")[1]))


def _section_overrides(scored: pd.DataFrame, b: Bundle) -> str:
    parts = []
    if "overrides" not in scored:
        parts.append(_skipped("无 overrides 列", "scored has no 'overrides' column"))
    else:
        ov = scored["overrides"].fillna("").astype(str)
        rules = ov[ov != ""].str.split(";").explode()
        counts = rules.value_counts().sort_index(kind="stable") if len(rules) else pd.Series(dtype=int)
        rows = []
        for rule, n in counts.items():
            zh, en = _OVERRIDE_TEXT.get(re.sub(r"_\d+d$", "", str(rule).split("->")[0]), ("", ""))
            rows.append({"rule": rule, "zh": zh, "en": en, "n": int(n), "share": n / len(scored)})
        rows.append({"rule": "(none)", "zh": "未修正", "en": "model tier kept", "n": int((ov == "").sum()),
                     "share": float((ov == "").mean())})
        tab = pd.DataFrame(rows).set_index("rule", drop=False)
        parts.append(_note("An entity can match several rules; counts are per rule that changed its tier.")
                     + _table(tab, {"rule": "规则 rule", "zh": "中文", "en": "meaning", "n": "主体数 n",
                                    "share": "占全部 share of all"}, {"n": _int, "share": lambda x: _pct(x, 2)},
                              table_id="overrides"))
        if "model_tier" in scored:
            ct = pd.crosstab(scored["model_tier"].astype(str), scored["tier"].astype(str)).reindex(
                index=list(TIERS), columns=list(TIERS), fill_value=0)
            ct.columns = [f"final {t}" for t in TIERS]
            ct.insert(0, "model tier", list(TIERS))
            parts.append("<h3>模型等级 → 最终等级 Model tier → final tier</h3>"
                         + _table(ct, fmt={c: _int for c in ct.columns[1:]}, table_id="tier-transitions"))
    parts.append("<h3>C/D 类主体的主要风险原因 Most common reasons, tiers C and D</h3>")
    rcols = _reason_columns(scored)
    cd = scored[scored["tier"].astype(str).isin(["C", "D"])]
    if not rcols or len(cd) == 0 or cd[rcols].isna().all().all():
        parts.append(_skipped("无风险原因 (评分时未计算或无 C/D 主体)",
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
    parts.append(_note(f"{len(cd):,} entities in tiers C/D; up to {len(rcols)} reasons each (the features pushing "
                       "the risk up most, path attribution over the trees).")
                 + _table(tab, {"feature": "特征 feature", "desc_zh": "中文说明", "desc_en": "description",
                                "first": "首要原因次数 as 1st reason", "any": f"前{len(rcols)}原因次数 in top {len(rcols)}",
                                "share": "占C/D比例 share of C/D", "example_zh": "示例 example (zh)",
                                "example_en": "example (en)"},
                          {"first": _int, "any": _int, "share": lambda x: _pct(x, 1)}, table_id="reasons"))
    return "".join(parts)


def _section_plan(plan: pd.DataFrame | None, b: Bundle, Figure: Any) -> str:
    if plan is None:
        return _skipped("未提供抽查计划 plan", "no plan given (pass sampling.supervision_plan(scored))")
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
    by_tier.insert(0, "tier", [_tier_badge(t) for t in TIERS])
    by_tier.insert(1, "zh", [b.policy.tier_label(t, "zh") for t in TIERS])
    by_tier.insert(2, "posture", [f"{POSTURE_ZH.get(rates[t].flag, '')} {rates[t].flag}" for t in TIERS])
    pct2 = lambda x: _pct(x, 2)  # noqa: E731
    heads = {"tier": "等级 tier", "zh": "中文", "posture": "监管姿态 posture", "n": "主体数 n", "expected": "年预期抽查次数 expected / year",
             "per_entity": "每户年均 per entity", "share": "占抽查量 share of inspections",
             "policy_rate": "策略年抽查比例 policy annual rate", "pi_sum": "本次 Σπ (expected in campaign)",
             "town": "镇街 town", "pinyin": "pinyin", "per_100": "每百户 per 100 entities"}
    fmt = {"n": _int, "expected": _f(1), "per_entity": _f(3), "share": pct2, "policy_rate": pct2, "pi_sum": _f(1),
           "per_100": _f(2)}
    tier_html = _table(by_tier, heads, fmt, table_id="plan-tiers", raw_html=["tier"])

    town = plan["town"].astype(object).where(plan["town"].notna(), "(missing)").astype(str)
    gw = plan.assign(_e=e, _w=town).groupby("_w")
    by_town = pd.DataFrame({"n": gw.size(), "expected": gw["_e"].sum()})
    if has_pi:
        by_town["pi_sum"] = gw["pi"].sum()
    by_town = by_town.sort_values(["expected", "n"], ascending=False, kind="stable")
    by_town["per_100"] = 100 * by_town["expected"] / by_town["n"]
    by_town["share"] = by_town["expected"] / total if total > 0 else np.nan
    by_town.insert(0, "town", list(by_town.index))
    by_town.insert(1, "pinyin", _town_ascii(by_town.index))
    cols = ["town", "pinyin", "n", "expected", "per_100", "share"] + (["pi_sum"] if has_pi else [])
    town_html = _table(by_town[cols], heads, fmt, table_id="plan-towns")

    fig = Figure(figsize=(8.4, 3.4))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    ax1.bar(list(TIERS), by_tier["expected"].to_numpy(float), color=[TIER_COLORS[t] for t in TIERS])
    ax1.set(title="Expected inspections / year by tier", ylabel="inspections per year")
    y = np.arange(len(by_town))[::-1]
    ax2.barh(y, by_town["expected"].to_numpy(float), color="#1f3b63")
    ax2.set_yticks(y, list(by_town["pinyin"]))
    ax2.set(title="... by town", xlabel="inspections per year")
    fig.tight_layout()
    img = _img(fig, "expected inspections per year by tier and town")
    summary = f"Σ expected inspections per year: <b>{total:,.1f}</b> over {len(plan):,} entities"
    if has_pi:
        summary += (f"; current campaign Σπ = <b id=\"pi-sum\">{float(plan['pi'].sum()):,.2f}</b> "
                    f"(expected campaign size 本次预期抽取户数)")
    return (_note(summary + ".") + _figs(img) + "<h3>按等级 By tier</h3>" + tier_html
            + "<h3>按镇街 By town</h3>" + town_html)


def _section_monitoring(m: Any) -> str:
    if m is None:
        return _skipped("未提供监测结果 (yiwu-credit monitor)", "no monitoring result given (yiwu-credit monitor)")
    parts = [f"<p>Status 状态: {_status_badge({'ok': 'stable', 'watch': 'watch', 'retrain': 'act'}[m.status])} "
             f"<b>{_esc(m.status)}</b>" + (f" — {_esc('; '.join(m.reasons))}" if m.reasons else "") + "</p>",
             f"<pre>{_esc(m.summary())}</pre>"]
    if m.migration is not None:
        parts.append("<h3>等级迁移 Tier migration (rows: before, columns: after)</h3>"
                     + _table(m.migration.reset_index(), {"before": "之前 before"}))
    if m.performance is not None and m.performance.get("calibration_by_tier"):
        cal = pd.DataFrame(m.performance["calibration_by_tier"])
        parts.append("<h3>分级校准 Calibration by tier on new outcomes</h3>"
                     + _table(cal, fmt={c: _pct for c in ("share", "bad_rate", "ci_low", "ci_high", "predicted")
                                        if c in cal.columns}))
    return "".join(parts)


def _section_loop(loop: Any) -> str:
    if loop is None:
        return _skipped("未提供闭环模拟 (yiwu-credit simulate-loop)", "no closed-loop result given "
                        "(yiwu-credit simulate-loop)")
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        png = Path(loop.plot(Path(d) / "loop.png")).read_bytes()
    img = (f'<figure><img alt="closed loop" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
           "</figure>")
    by = loop.by_strategy().reset_index() if hasattr(loop, "by_strategy") else loop.cycles
    burden = loop.burden
    return (f"<pre>{_esc(loop.summary())}</pre>" + img + "<h3>按策略汇总 By strategy</h3>" + _table(by)
            + "<h3>抽查负担与命中率(按组) Burden and hit rate by group</h3>" + _table(burden))


def _section_frontier(frontier: Any) -> str:
    """The candidate policies: detections against the low-risk burden, the policy in force marked."""
    if frontier is None:
        return _skipped("未提供策略前沿 (yiwu-credit frontier)", "no policy frontier given (yiwu-credit frontier)")
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
        note += (f" Best on the frontier with tier A's share no higher: {_esc(b['name'])}, "
                 f"{b['detections']:,.1f} ({b['lift']:.2f}×), {b['share_below_median']:.1%} below the median.")
    cols = ["name", "in_force", "pareto", "detections", "lift", "share_tier_a", "share_below_median", "min_pi",
            "max_per_year", "rate_A", "rate_B", "rate_C", "rate_D"]
    cols += [c for c in t.columns if c.startswith("burden_")]
    f3, pct = _f(3), (lambda x: _pct(x, 1))
    fmt = {c: f3 for c in cols if c not in ("name", "in_force", "pareto")}
    fmt.update({"share_tier_a": pct, "share_below_median": pct, "min_pi": lambda x: f"{x:.2g}",
                "detections": _f(1)})
    return (_note(_esc(note)) + img + "<h3>候选策略 Candidates</h3>"
            + _table(t[cols].set_index("name", drop=False), fmt=fmt, table_id="frontier-candidates"))


def _section_training(b: Bundle) -> str:
    mt = b.manifest.get("metrics", {})
    sets = [k for k in ("train_oof", "test_out_of_time") if k in mt]
    if not sets:
        return _skipped("清单中无训练指标", "the bundle manifest has no training metrics")
    rows = [("n", "样本数 n", _int), ("base_rate", "违法率 base rate", lambda x: _pct(x, 2)),
            ("mean_predicted", "平均预测 mean predicted", lambda x: _pct(x, 2)), ("auc", "AUC", _f(3)),
            ("ks", "KS", _f(3)), ("brier", "Brier", _f(4))]
    data: dict[str, list[Any]] = {"metric": [r[1] for r in rows]}
    for s in sets:
        data[s] = [r[2](mt[s].get(r[0])) for r in rows]
    for t in TIERS:
        data["metric"].append(f"{t} 违法率 bad rate")
        for s in sets:
            data[s].append(_pct(mt[s].get("tier_bad_rates", {}).get(t), 2))
    for t in TIERS:
        data["metric"].append(f"{t} 占比 share")
        for s in sets:
            data[s].append(_pct(mt[s].get("tier_shares", {}).get(t), 2))
    tab = pd.DataFrame(data)
    tr = b.manifest.get("training", {})
    info = ", ".join(f"{k} = {v}" for k, v in sorted(tr.items()) if k != "data_fingerprint")
    out = (_note(f"From the bundle manifest ({_esc(b.version)}): {_esc(info)}. train_oof = out-of-fold on the "
                 "training population; test_out_of_time = a later population and later outcomes.")
           + _table(tab.set_index("metric", drop=False), {"metric": "指标 metric", "train_oof": "训练集(折外) train OOF",
                                                          "test_out_of_time": "跨期测试 out of time"},
                    table_id="training-metrics"))
    truth = mt.get("truth")
    if truth:
        tt = pd.DataFrame({"metric": list(truth), "value": [f"{float(v):.3f}" for v in truth.values()]})
        out += (_note("Synthetic training data: agreement with the simulator's true propensity.")
                + _table(tt.set_index("metric", drop=False), table_id="truth-metrics"))
    return out


# ------------------------------------------------------------------------ public API

def build_report(scored: pd.DataFrame, bundle: Bundle | str | None = None, *, features: pd.DataFrame | None = None,
                 outcomes: pd.Series | pd.DataFrame | None = None, plan: pd.DataFrame | None = None,
                 reference_features: pd.DataFrame | None = None, title: str | None = None,
                 as_of: str | pd.Timestamp | None = None, monitoring: Any = None, loop: Any = None,
                 warnings: Sequence[str] = (), frontier: Any = None) -> str:
    """One self-contained HTML page (a str) describing a scored population.

    Parameters
    ----------
    scored : ``score_entities(...).scored`` (entity_id index; needs credit_score, probability,
        tier; uses model_tier, overrides and reason_* columns when present).
    bundle : the Bundle that scored it (or a bundle path/name; default the shipped one).
    features : the scored feature matrix (``.features``), for CSI with ``reference_features``.
    outcomes : 0/1 outcomes ``y`` (Series, or DataFrame with column ``y``) indexed by entity_id,
        observed after ``as_of``; enables the evaluation section.
    plan : a supervision plan (entity_id index; tier, town, expected_per_year, optional pi).
    reference_features : the training-time feature matrix, for CSI.
    title : page title (default: bilingual report title). as_of : shown in the header.
    monitoring : a :class:`~yiwu_credit.model.monitoring.MonitorResult` (status, migration, drift).
    loop : a :class:`~yiwu_credit.pipeline.closed_loop.LoopResult` (closed loop and burden by group).
    frontier : a :class:`~yiwu_credit.supervision.frontier.Frontier` (candidate sampling policies).
    warnings : doubts about the scoring run (``score_entities(...).warnings``: stale data,
        partial histories), shown at the top of the page.

    Raises ImportError (naming ``pip install 'yiwu-credit[report]'``) without matplotlib, and
    ValueError for an empty ``scored``, missing columns or malformed outcomes/plan.
    """
    matplotlib, Figure = _mpl()
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    need = [c for c in ("credit_score", "probability", "tier") if c not in scored.columns]
    if need:
        raise ValueError(f"scored: missing column(s) {need}; pass score_entities(...).scored")
    if len(scored) == 0:
        raise ValueError("scored: no entities to report on")
    with matplotlib.rc_context(_RC):
        head_title, header = _header(scored, b, title, as_of)
        header += "".join(f'<p class="note warn">⚠ 数据提示 · data warning: {_esc(w)}</p>' for w in warnings)
        body = {
            "scores": _section_scores(scored, b, Figure),
            "evaluation": _section_evaluation(scored, b, outcomes, Figure),
            "importance": _section_importance(b, Figure),
            "scorecard": _section_scorecard(b),
            "stability": _section_stability(scored, b, features, reference_features, Figure),
            "overrides": _section_overrides(scored, b),
            "plan": _section_plan(plan, b, Figure),
            "monitoring": _section_monitoring(monitoring),
            "loop": _section_loop(loop),
            "frontier": _section_frontier(frontier),
            "training": _section_training(b),
        }
    sections = "".join(f'<section id="{a}"><h2>{i}. {_esc(zh)} · {_esc(en)}</h2>{body[a]}</section>'
                       for i, (a, zh, en) in enumerate(SECTIONS, start=1))
    foot = (f"<footer>yiwu_credit {__version__} · model {_esc(b.version)} · self-contained page: all charts are "
            "embedded, nothing is loaded from the network. 本页自包含, 不引用外部资源。</footer>")
    return ('<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"{head_title}<style>{_CSS}</style></head><body><main>{header}{sections}{foot}</main></body></html>\n")


def write_report(path: str | Path, scored: pd.DataFrame, bundle: Bundle | str | None = None, *,
                 features: pd.DataFrame | None = None, outcomes: pd.Series | pd.DataFrame | None = None,
                 plan: pd.DataFrame | None = None, reference_features: pd.DataFrame | None = None,
                 title: str | None = None, as_of: str | pd.Timestamp | None = None, monitoring: Any = None,
                 loop: Any = None, warnings: Sequence[str] = (), frontier: Any = None) -> Path:
    """Build the report (see :func:`build_report`) and write it atomically as UTF-8; returns the path."""
    text = build_report(scored, bundle, features=features, outcomes=outcomes, plan=plan,
                        reference_features=reference_features, title=title, as_of=as_of,
                        monitoring=monitoring, loop=loop, warnings=warnings, frontier=frontier)
    return write_text(path, text)
