"""Tests of random inspector assignment with recusal, coverage, qualifications and workload caps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.errors import ConfigError, PlanError
from yiwu_credit.supervision.inspectors import (
    ROSTER_COLUMNS,
    assign_inspectors,
    assignment_map,
    inspector_record,
    inspectors_by_entity,
    load_roster,
    previous_sha256,
    roster_sha256,
    verify_assignment,
)

TOWNS = ["稠城街道", "江东街道", "佛堂镇", "苏溪镇"]


def _roster(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({
        "inspector_id": [f"I{i:03d}" for i in range(n)],
        "department": ["samr"] * (2 * n // 3) + ["fire"] * (n - 2 * n // 3),
        "towns": [TOWNS[i % 4] if i % 3 else "" for i in range(n)],        # every third covers all towns
        "qualifications": ["food;general" if i % 2 else "general" for i in range(n)],
        "conflicts": ["E0001;E0002" if i == 0 else ("E0003" if i == 4 else "") for i in range(n)],
    })


def _selected(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"town": rng.choice(TOWNS, n)},
                        index=pd.Index([f"E{i:04d}" for i in range(n)], name="entity_id"))


def _check_constraints(a: pd.DataFrame, sel: pd.DataFrame, roster: pd.DataFrame, k: int, cap: int,
                       qual: str | None = None, previous: pd.DataFrame | None = None) -> None:
    r = load_roster(roster).table
    assert a.groupby("entity_id").size().eq(k).all() and set(a["entity_id"]) == set(sel.index)
    assert not a.duplicated(["entity_id", "inspector_id"]).any()
    assert a["inspector_id"].value_counts().max() <= cap
    prev = set() if previous is None else set(zip(previous["entity_id"], previous["inspector_id"], strict=True))
    for e, i in zip(a["entity_id"], a["inspector_id"], strict=True):
        row = r.loc[i]
        assert not row["towns"] or sel.loc[e, "town"] in row["towns"], (e, i)
        assert e not in row["conflicts"], (e, i)
        assert qual is None or qual in row["qualifications"], (e, i)
        assert (e, i) not in prev, (e, i)


def test_assignment_honours_every_constraint():
    sel, ros = _selected(), _roster()
    a = assign_inspectors(sel, ros, seed=1, max_per_inspector=15)
    assert list(a.columns) == ["entity_id", "slot", "inspector_id", "department"]
    _check_constraints(a, sel, ros, 2, 15)
    b = assign_inspectors(sel, ros, seed=2, max_per_inspector=15, previous=a)      # next campaign
    _check_constraints(b, sel, ros, 2, 15, previous=a)
    c = assign_inspectors(sel.iloc[:60], ros, seed=1, per_entity=3, max_per_inspector=20, qualification="food")
    _check_constraints(c, sel.iloc[:60], ros, 3, 20, qual="food")
    d = assign_inspectors(sel.iloc[:40], ros, seed=1, departments="fire", max_per_inspector=10)
    assert set(d["department"]) == {"fire"}


def test_reproducible_random_and_independent_of_row_order():
    sel, ros = _selected(), _roster()
    a = assign_inspectors(sel, ros, seed=7, max_per_inspector=15)
    b = assign_inspectors(sel.sample(frac=1, random_state=3), ros.sample(frac=1, random_state=4), seed=7,
                          max_per_inspector=15)
    pd.testing.assert_frame_equal(a, b)
    c = assign_inspectors(sel, ros, seed=8, max_per_inspector=15)
    assert (a["inspector_id"] != c["inspector_id"]).mean() > 0.5


@pytest.mark.slow
def test_each_eligible_inspector_is_equally_likely():
    """One entity, 6 eligible inspectors, 1500 seeds: each is chosen ~equally often (chi-square, α = 0.001)."""
    from scipy.stats import chisquare

    ros = load_roster(_roster(6).assign(towns="", qualifications="general", conflicts=""))
    sel = pd.DataFrame({"town": ["佛堂镇"]}, index=pd.Index(["E0000"], name="entity_id"))
    counts = pd.Series(0, index=ros.table.index)
    for s in range(1500):
        a = assign_inspectors(sel, ros, seed=s, per_entity=2, max_per_inspector=10)
        counts[a["inspector_id"]] += 1
    assert chisquare(counts.to_numpy()).pvalue > 0.001


def test_augmenting_paths_repair_greedy_dead_ends(monkeypatch):
    """E_a may only be checked by I0/I1 (I2, I3 declared conflicts); E_b by anyone; caps 1 → the only
    solution is E_a = {I0, I1}, E_b = {I2, I3}, which the greedy misses whenever E_b goes first."""
    import yiwu_credit.supervision.inspectors as ins

    calls = []
    real = ins._augment
    monkeypatch.setattr(ins, "_augment", lambda *a: calls.append(1) or real(*a))
    ros = pd.DataFrame({"inspector_id": ["I0", "I1", "I2", "I3"], "department": "samr", "towns": "",
                        "qualifications": "", "conflicts": ["", "", "E_a", "E_a"]})
    sel = pd.DataFrame({"town": ["佛堂镇", "佛堂镇"]}, index=pd.Index(["E_a", "E_b"], name="entity_id"))
    for s in range(40):
        a = assign_inspectors(sel, ros, seed=s, per_entity=2, max_per_inspector=1)
        got = a.groupby("entity_id")["inspector_id"].agg(lambda x: sorted(x)).to_dict()
        assert got == {"E_a": ["I0", "I1"], "E_b": ["I2", "I3"]}
    assert len(calls) >= 5                                  # the repair step was really exercised


def test_infeasible_rosters_fail_naming_entity_and_constraint():
    ros = _roster()
    one_town = pd.DataFrame({"town": ["佛堂镇"]}, index=pd.Index(["E9000"], name="entity_id"))
    only_one = ros.assign(towns=["佛堂镇" if i == 5 else "苏溪镇" for i in range(len(ros))])
    with pytest.raises(PlanError, match=r"entity E9000: only 1 eligible.*Binding constraint: town coverage"):
        assign_inspectors(one_town, only_one, seed=1)
    two = ros.assign(towns=["佛堂镇" if i in (5, 6) else "苏溪镇" for i in range(len(ros))])
    with pytest.raises(PlanError, match=r"entity E9000: only 1 eligible.*1 of them hold \['food'\].*qualification"):
        assign_inspectors(one_town, two, seed=1, qualification="food")
    two.loc[5, "conflicts"] = "E9000"
    with pytest.raises(PlanError, match=r"E9000.*recused for declared conflicts \(I005\).*recusal"):
        assign_inspectors(one_town, two, seed=1)
    prev = pd.DataFrame({"entity_id": ["E9000"], "inspector_id": ["I006"]})
    with pytest.raises(PlanError, match=r"checked it in the previous campaign \(I006\)"):
        assign_inspectors(one_town, ros.assign(towns=["佛堂镇" if i in (6, 7) else "苏溪镇" for i in range(len(ros))]),
                          seed=1, previous=prev)
    three = pd.DataFrame({"town": ["佛堂镇"] * 3}, index=pd.Index(["E1", "E2", "E3"], name="entity_id"))
    fo = ros.assign(towns=["佛堂镇" if i in (5, 6, 7) else "苏溪镇" for i in range(len(ros))])
    with pytest.raises(PlanError, match=r"entity E\d: its 3 eligible inspectors .* max_per_inspector=1.*workload caps"):
        assign_inspectors(three, fo, seed=1, max_per_inspector=1)
    with pytest.raises(PlanError, match=r"30 inspectors × max_per_inspector=1 = 30 < 2 × 200"):
        assign_inspectors(_selected(), ros, seed=1, max_per_inspector=1)


def test_roster_validation(tmp_path):
    p = tmp_path / "roster.csv"
    _roster().to_csv(p, index=False, encoding="utf-8-sig")
    r = load_roster(p)
    assert len(r) == 30 and r.table.loc["I001", "towns"] == frozenset({"江东街道"})
    assert r.table.loc["I000", "conflicts"] == frozenset({"E0001", "E0002"})
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['conflicts'\]"):
        load_roster(_roster().drop(columns="conflicts"))
    with pytest.raises(ConfigError, match=r"inspector_id: duplicate id\(s\) \['I001'\]"):
        load_roster(pd.concat([_roster(), _roster().iloc[[1]]]))
    bad = _roster()
    bad.loc[3, "department"] = " "
    with pytest.raises(ConfigError, match=r"department: empty department in data row\(s\) \[3\]"):
        load_roster(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_roster(tmp_path / "none.csv")


def test_inspectors_by_entity_and_policy_defaults():
    sel = _selected(20)
    a = assign_inspectors(sel, _roster(), seed=3)                   # policy: 2 per entity, cap 40
    s = inspectors_by_entity(a)
    assert len(s) == 20 and s.str.count(";").eq(1).all()


def test_empty_roster_file_is_a_config_error(tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"zero\.csv: the roster file is empty"):
        load_roster(tmp_path / "zero.csv")
    (tmp_path / "header.csv").write_text(",".join(ROSTER_COLUMNS) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the roster is empty"):
        load_roster(tmp_path / "header.csv")


def test_roster_hash_is_canonical_and_the_assignment_is_recorded(tmp_path):
    """The roster hash ignores row/column order, a BOM and spaces around ';' (the assignment does
    too) but changes with anything the assignment depends on; the record keeps the resolved
    parameters and verify_assignment recomputes the assignment from them."""
    ros = _roster()
    h = roster_sha256(ros)
    shuffled = ros.sample(frac=1, random_state=2)[list(reversed(ROSTER_COLUMNS))]
    shuffled["qualifications"] = shuffled["qualifications"].str.replace(";", " ; ")
    shuffled.to_csv(tmp_path / "r.csv", index=False, encoding="utf-8-sig")
    assert roster_sha256(tmp_path / "r.csv") == h
    for col, val in (("towns", "苏溪镇"), ("qualifications", "food"), ("conflicts", "E0100"), ("department", "tax")):
        changed = ros.copy()
        changed.loc[2, col] = val
        assert roster_sha256(changed) != h, col
    assert roster_sha256(ros.iloc[:-1]) != h

    sel = _selected(60)
    prev = assign_inspectors(sel, ros, seed=1, max_per_inspector=15)
    a = assign_inspectors(sel, ros, seed=2, max_per_inspector=15, previous=prev, qualification="general")
    rec = inspector_record(a)
    assert rec["roster_sha256"] == h and rec["per_entity"] == 2 and rec["max_per_inspector"] == 15
    assert rec["no_repeat_consecutive"] is True and rec["qualification"] == ["general"]
    assert rec["previous_sha256"] == previous_sha256(prev) and rec["seed"] == 2
    assert rec["assignment"] == assignment_map(a) and len(rec["assignment"]) == 60
    assert all(v == sorted(v) and len(v) == 2 for v in rec["assignment"].values())

    ok = verify_assignment(rec, sel, shuffled, previous=prev, published=a)
    assert ok.ok and any("recompute exactly" in m for m in ok.checked)
    no_prev = verify_assignment(rec, sel, ros)                     # the draw used `previous`: not verifiable
    assert not no_prev.ok and not no_prev.mismatches and "previous" in no_prev.unverified[0]
    no_roster = verify_assignment(rec, sel, None, previous=prev)
    assert not no_roster.ok and "NOT verified" in no_roster.unverified[0]
    other = ros.drop(index=5)                                      # an inspector quietly removed
    r = verify_assignment(rec, sel, other, previous=prev)
    assert not r.ok and r.mismatches[0].startswith("inspectors.roster_sha256")
    forged = {**rec, "assignment": {**rec["assignment"], "E0007": ["I000", "I001"]}}
    r = verify_assignment(forged, sel, ros, previous=prev, published=a)
    assert not r.ok and any(m.startswith("inspectors: entity E0007") for m in r.mismatches)
    stripped = a.copy()
    stripped.attrs = {}
    with pytest.raises(PlanError, match="no inspector-draw record"):
        inspector_record(stripped)
