"""The pipeline on a real database (the PostgreSQL server the suite starts, and SQLite): a dataset
read from the database gives the same validation counts, features and scores as the files, bit for
bit; rejects name the relation, header and row; score, plan and draw write their results in one
transaction per run, and a re-run replaces its rows."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from yiwu_credit import load_dataset
from yiwu_credit.cli import main
from yiwu_credit.data.contract import TABLES
from yiwu_credit.features.build import build_features
from yiwu_credit.pipeline.scoring import score_entities

pytestmark = pytest.mark.slow   # a PostgreSQL server per session

AS_OF = "2026-01-01"
pytest.importorskip("adbc_driver_postgresql")


@pytest.fixture(scope="module")
def pg_world(postgres_url, world):
    from yiwu_credit.data.sources.database import write_dataset

    write_dataset(postgres_url, world.dataset)
    return postgres_url


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and code != 1, out + err
    return code, out + err


def test_postgres_gives_the_same_dataset_features_and_scores(pg_world, world_dir):
    db, files = load_dataset(pg_world), load_dataset(world_dir)
    assert db.counts == files.counts and len(db.rejects) == 0
    for name in TABLES:
        pd.testing.assert_frame_equal(db.table(name), files.table(name), obj=name)
    pd.testing.assert_frame_equal(build_features(db, AS_OF), build_features(files, AS_OF))
    pd.testing.assert_frame_equal(score_entities(db, AS_OF).scored, score_entities(files, AS_OF).scored)
    assert "***" in db.source or "@" not in db.source   # the password is never shown


def test_sqlite_gives_the_same_dataset(world, world_dir, tmp_path):
    from yiwu_credit.data.sources.database import write_dataset

    url = f"sqlite:///{tmp_path / 'credit.db'}"
    write_dataset(url, world.dataset)
    db, files = load_dataset(url), load_dataset(world_dir)
    assert db.counts == files.counts
    pd.testing.assert_frame_equal(build_features(db, AS_OF), build_features(files, AS_OF))


def test_database_rejects_name_relation_header_and_row(world, tmp_path, capsys):
    from yiwu_credit.data.sources.database import write_dataset

    url = f"sqlite:///{tmp_path / 'credit.db'}"
    frames = {n: world.dataset.table(n) for n in TABLES}
    pen = frames["penalties"].copy()
    pen["procedure"] = pen["procedure"].astype(object)
    pen.loc[4, "procedure"] = "hearing"
    frames["penalties"] = pen
    write_dataset(url, frames)
    code, out = run(capsys, "validate", url)
    assert code == 3 and "penalties.procedure" in out and "'hearing'" in out and "rows 5" in out
    ds = load_dataset(url, strict=False)
    r = ds.rejects[ds.rejects["table"] == "penalties"].iloc[0]
    assert (r["row"], r["file"], r["header"]) == (5, "penalties", "procedure")
    with sqlite3.connect(tmp_path / "credit.db") as con:
        con.execute("DROP TABLE complaints")
    code, out = run(capsys, "validate", url)
    assert code == 3 and "no table or view complaints" in out


@pytest.mark.slow
def test_score_plan_draw_write_runs_to_the_database(capsys, pg_world, world_dir, tmp_path):
    import adbc_driver_postgresql.dbapi as pg

    out = tmp_path / "s.csv"
    for _ in range(2):  # the same run twice: its rows are replaced, not doubled
        code, text = run(capsys, "score", "--data", pg_world, "--as-of", AS_OF, "--out", out, "--to-db", pg_world,
                         "--run-id", "score-test")
        assert code == 0 and "run 'score-test' written" in text
        assert "secret" not in text
    code, _ = run(capsys, "plan", "--scores", out, "--out", tmp_path / "plan.csv", "--to-db", pg_world,
                  "--run-id", "plan-test")
    assert code == 0
    code, _ = run(capsys, "draw", "--plan", tmp_path / "plan.csv", "--seed", 7, "--out", tmp_path / "d.csv",
                  "--window", "2026-03-01", "2026-06-30", "--to-db", pg_world, "--run-id", "draw-test")
    assert code == 0
    scores = pd.read_csv(out, dtype={"entity_id": str})
    with pg.connect(pg_world) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM scores WHERE run_id = 'score-test'")
        assert cur.fetchone()[0] == len(scores)
        cur.execute("SELECT count(*) FROM plans WHERE run_id = 'plan-test'")
        assert cur.fetchone()[0] == len(pd.read_csv(tmp_path / "plan.csv"))
        cur.execute("SELECT audit FROM yiwu_runs WHERE run_id = 'draw-test'")
        audit = json.loads(cur.fetchone()[0])
        assert audit["selected"] == json.loads((tmp_path / "d.audit.json").read_text())["selected"]


def test_failed_database_write_leaves_no_files(capsys, world_dir, tmp_path):
    out = tmp_path / "s.csv"
    code, text = run(capsys, "score", "--data", world_dir, "--as-of", AS_OF, "--out", out,
                     "--to-db", "postgresql://u:secret@127.0.0.1:1/none")
    assert code in (3, 9) and "secret" not in text
    assert not out.exists() and not list(tmp_path.iterdir())
