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
    for cmd in ("validate", "synth", "train", "score", "plan", "draw", "verify", "estimate", "report", "monitor",
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
                     str(d / "w" / "inspectors.csv"), "--out", str(d / "drawn.csv")]) == 0
    return d, buf.getvalue()


def test_plan_draw_verify_estimate(capsys, campaign):
    d, log = campaign
    assert "campaign of 200" in log and "audit record" in log
    plan = pd.read_csv(d / "plan.csv")
    drawn = pd.read_csv(d / "drawn.csv")
    assert len(drawn) == 200 and abs(plan["pi"].sum() - 200) < 1e-6
    assert drawn["inspectors"].str.count(";").min() >= 1  # at least two inspectors each
    code, out, _ = run(capsys, "verify", "--audit", d / "drawn.audit.json", "--frame", d / "plan.csv")
    assert code == 0 and out.startswith("OK")
    # results for the drawn entities → estimates and the published table
    res = drawn[["entity_id"]].assign(date="2026-02-01", result=np.where(np.arange(len(drawn)) % 5 == 0,
                                                                         "pending", "no_problem"))
    res.to_csv(d / "results.csv", index=False)
    code, out, _ = run(capsys, "estimate", "--results", d / "results.csv", "--plan", d / "plan.csv",
                       "--out", d / "est.csv", "--publish", d / "pub.csv", "--assignments",
                       d / "drawn.inspectors.csv")
    assert code == 0 and "violation rate" in out
    est = pd.read_csv(d / "est.csv")
    assert {"domain", "level", "rate", "se", "ci_low", "ci_high"} <= set(est.columns)
    pub = pd.read_csv(d / "pub.csv", encoding="utf-8-sig")
    assert "检查结果" in pub.columns and len(pub) == 200


def test_verify_detects_tampering(capsys, campaign, tmp_path):
    d, _ = campaign
    plan = pd.read_csv(d / "plan.csv", dtype={"entity_id": str})
    # move probability between two entities: same total, different frame
    plan.loc[0, "pi"], plan.loc[1, "pi"] = plan.loc[1, "pi"], plan.loc[0, "pi"]
    plan.to_csv(tmp_path / "plan.csv", index=False)
    if plan.loc[0, "pi"] != plan.loc[1, "pi"]:
        code, out, _ = run(capsys, "verify", "--audit", d / "drawn.audit.json", "--frame", tmp_path / "plan.csv")
        assert code == 7 and "MISMATCH" in out
    audit = json.loads((d / "drawn.audit.json").read_text())
    audit["selected"][0] = audit["selected"][0][:-1] + "0"
    (tmp_path / "a.json").write_text(json.dumps(audit))
    code, out, _ = run(capsys, "verify", "--audit", tmp_path / "a.json", "--frame", d / "plan.csv")
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


def test_report_command_writes_self_contained_html(capsys, campaign):
    d, _ = campaign
    code, out, _ = run(capsys, "report", "--data", d / "w" / "dataset", "--as-of", "2025-01-01", "--evaluate",
                       "--plan", d / "plan.csv", "--out", d / "report.html")
    assert code == 0
    html = (d / "report.html").read_text(encoding="utf-8")
    assert "<img" in html and "data:image/png;base64," in html and "信用风险高" in html
    assert "http://" not in html and "https://" not in html


def test_demo_runs_end_to_end(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--entities", "3000", "--out", tmp_path / "demo")
    assert code == 0
    for step in ("1. synthetic world", "3. scored", "5. drew", "audit verifies: True", "6. published",
                 "7. monitoring", "closed loop", "8. reports"):
        assert step in out
    for f in ("scores.csv", "plan.csv", "drawn.csv", "drawn.audit.json", "estimates.csv", "report.html"):
        assert (tmp_path / "demo" / f).exists(), f


def test_monitor_and_simulate_loop_commands(capsys, campaign, tmp_path):
    d, _ = campaign
    code, out, _ = run(capsys, "monitor", "--data", d / "w" / "dataset", "--as-of", "2025-01-01",
                       "--previous-as-of", "2024-07-01", "--evaluate", "--out", tmp_path / "m.json")
    assert code == 0 and "status:" in out and "tier migration" in out
    rec = json.loads((tmp_path / "m.json").read_text())
    assert rec["status"] in ("ok", "watch", "retrain") and rec["migration"] is not None
    code, out, _ = run(capsys, "simulate-loop", "--entities", 3000, "--cycles", 2, "--out", tmp_path / "loop")
    assert code == 0 and "policy vs uniform" in out
    assert (tmp_path / "loop" / "cycles.csv").exists() and (tmp_path / "loop" / "closed-loop.png").exists()
