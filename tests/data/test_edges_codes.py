"""Coded columns whose values drive rules (issue item 11): 列入事由 as codes with legal-sentence
patterns, unknown values counted, the policy's exclusions checked against the codes, and keys
normalised (format characters such as zero-width spaces removed, NFKC) in the one place."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yiwu_credit.data import synth
from yiwu_credit.data.checks import Findings, check_entities, coerce, key_text
from yiwu_credit.data.contract import LIST_REASONS, TABLES, YIWU_TOWNS
from yiwu_credit.data.dataset import load_dataset
from yiwu_credit.data.sources.files import write_dataset
from yiwu_credit.data.sources.profile import load_profile
from yiwu_credit.errors import ConfigError
from yiwu_credit.model.labels import build_labels
from yiwu_credit.policy import load_policy

USCC = "91330782MA2X000198"
ZH = load_profile("zh")


def _coerce(table: str, column: str, values: list, profile=ZH) -> tuple[list, Findings]:
    """``values`` in ``column`` of a one-column-varying frame of ``table``, coerced."""
    n = len(values)
    base = {"list_records": {"entity_id": USCC, "list": "abnormal_operation", "entered_on": "2024-01-01",
                             "removed_on": None, "reason": None},
            "entities": {"entity_id": USCC, "entity_type": "enterprise", "industry": "F5137", "town": "稠城街道",
                         "established_on": "2020-01-01", "registered_capital": 1.0, "employees": 1.0,
                         "status": "active", "closed_on": None},
            "penalties": {"entity_id": USCC, "decided_on": "2024-01-01", "procedure": "general", "fine_cny": 1.0,
                          "domain": "x", "repaired_on": None},
            "inspections": {"entity_id": USCC, "inspected_on": "2024-01-01", "result": "no_problem",
                            "campaign_id": None, "inclusion_prob": None, "department": None}}[table]
    df = pd.DataFrame({c: [v] * n for c, v in base.items()})
    df[column] = pd.Series(values, dtype=object)
    f = Findings()
    out = coerce(TABLES[table], df.astype(object), f, profile)
    return [None if pd.isna(v) else v for v in out[column].tolist()], f


# ------------------------------------------------------------------ reasons as legal sentences
REAL_SENTENCES = [
    ("未依照《企业信息公示暂行条例》第八条规定的期限公示年度报告的", "annual_report"),
    ("未按照《企业信息公示暂行条例》第八条规定的期限公示年度报告的", "annual_report"),
    ("未按照《个体工商户年度报告暂行办法》规定报送年度报告的", "annual_report"),
    ("未依照《农民专业合作社年度报告公示暂行办法》规定报送年度报告的", "annual_report"),
    ("未在工商行政管理部门依照《企业信息公示暂行条例》第十条规定责令的期限内公示有关企业信息的", "instant_info"),
    ("未在市场监督管理部门依照《企业信息公示暂行条例》第十条规定责令的期限内公示有关企业信息的", "instant_info"),
    ("未按规定公示即时信息", "instant_info"),
    ("公示企业信息隐瞒真实情况、弄虚作假的", "false_info"),
    ("公示信息隐瞒真实情况，弄虚作假", "false_info"),
    ("通过登记的住所或者经营场所无法联系的", "unreachable"),
    ("通过登记的经营场所无法联系的", "unreachable"),
    ("通过登记的住所无法取得联系的", "unreachable"),
    ("被列入经营异常名录届满3年仍未履行相关义务的", "serious_violation"),
    ("有履行能力而拒不履行生效法律文书确定义务的", "court_judgment"),
    ("（企业信息公示暂行条例）第八条 未按期公示年度报告", "annual_report"),  # full-width brackets
    ("annual_report", "annual_report"),  # contract codes are read under any profile
]


@pytest.mark.parametrize("sentence, code", REAL_SENTENCES)
def test_legal_sentences_map_to_reason_codes_under_zh(sentence, code):
    got, f = _coerce("list_records", "reason", [sentence])
    assert got == [code]
    assert not f.problems()
    assert not any("read as 'other'" in n for n in f.notes), f.notes


@pytest.mark.parametrize("sentence", [
    "其他原因", "未按规定报送统计资料", "经营范围变更未备案", "serious violation", "列入事由不详",
])
def test_unknown_reasons_are_other_counted_and_shown(sentence):
    got, f = _coerce("list_records", "reason", [sentence, sentence, "通过登记的住所或者经营场所无法联系的", None])
    assert got == ["other", "other", "unreachable", None]
    assert not f.problems()  # the listing is kept: only its ground is unknown
    note = [n for n in f.notes if "read as 'other'" in n]
    assert len(note) == 1 and note[0].startswith("list_records.reason: 2 value(s) match no code")
    assert repr(sentence) in note[0]


@pytest.mark.parametrize("sentence, codes", [
    ("因公示信息虚假且逾期未报送年度报告", "annual_report/false_info"),
    ("年度报告中隐瞒真实情况", "annual_report/false_info"),
    ("被列入经营异常名录届满3年且通过登记的住所无法联系", "serious_violation/unreachable"),
])
def test_a_reason_matching_two_codes_is_not_guessed(sentence, codes):
    got, f = _coerce("list_records", "reason", [sentence])
    assert got == ["other"]
    assert any("patterns of several codes" in n and codes in n for n in f.notes), f.notes


def test_contract_profile_reads_codes_and_counts_the_rest():
    got, f = _coerce("list_records", "reason", ["annual_report", "unreachable", "late report", None],
                     profile=None)
    assert got == ["annual_report", "unreachable", "other", None]
    assert any("1 value(s) match no code" in n and "'late report'" in n for n in f.notes)


@pytest.mark.parametrize("column, table, value", [
    ("procedure", "penalties", "听证程序"), ("result", "inspections", "合格"), ("list", "list_records", "黑名单"),
    ("entity_type", "entities", "外资企业"), ("status", "entities", "迁出"),
])
def test_other_rule_driving_codes_without_fallback_are_still_refused(column, table, value):
    got, f = _coerce(table, column, [value])
    (p,) = [p for p in f.problems() if p.column == column]
    assert "not one of" in p.reason and repr(value) in p.reason


# ------------------------------------------------------------------ same labels, contract or zh
AS_OF = "2023-06-30"


@pytest.fixture(scope="module")
def small_world():
    return synth.generate(400, seed=5)


def _rewrite_reasons(d, mapping: dict[str, str]) -> None:
    path = d / "名单记录.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    inverse = {v[0]: k for k, v in ZH_EXACT.items()}
    df["列入事由"] = df["列入事由"].map(lambda s: mapping.get(inverse.get(s, ""), s))
    df.to_csv(path, index=False, encoding="utf-8")


ZH_EXACT = {code: [v for v, c in ZH.codes["reason"].items() if c == code] for code in LIST_REASONS}
#: other sentences of the same grounds, matched only by the profile's patterns
PATTERN_ONLY = {"annual_report": "未按照《个体工商户年度报告暂行办法》规定报送年度报告的",
                "unreachable": "通过登记的经营场所无法联系的"}


def test_label_rate_is_the_same_for_codes_and_zh_sentences(small_world, tmp_path):
    ds = small_world.dataset
    lr = ds.list_records
    assert set(lr["reason"]) <= set(LIST_REASONS)
    contract = tmp_path / "contract"
    write_dataset(ds, contract, "contract")
    zh = write_dataset(ds, tmp_path / "zh", "zh")
    assert "年度报告" in (zh / "名单记录.csv").read_text(encoding="utf-8")  # written as legal sentences
    alt = write_dataset(ds, tmp_path / "alt", "zh")
    _rewrite_reasons(alt, PATTERN_ONLY)
    y = {name: build_labels(load_dataset(p, profile=prof), AS_OF)["y"]
         for name, p, prof in (("contract", contract, None), ("zh", zh, "zh"), ("alt", alt, "zh"))}
    assert y["contract"].equals(build_labels(ds, AS_OF)["y"])
    pd.testing.assert_series_equal(y["zh"], y["contract"])
    pd.testing.assert_series_equal(y["alt"], y["contract"])
    # the test can fail: read without the reason codes, the late-report listings become labels
    raw = (resources.files("yiwu_credit") / "resources" / "profiles" / "zh.toml").read_text("utf-8")
    start = raw.index("[codes.reason]")
    no_reason = raw[:start] + raw[raw.index("[codes.bool]"):]
    (tmp_path / "noreason.toml").write_text(no_reason, encoding="utf-8")
    ds_free = load_dataset(zh, profile=tmp_path / "noreason.toml")
    assert any("reason" in n and "read as 'other'" in n for n in ds_free.notes)
    assert build_labels(ds_free, AS_OF)["y"].mean() > y["contract"].mean()


# ------------------------------------------------------------------ the policy's exclusions
@pytest.mark.parametrize("bad", ['"annual_reprot"', '"年度报告"', '"ANNUAL_REPORT"', '"late_report"', '"annual_report", 1'])
def test_policy_exclusion_naming_no_reason_code_is_refused(tmp_path, bad):
    raw = (resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022.toml").read_text("utf-8")
    line = 'abnormal_operation_exclude_reasons = ["annual_report"]'
    assert line in raw
    p = tmp_path / "p.toml"
    p.write_text(raw.replace(line, f"abnormal_operation_exclude_reasons = [{bad}]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"abnormal_operation_exclude_reasons.*expected a list drawn from"):
        load_policy(p)


def test_policy_exclusion_codes_are_reason_codes(tmp_path):
    assert set(load_policy().labels.abnormal_operation_exclude_reasons) <= set(LIST_REASONS)
    raw = (resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022.toml").read_text("utf-8")
    p = tmp_path / "p.toml"
    p.write_text(raw.replace('exclude_reasons = ["annual_report"]', 'exclude_reasons = ["annual_report", "other"]'),
                 encoding="utf-8")
    assert load_policy(p).labels.abnormal_operation_exclude_reasons == ("annual_report", "other")


# ------------------------------------------------------------------ profile patterns validated
@pytest.mark.parametrize("pattern, match", [
    ("re:年度(报告", "bad regular expression"), ("re:", "matches empty text"), ("re:.*", "matches empty text"),
    ("re:年报|", "matches empty text"), ("re:（年报）", "NFKC"), ("re:ＡＢ", "NFKC"),
])
def test_bad_patterns_are_refused_on_load(tmp_path, pattern, match):
    p = tmp_path / "p.toml"
    p.write_text(f'[meta]\nname = "x"\n[codes.reason]\nannual_report = ["{pattern}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"\[codes.reason\]\.annual_report: .*{match}"):
        load_profile(p)


def test_pattern_for_an_unknown_code_is_refused(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[meta]\nname = "x"\n[codes.reason]\nlate = ["re:年报"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'late' is not one of"):
        load_profile(p)


# ------------------------------------------------------------------ keys: format characters, NFKC
@pytest.mark.parametrize("table, column, dirty, clean", [
    ("entities", "town", "稠城\u200b街道", "稠城街道"),
    ("entities", "town", "\ufeff佛堂镇", "佛堂镇"),
    ("entities", "town", "义亭镇\u200d\u2060", "义亭镇"),
    ("entities", "town", "苏溪镇\u200b\u3000", "苏溪镇"),
    ("entities", "industry", "Ｆ５１３７", "F5137"),
    ("entities", "industry", "F51\u200b37", "F5137"),
    ("entities", "entity_type", "企\u200b业", "enterprise"),
    ("entities", "status", "存续\u00ad", "active"),
    ("penalties", "procedure", "一般\u200e程序", "general"),
    ("penalties", "procedure", "ｇｅｎｅｒａｌ", "general"),
    ("inspections", "result", "未发现\u200b问题", "no_problem"),
    ("list_records", "list", "\u202a经营异常名录\u202c", "abnormal_operation"),
    ("list_records", "reason", "通过登记的住所\u200b或者经营场所无法联系的", "unreachable"),
])
def test_format_characters_and_full_width_are_normalised_in_keys(table, column, dirty, clean):
    got, f = _coerce(table, column, [dirty, clean])
    assert got == [clean, clean]
    assert not [p for p in f.problems() if p.column == column]
    assert any(n.startswith(f"{table}.{column}: 1 value(s) normalised") for n in f.notes), f.notes


def test_free_text_columns_are_not_normalised():
    got, f = _coerce("penalties", "domain", ["食品\u200b安全"])
    assert got == ["食品\u200b安全"] and not f.notes


def test_a_zero_width_space_does_not_move_an_entity_to_other(small_world, tmp_path):
    ds = small_world.dataset
    d = write_dataset(ds, tmp_path / "zh", "zh")
    path = d / "市场主体.csv"
    ent = pd.read_csv(path, dtype=str, keep_default_na=False)
    ent["所属镇街"] = ent["所属镇街"].str[:1] + "\u200b" + ent["所属镇街"].str[1:]
    ent.to_csv(path, index=False, encoding="utf-8")
    loaded = load_dataset(d, profile="zh")
    assert loaded.entities["town"].isin(YIWU_TOWNS).all()
    assert loaded.entities["town"].tolist() == ds.entities["town"].tolist()
    assert any(n.startswith(f"entities.town: {len(ent):,} value(s) normalised") for n in loaded.notes)
    assert not any("Yiwu towns" in n for n in loaded.notes)
    ent.loc[ent.index[:2], "所属镇街"] = ["义乌", "稠城"]
    ent.to_csv(path, index=False, encoding="utf-8")
    notes = load_dataset(d, profile="zh").notes
    assert "entities.town: 2 value(s) not one of the 14 Yiwu towns/streets (grouped as 其他 by the model)" in notes


@pytest.mark.parametrize("town", ["稠城", "义乌市稠城街道", "Choucheng", "稠城街道办事处"])
def test_towns_outside_the_list_are_counted(town):
    df = pd.DataFrame({"town": [town, "佛堂镇", None], "industry": ["F5137"] * 3, "entity_id": [USCC] * 3,
                       "closed_on": pd.NaT, "established_on": pd.Timestamp("2020-01-01"), "status": "active"})
    f = Findings()
    check_entities(df, f, None, np.zeros(3, bool), pa.array([USCC] * 3))
    assert "entities.town: 1 value(s) not one of the 14 Yiwu towns/streets (grouped as 其他 by the model)" in f.notes


_KEYS = ([("entities", "town", t) for t in YIWU_TOWNS[:4]]
         + [("entities", "entity_type", v) for v in ZH.codes["entity_type"]]
         + [("penalties", "procedure", v) for v in ZH.codes["procedure"]]
         + [("inspections", "result", v) for v in list(ZH.codes["result"])[:4]]
         + [("list_records", "reason", s) for s, _ in REAL_SENTENCES[:8]])


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(_KEYS), data=st.data())
def test_inserting_format_characters_never_changes_the_code(key, data):
    table, column, value = key
    cf = st.characters(categories=["Cf"])
    inserts = data.draw(st.lists(st.tuples(st.integers(0, len(value)), cf), min_size=1, max_size=4))
    dirty = value
    for at, ch in sorted(inserts, reverse=True):
        dirty = dirty[:at] + ch + dirty[at:]
    got, _ = _coerce(table, column, [value, dirty])
    assert got[1] == got[0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(categories=["Lo", "Lu", "Nd", "Cf", "Zs"]), max_size=8), min_size=1,
                max_size=6))
def test_key_text_equals_the_plain_rule_per_value(values):
    """The vectorised normalisation equals, value by value: drop Cf, NFKC, trim, blank → missing."""
    import unicodedata

    def plain(v: str):
        v = unicodedata.normalize("NFKC", "".join(c for c in v if unicodedata.category(c) != "Cf")).strip()
        return v or None

    trimmed = [v.strip() or None for v in values]  # what key_text is given: trimmed, blank missing
    got, _ = key_text(pd.Series(trimmed, dtype="str"))
    assert [None if pd.isna(v) else v for v in got.tolist()] == [None if v is None else plain(v) for v in trimmed]


def test_key_text_leaves_ascii_as_it_is():
    s = pd.Series(["F5137", "general", None], dtype="str")
    out, n = key_text(s)
    assert out is s and n == 0
    assert np.array_equal(out.isna(), s.isna())


@pytest.mark.parametrize("label, code", [
    ("发现问题已经责令改正", "corrected"), ("通过登记的住所（经营场所）无法联系", "unreachable"),
    ("通过登记的住所(经营场所)无法联系", "unreachable"), ("已关闭停业或正在组织清算", "closed"),
    ("违反其他部门相关规定", "other_dept"),
])
def test_result_label_variants_of_the_policy_notes_map_under_zh(label, code):
    got, f = _coerce("inspections", "result", [label])
    assert got == [code] and not f.problems()


@pytest.mark.parametrize("command", ["score", "monitor", "report", pytest.param("train", marks=pytest.mark.slow)])
def test_every_command_that_loads_data_prints_the_unmatched_reasons(small_world, tmp_path, command, capsys):
    """A reason read as ``other`` changes labels and features: every command that loads a dataset
    says so (not only validate and score)."""
    from yiwu_credit.cli import main

    d = tmp_path / "w"
    small_world.dataset.save(d, format="csv")
    lr = pd.read_csv(d / "list_records.csv", dtype=str, keep_default_na=False)
    lr.loc[lr["reason"] == "annual_report", "reason"] = "Annual report not filed"
    assert (lr["reason"] == "Annual report not filed").any()
    lr.to_csv(d / "list_records.csv", index=False)
    args = {"score": ["--as-of", "2026-01-01", "--out", tmp_path / "s.csv"],
            "monitor": ["--as-of", "2025-01-01"],
            "report": ["--as-of", "2025-01-01", "--out", tmp_path / "r.html"],
            "train": ["--as-of", "2023-01-01", "--out", tmp_path / "m"]}[command]
    assert main([command, "--data", str(d), *map(str, args)]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "Annual report not filed" in out
