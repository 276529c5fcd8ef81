"""Dates at the edge: a date is a whole date (year, month and day) or its row is refused, under the
contract and under the zh profile; the accepted formats are those of docs/data-contract.md; the
date options of the command line are argparse dates (exit 2)."""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yiwu_credit import load_dataset
from yiwu_credit.data import synth
from yiwu_credit.data.dates import Day, format_pattern, parse_dates, parse_text_dates, to_day
from yiwu_credit.data.sources.files import write_dataset
from yiwu_credit.data.sources.profile import load_profile
from yiwu_credit.errors import ConfigError, DataValidationError, UsageError

ZH_FORMATS = load_profile("zh").date_formats
#: partial dates: a year, a year and month, a digit short, a two-digit year — none is a date
PARTIAL = ["2024", "2024-03", "2024111", "202411", "2024/3", "24-03-01", "2024年3月", "2024.03", "3/5/2024",
           "2024-03-1", "2024-3-01", "20240", "2024-03-05T", "2024-W10-1"]
#: every documented format, as text, and the day it means
WHOLE_CONTRACT = [("2024-03-05", "2024-03-05"), ("2024-03-05 10:20", "2024-03-05"),
                  ("2024-03-05T10:20:30", "2024-03-05"), ("2024-03-05 10:20:30.250", "2024-03-05"),
                  ("2024-03-05T10:00:00+08:00", "2024-03-05"), ("2024-03-05T20:00:00Z", "2024-03-06"),
                  ("2024-03-05 09:15:00+0800", "2024-03-05")]
WHOLE_ZH = [("2024/03/05", "2024-03-05"), ("2024/3/5", "2024-03-05"), ("2024年03月05日", "2024-03-05"),
            ("2024年3月5日", "2024-03-05"), ("2024.03.05", "2024-03-05"), ("2024.3.5", "2024-03-05"),
            ("20240305", "2024-03-05")]


def _text(values: list[str]) -> pd.Series:
    return pd.Series(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def _days(values: list[str], formats: tuple[str, ...] = ()) -> list[str | None]:
    parsed, _ = parse_text_dates(_text(values), formats)
    return [None if np.isnat(v) else str(v.astype("datetime64[D]")) for v in parsed]


@pytest.fixture(scope="module")
def small_world():
    return synth.generate(300, seed=5)


@pytest.fixture(scope="module")
def sources(small_world, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dates")
    contract, _ = small_world.save(root / "contract", format="csv")
    zh = write_dataset(small_world.dataset, root / "zh", "zh", date_format="%Y/%m/%d")
    return {"contract": contract, "zh": zh}


def _penalties(d: Path, profile: str) -> tuple[Path, str]:
    return (d / "penalties.csv", "decided_on") if profile == "contract" else (d / "行政处罚.csv", "处罚决定日期")


def _load(d: Path, profile: str, **kw):
    return load_dataset(d, profile=None if profile == "contract" else "zh", **kw)


# ------------------------------------------------------------------ partial dates are refused, row named
@pytest.mark.parametrize("value", PARTIAL)
def test_partial_dates_are_not_dates(value):
    assert _days([value]) == [None]
    assert _days([value], ZH_FORMATS) == [None]
    assert parse_dates(pd.Series([value], dtype=object)).isna().all()


@pytest.mark.parametrize("profile", ["contract", "zh"])
@pytest.mark.parametrize("value", ["2024", "2024-03", "2024111", "202411", "2024/3", "24-03-01"])
def test_partial_date_in_a_source_refuses_the_row(sources, tmp_path, profile, value):
    d = tmp_path / profile
    shutil.copytree(sources[profile], d)
    path, header = _penalties(d, profile)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[2, header] = value                                # data row 3
    df.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as ei:
        _load(d, profile)
    probs = [p for p in ei.value.problems if (p.table, p.column) == ("penalties", "decided_on")]
    assert probs and "not an ISO date" in probs[0].reason and probs[0].rows == (3,), ei.value
    ds = _load(d, profile, strict=False)                     # lenient: that row, and only it, is quarantined
    rej = ds.rejects[ds.rejects["table"] == "penalties"]
    assert list(rej["row"]) == [3] and list(rej["column"]) == ["decided_on"] and "not an ISO date" in rej["reason"].iloc[0]
    n_in, kept, n_rej = ds.counts["penalties"]
    assert n_in == kept + n_rej == len(df) and n_rej == 1


# ------------------------------------------------------------------ whole dates in every documented format
@pytest.mark.parametrize("value, day", WHOLE_CONTRACT)
def test_whole_iso_dates_are_read_under_every_profile(value, day):
    assert _days([value]) == [day]
    assert _days([value], ZH_FORMATS) == [day]


@pytest.mark.parametrize("value, day", WHOLE_ZH)
def test_whole_zh_dates_are_read_under_zh_only(value, day):
    assert _days([value], ZH_FORMATS) == [day]
    assert _days([value]) == [None]                           # the contract is ISO only


@pytest.mark.parametrize("fmt", ["%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d", "%Y%m%d"])
def test_a_zh_source_in_each_format_loads_the_same_dates(sources, small_world, tmp_path, fmt):
    d = write_dataset(small_world.dataset, tmp_path / "zh", "zh", date_format=fmt)
    ds = load_dataset(d, profile="zh")
    pd.testing.assert_series_equal(ds.penalties["decided_on"].reset_index(drop=True),
                                   load_dataset(sources["contract"]).penalties["decided_on"].reset_index(drop=True))


@pytest.mark.parametrize("fmt", ["%Y-%m", "%Y", "%m/%d", "%y/%m/%d", "%d %b %Y", "%Y/%m/%d/%d", "%Y-%j"])
def test_profile_formats_must_be_whole_dates(tmp_path, fmt):
    with pytest.raises(ConfigError, match=re.escape(fmt)):
        format_pattern(fmt)
    p = tmp_path / "p.toml"
    p.write_text(f'[meta]\nname = "x"\n[dates]\nformats = ["{fmt}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[dates\]\.formats"):
        load_profile(p)


def test_the_documented_formats_are_the_parser_s():
    doc = (Path(__file__).parents[2] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    section = doc.split("## Dates", 1)[1].split("\n## ", 1)[0]
    for fmt in ZH_FORMATS:
        assert f"| `{fmt}` |" in section, fmt
    examples = re.findall(r"\| `(\d[^`]*)`(?:, `([^`]*)`)?[^|`]* \|", section)
    assert len(examples) == 7, examples                       # one row per format, each with its example
    for example in examples:
        for text in filter(None, example):
            assert _days([text], ZH_FORMATS) != [None], text


def test_fixed_width_fields_are_exact():
    assert format_pattern("%Y%m%d").fullmatch("20241101") and not format_pattern("%Y%m%d").fullmatch("2024111")
    assert format_pattern("%Y/%m/%d").fullmatch("2024/3/5") and not format_pattern("%Y/%m/%d").fullmatch("2024/003/5")
    assert not format_pattern("%Y/%m/%d").fullmatch("24/3/5")


# ------------------------------------------------------------------ property: accepted ⇒ the day its text names
def _normalised(text: str) -> datetime.date:
    """The day a text names, by hand: a zoned ISO timestamp on its Asia/Shanghai date; otherwise
    year, month and day from the digit groups (8 digits: YYYYMMDD)."""
    t = text.strip()
    if re.search(r"(Z|z|[+-]\d{2}(:?\d{2})?)$", t) and ("T" in t or " " in t):
        dt = datetime.datetime.fromisoformat(re.sub(r"\s+(?=[Zz+-])", "", t).replace("z", "Z"))
        return dt.astimezone(ZoneInfo("Asia/Shanghai")).date()
    groups = re.findall(r"\d+", t)
    if len(groups[0]) == 8:
        y, m, d = groups[0][:4], groups[0][4:6], groups[0][6:]
    else:
        y, m, d = groups[:3]
    return datetime.date.fromisoformat(f"{y}-{int(m):02d}-{int(d):02d}")


_rendered = st.builds(
    lambda y, m, d, fmt, pad: fmt.format(y=y, m=f"{m:02d}" if pad else str(m), d=f"{d:02d}" if pad else str(d)),
    st.integers(1890, 2110), st.integers(0, 13), st.integers(0, 32),
    st.sampled_from(["{y}-{m}-{d}", "{y}/{m}/{d}", "{y}年{m}月{d}日", "{y}.{m}.{d}", "{y}{m}{d}", "{y}-{m}",
                     "{y}{m}", "{y}-{m}-{d}T10:30", "{y}-{m}-{d} 23:59:59Z", "{y}-{m}-{d}T00:30:00+08:00",
                     "{y}-{m}-{d}T16:00-0500"]),
    st.booleans())
_noise = st.text(alphabet="0123456789-/.年月日T:Z+ ", max_size=22)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_rendered, _noise), min_size=1, max_size=30), st.sampled_from([(), ZH_FORMATS]))
def test_any_accepted_string_is_the_day_it_names(values, formats):
    values = [v.strip() or "x" for v in values]
    for v, day in zip(values, _days(values, formats), strict=True):
        if day is None:
            continue
        assert len(re.findall(r"\d+", v)) >= 3 or re.fullmatch(r"\d{8}", v), v    # never a partial date
        assert datetime.date.fromisoformat(day) == _normalised(v), v


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_rendered, _noise), min_size=1, max_size=30))
def test_the_one_value_reader_agrees_with_the_column_parser(values):
    """``to_day`` (online records) accepts exactly what the column parser accepts, as the same day."""
    values = [v.strip() or "x" for v in values]
    for v, day in zip(values, _days(values), strict=True):
        if day is None:
            with pytest.raises(UsageError):
                to_day(v)
        else:
            assert str(Day(to_day(v))) == day, v


# ------------------------------------------------------------------ date options: argparse dates, exit 2
@pytest.mark.parametrize("window, msg", [(("2026-02-30", "2026-04-01"), "calendar date"),
                                          (("2026-03", "2026-04-01"), "not a date"),
                                          (("2026-03-01", "soon"), "not a date"),
                                          (("2026-03-01", "20260401"), "not a date"),
                                          (("2026-05-01", "2026-04-01"), "after end")])
def test_draw_window_is_a_usage_error(usage_error, tmp_path, window, msg):
    err = usage_error("draw", "--plan", tmp_path / "p.csv", "--seed", "1", "--window", *window,
                 "--out", tmp_path / "o.csv")
    assert msg in err and "--window" in err


@pytest.mark.parametrize("args, msg", [(("--campaign-start", "2026-13-01", "--campaign-end", "2026-04-01"),
                                        "calendar date"),
                                       (("--campaign-start", "2026", "--campaign-end", "2026-04-01"), "not a date"),
                                       (("--campaign-start", "2026-03-01", "--campaign-end", "2026/4/1"), "not a date"),
                                       (("--campaign-start", "2026-05-01", "--campaign-end", "2026-04-01"), "after end"),
                                       (("--campaign-start", "2026-03-01"), "give both")])
def test_estimate_campaign_window_is_a_usage_error(usage_error, tmp_path, args, msg):
    err = usage_error("estimate", "--results", tmp_path / "r.csv", "--plan", tmp_path / "p.csv",
                 "--drawn", tmp_path / "d.csv", "--out", tmp_path / "e.csv", *args)
    assert msg in err
