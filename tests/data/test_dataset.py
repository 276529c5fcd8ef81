import numpy as np
import pandas as pd
import pytest

from yiwu_credit import DataValidationError, load_dataset
from yiwu_credit.data.contract import TABLES


def test_world_round_trips_with_zero_rejects(world, world_dir):
    ds = load_dataset(world_dir, strict=True)
    for name in TABLES:
        assert len(ds.table(name)) == len(world.dataset.table(name)), name
    assert len(ds.rejects) == 0
    assert ds.fingerprint() == load_dataset(world_dir).fingerprint()


def test_parquet_round_trip(world, tmp_path):
    world.dataset.save(tmp_path, format="parquet")
    ds = load_dataset(tmp_path)
    assert len(ds.rejects) == 0
    pd.testing.assert_series_equal(ds.entities["entity_id"].astype(str), world.dataset.entities["entity_id"].astype(str),
                                   check_names=False)


def _edit(path, table, fn):
    p = path / f"{table}.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df = fn(df)
    df.to_csv(p, index=False)


def _set(table, column, value, row=0):
    def fn(df):
        df.loc[row, column] = value
        return df
    return table, fn


def _second_entity_event(table, column, value):
    """Set a value on the first event row of `table`."""
    return _set(table, column, value, 0)


CASES = [
    ("bad USCC", *_set("entities", "entity_id", "91330782MA2X000199"), "entities", "entity_id", "invalid USCC"),
    ("bad USCC length", *_set("entities", "entity_id", "9133078"), "entities", "entity_id", "not 18 characters"),
    ("bad entity type", *_set("entities", "entity_type", "company"), "entities", "entity_type", "not one of"),
    ("bad status", *_set("entities", "status", "sleeping"), "entities", "status", "not one of"),
    ("bad industry", *_set("entities", "industry", "5137"), "entities", "industry", "GB/T 4754"),
    ("bad date", *_set("entities", "established_on", "2020-13-45"), "entities", "established_on", "not an ISO date"),
    ("missing date", *_set("entities", "established_on", ""), "entities", "established_on", "missing value"),
    ("negative capital", *_set("entities", "registered_capital", "-5"), "entities", "registered_capital", ">= 0"),
    ("text capital", *_set("entities", "registered_capital", "lots"), "entities", "registered_capital", "not a number"),
    ("closed before established", *_set("entities", "closed_on", "1900-01-01"), "entities", "closed_on", "before established_on"),
    ("negative fine", *_set("penalties", "fine_cny", "-1"), "penalties", "fine_cny", ">= 0"),
    ("bad procedure", *_set("penalties", "procedure", "summary"), "penalties", "procedure", "not one of"),
    ("repaired before decided", *_set("penalties", "repaired_on", "1990-01-01"), "penalties", "repaired_on", "before decided_on"),
    ("unknown entity", *_set("penalties", "entity_id", "91330782MA2X000198"), "penalties", "entity_id", "not in entities"),
    ("event before establishment", *_set("complaints", "received_on", "1980-01-01"), "complaints", "received_on", "before the entity was established"),
    ("bad result code", *_set("inspections", "result", "fine"), "inspections", "result", "not one of"),
    ("zero inclusion prob", *_set("inspections", "inclusion_prob", "0"), "inspections", "inclusion_prob", "> 0"),
    ("inclusion prob above 1", *_set("inspections", "inclusion_prob", "1.5"), "inspections", "inclusion_prob", "<= 1"),
    ("bad boolean", *_set("complaints", "substantiated", "maybe"), "complaints", "substantiated", "not a boolean"),
    ("bad list", *_set("list_records", "list", "blacklist"), "list_records", "list", "not one of"),
    ("removed before entered", *_set("list_records", "removed_on", "1990-01-01"), "list_records", "removed_on", "before entered_on"),
    ("bad year", *_set("annual_reports", "year", "20x1"), "annual_reports", "year", "not a number"),
    ("filed before year end", *_set("annual_reports", "filed_on", "2000-01-01"), "annual_reports", "filed_on", None),
    ("bad tax rating", *_set("tax_ratings", "rating", "E"), "tax_ratings", "rating", "not one of"),
]


@pytest.mark.parametrize("label, table, fn, t, col, reason", CASES, ids=[c[0] for c in CASES])
def test_each_rule_strict_names_table_column_row_reason(world_copy, label, table, fn, t, col, reason):
    _edit(world_copy, table, fn)
    with pytest.raises(DataValidationError) as ei:
        load_dataset(world_copy, strict=True)
    probs = [p for p in ei.value.problems if p.table == t and p.column == col]
    assert probs, f"no problem reported for {t}.{col}: {ei.value}"
    if reason:
        assert any(reason in p.reason for p in probs), [p.reason for p in probs]
    assert any(1 in p.rows for p in probs), "row 1 (the first data row) should be named"
    assert f"{t}.{col}" in str(ei.value)


@pytest.mark.parametrize("label, table, fn, t, col, reason", CASES, ids=[c[0] for c in CASES])
def test_each_rule_lenient_quarantines_and_reconciles(world_copy, label, table, fn, t, col, reason):
    _edit(world_copy, table, fn)
    ds = load_dataset(world_copy, strict=False)
    assert len(ds.rejects) >= 1
    for name, (n_in, kept, rej) in ds.counts.items():
        assert n_in == kept + rej, name
        assert len(ds.table(name)) == kept
        assert (ds.rejects["table"] == name).sum() == rej
    assert ((ds.rejects["table"] == t) & (ds.rejects["row"] == 1)).any()


def test_duplicate_entity_ids_reject_both_rows_and_their_events(world_copy):
    def dup(df):
        df.loc[1, "entity_id"] = df.loc[0, "entity_id"]
        return df
    _edit(world_copy, "entities", dup)
    with pytest.raises(DataValidationError, match="duplicate entity_id"):
        load_dataset(world_copy)
    ds = load_dataset(world_copy, strict=False)
    dup_id = pd.read_csv(world_copy / "entities.csv", dtype=str).loc[0, "entity_id"]
    assert (ds.rejects.query("table == 'entities'")["entity_id"] == dup_id).sum() == 2
    for name in ("penalties", "complaints", "inspections", "annual_reports", "list_records"):
        assert dup_id not in set(ds.table(name)["entity_id"])


def test_strict_reports_every_problem_not_just_the_first(world_copy):
    _edit(world_copy, *_set("entities", "entity_type", "company"))
    _edit(world_copy, *_set("penalties", "fine_cny", "-3"))
    _edit(world_copy, *_set("complaints", "received_on", "someday"))
    with pytest.raises(DataValidationError) as ei:
        load_dataset(world_copy)
    where = {(p.table, p.column) for p in ei.value.problems}
    assert {("entities", "entity_type"), ("penalties", "fine_cny"), ("complaints", "received_on")} <= where


def test_events_after_as_of_rejected_only_when_as_of_given(world_copy):
    _edit(world_copy, *_set("complaints", "received_on", "2030-01-01"))
    load_dataset(world_copy)  # no as_of: fine
    with pytest.raises(DataValidationError, match="after as_of 2026-01-01"):
        load_dataset(world_copy, as_of="2026-01-01")


def test_missing_file_and_column_are_fatal(world_copy):
    (world_copy / "complaints.csv").unlink()
    _edit(world_copy, "penalties", lambda df: df.drop(columns=["fine_cny"]))
    with pytest.raises(DataValidationError) as ei:
        load_dataset(world_copy, strict=False)
    msg = str(ei.value)
    assert "complaints" in msg and "file not found" in msg
    assert "penalties" in msg and "fine_cny" in msg


def test_missing_directory(tmp_path):
    with pytest.raises(DataValidationError, match="directory not found"):
        load_dataset(tmp_path / "nope")


def test_optional_tax_table_and_empty_tables(world_copy):
    (world_copy / "tax_ratings.csv").unlink()
    for t in ("penalties", "complaints"):
        cols = pd.read_csv(world_copy / f"{t}.csv", nrows=0).columns
        pd.DataFrame(columns=cols).to_csv(world_copy / f"{t}.csv", index=False)
    ds = load_dataset(world_copy)
    assert len(ds.tax_ratings) == 0 and len(ds.penalties) == 0 and len(ds.complaints) == 0
    assert list(ds.penalties.columns) == TABLES["penalties"].column_names


def test_row_numbers_are_one_based_data_rows(world_copy):
    _edit(world_copy, *_set("entities", "status", "odd", row=4))
    with pytest.raises(DataValidationError) as ei:
        load_dataset(world_copy)
    p = [p for p in ei.value.problems if p.column == "status"][0]
    assert p.rows == (5,) and p.n_rows == 1


def test_many_bad_rows_show_first_few_and_count(world_copy):
    def many(df):
        df.loc[:9, "procedure"] = "x"
        return df
    _edit(world_copy, "penalties", many)
    with pytest.raises(DataValidationError) as ei:
        load_dataset(world_copy)
    p = [p for p in ei.value.problems if p.column == "procedure"][0]
    assert p.n_rows == 10 and len(p.rows) == 5
    assert "(+5 more)" in str(p)
    assert np.all(np.diff(p.rows) > 0)


def test_data_contract_doc_lists_every_column():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    for t in TABLES.values():
        assert f"`{t.name}`" in doc
        for c in t.columns:
            assert f"| `{c.name}` | {c.zh} |" in doc, (t.name, c.name)


@pytest.mark.parametrize("duplicate", [False, True])
def test_entity_codes_equal_a_plain_lookup(world, duplicate):
    """Positions of each event row's entity, by the hashed USCC path (or, with a duplicate id, the
    general one), equal a dictionary lookup row by row: unknown, missing and odd-length ids give -1."""
    from yiwu_credit.data.dataset import Dataset

    ds = world.dataset
    ent = ds.entities.copy()
    if duplicate:
        ent.loc[ent.index[-1], "entity_id"] = ent["entity_id"].iloc[0]
    pen = ds.penalties.copy()
    pen.loc[pen.index[:3], "entity_id"] = ["91330782XXXXXXXXXX", None, "SHORT"]
    d = Dataset(**{n: ds.table(n) for n in ("inspections", "complaints", "annual_reports", "list_records", "tax_ratings")},
                entities=ent, penalties=pen)
    first = {}
    for i, e in enumerate(ent["entity_id"]):
        first.setdefault(e, i)
    for name in ("penalties", "annual_reports"):
        want = np.array([first.get(e, -1) if isinstance(e, str) else -1 for e in d.table(name)["entity_id"]])
        np.testing.assert_array_equal(d.entity_codes(name), want)
    assert (d.entity_codes("penalties")[:3] == -1).all()
