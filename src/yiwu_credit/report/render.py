"""Rendering helpers of the HTML report: escaping, number formats, badges, tables, embedded PNGs.

Deterministic: the same inputs give the same bytes (PNG metadata stripped, a fixed hash salt).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..policy import TIERS

__all__ = ["CSS", "DPI", "RC", "STATUS_ZH", "TIER_COLORS", "TOWN_PINYIN", "esc", "figs_div", "fmt_int", "fmt_num",
           "fmt_pct", "html_table", "is_missing", "mpl", "note_p", "png_bytes", "png_img", "skipped_p",
           "status_badge", "tier_badge", "tier_shares", "town_ascii"]

TIER_COLORS = {"A": "#2e7d32", "B": "#1f77b4", "C": "#ef8c00", "D": "#c62828"}
DPI = 100

TOWN_PINYIN = {
    "稠城街道": "Choucheng", "福田街道": "Futian", "江东街道": "Jiangdong", "稠江街道": "Choujiang",
    "北苑街道": "Beiyuan", "后宅街道": "Houzhai", "廿三里街道": "Niansanli", "城西街道": "Chengxi",
    "佛堂镇": "Fotang", "苏溪镇": "Suxi", "上溪镇": "Shangxi", "大陈镇": "Dachen", "义亭镇": "Yiting",
    "赤岸镇": "Chi'an", "其他": "Other",
}
STATUS_ZH = {"stable": "稳定", "watch": "关注", "retrain": "需重训", "": "—"}

CSS = """
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
.s-stable{background:#2e7d32}.s-watch{background:#ef8c00}.s-retrain{background:#c62828}
.tier{display:inline-block;min-width:1.4em;text-align:center;border-radius:3px;color:#fff;font-weight:700}
.t-A{background:#2e7d32}.t-B{background:#1f77b4}.t-C{background:#ef8c00}.t-D{background:#c62828}
nav ol{columns:2;font-size:.9em}nav a{color:#1f3b63}
.meta td:first-child{color:#555}
footer{margin-top:3em;color:#888;font-size:.8em}
"""



def mpl() -> Any:
    """matplotlib's Figure class (Agg), or a clear ImportError."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised by a monkeypatched test
        raise ImportError("the HTML report needs matplotlib, an optional dependency: "
                          "pip install 'yiwu-credit[report]'") from e
    return matplotlib, Figure


RC = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "legend.fontsize": 8, "legend.frameon": False, "figure.dpi": DPI, "savefig.dpi": DPI,
    "svg.hashsalt": "yiwu-credit", "path.simplify": True,
}


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and np.isnan(x))


def fmt_pct(x: Any, d: int = 1) -> str:
    return "—" if is_missing(x) else f"{100 * float(x):.{d}f}%"


def fmt_num(d: int) -> Callable[[Any], str]:
    return lambda x: "—" if is_missing(x) else f"{float(x):,.{d}f}"


def fmt_int(x: Any) -> str:
    return "—" if is_missing(x) else f"{int(x):,}"


def tier_badge(t: str) -> str:
    return f'<span class="tier t-{esc(t)}">{esc(t)}</span>'


def status_badge(s: str) -> str:
    if not s:
        return "—"
    return f'<span class="badge s-{s}">{esc(s)} {esc(STATUS_ZH[s])}</span>'


def note_p(text: str) -> str:
    return f'<p class="note">{text}</p>'


def skipped_p(zh: str, en: str) -> str:
    return f'<p class="skipped">Skipped: {esc(en)} · 已跳过: {esc(zh)}</p>'


def html_table(df: pd.DataFrame, headers: dict[str, str] | None = None,
           fmt: dict[str, Callable[[Any], str]] | None = None, *, table_id: str | None = None,
           raw_html: Iterable[str] = ()) -> str:
    """An HTML table of ``df`` (columns in order). ``fmt`` formats cells; numeric cells also carry
    their exact value in ``data-value``. Columns in ``raw_html`` are inserted unescaped."""
    headers, fmt, raw = headers or {}, fmt or {}, set(raw_html)
    head = "".join(f"<th>{esc(headers.get(c, c))}</th>" for c in df.columns)
    rows = []
    for key, rec in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        cells = []
        for c, v in zip(df.columns, rec, strict=True):
            text = v if c in raw else esc(fmt[c](v) if c in fmt else ("—" if is_missing(v) else v))
            numeric = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
            if numeric and not is_missing(v):
                cells.append(f'<td class="num" data-col="{esc(c)}" data-value="{float(v)!r}">{text}</td>')
            else:
                cells.append(f'<td data-col="{esc(c)}">{text}</td>')
        rows.append(f'<tr data-key="{esc(key)}">{"".join(cells)}</tr>')
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{tid}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def png_img(fig: Any, alt: str) -> str:
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figs_div(*imgs: str) -> str:
    return f'<div class="figs">{"".join(imgs)}</div>'


def town_ascii(names: Iterable[str]) -> list[str]:
    out = []
    for i, n in enumerate(names):
        s = str(n)
        out.append(TOWN_PINYIN.get(s, s if s.isascii() else f"town #{i + 1}"))
    return out


def tier_shares(s: pd.Series) -> pd.Series:
    return s.value_counts(normalize=True).reindex(list(TIERS), fill_value=0.0)
