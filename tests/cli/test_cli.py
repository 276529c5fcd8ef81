"""The command line end to end on a small world, and on malformed inputs (message + exit code)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_help_has_examples(capsys):
    for cmd in ("validate", "synth", "train", "score", "plan", "frontier", "draw", "verify", "estimate", "report", "monitor",
                "simulate-loop", "demo"):
        with pytest.raises(SystemExit) as ei:
            main([cmd, "--help"])
        assert ei.value.code == 0
        out = capsys.readouterr().out
        assert "example:" in out and f"yiwu-credit {cmd}" in out


def test_synth_validate_score_end_to_end(capsys, tmp_path):
    code, out, _ = run(capsys, "synth", "--entities", 1500, "--seed", 3, "--out", tmp_path / "w")
    assert code == 0 and "1,500 entities" in out
    data = tmp_path / "w" / "dataset"
    assert not (data / "truth.parquet").exists() and (tmp_path / "w" / "truth.parquet").exists()
    code, out, _ = run(capsys, "validate", data)
    assert code == 0 and "no problems found" in out
    code, out, _ = run(capsys, "score", "--data", data, "--as-of", "2026-01-01", "--out", tmp_path / "s.csv")
    assert code == 0, out
    s = pd.read_csv(tmp_path / "s.csv", encoding="utf-8-sig")
    rej = pd.read_csv(tmp_path / "s.rejects.csv", encoding="utf-8-sig")
    assert len(s) + len(rej) == 1500  # every entity accounted for
    assert {"entity_id", "probability", "credit_score", "tier", "tier_zh", "reason_1_zh", "reason_1_en",
            "overrides", "model_version"} <= set(s.columns)
    assert set(s["tier_zh"]) <= {"信用风险低", "信用风险一般", "信用风险较高", "信用风险高"}
    cd = s[s["tier"].isin(["C", "D"])]
    assert cd["reason_1_zh"].notna().mean() > 0.9
    assert "= scored" in out
    # parquet output, and a bad row quarantined: counts still reconcile
    ent = pd.read_csv(data / "entities.csv", dtype=str, keep_default_na=False)
    ent.loc[3, "entity_id"] = ent.loc[3, "entity_id"][:-1] + ("0" if ent.loc[3, "entity_id"][-1] != "0" else "1")
    ent.to_csv(data / "entities.csv", index=False)
    code, out, _ = run(capsys, "score", "--data", data, "--as-of", "2026-01-01", "--out", tmp_path / "s.parquet")
    assert code == 0
    s2 = pd.read_parquet(tmp_path / "s.parquet")
    rej2 = pd.read_csv(tmp_path / "s.rejects.csv")
    ent_rej = rej2[(rej2["table"] == "entities")]
    assert len(s2) + len(ent_rej) == 1500
    assert "invalid USCC" in " ".join(rej2["reason"].astype(str))


@pytest.mark.slow
def test_train_writes_a_loadable_bundle(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "--synthetic", 3000, "--seed", 1, "--as-of", "2024-01-01",
                       "--out", tmp_path / "m")
    assert code == 0 and "out-of-time" in out
    man = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert man["name"] == "m" and man["training"]["as_of"] == "2024-01-01"


@pytest.fixture()
def data(world_copy):
    return world_copy


def _csv(path, fn):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(df).to_csv(path, index=False)


@pytest.mark.parametrize("breakage, expect", [
    (lambda d: (d / "penalties.csv").unlink(), "penalties: file not found"),
    (lambda d: _csv(d / "complaints.csv", lambda df: df.rename(columns={"received_on": "date"})), "missing column"),
    (lambda d: _csv(d / "entities.csv", lambda df: df.assign(entity_id=df["entity_id"].str[:-1] + "I")), "invalid USCC"),
    (lambda d: _csv(d / "penalties.csv", lambda df: df.assign(decided_on="31/12/2020")), "not an ISO date"),
    (lambda d: (d / "entities.csv").write_text(""), "cannot read entities.csv"),
])
def test_malformed_inputs_validate(capsys, data, breakage, expect):
    breakage(data)
    code, out, err = run(capsys, "validate", data)
    assert code == 3
    assert expect in out + err


def test_empty_event_table_is_fine(capsys, data, tmp_path):
    _csv(data / "complaints.csv", lambda df: df.iloc[:0])
    code, out, _ = run(capsys, "score", "--data", data, "--as-of", "2026-01-01", "--out", tmp_path / "o.csv")
    assert code == 0


def test_strict_score_on_bad_data_exits_3(capsys, data, tmp_path):
    _csv(data / "penalties.csv", lambda df: df.assign(fine_cny="-1"))
    code, _, err = run(capsys, "score", "--strict", "--data", data, "--as-of", "2026-01-01", "--out", tmp_path / "o.csv")
    assert code == 3 and "penalties.fine_cny" in err and not (tmp_path / "o.csv").exists()


def test_unknown_model_and_tampered_bundle(capsys, data, tmp_path, bundle):
    code, _, err = run(capsys, "score", "--data", data, "--as-of", "2026-01-01", "--model", tmp_path / "nope",
                       "--out", tmp_path / "o.csv")
    assert code == 5 and "no model bundle" in err
    t = tmp_path / "tampered"
    shutil.copytree(bundle.path, t)
    with open(t / "model.joblib", "ab") as f:
        f.write(b"x")
    code, _, err = run(capsys, "score", "--data", data, "--as-of", "2026-01-01", "--model", t, "--out", tmp_path / "o.csv")
    assert code == 5 and "modified" in err and not (tmp_path / "o.csv").exists()


def test_missing_dataset_dir(capsys, tmp_path):
    code, out, err = run(capsys, "validate", tmp_path / "none")
    assert code == 3 and "directory not found" in out + err


def test_usage_error_exit_2(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["score", "--data"])
    assert ei.value.code == 2


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """synth → score → plan → draw (with inspectors) through the CLI, once for the module."""
    import io
    from contextlib import redirect_stdout

    d = tmp_path_factory.mktemp("campaign")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["synth", "--entities", "4000", "--seed", "9", "--out", str(d / "w")]) == 0
        assert main(["score", "--data", str(d / "w" / "dataset"), "--as-of", "2026-01-01",
                     "--out", str(d / "scores.csv")]) == 0
        assert main(["plan", "--scores", str(d / "scores.csv"), "--n", "200", "--out", str(d / "plan.csv")]) == 0
        assert main(["draw", "--plan", str(d / "plan.csv"), "--seed", "20260101", "--inspectors",
                     str(d / "w" / "inspectors.csv"), "--window", "2026-02-01", "2026-04-30",
                     "--out", str(d / "drawn.csv")]) == 0
    return d, buf.getvalue()


def test_frontier_command(capsys, campaign):
    d, _ = campaign
    code, out, _ = run(capsys, "frontier", "--scores", d / "scores.csv", "--budget-rate", 0.04, "--alphas", "0,1,2",
                       "--scopes", "all,routine", "--out", d / "frontier.csv", "--burden", d / "fburden.csv",
                       "--plot", d / "frontier.png", "--top", 3)
    assert code == 0, out
    t = pd.read_csv(d / "frontier.csv")
    assert len(t) == 1 + 4 * 3 * 2 - 1 and t["in_force"].sum() == 1      # in force + grid minus its duplicate
    assert {"detections", "lift", "share_tier_a", "share_below_median", "min_pi", "max_per_year",
            "burden_individual"} <= set(t.columns)
    assert "in_force" in out and "frontier of 24 candidate policies" in out
    assert (d / "frontier.png").stat().st_size > 5000 and len(pd.read_csv(d / "fburden.csv")) > 24
    with pytest.raises(SystemExit) as ei:
        main(["frontier", "--scores", str(d / "scores.csv"), "--scopes", "some", "--out", str(d / "x.csv")])
    assert ei.value.code == 2 and "expected scopes from all, routine, none" in capsys.readouterr().err


def _verify(capsys, d, *extra):
    return run(capsys, "verify", "--audit", d / "drawn.audit.json", "--frame", d / "plan.csv", *extra)


def test_plan_draw_verify_estimate(capsys, campaign):
    d, log = campaign
    assert "campaign of 200" in log and "audit record" in log and "campaign window 2026-02-01 – 2026-04-30" in log
    plan = pd.read_csv(d / "plan.csv")
    drawn = pd.read_csv(d / "drawn.csv")
    assert len(drawn) == 200 and abs(plan["pi"].sum() - 200) < 1e-6
    assert drawn["inspectors"].str.count(";").min() >= 1  # at least two inspectors each
    code, out, _ = _verify(capsys, d, "--inspectors", d / "w" / "inspectors.csv")
    assert code == 0 and out.startswith("OK")
    assert "entities: 200 of" in out and "inspectors: roster hash matches" in out
    assert "drawn.inspectors.csv lists exactly the recorded assignment" in out
    # results for the drawn entities → estimates and the published table
    res = drawn[["entity_id"]].assign(date="2026-02-01", result=np.where(np.arange(len(drawn)) % 5 == 0,
                                                                         "pending", "no_problem"))
    res.to_csv(d / "results.csv", index=False)
    code, out, _ = run(capsys, "estimate", "--results", d / "results.csv", "--plan", d / "plan.csv",
                       "--audit", d / "drawn.audit.json", "--out", d / "est.csv", "--publish", d / "pub.csv",
                       "--assignments", d / "drawn.inspectors.csv")
    assert code == 0 and "violation rate" in out and "200 of 200 drawn entities have a result (100.0%)" in out
    est = pd.read_csv(d / "est.csv")
    assert {"domain", "level", "drawn", "n", "response_rate", "rate", "se", "ci_low", "ci_high"} <= set(est.columns)
    pub = pd.read_csv(d / "pub.csv", encoding="utf-8-sig")
    assert "检查结果" in pub.columns and len(pub) == 200
    summary = pd.read_csv(d / "pub.summary.csv", encoding="utf-8-sig", dtype=str).set_index("item")["value"]
    assert summary["response_rate"] == "1.0000" and summary["drawn"] == "200"


def test_verify_covers_the_inspector_draw(capsys, campaign, tmp_path):
    """Issue 11 item 6: editing drawn.inspectors.csv is a MISMATCH naming the entity; an audit with
    an inspector draw is never a bare OK without the roster."""
    d, _ = campaign
    code, out, _ = _verify(capsys, d)
    assert code == 7 and "NOT VERIFIED" in out and "--inspectors ROSTER" in out and not out.startswith("OK")
    asg = pd.read_csv(d / "drawn.inspectors.csv", dtype=str)
    roster = pd.read_csv(d / "w" / "inspectors.csv", dtype=str)
    e = asg.loc[0, "entity_id"]
    asg.loc[0, "inspector_id"] = next(i for i in roster["inspector_id"]
                                      if i not in set(asg.loc[asg["entity_id"] == e, "inspector_id"]))
    asg.to_csv(tmp_path / "tampered.csv", index=False)
    code, out, _ = _verify(capsys, d, "--inspectors", d / "w" / "inspectors.csv", "--assignments",
                           tmp_path / "tampered.csv")
    assert code == 7 and "MISMATCH" in out and f"tampered.csv: entity {e}" in out
    # a roster changed after the draw: the hash and the recomputed assignment say so
    roster.iloc[1:].to_csv(tmp_path / "roster.csv", index=False)
    code, out, _ = _verify(capsys, d, "--inspectors", tmp_path / "roster.csv")
    assert code == 7 and "inspectors.roster_sha256" in out


def test_estimate_is_tied_to_the_draw(capsys, campaign, tmp_path):
    """Issue 11 item 5: twenty results for undrawn tier-A entities are refused (exit 3 naming ids and
    rows), as are duplicates, dates outside the campaign and a header-only file; non-response is
    reported by tier and adjusted."""
    d, _ = campaign
    plan = pd.read_csv(d / "plan.csv", dtype={"entity_id": str})
    drawn = pd.read_csv(d / "drawn.csv", dtype={"entity_id": str})
    res = drawn[["entity_id"]].assign(date="2026-02-01", result="no_problem")
    common = ("--plan", d / "plan.csv", "--audit", d / "drawn.audit.json", "--out", tmp_path / "est.csv")

    def estimate(df, *extra):
        df.to_csv(tmp_path / "r.csv", index=False)
        return run(capsys, "estimate", "--results", tmp_path / "r.csv", *common, *extra)

    undrawn = plan.loc[(plan["tier"] == "A") & ~plan["entity_id"].isin(drawn["entity_id"]), "entity_id"][:20]
    code, out, err = estimate(pd.concat([res, pd.DataFrame({"entity_id": undrawn, "date": "2026-02-01",
                                                            "result": "pending"})]))
    assert code == 3 and "results.entity_id: result for an entity not drawn" in err
    assert undrawn.iloc[0] in err and "20 row(s), e.g. rows 201, 202" in err and not (tmp_path / "est.csv").exists()
    code, _, err = estimate(pd.concat([res, res.iloc[[7]]]))
    assert code == 3 and "more than one result" in err and "rows 8, 201" in err
    code, _, err = estimate(res.assign(date=["2026-05-01"] + ["2026-02-01"] * (len(res) - 1)))
    assert code == 3 and "date outside the campaign window 2026-02-01 – 2026-04-30: ['2026-05-01']" in err
    code, _, err = estimate(res.iloc[:0])
    assert code == 3 and "no data rows" in err
    code, _, err = run(capsys, "estimate", "--results", tmp_path / "r.csv", "--plan", d / "plan.csv",
                       "--drawn", d / "drawn.csv", "--out", tmp_path / "e.csv")
    assert code == 6 and "campaign window unknown" in err              # a bare list carries no window
    with pytest.raises(SystemExit) as ei:                              # no draw at all: usage error
        main(["estimate", "--results", str(tmp_path / "r.csv"), "--plan", str(d / "plan.csv"),
              "--out", str(tmp_path / "e.csv")])
    assert ei.value.code == 2
    capsys.readouterr()

    # non-response: drop 30 of the tier-D results and 5 of tier C
    tier = plan.set_index("entity_id")["tier"]
    t = tier[res["entity_id"]].to_numpy()
    keep = ~(((t == "D") & (np.cumsum(t == "D") <= 30)) | ((t == "C") & (np.cumsum(t == "C") <= 5)))
    code, out, _ = estimate(res[keep], "--publish", tmp_path / "pub.csv")
    assert code == 0 and f"{int(keep.sum())} of 200 drawn entities have a result" in out
    assert "weights adjusted within tier for non-response" in out
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0] in "ABCD"}
    assert lines["D"][3] == "30" and lines["C"][3] == "5" and lines["A"][3] == "0"
    est = pd.read_csv(tmp_path / "est.csv").set_index(["domain", "level"])
    assert est.loc[("all", "all"), "n"] == keep.sum() and est.loc[("all", "all"), "drawn"] == 200
    summary = pd.read_csv(tmp_path / "pub.summary.csv", encoding="utf-8-sig", dtype=str).set_index("item")["value"]
    assert float(summary["response_rate"]) == pytest.approx(keep.mean()) and summary["not_inspected"] == "35"
    assert len(pd.read_csv(tmp_path / "pub.csv", encoding="utf-8-sig")) == keep.sum()
    # the published table's inspectors must be the audited ones
    asg = pd.read_csv(d / "drawn.inspectors.csv", dtype=str)
    asg.loc[0, "inspector_id"] = "ZF-nobody"
    asg.to_csv(tmp_path / "asg.csv", index=False)
    (tmp_path / "est.csv").unlink()
    code, _, err = estimate(res[keep], "--publish", tmp_path / "pub2.csv", "--assignments", tmp_path / "asg.csv")
    assert code == 3 and f"entity {asg.loc[0, 'entity_id']}" in err and "ZF-NOBODY" in err  # inspector ids follow the one id rule
    assert not (tmp_path / "pub2.csv").exists() and not (tmp_path / "est.csv").exists()


@pytest.mark.parametrize("field, value", [("n", "abc"), ("seed", [1]), ("selected", 5), ("start", None)])
def test_malformed_audit_is_exit_4_naming_file_and_field(capsys, campaign, tmp_path, field, value):
    d, _ = campaign
    audit = json.loads((d / "drawn.audit.json").read_text())
    audit[field] = value
    (tmp_path / "bad.audit.json").write_text(json.dumps(audit))
    code, out, err = run(capsys, "verify", "--audit", tmp_path / "bad.audit.json", "--frame", d / "plan.csv")
    assert code == 4 and "bad.audit.json" in err and f"field '{field}'" in err
    drawn = pd.read_csv(d / "drawn.csv", dtype={"entity_id": str})
    drawn[["entity_id"]].assign(date="2026-02-01", result="no_problem").to_csv(tmp_path / "r.csv", index=False)
    code, _, err = run(capsys, "estimate", "--results", tmp_path / "r.csv", "--plan", d / "plan.csv",
                       "--audit", tmp_path / "bad.audit.json", "--out", tmp_path / "e.csv")
    assert code == 4 and f"field '{field}'" in err


def test_malformed_draw_inputs_and_manifests(capsys, campaign, tmp_path, bundle):
    d, _ = campaign
    (tmp_path / "zero.csv").write_bytes(b"")
    code, _, err = run(capsys, "draw", "--plan", d / "plan.csv", "--seed", "1", "--inspectors", tmp_path / "zero.csv",
                       "--out", tmp_path / "o.csv")
    assert code == 4 and "zero.csv: the roster file is empty" in err and not (tmp_path / "o.csv").exists()
    code, _, err = _verify(capsys, d, "--inspectors", tmp_path / "zero.csv")
    assert code == 4 and "zero.csv" in err
    code, _, err = run(capsys, "verify", "--audit", d / "drawn.audit.json", "--frame", tmp_path / "zero.csv")
    assert code == 3 and "zero.csv" in err
    with pytest.raises(SystemExit) as ei:  # a window ending before it starts is a usage error (exit 2)
        run(capsys, "draw", "--plan", d / "plan.csv", "--seed", "1", "--window", "2026-05-01", "2026-04-01",
            "--out", tmp_path / "o.csv")
    assert ei.value.code == 2 and "after end" in capsys.readouterr().err
    plan = pd.read_csv(d / "plan.csv", dtype={"entity_id": str})
    plan.assign(pi=plan["pi"].astype(str).where(plan.index != 3, "abc")).to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run(capsys, "draw", "--plan", tmp_path / "p.csv", "--seed", "1", "--out", tmp_path / "o.csv")
    assert code == 6 and "plan.pi: not a number (['abc'])" in err
    code, out, _ = run(capsys, "verify", "--audit", d / "drawn.audit.json", "--frame", tmp_path / "p.csv",
                       "--inspectors", d / "w" / "inspectors.csv")
    assert code == 7 and "MISMATCH" in out and "not a number" in out
    plan.iloc[:0].to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run(capsys, "draw", "--plan", tmp_path / "p.csv", "--seed", "1", "--out", tmp_path / "o.csv")
    assert code == 6 and "the plan is empty" in err and not (tmp_path / "o.csv").exists()
    for manifest, expect in (([], "manifest must be a JSON object, got list"),
                             ("x", "manifest must be a JSON object, got str"),
                             ("files", "field 'files'"), ("versions", "field 'versions'")):
        b = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        shutil.copytree(bundle.path, b)
        if manifest in ("files", "versions"):
            m = json.loads((b / "manifest.json").read_text())
            m[manifest] = ["model.joblib"]
            manifest = m
        (b / "manifest.json").write_text(json.dumps(manifest))
        code, _, err = run(capsys, "score", "--data", d / "w" / "dataset", "--as-of", "2026-01-01", "--model", b,
                           "--out", tmp_path / "s.csv")
        assert code == 5 and "manifest.json" in err and expect in err, err


def test_verify_detects_tampering(capsys, campaign, tmp_path):
    d, _ = campaign
    roster = ("--inspectors", d / "w" / "inspectors.csv")
    plan = pd.read_csv(d / "plan.csv", dtype={"entity_id": str})
    # move probability between two entities: same total, different frame
    plan.loc[0, "pi"], plan.loc[1, "pi"] = plan.loc[1, "pi"], plan.loc[0, "pi"]
    plan.to_csv(tmp_path / "plan.csv", index=False)
    if plan.loc[0, "pi"] != plan.loc[1, "pi"]:
        code, out, _ = run(capsys, "verify", "--audit", d / "drawn.audit.json", "--frame", tmp_path / "plan.csv",
                           *roster)
        assert code == 7 and "MISMATCH" in out
    audit = json.loads((d / "drawn.audit.json").read_text())
    audit["selected"][0] = audit["selected"][0][:-1] + "0"
    (tmp_path / "a.json").write_text(json.dumps(audit))
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "a.json", "--frame", d / "plan.csv", *roster)
    assert code == 7 and "MISMATCH" in out


def test_impossible_plan_and_bad_roster(capsys, campaign, tmp_path):
    d, _ = campaign
    code, _, err = run(capsys, "plan", "--scores", d / "scores.csv", "--n", "999999", "--out", tmp_path / "p.csv")
    assert code == 6 and "pool" in err
    pd.DataFrame({"inspector_id": ["a"], "department": ["x"]}).to_csv(tmp_path / "r.csv", index=False)
    code, _, err = run(capsys, "draw", "--plan", d / "plan.csv", "--seed", "1", "--inspectors", tmp_path / "r.csv",
                       "--out", tmp_path / "o.csv")
    assert code == 4 and "missing column" in err and not (tmp_path / "o.csv").exists()
    code, _, err = run(capsys, "plan", "--scores", tmp_path / "none.csv", "--out", tmp_path / "p.csv")
    assert code == 3 and "file not found" in err


@pytest.mark.slow
def test_report_command_writes_self_contained_html(capsys, campaign):
    d, _ = campaign
    # the plan must be of the population reported on (2025-01-01): report refuses another one
    assert run(capsys, "score", "--data", d / "w" / "dataset", "--as-of", "2025-01-01", "--out", d / "s2025.csv")[0] == 0
    assert run(capsys, "plan", "--scores", d / "s2025.csv", "--out", d / "plan2025.csv")[0] == 0
    code, out, _ = run(capsys, "report", "--data", d / "w" / "dataset", "--as-of", "2025-01-01", "--evaluate",
                       "--plan", d / "plan.csv", "--frontier", 0.04, "--out", d / "report.html")
    assert code == 3 and not (d / "report.html").exists()
    code, out, _ = run(capsys, "report", "--data", d / "w" / "dataset", "--as-of", "2025-01-01", "--evaluate",
                       "--plan", d / "plan2025.csv", "--frontier", 0.04, "--out", d / "report.html")
    assert code == 0
    html = (d / "report.html").read_text(encoding="utf-8")
    assert 'id="frontier-candidates"' in html and "Policy in force" in html
    assert "<img" in html and "data:image/png;base64," in html and "信用风险高" in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_demo_runs_end_to_end(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--entities", "3000", "--out", tmp_path / "demo")
    assert code == 0
    for step in ("1. synthetic world", "3. scored", "5. drew", "audit verifies: True", "6. published",
                 "7. monitoring", "closed loop", "8. reports"):
        assert step in out
    for f in ("scores.csv", "plan.csv", "drawn.csv", "drawn.audit.json", "estimates.csv", "report.html"):
        assert (tmp_path / "demo" / f).exists(), f


@pytest.mark.slow
def test_monitor_and_simulate_loop_commands(capsys, campaign, tmp_path):
    d, _ = campaign
    code, out, _ = run(capsys, "monitor", "--data", d / "w" / "dataset", "--as-of", "2025-01-01",
                       "--previous-as-of", "2024-07-01", "--evaluate", "--out", tmp_path / "m.json")
    assert code == 0 and "status:" in out and "tier migration" in out
    rec = json.loads((tmp_path / "m.json").read_text())
    assert rec["status"] in ("stable", "watch", "retrain") and rec["migration"] is not None
    code, out, _ = run(capsys, "simulate-loop", "--entities", 3000, "--cycles", 2, "--out", tmp_path / "loop")
    assert code == 0 and "policy vs uniform" in out
    assert (tmp_path / "loop" / "cycles.csv").exists() and (tmp_path / "loop" / "closed-loop.png").exists()


def test_a_sigterm_turned_into_another_error_still_exits_143(capsys):
    """A library may turn the exception raised by the SIGTERM handler into an error of its own
    (Cython does when the signal lands while it parses a buffer format): the exit code is still
    'terminated', not 'internal error'."""
    import argparse
    import signal

    from yiwu_credit.cli import app as cli

    def func(a):
        try:
            cli._on_sigterm(signal.SIGTERM, None)
        except BaseException:
            raise ValueError("'T{d:val:q:i1:q:i2:}' is not a valid PEP 3118 buffer format string") from None

    try:
        assert cli._run(argparse.Namespace(func=func, debug=False)) == 143
        assert "terminated" in capsys.readouterr().err
    finally:
        cli._TERM_REQUESTED.clear()
    assert cli._run(argparse.Namespace(func=lambda a: (_ for _ in ()).throw(ValueError("x")), debug=False)) == 1
