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
