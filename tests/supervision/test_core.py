"""The public supervision core: plan and draw steps over partitions equal the one-shot results
exactly, the sampling-design protocol, one seed derivation, and light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.errors import PlanError
from yiwu_credit.supervision import fixedpoint as F
from yiwu_credit.supervision import joint as J
from yiwu_credit.supervision import plan as P
from yiwu_credit.supervision import prn as R
from yiwu_credit.supervision import systematic as D
from yiwu_credit.supervision.audit import AuditHasher, SamplingDesign
from yiwu_credit.supervision.verification import DESIGNS, verify

SRC = Path(__file__).resolve().parents[2] / "src"
MODULES = ("prn", "fixedpoint", "allocation", "plan", "systematic", "audit", "joint", "verification",
           "assignments", "inspectors", "estimates", "frontier")


def _scored(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    ids = [f"9133{i:014d}" if i % 5 else f"E{i}" for i in range(n)]        # fixed and variable widths
    return pd.DataFrame({"tier": r.choice(list("ABCD"), n, p=[0.4, 0.35, 0.15, 0.1]),
                         "probability": np.round(r.beta(1, 12, n), 3),       # repeated values: shared cells
                         "entity_type": r.choice(["enterprise", "individual", "cooperative"], n),
                         "serious_dishonest": r.random(n) < 0.003, "town": r.choice(["a", "b", "c"], n)},
                        index=pd.Index(ids, name="entity_id"))


@pytest.mark.parametrize("kw", [{}, {"n": 150, "budget": 400.0}, {"scale_by_probability": False},
                                {"alpha": 2.0, "entity_type_factor_scope": "all"}])
def test_plan_over_three_partitions_equals_the_one_shot_plan(kw):
    sc = _scored(6000, 1)
    want = P.supervision_plan(sc, **kw)
    settings = P.plan_settings(None, sc.columns, scale_by_probability=kw.get("scale_by_probability"),
                               alpha=kw.get("alpha"), scope=kw.get("entity_type_factor_scope"))
    shuffled = sc.sample(frac=1, random_state=4)
    parts = [P.group_counts(shuffled.iloc[a:b], settings) for a, b in ((0, 1000), (1000, 3500), (3500, 6000))]
    solved = P.solve_groups([p.cells.counts_only() for p in parts], settings, n=kw.get("n"), budget=kw.get("budget"))
    got = pd.concat([P.apply(p, solved.for_part(k)) for k, p in enumerate(parts)]).sort_index()
    pd.testing.assert_frame_equal(got, want.sort_index(), check_exact=True)
    assert solved.attrs == want.attrs[P.PLAN_ATTR]
    with pytest.raises(PlanError, match="for_part"):
        P.apply(parts[0], solved)                          # the whole solution is not one partition's


def test_draw_over_ranges_equals_the_one_shot_draw():
    plan = P.supervision_plan(_scored(5000, 2), n=300)
    seed = "core-2026"
    want = D.draw(plan, None, seed)
    # three partitions in any row order, four key ranges, as an executor would run them
    nr, parts = 4, np.array_split(np.random.default_rng(0).permutation(len(plan)), 3)
    preps, idss = [], []
    for rows in parts:
        p = plan.iloc[rows]
        ids = R.id_bytes(p.index)
        ranges = (((R.keys_of(ids, seed) >> np.uint64(32)) * np.uint64(nr)) >> np.uint64(32)).astype(np.int64)
        preps.append(D.prepare(p["pi"].to_numpy(), ranges, nr))
        idss.append(ids)
    offs = D.offsets([p.stats for p in preps], None, seed)
    hasher, selected = AuditHasher(), []
    for k in range(nr):
        arr = pd.Index(np.concatenate([np.array([ids.text(int(r)) for r in p.order[p.bounds[k]:p.bounds[k + 1]]],
                                                dtype=object) for ids, p in zip(idss, preps, strict=True)]))
        q = np.concatenate([p.q[p.bounds[k]:p.bounds[k + 1]] for p in preps])
        ids = R.id_bytes(arr)
        order = R.prn_order(ids, seed)
        qs = q[order]
        sel = D.select_range(qs, offs, k)
        hasher.update(ids.take(order), qs)
        selected += list(arr[order][sel])
    got = D.draw_audit(seed, offs, hasher, plan.attrs[P.PLAN_ATTR], selected)
    assert got == want.audit
    assert selected == list(want.selected)


def test_fixed_point_rule_is_one_rule_over_segments():
    pi = np.random.default_rng(5).dirichlet(np.ones(1000)) * 37
    pi = np.minimum(pi, 1.0)
    n = int(round(pi.sum()))
    pi *= n / pi.sum()
    whole = F.fixed_point(pi.copy(), n)
    cuts = [0, 10, 400, 401, 1000]
    qs = [F.quantise(pi[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    d = n * F.SCALE - sum(int(q.sum()) for q in qs)
    elig = [F.eligible_counts(q)[0 if d > 0 else 1] for q in qs]
    for q, share in zip(qs, F.deficit_shares(np.array(elig), d), strict=True):
        F.spread_deficit(q, int(share))
    assert np.array_equal(np.concatenate(qs), whole) and int(whole.sum()) == n * F.SCALE
    with pytest.raises(PlanError, match="left over"):
        F.deficit_shares(np.array([1, 2]), 4)


def test_seed_derivation_is_one_function():
    assert D.start_from_seed(7) == R.derive_seed("start", "7", F.SCALE_BITS) < F.SCALE
    assert J.origin_from_seed("s") == R.derive_seed("joint-origin", "s")
    assert J.rounding_start("s") == R.derive_seed("joint-rounding", "s", F.SCALE_BITS)
    assert R.subseed("inspectors", 7) == "inspectors\x007"
    assert R.derive_seed("prn", 1) != R.derive_seed("start", 1)
    with pytest.raises(PlanError, match="seed"):
        R.derive_seed("start", True)


def test_every_design_satisfies_the_protocol_and_verify_dispatches():
    assert set(DESIGNS) == {D.AUDIT_FORMAT, J.JOINT_FORMAT}
    for fmt, design in DESIGNS.items():
        assert isinstance(design, SamplingDesign) and design.format == fmt
    plan = P.supervision_plan(_scored(800, 3), n=40)
    d = D.SYSTEMATIC_PPS.select(plan, None, 11)
    assert d.audit == D.draw(plan, None, 11).audit and verify(d, plan).ok
    j = J.JOINT_MICROSTRATA.select({"a": plan}, panel_seed=1, seed=2)
    assert verify(j, {"a": plan}).ok and not verify(j, plan).ok


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_importing_supervision_loads_no_ml_stack(module):
    code = (f"import yiwu_credit.supervision.{module}; import sys; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'lightgbm','sklearn','matplotlib','dask'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_estimates_do_not_import_inspectors_and_verify_help_is_light():
    import ast

    tree = ast.parse((SRC / "yiwu_credit" / "supervision" / "estimates.py").read_text("utf-8"))
    imported = {(n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.endswith("inspectors") for m in imported), imported   # dependencies point one way
    code = ("import sys\nsys.argv = ['yiwu-credit', 'verify', '--help']\nimport yiwu_credit.cli as c\n"
            "try:\n    c.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'lightgbm','sklearn','matplotlib','dask'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "yiwu_credit.cli", "verify", "--help"], capture_output=True,
                         text=True, env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert out.returncode == 0 and "audit" in out.stdout
