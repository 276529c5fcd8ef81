"""What one command hands to the next (score → plan → draw → report) travels in the files, and
the silent mismatches of plan/frontier/train are refused (issue items 8 and 9)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yiwu_credit.cli import main
from yiwu_credit.cli.boundary import read_input
from yiwu_credit.errors import DataValidationError, UsageError
from yiwu_credit.model.labels import horizon_days
from yiwu_credit.model.training import check_test_window
from yiwu_credit.policy import load_policy
from yiwu_credit.supervision.frontier import policy_frontier
from yiwu_credit.supervision.plan import (
    PLAN_ATTR,
    PLAN_COLUMNS,
    check_plan_matches,
    plan_record_columns,
    read_plan_record,
    supervision_plan,
)
from yiwu_credit.supervision.systematic import draw


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:         # a usage error found by the command's check: argparse exits 2
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err
    return code, out, err


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """A small world scored under yiwu-2022-1.1 and under the default policy (CLI)."""
    import io
    from contextlib import redirect_stdout

    d = tmp_path_factory.mktemp("handover")
    with redirect_stdout(io.StringIO()):
        assert main(["synth", "--entities", "400", "--seed", "5", "--out", str(d / "w")]) == 0
        for name, pol in (("s11", ["--policy", "yiwu-2022-1.1"]), ("s22", [])):
            assert main(["score", "--data", str(d / "w" / "dataset"), "--as-of", "2026-01-01", *pol,
                         "--out", str(d / f"{name}.csv")]) == 0
    return d


# ------------------------------------------------------------------ the plan keeps the scores' policy
def test_plan_without_policy_uses_the_scores_tiering_policy(capsys, flow):
    d = flow
    assert run(capsys, "plan", "--scores", d / "s11.csv", "--out", d / "p_default.csv")[0] == 0
    assert run(capsys, "plan", "--scores", d / "s11.csv", "--policy", "yiwu-2022-1.1", "--out", d / "p_11.csv")[0] == 0
    a, b = pd.read_csv(d / "p_default.csv"), pd.read_csv(d / "p_11.csv")
    pd.testing.assert_frame_equal(a, b)
    pol = load_policy("yiwu-2022-1.1")
    assert set(PLAN_COLUMNS.values()) <= set(a.columns)
    assert set(a["plan_policy"]) == {"yiwu-2022-1.1"} and set(a["plan_policy_sha256"]) == {pol.sha256}
    assert set(pd.read_csv(d / "s11.csv")["tier_policy_sha256"]) == {pol.sha256}
    # the test can fail: the default policy would give another π on the same scores
    other = supervision_plan(read_input(str(d / "s11.csv"), "scores"), "yiwu-2022")
    assert not np.allclose(other.sort_index()["pi"].to_numpy(), a.set_index("entity_id").sort_index()["pi"].to_numpy())
    # the library defaults the same way
    lib = supervision_plan(read_input(str(d / "s11.csv"), "scores"))
    assert lib.attrs[PLAN_ATTR]["policy_sha256"] == pol.sha256
    np.testing.assert_array_equal(lib["pi"].to_numpy(), a["pi"].to_numpy())


@pytest.mark.parametrize("cmd", ["plan", "frontier"])
@pytest.mark.parametrize("scores, policy", [("s11", "yiwu-2022"), ("s22", "yiwu-2022-1.1")])
def test_a_policy_other_than_the_scores_is_refused(capsys, flow, cmd, scores, policy):
    d = flow
    extra = ["--budget-rate", "0.04"] if cmd == "frontier" else []
    code, _, err = run(capsys, cmd, "--scores", d / f"{scores}.csv", "--policy", policy, *extra,
                       "--out", d / f"x_{cmd}.csv")
    assert code == 2 and "is not the policy that tiered the scores" in err
    assert not (d / f"x_{cmd}.csv").exists()


def _edit_scores(d, name, **cols):
    s = pd.read_csv(d / "s11.csv", dtype=str)
    for c, v in cols.items():
        if v is None:
            s = s.drop(columns=c)
        elif callable(v):
            s[c] = v(s[c])
        else:
            s[c] = v
    s.to_csv(d / name, index=False)
    return d / name


@pytest.mark.parametrize("edit, code, message", [
    ({"tier_policy": "my-own@1.0"}, 4, "not a shipped policy: pass its file with --policy PATH"),
    ({"tier_policy_sha256": "0" * 64}, 4, "pass the policy file with --policy PATH"),
    ({"tier_policy": "../../etc/x.toml@1"}, 4, "--policy PATH"),
    ({"tier_policy_sha256": lambda c: c.where(c.index != 7, "f" * 64)}, 3, "same on every row"),
    ({"tier_policy_sha256": None}, 3, "tier_policy_sha256: missing"),
])
def test_scores_policy_that_cannot_be_resolved_is_refused(capsys, flow, edit, code, message):
    path = _edit_scores(flow, "s_edit.csv", **edit)
    got, _, err = run(capsys, "plan", "--scores", path, "--out", flow / "x.csv")
    assert got == code and message in err


def test_a_foreign_scores_table_is_planned_under_the_default_with_a_note(capsys, flow):
    path = _edit_scores(flow, "s_foreign.csv", tier_policy=None, tier_policy_sha256=None)
    code, out, _ = run(capsys, "plan", "--scores", path, "--out", flow / "p_foreign.csv")
    assert code == 0 and "note:" in out and "default policy yiwu-2022" in out
    assert set(pd.read_csv(flow / "p_foreign.csv")["plan_policy"]) == {"yiwu-2022"}


def test_a_policy_file_that_tiered_the_scores_must_be_given_again(capsys, flow, tmp_path):
    """Scores tiered by a policy FILE named like a shipped one but hashing differently: plan without
    --policy is refused (exit 4, asking for --policy PATH); with that file it plans under it."""
    from importlib import resources

    shipped = resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022-1.1.toml"
    text = shipped.read_text(encoding="utf-8")
    assert "weight = 15.0" in text
    mine = tmp_path / "mine.toml"
    mine.write_text(text.replace("weight = 15.0", "weight = 20.0"), encoding="utf-8")
    d = flow
    assert run(capsys, "score", "--data", d / "w" / "dataset", "--as-of", "2026-01-01", "--policy", mine,
               "--out", tmp_path / "s.csv")[0] == 0
    code, _, err = run(capsys, "plan", "--scores", tmp_path / "s.csv", "--out", tmp_path / "p.csv")
    assert code == 4 and "not the shipped yiwu-2022-1.1" in err and "--policy PATH" in err
    assert run(capsys, "plan", "--scores", tmp_path / "s.csv", "--policy", mine, "--out", tmp_path / "p.csv")[0] == 0
    assert set(pd.read_csv(tmp_path / "p.csv")["plan_policy_sha256"]) == {load_policy(mine).sha256}
    # and the shipped one of that name is another policy for these scores
    code, _, err = run(capsys, "plan", "--scores", tmp_path / "s.csv", "--policy", "yiwu-2022-1.1",
                       "--out", tmp_path / "p2.csv")
    assert code == 2 and "is not the policy that tiered the scores" in err


# ------------------------------------------------------------------ the record travels in the file
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_plan_file_round_trip_keeps_the_record_and_draw_audits_it(capsys, flow, suffix):
    d = flow
    out = d / f"p_rt{suffix}"
    assert run(capsys, "plan", "--scores", d / "s11.csv", "--n", "20", "--out", out)[0] == 0
    want = supervision_plan(read_input(str(d / "s11.csv"), "scores"), n=20).attrs[PLAN_ATTR]
    got = read_plan_record(read_input(str(out), "plan"))
    assert got == want and json.dumps(got) == json.dumps(want)        # same values, types and order
    assert run(capsys, "draw", "--plan", out, "--seed", "11", "--out", d / f"drawn{suffix}.csv")[0] == 0
    audit = json.loads((d / f"drawn{suffix}.audit.json").read_text())
    assert audit["plan"] == want and audit["plan"]["policy"] == "yiwu-2022-1.1"
    mem = draw(supervision_plan(read_input(str(d / "s11.csv"), "scores"), n=20), None, "11")
    assert mem.audit["plan"] == audit["plan"] and mem.audit["selected"] == audit["selected"]


@pytest.mark.parametrize("column, edit, message", [
    ("plan_policy", lambda c: c.where(c.index != 3, "yiwu-2022"), "same on every row"),
    ("plan_budget", lambda c: c.where(c.index != 0, "lots"), "same on every row"),
    ("plan_budget", lambda c: "lots", "expected a finite number"),
    ("plan_floor", lambda c: "0", "expected a number in (0, 1]"),
    ("plan_policy_sha256", lambda c: "abc", "SHA-256"),
    ("plan_scale_by_probability", lambda c: "maybe", "True or False"),
    ("plan_n", lambda c: "2.5", "whole number"),
    ("plan_notes", lambda c: "not json", "JSON list"),
    ("plan_alpha", None, "travel together"),
])
def test_an_edited_plan_record_is_refused_by_draw(capsys, flow, column, edit, message):
    d = flow
    assert run(capsys, "plan", "--scores", d / "s11.csv", "--out", d / "p_ok.csv")[0] == 0
    p = pd.read_csv(d / "p_ok.csv", dtype=str)
    p = p.drop(columns=column) if edit is None else p.assign(**{column: edit(p[column])})
    p.to_csv(d / "p_bad.csv", index=False)
    code, _, err = run(capsys, "draw", "--plan", d / "p_bad.csv", "--seed", "1", "--out", d / "x_drawn.csv")
    assert code == 3 and column in err and message in err
    assert not (d / "x_drawn.csv").exists()


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(budget=st.floats(1e-6, 1e9), floor=st.floats(1e-9, 1.0), alpha=st.floats(0, 8), n=st.integers(1, 10**7),
       name=_text.filter(lambda s: s.strip() == s and not s.isspace()), notes=st.lists(_text, max_size=3),
       scale=st.booleans(), scope=st.sampled_from(["all", "routine", "none"]))
def test_record_columns_round_trip_through_csv_text(tmp_path_factory, budget, floor, alpha, n, name, notes, scale,
                                                    scope):
    rec = {"policy": name, "policy_version": "1.0", "policy_sha256": "a" * 64, "n": n, "budget": budget,
           "floor": floor, "scale_by_probability": scale, "alpha": alpha, "entity_type_factor_scope": scope,
           "campaigns_per_year": budget / n, "population": n + 3, "must_include": 1, "notes": notes}
    frame = pd.DataFrame({"entity_id": ["a", "b", "c"], "pi": 0.5, **plan_record_columns(rec, 3)})
    path = tmp_path_factory.mktemp("rt") / "p.csv"
    frame.to_csv(path, index=False)
    assert read_plan_record(read_input(str(path), "plan")) == rec
    assert read_plan_record(frame.set_index("entity_id")) == rec


# ------------------------------------------------------------------ report --plan of another population
@pytest.mark.parametrize("which, code, message", [
    ("same", 0, None),
    ("subset", 3, "scored entities not planned"),
    ("foreign_id", 3, "planned entities not scored"),
    ("other_policy", 3, "planned under policy yiwu-2022@"),
])
def test_report_refuses_a_plan_of_another_population_or_policy(capsys, flow, which, code, message):
    pytest.importorskip("matplotlib")
    d = flow
    if which == "other_policy":
        assert run(capsys, "plan", "--scores", d / "s22.csv", "--out", d / "p_r.csv")[0] == 0
    else:
        assert run(capsys, "plan", "--scores", d / "s11.csv", "--out", d / "p_r.csv")[0] == 0
        p = pd.read_csv(d / "p_r.csv", dtype=str)
        if which == "subset":
            p = p.iloc[:-5]
        elif which == "foreign_id":
            p.loc[0, "entity_id"] = "91330782XXXXXXXXXX"
        p.to_csv(d / "p_r.csv", index=False)
    got, _, err = run(capsys, "report", "--data", d / "w" / "dataset", "--as-of", "2026-01-01", "--policy",
                      "yiwu-2022-1.1", "--plan", d / "p_r.csv", "--out", d / "r.html")
    assert got == code, err
    if message:
        assert message in err and "plan." in err


def test_check_plan_matches_library(flow):
    s = read_input(str(flow / "s11.csv"), "scores")
    plan = supervision_plan(s)
    check_plan_matches(plan, s, load_policy("yiwu-2022-1.1"))
    with pytest.raises(DataValidationError, match="planned under policy yiwu-2022-1.1"):
        check_plan_matches(plan, s, load_policy("yiwu-2022"))
    with pytest.raises(DataValidationError, match="1 scored entities not planned"):
        check_plan_matches(plan.iloc[1:], s)


# ------------------------------------------------------------------ duplicated ids
@pytest.mark.parametrize("dups", [[5], [5, 9], [0, 0]])
@pytest.mark.parametrize("cmd", ["plan", "frontier"])
def test_duplicate_entity_ids_are_refused_by_plan_and_frontier(capsys, flow, cmd, dups):
    s = pd.read_csv(flow / "s11.csv", dtype=str)
    s = pd.concat([s, s.iloc[dups]], ignore_index=True)
    s.to_csv(flow / "s_dup.csv", index=False)
    extra = ["--budget-rate", "0.04"] if cmd == "frontier" else []
    code, _, err = run(capsys, cmd, "--scores", flow / "s_dup.csv", *extra, "--out", flow / "x_dup.csv")
    assert code == 3 and "entity_id: duplicate entity_id" in err
    for i in sorted(set(dups)):
        assert repr(s.loc[i, "entity_id"]) in err and f"{i + 1}" in err
    n_rows = 2 * len(set(dups)) + (len(dups) - len(set(dups)))
    assert f"{n_rows} row(s)" in err


@pytest.mark.parametrize("fn", [lambda s: supervision_plan(s), lambda s: policy_frontier(s, 10.0)])
def test_duplicate_entity_ids_are_refused_by_the_library(flow, fn):
    s = read_input(str(flow / "s11.csv"), "scores")
    with pytest.raises(DataValidationError, match="duplicate entity_id") as ei:
        fn(pd.concat([s, s.iloc[[2]]]))
    assert ei.value.exit_code == 3 and ei.value.problems[0].rows == (3, len(s) + 1)


# ------------------------------------------------------------------ train: dates, horizon, labels
@pytest.mark.parametrize("test_as_of", ["2024-01-01", "2023-06-30", "2010-01-01"])
def test_train_test_as_of_not_after_as_of_is_refused(capsys, test_as_of):
    code, _, err = run(capsys, "train", "--synthetic", "400", "--as-of", "2024-01-01", "--test-as-of", test_as_of,
                       "--out", "/nonexistent/never-written")
    assert code == 2 and "--test-as-of" in err and "is not after as-of 2024-01-01" in err
    with pytest.raises(UsageError, match="not after as_of"):
        check_test_window("2024-01-01", test_as_of, 365)


def test_a_test_window_overlapping_the_training_labels_warns():
    assert check_test_window("2024-01-01", "2024-12-31", 365) == []
    assert check_test_window("2024-01-01", "2025-01-02", 365) == []
    w = check_test_window("2024-01-01", "2024-07-01", 365)
    assert len(w) == 1 and "overlap the training labels" in w[0] and "2024-12-31" in w[0]


@pytest.mark.parametrize("horizon", ["abc", "0", "-5", "1.5", "12H", "25H", "NaT", "99999D", "4000", " ", "1e9"])
def test_bad_horizon_is_a_usage_error(capsys, horizon):
    code, _, err = run(capsys, "train", "--synthetic", "400", "--as-of", "2024-01-01", f"--horizon={horizon}",
                       "--out", "/nonexistent/never-written")
    assert code == 2 and "--horizon: expected a whole number of days" in err
    with pytest.raises(UsageError, match="horizon"):
        horizon_days(horizon)


@pytest.mark.parametrize("horizon, days", [("365", 365), ("365D", 365), ("90 days", 90), (30, 30), (30.0, 30),
                                           (pd.Timedelta(days=7), 7), ("52W", 364)])
def test_good_horizons_still_parse(horizon, days):
    assert horizon_days(horizon) == days


@pytest.mark.parametrize("bad", [True, 1.5, math.nan, -1, 0, [365]])
def test_bad_horizon_values_in_the_library(bad):
    with pytest.raises(UsageError):
        horizon_days(bad)


def test_training_data_with_no_violations_is_exit_3(capsys, flow, tmp_path):
    import shutil

    data = tmp_path / "dataset"
    shutil.copytree(flow / "w" / "dataset", data)
    for name in ("penalties", "inspections", "list_records"):
        head = (data / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        (data / f"{name}.csv").write_text(head + "\n", encoding="utf-8")
    code, _, err = run(capsys, "train", "--data", data, "--as-of", "2024-01-01", "--out", tmp_path / "m")
    assert code == 3 and "no violations" in err and "training labels at 2024-01-01" in err and "cannot fit" in err
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------ estimates read the plan's policy
def test_estimates_use_the_plan_s_policy_and_refuse_another(flow):
    """The adverse result codes come from the policy the plan was made under (its plan_* record);
    another --policy is refused, not silently used."""
    from yiwu_credit.policy import load_policy
    from yiwu_credit.supervision.estimates import violation_rates
    from yiwu_credit.supervision.plan import plan_policy

    plan = supervision_plan(read_input(flow / "s11.csv", "scores"), n=40)
    assert plan_policy(plan)[0].sha256 == load_policy("yiwu-2022-1.1").sha256
    d = draw(plan, None, "2026", window=("2026-02-01", "2026-04-30"))
    drawn = d.selected if hasattr(d, "selected") else d.frame(plan).index
    ids = list(pd.Index(drawn))
    res = pd.DataFrame({"entity_id": ids, "date": "2026-03-01",
                        "result": ["no_problem", "corrected"] * (len(ids) // 2) + ["no_problem"] * (len(ids) % 2)})
    est = violation_rates(res, plan, drawn=d)
    assert est.loc[est["domain"] == "all", "violations"].iloc[0] > 0
    with pytest.raises(UsageError, match="not the policy that planned the plan"):
        violation_rates(res, plan, drawn=d, policy="yiwu-2022")
    # a plan without a record: the default, and no refusal
    bare = plan.drop(columns=list(PLAN_COLUMNS.values()))
    bare.attrs.clear()
    assert plan_policy(bare)[1] is not None


@pytest.mark.parametrize("cmd", ["draw", "verify", "estimate"])
def test_an_id_repeated_in_another_spelling_is_refused_by_every_command(capsys, flow, cmd):
    """A plan (or drawn list) naming an entity twice, once in lower case, is a data error naming the
    id and rows (exit 3) for every command that reads it, not an 'impossible plan' (6)."""
    run(capsys, "plan", "--scores", flow / "s11.csv", "--n", "30", "--out", flow / "p_ok.csv")
    assert run(capsys, "draw", "--plan", flow / "p_ok.csv", "--seed", "4", "--window", "2026-02-01", "2026-04-30",
               "--out", flow / "d_ok.csv")[0] == 0
    p = pd.read_csv(flow / "p_ok.csv", dtype=str, keep_default_na=False)
    twin = p.iloc[[3]].assign(entity_id=p["entity_id"].iloc[3].lower())
    pd.concat([p, twin], ignore_index=True).to_csv(flow / "p_twin.csv", index=False)
    drawn = pd.read_csv(flow / "d_ok.csv", dtype=str, keep_default_na=False)[["entity_id"]]
    pd.concat([drawn, drawn.iloc[[0]].assign(entity_id=lambda d: d["entity_id"].str.lower())],
              ignore_index=True).to_csv(flow / "d_twin.csv", index=False)
    (flow / "r_none.csv").write_text("entity_id,date,result\n", encoding="utf-8")
    argv = {"draw": ["draw", "--plan", flow / "p_twin.csv", "--seed", "4", "--out", flow / "d_x.csv"],
            "verify": ["verify", "--audit", flow / "d_ok.audit.json", "--frame", flow / "p_twin.csv"],
            "estimate": ["estimate", "--results", flow / "r_none.csv", "--plan", flow / "p_ok.csv", "--drawn",
                         flow / "d_twin.csv", "--campaign-start", "2026-02-01", "--campaign-end", "2026-04-30",
                         "--out", flow / "e_x.csv"]}[cmd]
    code, _, err = run(capsys, *argv)
    assert code == 3 and "duplicate entity_id" in err and "row(s)" in err
