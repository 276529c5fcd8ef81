"""Real sources: a bureau's Chinese export (profile ``zh``: Chinese file names, headers and codes,
GB18030 CSVs, an Excel table) gives the same dataset, features and scores as the contract's own
format; what the profile maps is reported; anything it does not map is a named error."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from yiwu_credit import load_dataset
from yiwu_credit.cli import main
from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.sources.files import write_dataset
from yiwu_credit.data.sources.profile import load_profile
from yiwu_credit.errors import ConfigError, DataValidationError
from yiwu_credit.features.build import build_features
from yiwu_credit.pipeline.scoring import score_entities

AS_OF = "2026-01-01"


@pytest.fixture(scope="module")
def sources(world, tmp_path_factory):
    """The same world as contract CSV, Parquet and a zh export (GB18030 CSVs, entities as .xlsx)."""
    root = tmp_path_factory.mktemp("sources")
    contract, _ = world.save(root / "contract", format="csv")
    parquet = world.dataset.save(root / "parquet", format="parquet")
    zh = write_dataset(world.dataset, root / "zh", "zh", encoding="gb18030", excel=("entities",),
                       date_format="%Y/%m/%d")
    return {"contract": contract, "parquet": parquet, "zh": zh}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and code != 1, out + err
    return code, out + err


def test_zh_export_looks_like_a_bureau_export(sources):
    names = sorted(p.name for p in sources["zh"].iterdir())
    assert "市场主体.xlsx" in names and "行政处罚.csv" in names and not any(n.startswith("entities") for n in names)
    raw = (sources["zh"] / "行政处罚.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")
    assert text.startswith("统一社会信用代码,处罚决定日期,程序类型") and "一般程序" in text and "/" in text.split("\n")[1]


@pytest.mark.slow
def test_every_source_gives_the_same_dataset_and_features(sources):
    ds = {k: load_dataset(v, profile="zh" if k == "zh" else None) for k, v in sources.items()}
    base = ds["contract"]
    for k, d in ds.items():
        assert d.counts == base.counts and len(d.rejects) == 0, k
        for name in TABLES:
            pd.testing.assert_frame_equal(d.table(name), base.table(name), obj=f"{k}.{name}")
        pd.testing.assert_frame_equal(build_features(d, AS_OF), build_features(base, AS_OF), obj=k)
    zh = score_entities(ds["zh"], AS_OF, reasons="all").scored
    pd.testing.assert_frame_equal(zh, score_entities(base, AS_OF, reasons="all").scored)


@pytest.mark.slow
def test_cli_reports_the_mapping_and_scores_identically(capsys, sources, tmp_path):
    code, out = run(capsys, "validate", sources["zh"], "--profile", "zh")
    assert code == 0 and "no problems found" in out
    assert "市场主体.xlsx (xlsx" in out and "行政处罚.csv (csv, GB18030; 统一社会信用代码→entity_id" in out
    assert "mapped to contract codes by profile 'zh'" in out
    code, _ = run(capsys, "score", "--data", sources["zh"], "--profile", "zh", "--as-of", AS_OF, "--out", tmp_path / "a.csv")
    assert code == 0
    code, _ = run(capsys, "score", "--data", sources["contract"], "--as-of", AS_OF, "--out", tmp_path / "b.csv")
    assert code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    code, out = run(capsys, "validate", sources["zh"])  # without the profile the tables are not found
    assert code == 3 and "file not found: entities" in out


def test_unmapped_header_and_value_are_named(capsys, sources, tmp_path):
    d = tmp_path / "zh"
    shutil.copytree(sources["zh"], d)
    p = d / "行政处罚.csv"
    df = pd.read_csv(p, encoding="gb18030", dtype=str, keep_default_na=False)
    df["经办人"] = "张三"
    df.loc[2, "程序类型"] = "听证程序"
    df.to_csv(p, index=False, encoding="gb18030")
    code, out = run(capsys, "validate", d, "--profile", "zh")
    assert code == 3 and "经办人" in out and "行政处罚.csv" in out and "ignore" in out
    df = df.drop(columns=["经办人"])
    df.to_csv(p, index=False, encoding="gb18030")
    with pytest.raises(DataValidationError) as ei:
        load_dataset(d, profile="zh")
    msg = str(ei.value)
    assert "penalties.procedure" in msg and "'听证程序'" in msg and "file 行政处罚.csv, header 程序类型" in msg
    assert "rows 3" in msg
    ds = load_dataset(d, profile="zh", strict=False)
    r = ds.rejects.iloc[0]
    assert (r["table"], r["row"], r["file"], r["header"]) == ("penalties", 3, "行政处罚.csv", "程序类型")
    code, out = run(capsys, "score", "--data", d, "--profile", "zh", "--as-of", AS_OF, "--out", tmp_path / "s.csv")
    assert code == 0 and "quarantined penalties: 1 of" in out
    rej = pd.read_csv(tmp_path / "s.rejects.csv", dtype=str)
    hit = rej[rej["kind"] == "rejected"].iloc[0]
    assert (hit["table"], hit["row"], hit["file"], hit["header"]) == ("penalties", "3", "行政处罚.csv", "程序类型")
    assert "听证程序" in hit["reason"]


def test_missing_column_names_the_expected_header(sources, tmp_path):
    d = tmp_path / "zh"
    shutil.copytree(sources["zh"], d)
    p = d / "投诉举报.csv"
    df = pd.read_csv(p, encoding="gb18030", dtype=str).rename(columns={"受理日期": "接收日期"})
    df.to_csv(p, index=False, encoding="gb18030")
    with pytest.raises(DataValidationError, match="expected header '受理日期'"):
        load_dataset(d, profile="zh")


def test_dates_in_chinese_text_and_excel_date_cells(world, tmp_path):
    d = write_dataset(world.dataset, tmp_path / "zh", "zh", excel=("entities", "penalties"), date_format="%Y年%m月%d日")
    assert "年" in (d / "投诉举报.csv").read_text(encoding="utf-8").split("\n")[1]
    ds = load_dataset(d, profile="zh")
    for name in TABLES:
        pd.testing.assert_frame_equal(ds.table(name), world.dataset.table(name), obj=name, check_dtype=False)


def test_profiles_are_validated_data(tmp_path):
    zh = load_profile("zh")
    for name, t in TABLES.items():          # the headers are the contract's Chinese names
        assert {c.name: c.zh for c in t.columns} == {c: hs[0] for c, hs in zh.tables[name].columns.items()}
    bad = tmp_path / "p.toml"
    bad.write_text('[meta]\nname = "x"\n[tables.penalties.columns]\nfine = ["罚款"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fine.*not column"):
        load_profile(bad)
    bad.write_text('[meta]\nname = "x"\n[codes.status]\nopen = ["存续"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'open' is not one of"):
        load_profile(bad)
    with pytest.raises(ConfigError, match="shipped profiles"):
        load_profile("fr")


@pytest.mark.slow
def test_excel_output_loads_back(capsys, sources, tmp_path):
    code, _ = run(capsys, "score", "--data", sources["contract"], "--as-of", AS_OF, "--out", tmp_path / "s.xlsx",
                  "--excel")
    assert code == 0
    for name in ("s.csv", "p1.csv", "p2.csv"):
        assert not (tmp_path / name).exists()
    code, _ = run(capsys, "score", "--data", sources["contract"], "--as-of", AS_OF, "--out", tmp_path / "s.csv")
    code, _ = run(capsys, "plan", "--scores", tmp_path / "s.xlsx", "--out", tmp_path / "p1.csv")
    assert code == 0
    code, _ = run(capsys, "plan", "--scores", tmp_path / "s.csv", "--out", tmp_path / "p2.csv")
    assert (tmp_path / "p1.csv").read_bytes() == (tmp_path / "p2.csv").read_bytes()
