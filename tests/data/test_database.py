"""Database sources and result tables, against a real PostgreSQL server (fixture ``postgres_url``)
and SQLite files. No mocks."""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import DataValidationError, load_dataset, synth
from yiwu_credit.data.checks import coerce
from yiwu_credit.data.contract import TABLES
from yiwu_credit.data.io import write_table
from yiwu_credit.data.sources import database as db
from yiwu_credit.data.sources.dburl import sqlite_path
from yiwu_credit.errors import OutputError, UsageError
from yiwu_credit.features.build import build_features

pytestmark = pytest.mark.slow   # a PostgreSQL server per session

ALL = {n: n for n in TABLES}


@pytest.fixture(scope="module")
def small():
    return synth.generate(2000, seed=23).dataset


@pytest.fixture(scope="module")
def dirty(small):
    """The small world with a few bad rows (unknown entity, negative fine, event before
    establishment), as plain frames: lenient loads must quarantine the same rows everywhere."""
    frames = {n: small.table(n).copy() for n in TABLES}
    pen = frames["penalties"]
    pen.loc[3, "fine_cny"] = -5.0
    pen.loc[7, "entity_id"] = "91330782XXXXXXXXXX"
    ins = frames["inspections"]
    ins.loc[2, "inspected_on"] = pd.Timestamp("1990-01-01")
    return frames


def _pg(url: str):
    import adbc_driver_postgresql.dbapi as pg

    return pg.connect(url, autocommit=True)


def _sql(url: str, *statements: str) -> list:
    """Run statements on the test server; rows of the last one (if it returns any)."""
    with _pg(url) as c, c.cursor() as cur:
        rows: list = []
        for s in statements:
            cur.execute(s)
            rows = cur.fetchall() if cur.description else []
        return rows


@pytest.fixture()
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'yiwu.db'}"


# ----------------------------------------------------------------------------- URLs


def test_is_database_url():
    for u in ("postgresql://u:p@h/db", "postgres://h/db", "POSTGRESQL://h", "sqlite:///a.db", "mysql://h/db",
              "postgresql+adbc://h/db"):
        assert db.is_database_url(u), u
    for s in ("data/", "/abs/path", "C:\\data", "file:///x", "http://h/x", "", "postgresql:/x"):
        assert not db.is_database_url(s), s


def test_redact():
    assert db.redact("postgresql://u:pa%40ss@h:5/db") == "postgresql://u:***@h:5/db"
    assert db.redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert db.redact("postgresql://h/db?password=xyz&sslmode=require") == \
        "postgresql://h/db?password=***&sslmode=require"
    assert db.redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_mysql_refused_clearly():
    with pytest.raises(UsageError, match="MySQL is not supported") as e:
        db.read_tables("mysql://root:hunter2@127.0.0.1/db", ALL)
    assert "hunter2" not in str(e.value)


def test_missing_driver_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql", None)
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)
    with pytest.raises(UsageError, match=r"yiwu-credit\[db\]"):
        db.read_tables("postgresql://u:p@127.0.0.1:1/db", ALL)


# ----------------------------------------------------------------------------- reading


def _assert_same_tables(got: dict, frames) -> None:
    for n in TABLES:
        want = frames.table(n) if hasattr(frames, "table") else frames[n]
        assert got[n] is not None, n
        assert list(got[n].columns) == TABLES[n].column_names, n
        pd.testing.assert_frame_equal(coerce(TABLES[n], got[n]), coerce(TABLES[n], want), obj=n)


def test_postgres_round_trip_native_types(postgres_url, small):
    counts = db.write_dataset(postgres_url, small)
    assert counts == {n: len(small.table(n)) for n in TABLES}
    got = db.read_tables(postgres_url, ALL)
    _assert_same_tables(got, small)
    ent, ar, co = got["entities"], got["annual_reports"], got["complaints"]
    assert pd.api.types.is_datetime64_dtype(ent["established_on"].dtype)
    assert ent["registered_capital"].dtype == "float64"
    assert isinstance(ar["year"].dtype, pd.Int64Dtype)
    assert isinstance(co["substantiated"].dtype, pd.BooleanDtype) and co["substantiated"].isna().any()
    # insertion order kept: row N read is row N written
    assert got["penalties"]["entity_id"].tolist() == small.penalties["entity_id"].tolist()


def test_sqlite_round_trip(sqlite_url, small):
    db.write_dataset(sqlite_url, small)
    got = db.read_tables(sqlite_url, ALL | {"extra": "no_such_table"})
    assert got["extra"] is None
    _assert_same_tables({n: got[n] for n in TABLES}, small)
    assert isinstance(got["complaints"]["substantiated"].dtype, pd.BooleanDtype)


def test_missing_relation_is_none_and_names_resolve(postgres_url):
    _sql(postgres_url, "DROP SCHEMA IF EXISTS src CASCADE", "CREATE SCHEMA src",
         'CREATE TABLE src."Mixed" (k int, "名称" text)', "INSERT INTO src.\"Mixed\" VALUES (2, '乙'), (1, '甲')",
         "CREATE TABLE src.lower_t (k int)", "INSERT INTO src.lower_t VALUES (5)",
         'CREATE VIEW src.v_sorted AS SELECT * FROM src."Mixed" ORDER BY k')
    got = db.read_tables(postgres_url, {"a": "src.Mixed", "b": "SRC.LOWER_T", "c": "src.v_sorted",
                                        "d": "src.nothing", "e": "nope.nothing", "f": '"src"."Mixed"'})
    assert got["a"]["k"].tolist() == [2, 1] and list(got["a"].columns) == ["k", "名称"]
    assert got["b"]["k"].tolist() == [5]
    assert got["c"]["k"].tolist() == [1, 2]  # a view keeps its own order
    assert got["d"] is None and got["e"] is None
    assert got["f"]["名称"].tolist() == ["乙", "甲"]
    by = db.read_tables(postgres_url, {"a": "src.Mixed"}, order_by={"a": "k"})
    assert by["a"]["k"].tolist() == [1, 2]
    with pytest.raises(DataValidationError, match="nope"):
        db.read_tables(postgres_url, {"a": "src.Mixed"}, order_by={"a": "nope"})


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_row_order_is_physical_order(postgres_url, workers, monkeypatch):
    """Rows inserted shuffled come back in insertion order, whatever their values; after updates
    and deletes, in ctid order; the same whether one connection reads or several read block
    ranges concurrently."""
    monkeypatch.setattr(db, "_PARALLEL_MIN_BLOCKS", 4)  # split this small table into ranges too
    vals = np.random.default_rng(3).permutation(20_000)
    _sql(postgres_url, "DROP TABLE IF EXISTS ordered", "CREATE TABLE ordered (v int, pad text)",
         "INSERT INTO ordered SELECT v, repeat('x', 20) FROM unnest(ARRAY[" + ",".join(map(str, vals)) + "]) "
         "WITH ORDINALITY AS u(v, i) ORDER BY i")
    got = db.read_tables(postgres_url, {"t": "ordered"}, workers=workers)["t"]
    assert got["v"].tolist() == vals.tolist()
    _sql(postgres_url, "DELETE FROM ordered WHERE v % 7 = 0", "UPDATE ordered SET pad = 'y' WHERE v % 5 = 0")
    want = [r[0] for r in _sql(postgres_url, "SELECT v FROM ordered ORDER BY ctid")]
    got = db.read_tables(postgres_url, {"t": "ordered"}, workers=workers)["t"]
    assert got["v"].tolist() == want and len(want) < len(vals)


def test_timestamptz_keeps_its_zone(postgres_url):
    _sql(postgres_url, "DROP TABLE IF EXISTS zoned", "CREATE TABLE zoned (entity_id text, received_on timestamptz, "
         "substantiated boolean)",
         "INSERT INTO zoned VALUES ('a', '2024-01-01 20:00:00-05', true), ('b', '2024-03-01 23:30:00+08', null)")
    got = db.read_tables(postgres_url, {"complaints": "zoned"})["complaints"]
    col = got["received_on"]
    assert isinstance(col.dtype, pd.DatetimeTZDtype)
    assert col.iloc[0] == pd.Timestamp("2024-01-02 01:00", tz="UTC")
    typed = coerce(TABLES["complaints"], got)  # the loader's rule: Asia/Shanghai calendar days
    assert typed["received_on"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-03-01")]


def test_numeric_and_other_types_read_as_plain_values(postgres_url):
    _sql(postgres_url, "DROP TABLE IF EXISTS misc",
         "CREATE TABLE misc (n numeric(12,2), u uuid, s smallint, d date)",
         "INSERT INTO misc VALUES (12.5, '00000000-0000-0000-0000-000000000001', 3, '2020-02-29'), "
         "(null, null, null, null)")
    got = db.read_tables(postgres_url, {"t": "misc"})["t"]
    assert got["n"].dtype == "float64" and got["n"].iloc[0] == 12.5 and np.isnan(got["n"].iloc[1])
    assert got["u"].iloc[0] == "00000000-0000-0000-0000-000000000001"
    assert got["s"].tolist()[0] == 3 and isinstance(got["s"].dtype, pd.Int64Dtype)
    assert got["d"].iloc[0] == pd.Timestamp("2020-02-29")


def test_environment_credentials(postgres_url, monkeypatch, small):
    from urllib.parse import urlsplit

    p = urlsplit(postgres_url)
    monkeypatch.setenv("PGPASSWORD", p.password)
    monkeypatch.setenv("PGUSER", p.username)
    monkeypatch.setenv("PGHOST", p.hostname)
    monkeypatch.setenv("PGPORT", str(p.port))
    monkeypatch.setenv("PGDATABASE", p.path.lstrip("/"))
    db.write_dataset(postgres_url, {"entities": small.entities})
    got = db.read_tables("postgresql://", {"entities": "entities"})
    assert len(got["entities"]) == len(small.entities)


def test_permission_denied_is_a_data_problem(postgres_url):
    _sql(postgres_url, "DROP TABLE IF EXISTS secret_t", "CREATE TABLE secret_t (k int)",
         "DROP ROLE IF EXISTS reader", "CREATE ROLE reader LOGIN PASSWORD 'rd-Pw_9x'")
    url = postgres_url.replace("yiwu:s3cret-Pw_for-tests@", "reader:rd-Pw_9x@")
    with pytest.raises(DataValidationError) as e:
        db.read_tables(url, {"entities": "secret_t"})
    assert e.value.problems[0].table == "entities"
    assert "permission denied" in str(e.value) and "rd-Pw_9x" not in str(e.value)


# ----------------------------------------------------------------------------- same answer everywhere


def _lenient(path: Path):
    return load_dataset(path, strict=False)


@pytest.mark.slow
def test_same_counts_rejects_and_features_from_every_source(postgres_url, sqlite_url, dirty, tmp_path):
    """Contract CSV, Parquet, PostgreSQL and SQLite give identical validation counts, rejects and
    features (bit for bit)."""
    as_of = "2026-01-01"
    dirs = {}
    for fmt in ("csv", "parquet"):
        d = tmp_path / fmt
        for n, df in dirty.items():
            write_table(df, d / f"{n}.{fmt}", neutralise=False)
        dirs[fmt] = d
    for label, url in (("postgresql", postgres_url), ("sqlite", sqlite_url)):
        db.write_dataset(url, dirty, {n: f"src_{n}" for n in TABLES})
        got = db.read_tables(url, {n: f"src_{n}" for n in TABLES})
        d = tmp_path / label
        for n, df in got.items():
            write_table(df, d / f"{n}.parquet", neutralise=False)
        dirs[label] = d
    ref = _lenient(dirs["parquet"])
    assert ref.counts["penalties"][2] == 2 and ref.counts["inspections"][2] == 1
    ref_features = build_features(ref, as_of)
    for label, d in dirs.items():
        ds = _lenient(d)
        assert ds.counts == ref.counts, label
        same = ds.rejects.columns.drop("file")   # the file column names each source's own file
        pd.testing.assert_frame_equal(ds.rejects[same], ref.rejects[same], obj=label)
        assert ds.rejects["file"].str.endswith(".csv" if label == "csv" else ".parquet").all(), label
        pd.testing.assert_frame_equal(build_features(ds, as_of), ref_features, obj=label)


def test_raw_text_cells_reach_the_loader_unchanged(postgres_url, sqlite_url, world_copy, tmp_path):
    """A dataset as raw text (bad cells included) moved into a database and read back gives the
    CSV path's rejects: same rows, same reasons."""
    pen = world_copy / "penalties.csv"
    df = pd.read_csv(pen, dtype=str, keep_default_na=False)
    df.loc[4, "decided_on"] = "2024-13-45"
    df.loc[9, "fine_cny"] = "lots"
    df.to_csv(pen, index=False)
    raw = {n: pd.read_csv(world_copy / f"{n}.csv", dtype=str, keep_default_na=False) for n in TABLES}
    want = load_dataset(world_copy, strict=False)
    assert set(want.rejects["row"]) == {5, 10}
    for label, url in (("postgresql", postgres_url), ("sqlite", sqlite_url)):
        db.write_dataset(url, raw, {n: f"raw_{n}" for n in TABLES})
        got = db.read_tables(url, {n: f"raw_{n}" for n in TABLES})
        assert got["penalties"]["decided_on"].iloc[4] == "2024-13-45"
        d = tmp_path / label
        for n, f in got.items():
            write_table(f, d / f"{n}.parquet", neutralise=False)
        ds = load_dataset(d, strict=False)
        assert ds.counts == want.counts, label
        same = ds.rejects.columns.drop("file")
        pd.testing.assert_frame_equal(ds.rejects[same], want.rejects[same], obj=label)


def test_features_from_postgres_equal_parquet_round_trip(postgres_url, small, tmp_path):
    db.write_dataset(postgres_url, small)
    got = db.read_tables(postgres_url, ALL)
    from_pg = tmp_path / "from_pg"
    for n, df in got.items():
        write_table(df, from_pg / f"{n}.parquet", neutralise=False)
    from_parquet = small.save(tmp_path / "from_parquet", format="parquet")
    a, b = load_dataset(from_pg), load_dataset(from_parquet)
    assert a.counts == b.counts and a.fingerprint() == b.fingerprint()
    pd.testing.assert_frame_equal(build_features(a, "2026-01-01"), build_features(b, "2026-01-01"))


# ----------------------------------------------------------------------------- write_run


def _scores(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"entity_id": [f"E{i:05d}" for i in range(n)], "score": rng.random(n),
                         "tier": pd.Series(rng.choice(["A", "B", "C"], n), dtype="str"),
                         "as_of": pd.Timestamp("2026-01-01"), "n_events": rng.integers(0, 9, n),
                         "flag": rng.random(n) < 0.5})


def _rows(url: str, table: str, run_id: str | None = None) -> pd.DataFrame:
    df = db.read_tables(url, {"t": table})["t"]
    assert df is not None, table
    return df if run_id is None else df[df["run_id"] == run_id].reset_index(drop=True)


@pytest.mark.parametrize("which", ["postgresql", "sqlite"])
def test_write_run_lands_replaces_and_records(which, postgres_url, sqlite_url, request):
    url = postgres_url if which == "postgresql" else sqlite_url
    tag = f"wr_{which}"
    if which == "postgresql":
        _sql(url, f"DROP TABLE IF EXISTS {tag}_scores, {tag}_plan", "DROP TABLE IF EXISTS yiwu_runs")
    s1, plan = _scores(300, 1), pd.DataFrame({"stratum": ["x", "y"], "n": [3, 4]})
    audit = {"seed": 7, "as_of": pd.Timestamp("2026-01-01"), "hash": "ab" * 32, "n": np.int64(5)}
    counts = db.write_run(url, "run-1", {f"{tag}_scores": s1, f"{tag}_plan": plan}, audit=audit, command="score")
    assert counts == {f"{tag}_scores": 300, f"{tag}_plan": 2}
    got = _rows(url, f"{tag}_scores", "run-1")
    assert list(got.columns) == ["run_id", *s1.columns]
    pd.testing.assert_frame_equal(_coerce_like(got.drop(columns="run_id"), s1), s1, check_dtype=False)
    runs = _rows(url, "yiwu_runs")
    row = runs[runs["run_id"] == "run-1"].iloc[0]
    assert row["command"] == "score"
    stored = json.loads(row["audit"]) if isinstance(row["audit"], str) else row["audit"]
    assert stored == {"seed": 7, "as_of": "2026-01-01T00:00:00", "hash": "ab" * 32, "n": 5}
    assert json.loads(row["row_counts"]) == counts
    # another run, then the first run again with other rows: replaced, the other run untouched
    db.write_run(url, "run-2", {f"{tag}_scores": _scores(50, 2)}, command="score")
    s1b = _scores(120, 3)
    db.write_run(url, "run-1", {f"{tag}_scores": s1b}, audit={"again": True}, command="score")
    all_rows = _rows(url, f"{tag}_scores")
    assert all_rows["run_id"].value_counts().to_dict() == {"run-1": 120, "run-2": 50}
    pd.testing.assert_frame_equal(_coerce_like(_rows(url, f"{tag}_scores", "run-1").drop(columns="run_id"), s1b),
                                  s1b, check_dtype=False)
    runs = _rows(url, "yiwu_runs")
    assert sorted(runs["run_id"]) == ["run-1", "run-2"]
    # same run, same rows, twice: idempotent
    db.write_run(url, "run-2", {f"{tag}_scores": _scores(50, 2)}, command="score")
    assert _rows(url, f"{tag}_scores")["run_id"].value_counts().to_dict() == {"run-1": 120, "run-2": 50}


def _coerce_like(got: pd.DataFrame, want: pd.DataFrame) -> pd.DataFrame:
    """Database rows in the frame's dtypes (SQLite hands back text dates and 0/1 booleans)."""
    out = got.copy()
    for c in want.columns:
        if pd.api.types.is_datetime64_dtype(want[c].dtype):
            out[c] = pd.to_datetime(out[c]).astype(want[c].dtype)
        elif pd.api.types.is_bool_dtype(want[c].dtype):
            out[c] = out[c].astype(bool)
        else:
            out[c] = out[c].astype(want[c].dtype)
    return out


@pytest.mark.parametrize("which", ["postgresql", "sqlite"])
def test_write_run_failure_midway_changes_nothing(which, postgres_url, sqlite_url):
    url = postgres_url if which == "postgresql" else sqlite_url
    tag = f"fail_{which}"
    ddl = f"CREATE TABLE {tag}_checked (run_id text NOT NULL, x bigint CHECK (x >= 0))"
    if which == "postgresql":
        _sql(url, f"DROP TABLE IF EXISTS {tag}_scores, {tag}_checked", ddl)
    else:
        import sqlite3

        with sqlite3.connect(sqlite_path(url)) as c:
            c.execute(ddl)
    before = _scores(40, 1)
    db.write_run(url, "r", {f"{tag}_scores": before, f"{tag}_checked": pd.DataFrame({"x": [1, 2]})}, command="plan")
    runs_before = _rows(url, "yiwu_runs")
    with pytest.raises(OutputError, match=f"{tag}_checked") as e:
        db.write_run(url, "r", {f"{tag}_scores": _scores(10, 9), f"{tag}_checked": pd.DataFrame({"x": [3, -1]})},
                     audit={"new": 1}, command="plan")
    assert "rolled back" in str(e.value)
    kept = _rows(url, f"{tag}_scores", "r").drop(columns="run_id")
    pd.testing.assert_frame_equal(_coerce_like(kept, before), before, check_dtype=False)
    assert _rows(url, f"{tag}_checked")["x"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(_rows(url, "yiwu_runs"), runs_before)


def test_write_run_new_columns_and_schema(postgres_url):
    _sql(postgres_url, "DROP SCHEMA IF EXISTS results CASCADE")
    db.write_run(postgres_url, "a", {"draw": pd.DataFrame({"entity_id": ["x"]})}, schema="results", command="draw")
    db.write_run(postgres_url, "b", {"draw": pd.DataFrame({"entity_id": ["y"], "rank": [1]})}, schema="results")
    got = _rows(postgres_url, "results.draw")
    assert got["run_id"].tolist() == ["a", "b"] and got["rank"].isna().tolist() == [True, False]
    assert _rows(postgres_url, "results.yiwu_runs")["command"].tolist() == ["draw", ""]


@pytest.mark.parametrize("which", ["postgresql", "sqlite"])
def test_concurrent_runs_do_not_clobber(which, postgres_url, sqlite_url):
    url = postgres_url if which == "postgresql" else sqlite_url
    tag = f"conc_{which}"
    if which == "postgresql":
        _sql(url, f"DROP TABLE IF EXISTS {tag}")
    errors: list = []

    def one(i: int) -> None:
        try:
            db.write_run(url, f"run-{i}", {tag: _scores(200 + i, i)}, command="score")
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _rows(url, tag)["run_id"].value_counts().sort_index().to_dict() == {f"run-{i}": 200 + i for i in range(4)}


# ----------------------------------------------------------------------------- secrets


def _bad_urls(url: str) -> dict[str, str]:
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    return {"wrong password": url.replace("s3cret-Pw_for-tests", "Wr0ng-Secret_pw"),
            "unknown database": url.rsplit("/", 1)[0] + "/no_such_db",
            "unreachable port": url.replace(host_port, "127.0.0.1:1"),
            "password in query": "postgresql://yiwu@127.0.0.1:1/yiwu_test?password=Qu3ry-Secret_pw"}


def test_password_never_shown(postgres_url, caplog):
    caplog.set_level(logging.DEBUG, logger="yiwu_credit")
    secrets = ("s3cret-Pw_for-tests", "Wr0ng-Secret_pw", "Qu3ry-Secret_pw")
    seen = []
    for why, url in _bad_urls(postgres_url).items():
        for call in (lambda u: db.read_tables(u, ALL), lambda u: db.write_run(u, "r", {"t": pd.DataFrame({"a": [1]})})):
            with pytest.raises((DataValidationError, OutputError)) as e:
                call(url)
            text = "".join(traceback.format_exception(e.value)) + repr(e.value)
            seen.append(str(e.value))
            assert not any(s in text for s in secrets), (why, text)
            assert "***" in str(e.value) or "?" in url, (why, str(e.value))
    assert any("password authentication failed" in s for s in seen)
    assert any("no_such_db" in s for s in seen)
    assert any("Connection refused" in s or "connection refused" in s.lower() for s in seen)
    # successful runs log too: no password there either
    db.read_tables(postgres_url, {"entities": "entities"})
    db.write_run(postgres_url, "secret-check", {"secret_check": pd.DataFrame({"a": [1]})})
    assert caplog.records and not any(s in caplog.text for s in secrets)
