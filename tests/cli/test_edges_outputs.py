"""Output edges: an output never overwrites an input or another output (one rule,
data/paths.check_io, declared by every command); no password is ever shown or recorded; the
database and synth write edges; a closed stdout pipe; frontier --plot formats."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yiwu_credit.cli import main
from yiwu_credit.cli.app import build_parser
from yiwu_credit.data.paths import IoPlan, case_insensitive, check_io, same_location
from yiwu_credit.errors import ConfigError, OutputError, UsageError

SRC = str(Path(__file__).resolve().parents[2] / "src")
TABLES = ("entities", "penalties", "inspections", "complaints", "annual_reports", "list_records", "tax_ratings")


def run(capsys, *argv, traceback_ok: bool = False):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # a usage error (argparse)
        code = e.code
    out, err = capsys.readouterr()
    if not traceback_ok:
        assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture()
def fake(tmp_path):
    """Inputs of every command as small files (the guard runs before anything is read): a dataset
    directory, a model bundle directory, scores, plan, roster, previous assignments, results, an
    audit and a policy; returns the directory and a format function for the argv templates."""
    d = tmp_path / "data"
    d.mkdir()
    for t in TABLES:
        (d / f"{t}.csv").write_text(f"entity_id\n{t}\n", encoding="utf-8")
    b = tmp_path / "bundle"
    b.mkdir()
    (b / "manifest.json").write_text("{}", encoding="utf-8")
    for name in ("s.csv", "p.csv", "roster.csv", "d.inspectors.csv", "r.csv", "drawn.csv", "pol.toml"):
        (tmp_path / name).write_text(f"entity_id\n{name}\n", encoding="utf-8")
    (tmp_path / "a.audit.json").write_text("{}", encoding="utf-8")
    return tmp_path


def _argv(template: str, t: Path) -> list[str]:
    return [w.replace("{t}", str(t)) for w in template.split()]


#: (command line, the input it must not overwrite): every pair from the issue and each sidecar
REFUSED = [
    ("score --data {t}/data --as-of 2025-01-01 --out {t}/data/entities.csv", "data/entities.csv"),
    ("score --data {t}/data --as-of 2025-01-01 --out {t}/data/../data/./penalties.parquet", "data/penalties.csv"),
    ("score --data {t}/data --as-of 2025-01-01 --out {t}/x.csv --rejects {t}/data/tax_ratings.xlsx", "data/tax_ratings.csv"),
    ("score --data {t}/data --as-of 2025-01-01 --out {t}/x.csv --rejects {t}/x.csv", "data/entities.csv"),
    ("score --data {t}/data --as-of 2025-01-01 --out {t}/x.csv --rejects {t}/sub/../x.csv", "data/entities.csv"),
    ("score --data {t}/data --as-of 2025-01-01 --out {t}/data/inspections.csv.xlsx --rejects {t}/data/inspections.csv",
     "data/inspections.csv"),
    ("score --data {t}/data --as-of 2025-01-01 --model {t}/bundle --out {t}/bundle/manifest.csv", "bundle/manifest.json"),
    ("score --data {t}/data --profile zh --as-of 2025-01-01 --out {t}/data/市场主体.csv", "data/entities.csv"),
    ("validate --lenient {t}/data --rejects {t}/data/entities.csv", "data/entities.csv"),
    ("validate {t}/data --rejects {t}/data/./complaints.parquet", "data/complaints.csv"),
    ("report --data {t}/data --as-of 2025-01-01 --out {t}/data/list_records.csv", "data/list_records.csv"),
    ("report --data {t}/data --as-of 2025-01-01 --plan {t}/p.csv --out {t}/p.csv", "p.csv"),
    ("monitor --data {t}/data --as-of 2025-01-01 --model {t}/bundle --out {t}/bundle/manifest.json", "bundle/manifest.json"),
    ("train --data {t}/data --as-of 2024-01-01 --out {t}/data", "data/entities.csv"),
    ("train --data {t}/data --as-of 2024-01-01 --policy {t}/pol.toml --out {t}", "pol.toml"),
    ("plan --scores {t}/s.csv --out {t}/s.csv", "s.csv"),
    ("plan --scores {t}/s.csv --out {t}/./sub/../s.csv", "s.csv"),
    ("plan --scores {t}/s.csv --policy {t}/pol.toml --out {t}/pol.toml", "pol.toml"),
    ("frontier --scores {t}/s.csv --out {t}/f.csv --burden {t}/f.csv", "s.csv"),
    ("frontier --scores {t}/s.csv --out {t}/f.csv --burden {t}/s.csv", "s.csv"),
    ("draw --plan {t}/p.csv --seed 1 --out {t}/p.csv", "p.csv"),
    ("draw --plan {t}/p.csv --seed 1 --out {t}/d.csv --audit {t}/p.csv", "p.csv"),
    ("draw --plan {t}/p.csv --seed 1 --out {t}/d.csv --audit {t}/d.csv", "p.csv"),
    ("draw --plan {t}/p.csv --seed 1 --out {t}/d.csv --inspectors {t}/roster.csv --previous {t}/d.inspectors.csv",
     "d.inspectors.csv"),
    ("draw --plan {t}/p.csv --seed 1 --out {t}/x.csv --audit {t}/d.audit.json --inspectors {t}/d.inspectors.csv",
     "d.inspectors.csv"),
    ("draw --plan {t}/a.audit.json --seed 1 --out {t}/a.csv", "a.audit.json"),
    ("synth --entities 5 --out postgresql://u:pw@h/db", "p.csv"),
    ("estimate --results {t}/r.csv --plan {t}/p.csv --drawn {t}/drawn.csv --out {t}/r.csv", "r.csv"),
    ("estimate --results {t}/r.csv --plan {t}/p.csv --audit {t}/a.audit.json --out {t}/a.audit.json", "a.audit.json"),
    ("estimate --results {t}/r.csv --plan {t}/p.csv --drawn {t}/drawn.csv --out {t}/e.csv --publish {t}/p.csv", "p.csv"),
    ("estimate --results {t}/r.csv --plan {t}/p.csv --drawn {t}/drawn.csv --out {t}/e.csv --publish {t}/e.csv", "r.csv"),
    ("estimate --results {t}/r.summary.csv --plan {t}/p.csv --drawn {t}/drawn.csv --out {t}/e.csv --publish {t}/r.csv",
     "r.summary.csv"),
]


@pytest.mark.parametrize("template,kept", REFUSED, ids=[c[0].split()[0] + f"-{i}" for i, c in enumerate(REFUSED)])
def test_an_output_onto_an_input_or_another_output_is_refused_before_any_work(capsys, fake, template, kept):
    if "r.summary.csv" in template:
        (fake / "r.summary.csv").write_text("entity_id\nx\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in fake.rglob("*") if p.is_file()}
    code, out, err = run(capsys, *_argv(template, fake))
    assert code == 2, (out, err)
    assert "error:" in err and (str(fake) in err or "database URL" in err)
    after = {p: p.read_bytes() for p in fake.rglob("*") if p.is_file()}
    assert after == before  # nothing overwritten, nothing written
    assert (fake / kept).read_bytes() == before[fake / kept]


def test_an_output_through_a_symbolic_link_is_refused(capsys, fake):
    (fake / "link.csv").symlink_to(fake / "s.csv")
    (fake / "dir-link").symlink_to(fake / "data", target_is_directory=True)
    (fake / "table-link.csv").symlink_to(fake / "data" / "entities.csv")
    for argv in (["plan", "--scores", fake / "s.csv", "--out", fake / "link.csv"],
                 ["validate", fake / "data", "--rejects", fake / "dir-link" / "entities.csv"],
                 ["validate", fake / "data", "--rejects", fake / "table-link.csv"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "error:" in err
    assert (fake / "s.csv").read_text(encoding="utf-8") == "entity_id\ns.csv\n"


def _plan_of(template: str, t: Path) -> IoPlan:
    a = build_parser().parse_args(_argv(template, t))
    return a.io(a)


ACCEPTED = [
    "score --data {t}/data --as-of 2025-01-01 --out {t}/data/scores.csv",          # inside, not a table name
    "score --data {t}/data --as-of 2025-01-01 --out {t}/x.xlsx",                  # rejects x.rejects.xlsx
    "validate --lenient {t}/data --rejects {t}/data/entities.rejects.csv",
    "draw --plan {t}/p.csv --seed 1 --out {t}/d2.csv --inspectors {t}/roster.csv --previous {t}/d.inspectors.csv",
    "estimate --results {t}/r.csv --plan {t}/p.csv --audit {t}/a.audit.json --out {t}/e.csv --publish {t}/pub.csv",
    "frontier --scores {t}/s.csv --out {t}/f.csv --burden {t}/b.csv --plot {t}/f.svg",
    "train --data {t}/data --as-of 2024-01-01 --out {t}/models/mine",
]


@pytest.mark.parametrize("template", ACCEPTED)
def test_distinct_outputs_pass_the_guard(fake, template):
    assert check_io(_plan_of(template, fake)) is None


def test_every_command_that_writes_declares_its_io():
    sp = next(a for a in build_parser()._actions if a.dest == "command")
    writes = {"validate", "train", "score", "report", "monitor", "plan", "frontier", "draw", "estimate", "synth",
              "simulate-loop", "demo"}
    for name, p in sp.choices.items():
        declared = p.get_default("io") is not None
        assert declared == (name in writes), name


# ----------------------------------------------------------------------------- the path rule itself

_names = st.text(alphabet="abcXYZ_1", min_size=1, max_size=6).map(lambda s: s + ".csv")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_names, other=_names, how=st.sampled_from(["same", "dot", "dotdot", "link", "hard", "case"]))
def test_same_file_spelled_differently_is_refused_distinct_ones_accepted(tmp_path_factory, name, other, how):
    root = tmp_path_factory.mktemp("p")
    (root / "sub").mkdir()
    inp = root / name
    inp.write_bytes(b"x")
    spelled = {"same": str(inp), "dot": f"{root}/./{name}", "dotdot": f"{root}/sub/../{name}",
               "link": str(root / "ln" / name), "hard": str(root / "sub" / name), "case": str(root / name.swapcase())}[how]
    (root / "ln").symlink_to(root, target_is_directory=True)
    os.link(inp, root / "sub" / name)  # a hard link: another name, the same file
    fold = True if how == "case" else None
    plan = IoPlan(inputs=[("--in", str(inp))], outputs=[("--out", spelled)])
    assert check_io(plan, fold=fold) is not None
    assert same_location(spelled, inp, fold=fold)
    two = IoPlan(outputs=[("--out", spelled), ("--audit", str(inp))])
    assert check_io(two, fold=fold) is not None
    distinct = other.casefold() != name.casefold()
    ok = IoPlan(inputs=[("--in", str(inp))], outputs=[("--out", str(root / "sub" / "..") + "/" + other)])
    assert (check_io(ok, fold=True) is None) == distinct
    assert (check_io(ok, fold=False) is None) == (other != name)


@pytest.mark.parametrize("fold,refused", [(True, True), (False, False)])
def test_case_folding_of_dataset_table_names_follows_the_file_system(fake, fold, refused):
    plan = _plan_of("validate {t}/data --rejects {t}/data/Entities.CSV", fake)
    assert (check_io(plan, fold=fold) is not None) == refused


def test_case_insensitivity_is_detected_per_directory(tmp_path):
    d = tmp_path / "Case"
    d.mkdir()
    assert case_insensitive(d / "x.csv") == (tmp_path / "case").exists()


# ----------------------------------------------------------------------------- databases

def _profile(tmp_path: Path, entities: str) -> Path:
    p = tmp_path / "prof.toml"
    p.write_text(f'[meta]\nname = "t"\n[tables.entities]\nnames = ["{entities}"]\n', encoding="utf-8")
    return p


@pytest.mark.parametrize("data,to_db,entities", [
    ("sqlite:///{t}/x.db", "sqlite:///{t}/./x.db", "scores"),
    ("sqlite:///{t}/x.db", "sqlite:///{t}/sub/../x.db", "main.score_rejects"),
    ("postgresql://yiwu:pw1@127.0.0.1:1/credit", "postgresql://yiwu@127.0.0.1:1/credit", "Scores"),
    ("postgresql://yiwu:pw1@127.0.0.1:1/credit", "postgres://other:pw2@127.0.0.1:1/credit", "public.yiwu_runs"),
])
def test_a_result_table_that_is_an_input_relation_is_refused(capsys, tmp_path, data, to_db, entities):
    (tmp_path / "x.db").write_bytes(b"")
    prof = _profile(tmp_path, entities)
    code, out, err = run(capsys, "score", "--data", data.replace("{t}", str(tmp_path)), "--profile", prof,
                         "--as-of", "2025-01-01", "--out", tmp_path / "s.csv", "--to-db", to_db.replace("{t}", str(tmp_path)))
    assert code == 2 and "input relation" in err, err
    assert "pw1" not in out + err and "pw2" not in out + err
    assert not (tmp_path / "s.csv").exists() and (tmp_path / "x.db").read_bytes() == b""


def test_results_to_another_database_pass_the_guard(tmp_path):
    prof = _profile(tmp_path, "scores")
    a = build_parser().parse_args(["score", "--data", f"sqlite:///{tmp_path}/x.db", "--profile", str(prof),
                                   "--as-of", "2025-01-01", "--out", str(tmp_path / "s.csv"),
                                   "--to-db", f"sqlite:///{tmp_path}/y.db"])
    assert check_io(a.io(a)) is None


@pytest.mark.parametrize("which", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_a_run_id_of_another_command_is_refused_and_a_rerun_leaves_no_orphans(tmp_path, request, which):
    from yiwu_credit.data.sources.database import read_tables, write_run

    url = f"sqlite:///{tmp_path}/r.db" if which == "sqlite" else request.getfixturevalue("postgres_url")
    tag = f"edge_{which}"
    draws, asg, plans = f"{tag}_draws", f"{tag}_assignments", f"{tag}_plans"
    t = pd.DataFrame({"entity_id": ["a", "b"], "x": [1.0, 2.0]})
    write_run(url, f"{tag}-r1", {draws: t, asg: t}, command="draw")
    write_run(url, f"{tag}-other", {draws: t}, command="draw")
    with pytest.raises(UsageError, match=f"'{tag}-r1' already names a 'draw' run"):
        write_run(url, f"{tag}-r1", {plans: t}, command="plan")
    write_run(url, f"{tag}-r1", {draws: t.head(1)}, command="draw")  # re-run without inspectors
    got = read_tables(url, {"d": draws, "a": asg, "p": plans, "runs": "yiwu_runs"})
    assert got["p"] is None  # the refused run left nothing
    assert (got["a"]["run_id"] == f"{tag}-r1").sum() == 0
    assert got["d"]["run_id"].value_counts().sort_index().to_dict() == {f"{tag}-other": 2, f"{tag}-r1": 1}
    runs = got["runs"].set_index("run_id")
    assert runs.loc[f"{tag}-r1", "command"] == "draw"


@pytest.mark.parametrize("fail_at", [0, 1])
def test_a_rename_failing_after_the_database_commit_says_what_was_written(tmp_path, monkeypatch, fail_at):
    from yiwu_credit.data import io

    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at + 1:
            raise OSError(errno.EACCES, "denied")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    t = pd.DataFrame({"x": [1]})
    with pytest.raises(OutputError) as ei:
        io.write_tables([(t, tmp_path / "a.csv"), (t, tmp_path / "b.csv")], before_commit=lambda: "run 'r' in db")
    msg = str(ei.value)
    assert "nothing was written" not in msg and "ALREADY WRITTEN: run 'r' in db" in msg
    assert ("a.csv" in msg.split("ALREADY WRITTEN:")[1].split("NOT written:")[0]) == (fail_at == 1)
    assert "b.csv" in msg.split("NOT written:")[1]


# ----------------------------------------------------------------------------- passwords

SECRET = "TopSecret-123"
PG = f"postgresql://yiwu:{SECRET}@127.0.0.1:1/credit"


def _all_commands(t: Path) -> list[list[str]]:
    """Every command, each with the password-bearing URL in a place it reads or writes."""
    s, p = str(t / "s.csv"), str(t / "p.csv")
    return [
        ["validate", PG], ["validate", "--lenient", PG, "--rejects", str(t / "rej.csv")],
        ["--debug", "validate", PG],
        ["train", "--data", PG, "--as-of", "2024-01-01", "--out", str(t / "m")],
        ["score", "--data", PG, "--as-of", "2025-01-01", "--out", str(t / "o.csv")],
        ["score", "--data", str(t / "data"), "--as-of", "2025-01-01", "--out", str(t / "o.csv"), "--to-db", PG],
        ["report", "--data", PG, "--as-of", "2025-01-01", "--out", str(t / "r.html")],
        ["monitor", "--data", PG, "--as-of", "2025-01-01"],
        ["plan", "--scores", s, "--out", str(t / "pl.csv"), "--to-db", PG],
        ["--debug", "plan", "--scores", s, "--out", str(t / "pl.csv"), "--to-db", PG],
        ["plan", "--scores", PG, "--out", str(t / "pl.csv")],
        ["frontier", "--scores", PG, "--out", str(t / "f.csv")],
        ["draw", "--plan", p, "--seed", "1", "--out", str(t / "d.csv"), "--to-db", PG],
        ["draw", "--plan", PG, "--seed", "1", "--out", str(t / "d.csv")],
        ["verify", "--audit", PG, "--frame", p],
        ["estimate", "--results", PG, "--plan", p, "--drawn", p, "--out", str(t / "e.csv")],
        ["synth", "--entities", "5", "--out", PG],
        ["simulate-loop", "--entities", "5", "--cycles", "1", "--out", PG],
        ["demo", "--entities", "5", "--out", PG],
    ]


def test_no_command_shows_or_records_a_password(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a URL taken for a path makes files here: none may hold the password
    from yiwu_credit.data.io import write_table
    from yiwu_credit.data.synth import generate

    world = generate(300, seed=1)
    world.dataset.save(tmp_path / "data", format="csv")
    main(["score", "--data", str(tmp_path / "data"), "--as-of", "2025-01-01", "--out", str(tmp_path / "s.csv")])
    main(["plan", "--scores", str(tmp_path / "s.csv"), "--out", str(tmp_path / "p.csv")])
    capsys.readouterr()
    assert (tmp_path / "p.csv").is_file()
    write_table(pd.DataFrame({"x": [1]}), tmp_path / "dummy.csv")
    errs = ""
    for argv in _all_commands(tmp_path):
        code, out, err = run(capsys, *argv, traceback_ok="--debug" in argv)
        assert SECRET not in out + err, argv
        assert code not in (0, 1), (argv, code, err)
        if argv[:2] == ["--debug", "plan"]:
            assert "Traceback" in err and "OutputError" in err
        errs += err
    assert "carries a password" in errs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "dummy.csv", "p.csv", "s.csv", "s.rejects.csv"]
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_a_password_in_a_sqlite_url_is_not_recorded_in_files_or_the_run_table(capsys, tmp_path):
    from yiwu_credit.data.sources.database import write_dataset
    from yiwu_credit.data.synth import generate

    url = f"sqlite:///{tmp_path}/w.db?password={SECRET}"
    write_dataset(url, generate(80, seed=2).dataset)
    code, out, err = run(capsys, "score", "--data", url, "--as-of", "2025-01-01", "--out", tmp_path / "s.csv",
                         "--to-db", f"sqlite:///{tmp_path}/r.db?password={SECRET}")
    assert code == 0, err
    assert run(capsys, "plan", "--scores", tmp_path / "s.csv", "--out", tmp_path / "p.csv")[0] == 0
    code, out2, err2 = run(capsys, "draw", "--plan", tmp_path / "p.csv", "--seed", 3,
                           "--out", tmp_path / "d.csv", "--to-db", f"sqlite:///{tmp_path}/r.db?password={SECRET}")
    assert code == 0, err2
    assert SECRET not in out + err + out2 + err2 and "password=***" in out
    for f in tmp_path.iterdir():
        if f.name != "w.db":
            assert SECRET.encode() not in f.read_bytes(), f.name
    con = sqlite3.connect(tmp_path / "r.db")
    assert all(SECRET not in json.dumps(r) for r in con.execute("SELECT * FROM yiwu_runs").fetchall())


# ----------------------------------------------------------------------------- synth, profiles, pipes, plots

@pytest.mark.parametrize("existing,fmt", [("entities.parquet", "csv"), ("penalties.csv", "parquet"),
                                          ("entities.xlsx", "csv"), ("tax_ratings.csv.gz", "parquet")])
def test_synth_into_a_dataset_of_another_format_is_refused_naming_the_files(capsys, tmp_path, existing, fmt):
    (tmp_path / "w" / "dataset").mkdir(parents=True)
    (tmp_path / "w" / "dataset" / existing).write_bytes(b"old")
    code, _, err = run(capsys, "synth", "--entities", 20, "--format", fmt, "--out", tmp_path / "w")
    assert code == 2 and existing in err
    assert sorted(p.name for p in (tmp_path / "w").rglob("*")) == ["dataset", existing]


def test_synth_over_a_world_of_the_same_format_replaces_it(capsys, tmp_path):
    for _ in range(2):
        code, _, err = run(capsys, "synth", "--entities", 30, "--format", "parquet", "--out", tmp_path / "w")
        assert code == 0, err
    code, out, _ = run(capsys, "validate", tmp_path / "w" / "dataset")
    assert code == 0, out


@pytest.mark.parametrize("name", ["../elsewhere", "/etc/passwd", "sub/entities", "..\\\\x", "C:x", "..", "a\\\\b"])
def test_a_profile_table_name_pointing_outside_the_directory_is_a_config_error(capsys, tmp_path, name):
    from yiwu_credit.data.sources.profile import load_profile

    p = tmp_path / "bad.toml"
    p.write_text(f'[meta]\nname = "bad"\n[tables.penalties]\nnames = ["penalties", "{name}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml \[tables\.penalties\]\.names"):
        load_profile(p)
    (tmp_path / "d").mkdir()
    code, out, err = run(capsys, "validate", tmp_path / "d", "--profile", p)
    assert code == 4 and "[tables.penalties].names" in err


@pytest.mark.parametrize("args,code", [(["/nonexistent/dir"], 3), (["--lenient", "/nonexistent/dir"], 3), ([], 0)])
def test_a_closed_stdout_pipe_is_quiet_and_keeps_the_exit_code(world_dir, args, code):
    argv = ["validate", *(args or [str(world_dir)])]
    r, w = os.pipe()
    os.close(r)  # the reader is gone before anything is printed (yiwu-credit ... | head)
    env = {**os.environ, "PYTHONPATH": SRC}
    try:
        proc = subprocess.run([sys.executable, "-m", "yiwu_credit.cli", *argv], stdout=w, stderr=subprocess.PIPE,
                              env=env, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == code, proc.stderr
    assert b"Traceback" not in proc.stderr and b"Exception ignored" not in proc.stderr


@pytest.mark.parametrize("plot", ["p.txt", "p", "p.csv", "p.png.txt"])
def test_frontier_plot_needs_an_image_suffix(capsys, tmp_path, plot):
    (tmp_path / "s.csv").write_text("entity_id\nx\n", encoding="utf-8")
    code, _, err = run(capsys, "frontier", "--scores", tmp_path / "s.csv", "--out", tmp_path / "f.csv",
                       "--plot", tmp_path / plot)
    assert code == 2 and ".png" in err and not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("password", ["TopSecret-123", "Top#Secret9", "Top/Secret9", "Top?S@cret9", "p%40ss", "a:b:c"])
def test_a_password_is_found_however_it_is_written(password, capsys):
    """The user part ends at the last '@' before the host: unencoded '#', '/', '?', '@' or ':' in a
    password do not hide it from the redaction, in the URL or anywhere else in a message."""
    from yiwu_credit.data.sources.dburl import redact, redact_text, secrets_of

    url = f"postgresql://yiwu:{password}@127.0.0.1:1/credit?sslmode=disable"
    assert password in secrets_of(url)
    assert password not in redact(url) and redact(url).startswith("postgresql://yiwu:***@127.0.0.1:1/credit")
    assert password not in redact_text(f"cannot connect to {url}: refused", [url])
    assert password not in redact_text(f"cannot connect to {url}: refused")          # a URL the run did not name
    code = main(["validate", url])
    out, err = capsys.readouterr()
    assert code != 0 and password not in out + err and "carries a password" in err


def test_a_failed_plot_leaves_no_frontier_table_and_the_drawn_list_has_no_plan_record(tmp_path, capsys):
    """frontier's plot belongs to the run's output set (a plot that cannot be written leaves no table);
    the drawn list carries the entities, the plan's record goes into the audit only."""
    from yiwu_credit.data import synth

    w = synth.generate(300, seed=4)
    d, _ = w.save(tmp_path / "w")
    assert main(["score", "--data", str(d), "--as-of", "2026-01-01", "--out", str(tmp_path / "s.csv")]) == 0
    (tmp_path / "blocker").write_text("a file, not a folder", encoding="utf-8")
    code = main(["frontier", "--scores", str(tmp_path / "s.csv"), "--budget-rate", "0.05", "--out",
                 str(tmp_path / "f.csv"), "--plot", str(tmp_path / "blocker" / "f.png")])
    assert code == 9 and not (tmp_path / "f.csv").exists()
    assert main(["plan", "--scores", str(tmp_path / "s.csv"), "--n", "20", "--out", str(tmp_path / "p.csv")]) == 0
    assert main(["draw", "--plan", str(tmp_path / "p.csv"), "--seed", "3", "--out", str(tmp_path / "d.csv")]) == 0
    import json

    cols = pd.read_csv(tmp_path / "d.csv", nrows=1).columns
    assert not [c for c in cols if c.startswith("plan_")]
    assert json.loads((tmp_path / "d.audit.json").read_text("utf-8"))["plan"]["policy_sha256"]
