"""The one reader and the one id rule, end to end: duplicate headers are refused (exit 3, naming
the header and both positions) in every format and for every table; an Excel sheet with a stray
cell at XFD1048576 is refused instead of aborting the process; a missing input file is exit 3 for
every command; ``verify --frame plan.xlsx`` works like ``draw --plan plan.xlsx``; ids from a
second file (roster conflicts, previous and published assignments, results) match however they
are spelt (case, full-width, padding), and ids that still match nothing are reported.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yiwu_credit.cli import main
from yiwu_credit.data.uscc import normalise_ids

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in out + err
    return code, out, err


@pytest.fixture(scope="module")
def camp(tmp_path_factory) -> Path:
    """synth (400 entities) → score → plan (n 40) → draw with inspectors, once for the module."""
    d = tmp_path_factory.mktemp("reader")
    with redirect_stdout(io.StringIO()):
        assert main(["synth", "--entities", "400", "--seed", "5", "--out", str(d / "w")]) == 0
        assert main(["score", "--data", str(d / "w" / "dataset"), "--as-of", "2026-01-01",
                     "--out", str(d / "scores.csv")]) == 0
        assert main(["plan", "--scores", str(d / "scores.csv"), "--n", "40", "--out", str(d / "plan.csv")]) == 0
        assert main(["draw", "--plan", str(d / "plan.csv"), "--seed", "7", "--inspectors",
                     str(d / "w" / "inspectors.csv"), "--window", "2026-02-01", "2026-04-30",
                     "--out", str(d / "drawn.csv")]) == 0
    return d


def _header_rename(path: Path, old: str, new: str, encoding: str = "utf-8") -> int:
    """Rename CSV header ``old`` to ``new`` (making a duplicate); returns its 1-based position."""
    text = path.read_text(encoding=encoding)
    first, rest = text.split("\n", 1)
    names = next(csv.reader([first]))
    i = names.index(old)
    names[i] = new
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(names)
    path.write_text(buf.getvalue() + "\n" + rest, encoding=encoding)
    return i + 1


def _xlsx(path: Path, df: pd.DataFrame, header: list[str] | None = None, stray: bool = False) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, header or [str(c) for c in df.columns])
    for i, row in enumerate(df.itertuples(index=False), 1):
        for j, v in enumerate(row):
            if v is not None and not (isinstance(v, float) and v != v):
                ws.write(i, j, v)
    if stray:
        ws.write(1_048_575, 16_383, "x")
    wb.close()


# ------------------------------------------------------------------ duplicate headers
def _dataset_copy(camp: Path, tmp_path: Path, profile: str = "contract", excel: tuple[str, ...] = ()) -> Path:
    if profile == "contract" and not excel:
        return Path(shutil.copytree(camp / "w" / "dataset", tmp_path / "ds"))
    from yiwu_credit import load_dataset
    from yiwu_credit.data.sources.files import write_dataset

    return write_dataset(load_dataset(camp / "w" / "dataset"), tmp_path / "ds", profile, excel=excel)


DATASET_DUPLICATES = [
    # (profile, file, header renamed, new header, expected message)
    ("contract", "entities.csv", "industry", "town", "duplicate header 'town' (columns {a} and {b})"),
    ("contract", "entities.csv", "industry", "town ", "duplicate header 'town' (columns {a} and {b})"),
    ("contract", "penalties.csv", "domain", "fine_cny", "duplicate header 'fine_cny' (columns {a} and {b})"),
    ("zh", "市场主体.csv", "主体类型", "所属镇街", "duplicate header '所属镇街' (columns {a} and {b})"),
    ("zh", "市场主体.csv", "主体类型", "town", "headers 'town' (column {a}) and '所属镇街' (column {b}) both map "
                                            "to column 'town'"),  # the renamed column comes first
]


@pytest.mark.parametrize("profile, file, old, new, message", DATASET_DUPLICATES)
def test_dataset_duplicate_header_is_refused(capsys, camp, tmp_path, profile, file, old, new, message):
    """A duplicated header silently replaced the first column (every town became the industry)."""
    ds = _dataset_copy(camp, tmp_path, profile)
    path = ds / file
    if not path.exists():
        pytest.skip(f"the {profile} profile names the table differently: {sorted(p.name for p in ds.iterdir())}")
    names = next(csv.reader([path.read_text(encoding="utf-8").split("\n", 1)[0]]))
    b = _header_rename(path, old, new)
    a = [n.strip() for n in names].index("所属镇街" if profile == "zh" else new.strip()) + 1
    code, out, err = run(capsys, "validate", ds, *(["--profile", profile] if profile != "contract" else []))
    assert code == 3, out + err
    assert message.format(a=min(a, b), b=max(a, b)) in out + err


def test_xlsx_duplicate_header_is_refused_not_a_crash(capsys, camp, tmp_path):
    """The same in a dataset workbook crashed (exit 1)."""
    ds = _dataset_copy(camp, tmp_path, "contract", excel=("entities",))
    df = pd.read_csv(camp / "w" / "dataset" / "entities.csv", dtype=str)
    header = list(df.columns)
    header[header.index("industry")] = "town"
    (ds / "entities.xlsx").unlink()
    _xlsx(ds / "entities.xlsx", df, header)
    code, out, err = run(capsys, "validate", ds)
    pos = sorted([list(df.columns).index("industry") + 1, list(df.columns).index("town") + 1])
    assert code == 3 and f"duplicate header 'town' (columns {pos[0]} and {pos[1]})" in out + err


@pytest.mark.parametrize("command, what, column", [
    ("plan", "scores", "tier"), ("draw", "plan", "pi"), ("draw-xlsx", "plan", "pi"), ("estimate", "results", "result"),
    ("verify", "frame", "entity_id"),
])
def test_command_input_duplicate_header_is_refused(capsys, camp, tmp_path, command, what, column):
    src = {"scores": camp / "scores.csv", "plan": camp / "plan.csv", "frame": camp / "plan.csv"}.get(what)
    if what == "results":
        drawn = pd.read_csv(camp / "drawn.csv", dtype={"entity_id": str})
        df = drawn[["entity_id"]].assign(date="2026-02-01", result="no_problem", note="x")
    else:
        df = pd.read_csv(src, dtype={"entity_id": str, "tier": str})
    victim = next(c for c in df.columns if c != column)
    header = [column if c == victim else c for c in df.columns]
    pos = sorted([list(df.columns).index(victim) + 1, list(df.columns).index(column) + 1])
    f = tmp_path / ("in.xlsx" if command.endswith("xlsx") else "in.csv")
    if f.suffix == ".xlsx":
        _xlsx(f, df, header)
    else:
        df.set_axis(header, axis=1).to_csv(f, index=False)
    argv = {
        "plan": ["plan", "--scores", f, "--out", tmp_path / "o.csv"],
        "draw": ["draw", "--plan", f, "--seed", 7, "--out", tmp_path / "o.csv"],
        "draw-xlsx": ["draw", "--plan", f, "--seed", 7, "--out", tmp_path / "o.csv"],
        "estimate": ["estimate", "--results", f, "--plan", camp / "plan.csv", "--audit", camp / "drawn.audit.json",
                     "--out", tmp_path / "o.csv"],
        "verify": ["verify", "--audit", camp / "drawn.audit.json", "--frame", f],
    }[command]
    code, out, err = run(capsys, *argv)
    assert code == 3, out + err
    assert f"duplicate header '{column}' (columns {pos[0]} and {pos[1]})" in err and f.name in err
    assert not (tmp_path / "o.csv").exists()


# ------------------------------------------------------------------ bounded Excel reads
@pytest.mark.parametrize("case", ["draw --plan", "validate"])
def test_xlsx_with_a_stray_cell_is_refused_not_an_abort(camp, tmp_path, case):
    """A 25 KB workbook with one cell at XFD1048576 made the process try to allocate 512 GiB and
    abort; it is refused with exit 3 naming the used range and the stray cell (run in a separate
    process so a regression cannot take the test session down)."""
    if case == "validate":
        ds = _dataset_copy(camp, tmp_path)
        df = pd.read_csv(ds / "entities.csv", dtype=str)
        (ds / "entities.csv").unlink()
        _xlsx(ds / "entities.xlsx", df, stray=True)
        argv = ["validate", str(ds)]
    else:
        _xlsx(tmp_path / "plan.xlsx", pd.read_csv(camp / "plan.csv", dtype={"entity_id": str}), stray=True)
        argv = ["draw", "--plan", str(tmp_path / "plan.xlsx"), "--seed", "7", "--out", str(tmp_path / "o.csv")]
    assert (tmp_path / ("plan.xlsx" if case != "validate" else "ds/entities.xlsx")).stat().st_size < 100_000
    p = subprocess.run([sys.executable, "-m", "yiwu_credit.cli", *argv], capture_output=True, text=True,
                       env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "XFD1048576" in p.stdout + p.stderr and "stray cell" in p.stdout + p.stderr
    assert "memory allocation" not in p.stderr and "Traceback" not in p.stderr


# ------------------------------------------------------------------ one reader, one exit code
def test_verify_reads_an_xlsx_frame_like_draw(capsys, camp, tmp_path):
    """``verify --frame plan.xlsx`` failed with UnicodeDecodeError; a draw from the workbook is the
    draw from the CSV, and each verifies against the other."""
    from yiwu_credit.data.io import write_table
    from yiwu_credit.data.tables import read_input

    write_table(read_input(camp / "plan.csv", "plan"), tmp_path / "plan.xlsx")
    code, out, _ = run(capsys, "verify", "--audit", camp / "drawn.audit.json", "--frame", tmp_path / "plan.xlsx",
                       "--inspectors", camp / "w" / "inspectors.csv")
    assert code == 0 and out.startswith("OK")
    code, out, _ = run(capsys, "draw", "--plan", tmp_path / "plan.xlsx", "--seed", 7, "--out", tmp_path / "d.csv")
    assert code == 0
    assert pd.read_csv(tmp_path / "d.csv")["entity_id"].tolist() == pd.read_csv(camp / "drawn.csv")["entity_id"].tolist()
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "d.audit.json", "--frame", camp / "plan.csv")
    assert code == 0 and out.startswith("OK")


MISSING = {
    "plan --scores": lambda c, m, t: ["plan", "--scores", m, "--out", t / "o.csv"],
    "frontier --scores": lambda c, m, t: ["frontier", "--scores", m, "--out", t / "o.csv"],
    "draw --plan": lambda c, m, t: ["draw", "--plan", m, "--seed", 1, "--out", t / "o.csv"],
    "draw --previous": lambda c, m, t: ["draw", "--plan", c / "plan.csv", "--seed", 1, "--inspectors",
                                        c / "w" / "inspectors.csv", "--previous", m, "--out", t / "o.csv"],
    "verify --frame": lambda c, m, t: ["verify", "--audit", c / "drawn.audit.json", "--frame", m],
    "verify --previous": lambda c, m, t: ["verify", "--audit", c / "drawn.audit.json", "--frame", c / "plan.csv",
                                          "--previous", m],
    "estimate --plan": lambda c, m, t: ["estimate", "--results", c / "drawn.csv", "--plan", m, "--audit",
                                        c / "drawn.audit.json", "--out", t / "o.csv"],
    "estimate --results": lambda c, m, t: ["estimate", "--results", m, "--plan", c / "plan.csv", "--audit",
                                           c / "drawn.audit.json", "--out", t / "o.csv"],
    "estimate --drawn": lambda c, m, t: ["estimate", "--results", c / "drawn.csv", "--plan", c / "plan.csv",
                                         "--drawn", m, "--out", t / "o.csv"],
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_a_missing_data_file_is_exit_3_for_every_command(capsys, camp, tmp_path, case):
    """draw gave 3 and verify 4 for the same missing file."""
    code, out, err = run(capsys, *MISSING[case](camp, tmp_path / "nowhere.csv", tmp_path))
    assert code == 3 and "file not found" in err and "nowhere.csv" in err


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "sqlite:///x.db"])
def test_a_database_url_as_a_command_input_is_a_usage_error(capsys, tmp_path, url):
    code, _, err = run(capsys, "draw", "--plan", url, "--seed", 1, "--out", tmp_path / "o.csv")
    assert code == 2 and "not supported" in err and ".csv, .parquet or .xlsx" in err


# ------------------------------------------------------------------ one id rule
SPELLINGS = {
    "lower case": lambda s: s.lower(),
    "full-width": lambda s: "".join(chr(ord(c) + 0xFEE0) for c in s),
    "trailing space": lambda s: s + " ",
    "ideographic space, lower": lambda s: "\u3000" + s.lower(),
    "no-break space, tab": lambda s: "\u00a0" + s + "\t",
    "mixed": lambda s: "".join(c.lower() if i % 2 else chr(ord(c) + 0xFEE0) for i, c in enumerate(s)) + " ",
}


def _asg(camp: Path) -> pd.DataFrame:
    return pd.read_csv(camp / "drawn.inspectors.csv", dtype=str)


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_roster_conflict_recuses_however_the_id_is_spelt(capsys, camp, tmp_path, spelling):
    """A conflict written in lower case or full-width did not recuse (both conflicted inspectors
    assigned, verify OK)."""
    asg = _asg(camp)
    entity = asg["entity_id"].iloc[0]
    conflicted = asg.loc[asg["entity_id"] == entity, "inspector_id"].tolist()
    roster = pd.read_csv(camp / "w" / "inspectors.csv", dtype=str, keep_default_na=False)
    hit = roster["inspector_id"].isin(conflicted)
    roster.loc[hit, "conflicts"] = roster.loc[hit, "conflicts"].map(
        lambda v: ";".join([*filter(None, v.split(";")), SPELLINGS[spelling](entity)]))
    roster.to_csv(tmp_path / "roster.csv", index=False)
    code, out, err = run(capsys, "draw", "--plan", camp / "plan.csv", "--seed", 7, "--inspectors",
                         tmp_path / "roster.csv", "--out", tmp_path / "d.csv")
    assert code == 0, out + err
    got = _asg_file = pd.read_csv(tmp_path / "d.inspectors.csv", dtype=str)
    mine = got.loc[got["entity_id"] == entity, "inspector_id"].tolist()
    assert len(mine) == len(conflicted) and not set(mine) & set(conflicted), (mine, conflicted, _asg_file.shape)
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "d.audit.json", "--frame", camp / "plan.csv",
                       "--inspectors", tmp_path / "roster.csv")
    assert code == 0 and out.startswith("OK")


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_previous_assignments_are_not_repeated_however_the_ids_are_spelt(capsys, camp, tmp_path, spelling):
    """``draw --previous`` with lower-case ids or a trailing space repeated 100% of the pairs."""
    prev = _asg(camp)
    spell = SPELLINGS[spelling]
    prev.assign(entity_id=prev["entity_id"].map(spell), inspector_id=prev["inspector_id"].map(spell)) \
        .to_csv(tmp_path / "prev.csv", index=False)
    code, out, err = run(capsys, "draw", "--plan", camp / "plan.csv", "--seed", 7, "--inspectors",
                         camp / "w" / "inspectors.csv", "--previous", tmp_path / "prev.csv", "--out", tmp_path / "d.csv")
    assert code == 0, out + err
    assert "previous prev.csv" not in out                               # every spelt id was matched
    new = pd.read_csv(tmp_path / "d.inspectors.csv", dtype=str)
    assert len(new) == len(prev) and len(new.merge(prev, on=["entity_id", "inspector_id"])) == 0
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "d.audit.json", "--frame", camp / "plan.csv",
                       "--inspectors", camp / "w" / "inspectors.csv", "--previous", tmp_path / "prev.csv")
    assert code == 0 and out.startswith("OK")


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_results_and_published_assignments_match_however_the_ids_are_spelt(capsys, camp, tmp_path, spelling):
    """Results ids were only stripped: a lower-case id was 'not drawn' (or silently unmatched)."""
    spell = SPELLINGS[spelling]
    drawn = pd.read_csv(camp / "drawn.csv", dtype={"entity_id": str})
    res = drawn[["entity_id"]].assign(date="2026-02-01", result="no_problem")
    res.loc[::3, "result"] = "corrected"
    common = ["--plan", camp / "plan.csv", "--audit", camp / "drawn.audit.json"]
    res.to_csv(tmp_path / "r.csv", index=False)
    assert run(capsys, "estimate", "--results", tmp_path / "r.csv", *common, "--out", tmp_path / "e1.csv")[0] == 0
    res.assign(entity_id=res["entity_id"].map(spell)).to_csv(tmp_path / "r2.csv", index=False)
    asg = _asg(camp)
    asg.assign(entity_id=asg["entity_id"].map(spell), inspector_id=asg["inspector_id"].map(spell)) \
        .to_csv(tmp_path / "a.csv", index=False)
    code, out, err = run(capsys, "estimate", "--results", tmp_path / "r2.csv", *common, "--out", tmp_path / "e2.csv",
                         "--publish", tmp_path / "pub.csv", "--assignments", tmp_path / "a.csv")
    assert code == 0, out + err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "e1.csv"), pd.read_csv(tmp_path / "e2.csv"))


def test_ids_that_match_nothing_are_reported(capsys, camp, tmp_path):
    roster = pd.read_csv(camp / "w" / "inspectors.csv", dtype=str, keep_default_na=False)
    roster.loc[0, "conflicts"] = "91330782nosuchent0x"
    roster.to_csv(tmp_path / "roster.csv", index=False)
    prev = _asg(camp).head(4).assign(inspector_id="zf-nobody")
    prev.to_csv(tmp_path / "prev.csv", index=False)
    code, out, _ = run(capsys, "draw", "--plan", camp / "plan.csv", "--seed", 7, "--inspectors", tmp_path / "roster.csv",
                       "--previous", tmp_path / "prev.csv", "--out", tmp_path / "d.csv")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("warning: roster roster.csv conflicts:"))
    assert "id(s) match nothing in the plan" in line and "91330782NOSUCHENT0X" in line
    assert "previous prev.csv inspector_id: 1 id(s) match nothing in the roster" in out and "ZF-NOBODY" in out


@pytest.mark.parametrize("value", ["", "   ", "\u3000"])
def test_a_blank_id_in_a_command_input_is_refused_with_its_row(capsys, camp, tmp_path, value):
    plan = pd.read_csv(camp / "plan.csv", dtype={"entity_id": str})
    plan.loc[4, "entity_id"] = value
    plan.to_csv(tmp_path / "plan.csv", index=False)
    code, _, err = run(capsys, "draw", "--plan", tmp_path / "plan.csv", "--seed", 7, "--out", tmp_path / "o.csv")
    assert code == 3 and "plan.entity_id" in err and "missing entity_id" in err and "5" in err


_ID = st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=18, max_size=18)
_PAD = st.sampled_from(["", " ", "\t", "\u3000", "\u00a0", " \u3000 "])


@st.composite
def _spelt(draw, ident: str) -> str:
    chars = []
    for c in ident:
        form = draw(st.sampled_from(["same", "lower", "wide", "wide-lower"]))
        c2 = c.lower() if "lower" in form else c
        chars.append(chr(ord(c2) + 0xFEE0) if "wide" in form else c2)
    return draw(_PAD) + "".join(chars) + draw(_PAD)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ids=st.lists(_ID, min_size=3, max_size=3, unique=True))
def test_every_spelling_of_an_id_recuses_and_matches(data, ids):
    """Hypothesis: any spelling (case, full-width, surrounding spaces) of an entity id in a roster's
    conflicts or in the previous assignments excludes that inspector, as the canonical id does."""
    from yiwu_credit.supervision.inspectors import assign_inspectors

    spelt = [data.draw(_spelt(i)) for i in ids]
    assert list(normalise_ids(spelt)) == ids
    sel = pd.DataFrame({"town": ["t"] * 3}, index=pd.Index(ids, name="entity_id"))
    roster = pd.DataFrame({"inspector_id": ["i0", "I1", "ｉ2", "I3"], "department": "samr", "towns": "",
                           "qualifications": "", "conflicts": [spelt[0], f"{spelt[0]} ; {spelt[1]}", "", ""]})
    a = assign_inspectors(sel, roster, seed=3, per_entity=1, max_per_inspector=3, no_repeat_consecutive=True,
                          previous={spelt[2]: [" i2 "]})
    by = dict(zip(a["entity_id"], a["inspector_id"], strict=True))
    assert by[ids[0]] in {"I2", "I3"} and by[ids[1]] in {"I0", "I2", "I3"} and by[ids[2]] != "I2"


@pytest.mark.parametrize("case", ["validate", "plan --scores"])
def test_parquet_duplicate_header_is_refused(capsys, camp, tmp_path, case):
    """Parquet allows two fields of one name; the dataset loader said 'Multiple matches for
    FieldRef', the command reader kept one of them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = camp / ("w/dataset/entities.csv" if case == "validate" else "scores.csv")
    df = pd.read_csv(src, dtype=str)
    names = list(df.columns)
    victim = "industry" if case == "validate" else "probability"
    column = "town" if case == "validate" else "tier"
    pos = sorted([names.index(victim) + 1, names.index(column) + 1])
    names[names.index(victim)] = column
    table = pa.table([pa.array([None if pd.isna(v) else v for v in df[c]], pa.string()) for c in df.columns],
                     names=names)
    if case == "validate":
        ds = _dataset_copy(camp, tmp_path)
        (ds / "entities.csv").unlink()
        pq.write_table(table, ds / "entities.parquet")
        code, out, err = run(capsys, "validate", ds)
    else:
        pq.write_table(table, tmp_path / "scores.parquet")
        code, out, err = run(capsys, "plan", "--scores", tmp_path / "scores.parquet", "--out", tmp_path / "o.csv")
    assert code == 3 and f"duplicate header '{column}' (columns {pos[0]} and {pos[1]})" in out + err


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_tie_results_applies_the_id_rule_to_a_results_frame(camp, spelling):
    """The library path (a results DataFrame, not a file) uses the same rule: ids were only stripped."""
    from yiwu_credit.data.tables import read_input
    from yiwu_credit.supervision.estimates import tie_results
    from yiwu_credit.supervision.verification import load_audit

    plan = read_input(camp / "plan.csv", "plan").set_index("entity_id")
    audit = load_audit(camp / "drawn.audit.json")
    drawn = pd.read_csv(camp / "drawn.csv", dtype={"entity_id": str})
    res = drawn[["entity_id"]].assign(date="2026-02-01", result="no_problem")
    a = tie_results(res, plan, drawn=audit, verify_plan=False)
    b = tie_results(res.assign(entity_id=res["entity_id"].map(SPELLINGS[spelling])), plan, drawn=audit,
                    verify_plan=False)
    pd.testing.assert_frame_equal(a.results, b.results)


def test_a_roster_workbook_is_the_roster(capsys, camp, tmp_path):
    """The roster goes through the one reader too: as .xlsx it hashes like the CSV, so a draw made
    with the workbook verifies with the CSV."""
    from yiwu_credit.data.io import write_table
    from yiwu_credit.supervision.inspectors import roster_sha256

    roster = pd.read_csv(camp / "w" / "inspectors.csv", dtype=str, keep_default_na=False)
    write_table(roster, tmp_path / "roster.xlsx")
    assert roster_sha256(tmp_path / "roster.xlsx") == roster_sha256(camp / "w" / "inspectors.csv")
    code, out, err = run(capsys, "draw", "--plan", camp / "plan.csv", "--seed", 7, "--inspectors",
                         tmp_path / "roster.xlsx", "--out", tmp_path / "d.csv")
    assert code == 0, out + err
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "d.audit.json", "--frame", camp / "plan.csv",
                       "--inspectors", camp / "w" / "inspectors.csv")
    assert code == 0 and out.startswith("OK")


@pytest.mark.parametrize("pad", [" ", "\t", "  "])
def test_command_input_headers_are_matched_stripped(capsys, camp, tmp_path, pad):
    """A padded header is the column (the loader's rule), not a 'missing column'."""
    plan = pd.read_csv(camp / "plan.csv", dtype={"entity_id": str})
    plan.rename(columns={"entity_id": pad + "entity_id", "pi": "pi" + pad}).to_csv(tmp_path / "plan.csv", index=False)
    code, out, err = run(capsys, "draw", "--plan", tmp_path / "plan.csv", "--seed", 7, "--out", tmp_path / "d.csv")
    assert code == 0, out + err
    assert pd.read_csv(tmp_path / "d.csv")["entity_id"].tolist() == pd.read_csv(camp / "drawn.csv")["entity_id"].tolist()


@pytest.mark.parametrize("extra", ["all rows", "one row"])
def test_rows_longer_than_the_header_are_refused_not_shifted(capsys, camp, tmp_path, extra):
    """With one field more on every row, pandas made the first column the index: every column
    shifted by one (entity_id became the tier) and the draw ran on it."""
    lines = (camp / "plan.csv").read_text(encoding="utf-8").splitlines()
    body = [ln + ",x" if extra == "all rows" or i == 3 else ln for i, ln in enumerate(lines[1:])]
    (tmp_path / "plan.csv").write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "draw", "--plan", tmp_path / "plan.csv", "--seed", 7, "--out", tmp_path / "o.csv")
    assert code == 3 and "plan" in err and "plan.csv" in err and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("suffix", [".XLSX", ".Parquet", ".CSV"])
def test_a_table_s_format_follows_its_suffix_in_any_case(capsys, camp, tmp_path, suffix):
    """``PLAN.XLSX`` is a workbook and ``P.PARQUET`` Parquet, when written and when read (one rule,
    data/paths.table_format): not a CSV refused for its encoding."""
    from yiwu_credit.data.paths import table_format

    plan = tmp_path / f"plan{suffix}"
    code, _, _ = run(capsys, "plan", "--scores", camp / "scores.csv", "--n", 40, "--out", plan)
    assert code == 0
    head = plan.read_bytes()[:4]
    assert (head == b"PK\x03\x04") == (table_format(plan) == "xlsx") and (head == b"PAR1") == (table_format(plan) == "parquet")
    code, _, _ = run(capsys, "draw", "--plan", plan, "--seed", 7, "--out", tmp_path / "d.csv")
    assert code == 0
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "d.audit.json", "--frame", camp / "plan.csv")
    assert code == 0 and out.startswith("OK")


def test_roster_text_follows_the_key_rule_and_unknown_towns_are_reported(capsys, camp, tmp_path):
    """Roster towns, qualifications and conflict lists are read by the loader's key rule: a
    zero-width space or full-width text is the same town, '；' separates like ';', and a town that
    no entity of the plan has is reported (an inspector silently never eligible otherwise)."""
    from yiwu_credit.supervision.inspectors import load_roster

    ros = pd.read_csv(camp / "w" / "inspectors.csv", dtype=str, keep_default_na=False)
    clean = load_roster(ros.copy())
    dirty = ros.copy()
    dirty["towns"] = dirty["towns"].str.replace(";", "；").map(lambda t: t + "\u200b" if t else t)
    dirty["qualifications"] = dirty["qualifications"].str.replace(";", "；")
    dirty["conflicts"] = dirty["conflicts"].str.replace(";", "；")
    got = load_roster(dirty)
    assert got.table["towns"].tolist() == clean.table["towns"].tolist()
    assert got.table["qualifications"].tolist() == clean.table["qualifications"].tolist()
    assert got.table["conflicts"].tolist() == clean.table["conflicts"].tolist()
    odd = ros.copy()
    odd.loc[0, "towns"] = "不存在镇"
    odd.to_csv(tmp_path / "r.csv", index=False)
    code, out, _ = run(capsys, "draw", "--plan", camp / "plan.csv", "--seed", 7, "--inspectors", tmp_path / "r.csv",
                       "--out", tmp_path / "d.csv")
    assert code == 0 and "towns" in out and "不存在镇" in out
