"""Real bad inputs, end to end through the command line: each gives a correct result or a named
refusal with the documented exit code, never exit 1 or a traceback, and the counts reconcile.

Exit codes: 2 usage, 3 bad data, 9 output not written (see ``yiwu_credit.cli``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yiwu_credit import load_dataset
from yiwu_credit.cli import main
from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.io import write_tables
from yiwu_credit.features.build import build_features

AS_OF = "2026-01-01"


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    assert code != 1, text
    return code, text


def read(path: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(path / f"{table}.csv", dtype=str, keep_default_na=False)


def write(path: Path, table: str, df: pd.DataFrame) -> None:
    df.to_csv(path / f"{table}.csv", index=False)


def setcell(path: Path, table: str, column: str, value: str, row: int = 0) -> str:
    df = read(path, table)
    df.loc[row, column] = value
    write(path, table, df)
    return df.loc[row, "entity_id"]


def score(capsys, data: Path, out: Path, *extra) -> tuple[int, str]:
    return run(capsys, "score", "--data", data, "--as-of", AS_OF, "--out", out, *extra)


def assert_reconciles(data: Path, scores: Path, rejects: Path) -> None:
    """Every input entity row is scored or listed in the rejects file, exactly once."""
    n_in = len(read(data, "entities"))
    s = pd.read_csv(scores, dtype={"entity_id": str}) if scores.suffix == ".csv" else pd.read_parquet(scores)
    rej = pd.read_csv(rejects, dtype={"entity_id": str})
    ent_rows = rej[rej["table"] == "entities"]
    assert len(s) + len(ent_rows) == n_in
    assert not set(s["entity_id"]) & set(ent_rows["entity_id"].dropna())


# ------------------------------------------------------------------ wrong answers that must not pass

@pytest.mark.parametrize("table, column, value", [
    ("entities", "registered_capital", "inf"),
    ("entities", "registered_capital", "1e400"),
    ("entities", "employees", "-inf"),
    ("penalties", "fine_cny", "inf"),
    ("inspections", "inclusion_prob", "nan"),
])
def test_non_finite_numbers_are_refused(capsys, world_copy, tmp_path, table, column, value):
    setcell(world_copy, table, column, value)
    code, text = run(capsys, "validate", world_copy)
    assert code == 3
    assert f"{table}.{column}" in text and "rows 1" in text
    assert "not a finite number" in text or "not a number" in text
    code, text = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 0
    assert_reconciles(world_copy, tmp_path / "s.csv", tmp_path / "s.rejects.csv")
    s = pd.read_csv(tmp_path / "s.csv")
    assert np.isfinite(s["probability"]).all()


@pytest.mark.parametrize("column", ["entity_id", "status", "entity_type", "town"])
def test_whitespace_only_required_values_are_missing(capsys, world_copy, tmp_path, column):
    setcell(world_copy, "entities", column, "   ", row=2)
    code, text = run(capsys, "validate", world_copy)
    assert code == 3 and f"entities.{column}: missing value" in text and "rows 3" in text
    ds = load_dataset(world_copy, strict=False)
    assert ds.entities["entity_id"].notna().all()
    assert (ds.entities["entity_id"].str.strip() != "").all()
    code, _ = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 0
    s = pd.read_csv(tmp_path / "s.csv", dtype={"entity_id": str})
    assert s["entity_id"].str.len().eq(18).all()
    assert_reconciles(world_copy, tmp_path / "s.csv", tmp_path / "s.rejects.csv")


def test_two_files_for_one_table_are_refused(capsys, world_copy):
    read(world_copy, "penalties").head(10).to_parquet(world_copy / "penalties.parquet")
    code, text = run(capsys, "validate", world_copy)
    assert code == 3
    assert "penalties.csv" in text and "penalties.parquet" in text and "penalties" in text


def _entity_with_penalties(data: Path) -> str:
    pen = read(data, "penalties")
    recent = pen[(pen["procedure"] == "general") & (pen["decided_on"] >= "2024-01-01")]
    return recent["entity_id"].value_counts().index[0]


def test_trivially_different_ids_keep_their_history(capsys, world_copy, tmp_path):
    code, _ = score(capsys, world_copy, tmp_path / "before.csv")
    assert code == 0
    eid = _entity_with_penalties(world_copy)
    for table in ("penalties", "complaints", "inspections", "annual_reports", "list_records"):
        df = read(world_copy, table)
        m = df["entity_id"] == eid
        df.loc[m, "entity_id"] = "  " + eid.lower() + " "
        write(world_copy, table, df)
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in eid)  # ９１３３… (NFKC folds it)
    df = read(world_copy, "entities")
    df.loc[df["entity_id"] == eid, "entity_id"] = full_width
    write(world_copy, "entities", df)
    code, text = score(capsys, world_copy, tmp_path / "after.csv")
    assert code == 0
    assert "normalised" in text and "rejected 0" in text
    before = pd.read_csv(tmp_path / "before.csv", dtype={"entity_id": str}).set_index("entity_id")
    after = pd.read_csv(tmp_path / "after.csv", dtype={"entity_id": str}).set_index("entity_id")
    assert before.loc[eid, "tier"] == after.loc[eid, "tier"]
    assert before.loc[eid, "probability"] == pytest.approx(after.loc[eid, "probability"], abs=1e-12)
    ds = load_dataset(world_copy, strict=False)
    assert len(ds.rejects) == 0 and any("entity_id" in n and "normalised" in n for n in ds.notes)


def test_entity_scored_on_a_partial_history_is_marked(capsys, world_copy, tmp_path):
    eid = _entity_with_penalties(world_copy)
    pen = read(world_copy, "penalties")
    row = int(np.flatnonzero(pen["entity_id"].to_numpy() == eid)[0])
    pen.loc[row, "decided_on"] = "someday"
    write(world_copy, "penalties", pen)
    code, text = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 0
    assert "quarantined penalties: 1 of" in text and "partial history" in text
    s = pd.read_csv(tmp_path / "s.csv", dtype={"entity_id": str}).set_index("entity_id")
    assert s.loc[eid, "data_issues"] == 1
    assert (s.drop(index=eid)["data_issues"] == 0).all()
    rej = pd.read_csv(tmp_path / "s.rejects.csv", dtype={"entity_id": str})
    hit = rej[(rej["table"] == "penalties") & (rej["row"] == row + 1)]
    assert len(hit) == 1 and hit["entity_id"].iloc[0] == eid and "decided_on" in hit["column"].iloc[0]


def test_changed_dataset_tables_give_fresh_features(world):
    ds = world.dataset.replace()
    base = build_features(ds, AS_OF)
    shuffled = ds.penalties.sample(frac=1.0, random_state=3).reset_index(drop=True)
    ds.penalties = shuffled                                  # assignment drops derived lookups
    pd.testing.assert_frame_equal(build_features(ds, AS_OF), base)
    pd.testing.assert_frame_equal(build_features(world.dataset.replace(penalties=shuffled), AS_OF), base)
    # added rows take effect: a fresh general penalty for one entity
    eid = base.index[0]
    extra = ds.penalties.iloc[[0]].copy()
    extra["entity_id"] = eid
    extra["procedure"], extra["fine_cny"], extra["repaired_on"] = "general", 50_000.0, pd.NaT
    extra["decided_on"] = pd.Timestamp(AS_OF) - pd.Timedelta(days=30)
    ds.penalties = pd.concat([ds.penalties, extra], ignore_index=True)
    after = build_features(ds, AS_OF)
    assert after.loc[eid, "pen_general_365d"] == base.loc[eid, "pen_general_365d"] + 1
    assert (after.drop(index=eid)["pen_general_365d"] == base.drop(index=eid)["pen_general_365d"]).all()


@pytest.mark.slow
def test_formula_cells_are_neutralised_in_csv_and_text_in_xlsx(capsys, world_copy, tmp_path):
    payloads = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(1,1)", "-2+3", "=cmd|' /C calc'!A0"]
    ent = read(world_copy, "entities")
    rows = np.flatnonzero((ent["status"] == "active").to_numpy())[:len(payloads)]
    for i, v in zip(rows, payloads, strict=True):
        ent.loc[i, "town"] = v
    write(world_copy, "entities", ent)
    code, _ = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 0
    raw = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    towns = raw.set_index("entity_id")["town"]
    for i, v in zip(rows, payloads, strict=True):
        assert towns[ent.loc[i, "entity_id"]] == "'" + v
    assert not raw["town"].str.match(r"^[=+\-@\t\r]").any()
    assert pd.api.types.is_numeric_dtype(pd.read_csv(tmp_path / "s.csv")["credit_score"])  # numbers untouched
    code, _ = run(capsys, "plan", "--scores", tmp_path / "s.csv", "--out", tmp_path / "plan.csv")
    assert code == 0
    plan = pd.read_csv(tmp_path / "plan.csv", dtype=str, keep_default_na=False).set_index("entity_id")
    assert plan.loc[ent.loc[rows[0], "entity_id"], "town"] == "'" + payloads[0]   # read back exactly, guarded again
    code, _ = score(capsys, world_copy, tmp_path / "s.xlsx", "--excel")
    assert code == 0
    with zipfile.ZipFile(tmp_path / "s.xlsx") as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        strings = sheet + (z.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in z.namelist() else "")
    assert "<f>" not in sheet and 'state="frozen"' in sheet and "<col " in sheet
    assert '=HYPERLINK("http://x","y")' in strings.replace("&quot;", '"')
    assert (tmp_path / "s.rejects.xlsx").exists()


def test_formula_guard_round_trips_and_leaves_numbers(tmp_path):
    from yiwu_credit.data.io import neutralise_formulas, write_table
    from yiwu_credit.data.tables import read_input

    df = pd.DataFrame({"t": ["\tx", "\ry", "=1", "ok", None, "'=kept"], "n": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0]})
    g = neutralise_formulas(df)
    assert g["t"].tolist()[:4] == ["'\tx", "'\ry", "'=1", "ok"] and g["n"].tolist() == df["n"].tolist()
    assert df["t"].iloc[0] == "\tx"                                      # the input is not modified
    write_table(df, tmp_path / "t.csv")
    back = read_input(tmp_path / "t.csv", "t", required=(), id_columns=())
    assert back["t"].tolist()[:4] == ["\tx", "\ry", "=1", "ok"] and back["t"].iloc[5] == "'=kept"


# ------------------------------------------------------------------ outputs: all or nothing

def test_output_set_is_all_or_nothing(tmp_path):
    a, b = tmp_path / "scores.csv", tmp_path / "scores.rejects.csv"
    write_tables([(pd.DataFrame({"x": [1]}), a), (pd.DataFrame({"y": [1]}), b)])

    class Boom(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        write_tables([(pd.DataFrame({"x": [2]}), a), (Boom({"y": [2]}), b)])
    assert pd.read_csv(a)["x"].tolist() == [1] and pd.read_csv(b)["y"].tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.rejects.csv"]


def _cli(*argv, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.Popen([sys.executable, "-m", "yiwu_credit.cli", *map(str, argv)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_terminated_score_leaves_the_old_set_or_the_new_one(world_copy, tmp_path):
    out = tmp_path / "s.csv"
    t0 = time.perf_counter()
    p = _cli("score", "--data", world_copy, "--as-of", "2025-01-01", "--out", out)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    duration = time.perf_counter() - t0
    old = (out.read_bytes(), (tmp_path / "s.rejects.csv").read_bytes())
    ent = read(world_copy, "entities")
    ent.loc[0, "status"] = "sleeping"  # the new run rejects one more entity: both files differ
    write(world_copy, "entities", ent)
    p = _cli("score", "--data", world_copy, "--as-of", AS_OF, "--out", tmp_path / "new.csv")
    assert p.wait(timeout=300) == 0
    new = ((tmp_path / "new.csv").read_bytes(), (tmp_path / "new.rejects.csv").read_bytes())
    assert new[0] != old[0] and new[1] != old[1]
    for k in range(1, 6):
        p = _cli("score", "--data", world_copy, "--as-of", AS_OF, "--out", out)
        time.sleep(duration * k / 6)
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=300)
        assert code in (0, 143, -signal.SIGTERM), p.stderr.read()
        now = (out.read_bytes(), (tmp_path / "s.rejects.csv").read_bytes())
        assert now in (old, new), f"try {k}: a mix of two runs"
        assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")], f"try {k}: temp files left"
        if now == new:  # restore the old set for the next try
            out.write_bytes(old[0])
            (tmp_path / "s.rejects.csv").write_bytes(old[1])


@pytest.mark.slow
def test_full_disk_is_a_named_error_and_leaves_nothing(world_copy, tmp_path):
    import resource

    def small_files():  # the kernel refuses writes past 64 KiB, as a full disk would
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    out = tmp_path / "out" / "s.csv"
    p = _cli("score", "--data", world_copy, "--as-of", AS_OF, "--out", out, preexec_fn=small_files)
    code = p.wait(timeout=300)
    err = p.stderr.read()
    assert code == 9, err
    assert "cannot write" in err and str(out.parent) in err and "Traceback" not in err
    assert not out.parent.exists() or not list(out.parent.iterdir())


# ------------------------------------------------------------------ crashes that must be named errors

def test_zoned_timestamps_become_local_dates(world_copy):
    ins = read(world_copy, "inspections")
    ins.loc[0, "inspected_on"] = "2019-08-08T00:00:00+08:00"
    ins.loc[1, "inspected_on"] = "2019-08-08T16:30:00Z"        # 00:30 on 9 August in Yiwu
    ins.loc[2, "inspected_on"] = "2019-08-08 09:15:00+0800"
    write(world_copy, "inspections", ins)
    ent = read(world_copy, "entities").set_index("entity_id")
    ds = load_dataset(world_copy, strict=False)
    got = ds.inspections["inspected_on"]
    expected = [pd.Timestamp("2019-08-08"), pd.Timestamp("2019-08-09"), pd.Timestamp("2019-08-08")]
    for i in range(3):
        if pd.Timestamp(ent.loc[ins.loc[i, "entity_id"], "established_on"]) <= expected[i]:
            assert got.iloc[i] == expected[i] or (ds.rejects["row"] == i + 1).any()
    assert any("time zone" in n for n in ds.notes)


def test_zone_aware_parquet_columns(world, tmp_path):
    d = world.dataset.save(tmp_path / "pq", format="parquet")
    ins = pd.read_parquet(d / "inspections.parquet")
    ins["inspected_on"] = ins["inspected_on"].dt.tz_localize("UTC")      # 00:00 UTC = 08:00 in Yiwu
    ins.to_parquet(d / "inspections.parquet")
    ds = load_dataset(d, strict=False)
    base = load_dataset(world.dataset.save(tmp_path / "pq0", format="parquet"), strict=False)
    assert ds.counts == base.counts
    pd.testing.assert_series_equal(ds.inspections["inspected_on"], base.inspections["inspected_on"])


@pytest.mark.parametrize("table, column, value, reason", [
    ("annual_reports", "year", "2014.5", "not a whole year"),
    ("entities", "established_on", "1850-06-01", "implausible date"),
    ("penalties", "decided_on", "2026-02-30", "not an ISO date"),
])
def test_rows_with_implausible_values_are_rejected(capsys, world_copy, tmp_path, table, column, value, reason):
    setcell(world_copy, table, column, value)
    code, text = run(capsys, "validate", world_copy)
    assert code == 3 and f"{table}.{column}: {reason}" in text and "rows 1" in text
    code, text = run(capsys, "validate", world_copy, "--lenient", "--rejects", tmp_path / "r.csv")
    assert code == 3
    ds = load_dataset(world_copy, strict=False)
    for name, (n_in, kept, rej) in ds.counts.items():
        assert n_in == kept + rej == len(read(world_copy, name)), name
    code, _ = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 0


def test_header_only_entities_is_no_rows(capsys, world_copy, tmp_path):
    (world_copy / "entities.csv").write_text(",".join(TABLES["entities"].column_names) + "\n")
    code, text = run(capsys, "validate", world_copy)
    assert code == 3 and "entities" in text and "no rows" in text
    code, text = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 3 and "no rows" in text
    assert not (tmp_path / "s.csv").exists()


def test_empty_file_is_named(capsys, world_copy):
    (world_copy / "complaints.csv").write_bytes(b"")
    code, text = run(capsys, "validate", world_copy)
    assert code == 3 and "complaints" in text and "empty" in text


@pytest.mark.parametrize("bad", ["2026-13-01", "tomorrow", "", "2026-1-1", "01/02/2026"])
def test_bad_as_of_is_a_usage_error_before_any_work(capsys, tmp_path, bad):
    with pytest.raises(SystemExit) as ei:
        main(["score", "--data", str(tmp_path / "does-not-exist"), "--as-of", bad, "--out", str(tmp_path / "s.csv")])
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert "--as-of" in err and "YYYY-MM-DD" in err


@pytest.mark.parametrize("argv, words", [
    (["score", "--data", "d", "--as-of", AS_OF, "--out", "s.parquet", "--excel"], ".xlsx"),
    (["score", "--data", "d", "--as-of", AS_OF, "--out", "s.txt"], ".csv"),
    (["train", "--as-of", AS_OF, "--out", "m"], "--data"),
    (["synth", "--entities", "0", "--out", "w"], "less than 1"),
    (["synth", "--entities", "many", "--out", "w"], "whole number"),
    (["simulate-loop", "--cycles", "-1"], "less than 1"),
    (["validate", "d", "--as-of", "2026-02-30"], "calendar date"),
])
def test_usage_errors_exit_2_and_say_what_is_accepted(capsys, tmp_path, argv, words):
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2
    assert words in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_extra_fields_on_a_line_quarantine_that_row_only(capsys, world_copy, tmp_path):
    lines = (world_copy / "penalties.csv").read_text().splitlines()
    eid = lines[4].split(",")[0]
    lines[4] = lines[4] + ",surplus,fields"     # data row 4
    (world_copy / "penalties.csv").write_text("\n".join(lines) + "\n")
    code, text = run(capsys, "validate", world_copy)
    assert code == 3 and "penalties: malformed line" in text and "rows 4" in text
    ds = load_dataset(world_copy, strict=False)
    n_in, kept, rej = ds.counts["penalties"]
    assert (n_in, rej) == (len(lines) - 1, 1) and kept == n_in - 1
    r = ds.rejects[ds.rejects["table"] == "penalties"]
    assert r["row"].tolist() == [4] and r["entity_id"].tolist() == [eid] and "8 fields" in r["reason"].iloc[0]
    # rows after the bad line keep their own row numbers
    setcell(world_copy, "complaints", "received_on", "x", row=0)
    pen = ds.penalties
    assert len(pen) == n_in - 1
    code, _ = score(capsys, world_copy, tmp_path / "s.csv")
    assert code == 0


def test_row_numbers_after_a_malformed_line_are_the_files(world_copy):
    lines = (world_copy / "penalties.csv").read_text().splitlines()
    lines[2] = lines[2] + ",x"                    # data row 2 malformed
    cells = lines[6].split(",")
    cells[3] = "-5"                               # data row 6: negative fine
    lines[6] = ",".join(cells)
    (world_copy / "penalties.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(world_copy, strict=False)
    r = ds.rejects[ds.rejects["table"] == "penalties"].set_index("row")
    assert sorted(r.index) == [2, 6] and ">= 0" in r.loc[6, "reason"]


def test_gb18030_file_is_detected_and_other_encodings_are_named(capsys, world_copy):
    base = load_dataset(world_copy)
    ent = read(world_copy, "entities")
    (world_copy / "entities.csv").write_bytes(ent.to_csv(index=False).encode("gb18030"))
    code, text = run(capsys, "validate", world_copy)
    assert code == 0 and "entities.csv (csv, GB18030)" in text
    pd.testing.assert_frame_equal(load_dataset(world_copy).entities, base.entities)
    code, text = run(capsys, "validate", world_copy, "--encoding", "utf-8")
    assert code == 3 and "entities" in text and "utf-8" in text
    (world_copy / "entities.csv").write_bytes(b"entity_id,town\n\x81\x30\xff\xfe,x\n")
    code, text = run(capsys, "validate", world_copy)
    assert code == 3 and "entities" in text and "neither UTF-8 nor GB18030" in text


@pytest.mark.slow
def test_as_of_far_beyond_the_data_is_flagged(capsys, world_copy, tmp_path):
    code, text = run(capsys, "score", "--data", world_copy, "--as-of", "2029-06-01", "--out", tmp_path / "s.csv")
    assert code == 0 and "warning:" in text and "days after the last recorded event" in text
    code, text = score(capsys, world_copy, tmp_path / "s2.csv")
    assert "last recorded event" not in text
    pytest.importorskip("matplotlib")
    code, text = run(capsys, "report", "--data", world_copy, "--as-of", "2029-06-01", "--out", tmp_path / "r.html")
    assert code == 0 and "last recorded event" in text
    assert "data warning" in (tmp_path / "r.html").read_text() and "days after the last recorded event" in \
        (tmp_path / "r.html").read_text()


# ------------------------------------------------------------------ fuzz

NASTY = st.sampled_from([
    "", "   ", "inf", "-inf", "1e400", "nan", "NaN", "-1", "0", "2014.5", "=1+1", "+SUM(A1)", "@x", "\t",
    "2019-08-08T00:00:00+08:00", "2019-08-08T23:59:59Z", "1850-01-01", "2026-02-30", "0001-01-01", "9999-12-31",
    "true", "是", "否", "general", "simple", "active", "revoked", "A", "no_problem", "抽查", "ｆｕｌｌ", "\u3000",
    "91330782MA2X000199", "91330782ma2x00019x", "a,b", 'say "hi"', "line\nbreak", "x" * 300, "١٢٣",
])


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from yiwu_credit.data import synth

    d = tmp_path_factory.mktemp("tiny")
    data, _ = synth.generate(60, seed=5).save(d, format="csv")
    return data


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(list(TABLES)), st.integers(0, 40), st.integers(0, 8), NASTY),
                      min_size=1, max_size=6),
       gb18030=st.booleans())
@pytest.mark.slow
def test_fuzzed_cells_never_crash_and_always_reconcile(capsys, tiny_world, tmp_path_factory, edits, gb18030):
    d = tmp_path_factory.mktemp("fuzz")
    data = d / "dataset"
    shutil.copytree(tiny_world, data)
    for table, row, col, value in edits:
        df = read(data, table)
        if len(df):
            df.iloc[row % len(df), col % df.shape[1]] = value
            write(data, table, df)
    if gb18030:
        p = data / "complaints.csv"
        p.write_bytes(p.read_text().encode("utf-8") + "\n".encode("gb18030") + "投诉".encode("gb18030"))
    code, text = run(capsys, "validate", data, "--lenient")
    assert code in (0, 3)
    if gb18030:
        assert code == 3 and "complaints" in text
        return
    ds = load_dataset(data, strict=False)
    for name, (n_in, kept, rej) in ds.counts.items():
        assert n_in == kept + rej and len(ds.table(name)) == kept, name
        assert (ds.rejects["table"] == name).sum() == rej, name
    out = d / "s.csv"
    code, text = score(capsys, data, out)
    assert code in (0, 3)
    if code == 0:
        assert_reconciles(data, out, d / "s.rejects.csv")
        assert np.isfinite(pd.read_csv(out)["probability"]).all()
