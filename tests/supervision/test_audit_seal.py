"""The audit seal: every field of an audit record that later steps rely on is covered by what
``verify`` recomputes or by the seal made at draw time. A hand edit of any field (the campaign
window, n, the seed, the plan record, the selected ids, the inspector block…) makes ``verify`` fail
(exit 7) and ``estimate`` refuse the audit; a record without a seal is NOT VERIFIED, never OK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from yiwu_credit import supervision as S
from yiwu_credit.cli import main
from yiwu_credit.errors import VerificationFailed
from yiwu_credit.supervision.audit import audit_json, seal_problems
from yiwu_credit.supervision.estimates import tie_results
from yiwu_credit.supervision.verification import check_seal, load_audit

TOWNS = ["稠城街道", "江东街道", "佛堂镇", "苏溪镇"]
WINDOW = ("2026-03-01", "2026-06-30")


def _scored(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "tier": rng.choice(list("ABCD"), n, p=[0.4, 0.4, 0.15, 0.05]),
        "probability": rng.beta(1, 15, n),
        "entity_type": rng.choice(["enterprise", "individual"], n),
        "town": rng.choice(TOWNS, n),
        "industry": rng.choice(["F5137", "C1811"], n),
    }, index=pd.Index([f"91330782MA{i:08d}" for i in range(n)], name="entity_id"))


def _roster(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({
        "inspector_id": [f"I{i:03d}" for i in range(n)],
        "department": ["samr"] * n,
        "towns": [TOWNS[i % 4] if i % 3 else "" for i in range(n)],
        "qualifications": ["general"] * n,
        "conflicts": [""] * n,
    })


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in out + err and code != 1, out + err
    return code, out + err


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Path:
    """A plan, a roster, a draw with inspectors and a window (its audit), and results in the window."""
    d = tmp_path_factory.mktemp("seal")
    S.supervision_plan(_scored(300, seed=3), n=25).reset_index().to_csv(d / "plan.csv", index=False)
    _roster().to_csv(d / "roster.csv", index=False)
    assert main(["draw", "--plan", str(d / "plan.csv"), "--seed", "20260301", "--inspectors", str(d / "roster.csv"),
                 "--window", *WINDOW, "--out", str(d / "drawn.csv")]) == 0
    drawn = pd.read_csv(d / "drawn.csv", dtype={"entity_id": str})
    drawn[["entity_id"]].assign(date="2026-04-01", result="no_problem").to_csv(d / "results.csv", index=False)
    return d


def _set(audit: dict[str, Any], path: str, value: Any) -> None:
    *head, last = path.split(".")
    for k in head:
        audit = audit[k]
    if value is _DELETE:
        del audit[last]
    else:
        audit[last] = value(audit[last]) if callable(value) else value


_DELETE = object()
#: (field path, how it is changed): every field later steps read or verify recomputes
TAMPERS = [
    ("campaign.start", "2025-01-01"),                                     # the window widened by hand
    ("campaign.end", "2026-12-31"),
    ("campaign", _DELETE),                                                # the window removed
    ("n", lambda v: v + 1),
    ("seed", "20260302"),
    ("start", lambda v: (v + 1) % 2**40),
    ("plan.policy_sha256", "0" * 64),
    ("plan", lambda v: {**(v or {}), "budget": 999.0, "floor": 0.5}),  # the plan record's parameters
    ("frame_sha256", "f" * 64),
    ("selected", lambda v: v[1:] + v[:1]),
    ("inspectors.per_entity", lambda v: v + 1),
    ("inspectors.assignment", lambda v: {k: ["I999"] if i == 0 else x for i, (k, x) in enumerate(v.items())}),
    ("inspectors", _DELETE),
    ("library_version", "0.0.1"),
    ("note", "added by hand"),                                            # a field added
]


def _tampered(campaign: Path, tmp_path: Path, field: str, value: Any) -> Path:
    audit = json.loads((campaign / "drawn.audit.json").read_text(encoding="utf-8"))
    _set(audit, field, value)
    p = tmp_path / "drawn.audit.json"
    p.write_text(json.dumps(audit, ensure_ascii=False), encoding="utf-8")
    asg = campaign / "drawn.inspectors.csv"
    (tmp_path / asg.name).write_bytes(asg.read_bytes())
    return p


def test_the_untouched_audit_verifies_and_estimates(capsys, campaign, tmp_path):
    audit = json.loads((campaign / "drawn.audit.json").read_text(encoding="utf-8"))
    assert audit["seal"]["fields"].keys() == set(audit) - {"seal"} and seal_problems(audit) == ([], [])
    code, out = run(capsys, "verify", "--audit", campaign / "drawn.audit.json", "--frame", campaign / "plan.csv",
                    "--inspectors", campaign / "roster.csv")
    assert code == 0 and "seal: every recorded field" in out
    code, out = run(capsys, "estimate", "--results", campaign / "results.csv", "--plan", campaign / "plan.csv",
                    "--audit", campaign / "drawn.audit.json", "--out", tmp_path / "e.csv")
    assert code == 0 and (tmp_path / "e.csv").exists()


@pytest.mark.parametrize("field, value", TAMPERS, ids=[f for f, _ in TAMPERS])
def test_a_tampered_audit_does_not_verify_and_is_refused(capsys, campaign, tmp_path, field, value):
    p = _tampered(campaign, tmp_path, field, value)
    top = field.split(".")[0]
    code, out = run(capsys, "verify", "--audit", p, "--frame", campaign / "plan.csv",
                    "--inspectors", campaign / "roster.csv")
    assert code == 7 and ("MISMATCH" in out or "NOT VERIFIED" in out), out
    mismatches = out.split("checked:")[0]
    assert f"seal: field '{top}'" in mismatches or f"- {top}:" in mismatches, out   # the field is named
    assert "is as drawn" not in out, out                      # never "sealed" when a field changed
    code, out = run(capsys, "estimate", "--results", campaign / "results.csv", "--plan", campaign / "plan.csv",
                    "--audit", p, "--out", tmp_path / "e.csv")
    assert code in (4, 7) and p.name in out and f"field '{top}'" in out, out
    assert not (tmp_path / "e.csv").exists()


def test_the_seal_names_a_widened_window(campaign):
    audit = json.loads((campaign / "drawn.audit.json").read_text(encoding="utf-8"))
    audit["campaign"]["start"] = "2025-01-01"
    assert seal_problems(audit)[0] == ["seal: field 'campaign' was changed after the draw"]
    res = S.verify(audit, pd.read_csv(campaign / "plan.csv", dtype={"entity_id": str}).set_index("entity_id"),
                   roster=_roster())
    assert not res.ok and "seal: field 'campaign' was changed after the draw" in res.mismatches
    with pytest.raises(VerificationFailed, match="field 'campaign'"):
        check_seal(audit)


def test_an_audit_without_a_seal_is_not_verified_and_refused(capsys, campaign, tmp_path):
    p = _tampered(campaign, tmp_path, "seal", _DELETE)
    code, out = run(capsys, "verify", "--audit", p, "--frame", campaign / "plan.csv",
                    "--inspectors", campaign / "roster.csv")
    assert code == 7 and "NOT VERIFIED" in out and "no seal" in out
    with pytest.raises(VerificationFailed, match="no seal"):
        load_audit(p)
    assert "seal" not in load_audit(p, sealed=False)


def test_library_callers_are_refused_too():
    plan = S.supervision_plan(_scored(300, seed=3), n=25)
    d = S.draw(plan, 25, seed=7, window=WINDOW)
    res = pd.DataFrame({"entity_id": list(d.selected), "date": "2026-04-01", "result": "no_problem"})
    assert tie_results(res, plan, drawn=d).window == {"start": "2026-03-01", "end": "2026-06-30"}
    rt = json.loads(audit_json(d))                      # the published JSON round trip keeps the seal
    assert seal_problems(rt) == ([], []) and S.verify(rt, plan).ok
    widened = {**rt, "campaign": {"start": "2020-01-01", "end": "2030-12-31"}}
    with pytest.raises(VerificationFailed, match="field 'campaign'"):
        tie_results(res, plan, drawn=widened)
    d.audit["campaign"] = {"start": "2020-01-01", "end": "2030-12-31"}   # an in-memory Draw edited
    with pytest.raises(VerificationFailed, match="field 'campaign'"):
        tie_results(res, plan, drawn=d)


def test_with_inspectors_and_joint_draws_are_sealed():
    plan = S.supervision_plan(_scored(300, seed=3), n=25)
    d = S.draw(plan, 25, seed=7)
    asg = S.assign_inspectors(d.frame(plan), _roster(), 7)
    d2 = d.with_inspectors(asg)
    assert seal_problems(d2.audit) == ([], []) and d2.audit["seal"] != d.audit["seal"]
    assert S.verify(d2, plan, roster=_roster()).ok
    plans = {"samr": plan, "tax": S.supervision_plan(_scored(300, seed=4), n=20)}
    j = S.joint_draw(plans, panel_seed=1, seed=2)
    assert seal_problems(j.audit) == ([], []) and S.verify(j, plans).ok
    bad = {**j.audit, "window": 0.5}
    r = S.verify(bad, plans)
    assert not r.ok and any("window" in m for m in r.mismatches)


def test_a_resealed_audit_is_caught_by_the_published_seal(tmp_path, capsys):
    """Anyone can remake the seal over an edited record; the seal printed at draw time is what the
    public compares with (verify --seal, estimate --seal)."""
    import json

    from yiwu_credit.cli import main
    from yiwu_credit.data import synth
    from yiwu_credit.supervision.audit import seal_audit

    w = synth.generate(400, seed=5)
    d, _ = w.save(tmp_path / "w")
    assert main(["score", "--data", str(d), "--as-of", "2026-01-01", "--out", str(tmp_path / "s.csv")]) == 0
    assert main(["plan", "--scores", str(tmp_path / "s.csv"), "--n", "30", "--out", str(tmp_path / "p.csv")]) == 0
    capsys.readouterr()
    assert main(["draw", "--plan", str(tmp_path / "p.csv"), "--seed", "7", "--window", "2026-02-01", "2026-04-30",
                 "--out", str(tmp_path / "d.csv")]) == 0
    out = capsys.readouterr().out
    seal = out.split("audit seal sha256 ")[1].split()[0]
    audit_path = tmp_path / "d.audit.json"
    audit = json.loads(audit_path.read_text("utf-8"))
    assert audit["seal"]["sha256"] == seal
    verify = ["verify", "--audit", str(audit_path), "--frame", str(tmp_path / "p.csv")]
    assert main(verify) == 0
    assert seal in capsys.readouterr().out          # OK shows the seal to compare with the published one
    assert main([*verify, "--seal", seal]) == 0
    assert "the record's seal is the published one" in capsys.readouterr().out
    widened = seal_audit({**audit, "campaign": {**audit["campaign"], "end": "2026-12-31"}})   # edited and resealed
    audit_path.write_text(json.dumps(widened), encoding="utf-8")
    assert main(verify) == 0                      # the seal alone cannot tell…
    assert main([*verify, "--seal", seal]) == 7   # …the published one can
    assert "not the published seal" in capsys.readouterr().out
    res = tmp_path / "r.csv"
    res.write_text("entity_id,date,result\n", encoding="utf-8")
    est = ["estimate", "--results", str(res), "--plan", str(tmp_path / "p.csv"), "--audit", str(audit_path),
           "--out", str(tmp_path / "e.csv")]
    assert main([*est, "--seal", seal]) == 7 and "not the published seal" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([*verify, "--seal", "not-a-hash"])
    assert e.value.code == 2


def test_a_plan_file_with_an_edited_record_does_not_verify(tmp_path):
    """The plan's own record (plan_* columns) must be the one the audit recorded: a plan file whose
    policy was edited is not the plan drawn from, and estimate would read the wrong adverse codes."""
    from yiwu_credit.data.tables import read_input
    from yiwu_credit.supervision.plan import PLAN_COLUMNS
    from yiwu_credit.supervision.systematic import draw
    from yiwu_credit.supervision.verification import verify

    scored = _scored(300, 1)
    from yiwu_credit.supervision.plan import supervision_plan

    plan = supervision_plan(scored, n=20)
    d = draw(plan, None, 3, window=("2026-02-01", "2026-04-30"))
    plan.reset_index().to_csv(tmp_path / "p.csv", index=False)
    frame = read_input(tmp_path / "p.csv", "frame")
    assert verify(d.audit, frame).ok
    edited = frame.assign(**{PLAN_COLUMNS["policy"]: "yiwu-2022-1.1"})
    res = verify(d.audit, edited)
    assert not res.ok and any("plan record" in m for m in res.mismatches)
