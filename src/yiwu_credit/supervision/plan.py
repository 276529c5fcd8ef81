"""The supervision plan: who should be checked how often, and each entity's campaign π.

Weight = tier weight × entity-type factor (per scope) × p^alpha (renormalised within tier); the
annual budget is spread ∝ weight under the tiers' ``max_per_year`` (``expected_per_year``); the
campaign π ∝ that, in [floor, 1], must-includes 1, Σπ = n (see docs/policy.md §3).

The plan is computed on *cells* of identical inputs (tier, entity type, must-include,
probability), so it splits into three steps that any executor can run:

    part = group_counts(scored_part, settings)          # per partition: validate, reduce to cells
    solved = solve_groups([p.cells for p in parts], settings, n=, budget=)   # global: the math
    frame = apply(part, solved.for_part(k))            # per partition: plan rows

:func:`supervision_plan` is these steps on one partition; ``yiwu_credit.distributed`` runs them on
Dask partitions, and :func:`yiwu_credit.supervision.frontier.policy_frontier` runs
:func:`plan_on_cells` per candidate. All give bit-identical π: the allocation is order-free.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..data.tables import check_unique_ids
from ..errors import ConfigError, DataValidationError, PlanError, Problem, UsageError
from ..policy import TIERS, Policy, load_policy
from .allocation import Bound, Infeasible, allocate, resolve_budget_n

__all__ = [
    "CARRY", "FLAT_NOTE", "PLAN_ATTR", "PLAN_COLUMNS", "ROUTINE_TIERS", "SCOPES", "PlanCells", "PlanPart",
    "PlanSettings", "SolvedPlan", "apply", "as_entity_frame", "check_plan_matches", "plan_policy", "recorded_policy", "check_unique_ids",
    "group_counts", "merge_cells", "merge_plan_records", "plan_cells", "plan_on_cells", "plan_pi", "plan_record", "plan_record_columns",
    "plan_settings", "read_plan_record", "resolve_plan_policy", "sampling_settings", "scores_policy", "solve_groups",
    "supervision_plan", "type_factor_matrix",
]

CARRY: tuple[str, ...] = ("entity_type", "town", "industry")
PLAN_ATTR = "yiwu_credit.plan"
SCOPES: tuple[str, ...] = ("all", "routine", "none")
FLAT_NOTE = "no 'probability' column: flat within tier (the policy's alpha needs calibrated probabilities)"
ROUTINE_TIERS: tuple[str, ...] = ("A", "B")


# ============================================================== input frames
def as_entity_frame(scored: pd.DataFrame, what: str = "scored") -> pd.DataFrame:
    """``scored`` indexed by entity_id (PlanError unless a DataFrame)."""
    if not isinstance(scored, pd.DataFrame):
        raise PlanError(f"{what}: expected a pandas DataFrame, got {type(scored).__name__}")
    if "entity_id" in scored.columns:
        scored = scored.set_index("entity_id")
    return scored


def _examples(index: pd.Index, bad: np.ndarray, k: int = 3) -> str:
    rows = np.flatnonzero(bad)[:k]
    return ", ".join(repr(index[r]) for r in rows) + (f" (+{int(bad.sum()) - len(rows)} more)" if bad.sum() > k else "")


def _codes(df: pd.DataFrame, col: str, cats: Sequence[str], what: str, missing_ok: bool) -> np.ndarray:
    """Positions of ``df[col]`` values in ``cats`` as int (N,), -1 for missing; PlanError for others."""
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype):
        lut = np.array([cats.index(c) if c in cats else -2 for c in s.cat.categories] + [-1], dtype=np.int8)
        codes = lut[s.cat.codes.to_numpy()]
    else:
        try:
            arr = pa.array(s) if not s.dtype == object else pa.array(s.to_numpy(), from_pandas=True)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
                raise pa.ArrowInvalid("not strings")
            idx = pc.fill_null(pc.index_in(arr, value_set=pa.array(list(cats), type=arr.type if not pa.types.is_null(arr.type) else pa.string())), -2)
            codes = idx.to_numpy(zero_copy_only=False).astype(np.int8)
            if arr.null_count:
                codes[pc.is_null(arr).to_numpy(zero_copy_only=False)] = -1
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            cat = pd.Categorical(s, categories=list(cats))
            codes = cat.codes.astype(np.int8)
            codes[(codes == -1) & s.notna().to_numpy()] = -2
    bad = codes == -2 if missing_ok else codes < 0
    if bad.any():
        vals = sorted({str(v) for v in s[bad].unique()[:5]})
        raise PlanError(f"{what}.{col}: expected one of {list(cats)}, found {vals} for entity "
                        f"{_examples(df.index, bad)}")
    return codes


def _flag(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df), bool)
    s = df[col]
    if s.dtype == bool:
        return s.to_numpy()
    return s.fillna(False).astype(bool).to_numpy()


def plan_pi(plan: pd.DataFrame, what: str = "plan") -> np.ndarray:
    if "pi" not in plan.columns:
        raise PlanError(f"{what}: missing column 'pi' (build it with supervision_plan)")
    col = plan["pi"]
    if col.dtype != np.float64 and not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
        num = pd.to_numeric(col, errors="coerce")
        bad = (num.isna() & col.notna()).to_numpy()
        if bad.any():
            vals = sorted({str(v) for v in col[bad].unique()[:3]})
            raise PlanError(f"{what}.pi: not a number ({vals}) for entity {_examples(plan.index, bad)}")
        col = num
    pi = col.to_numpy(dtype=np.float64) if col.dtype == np.float64 else col.to_numpy(dtype=np.float64, na_value=np.nan)
    if len(pi) and not (pi.min() > 0 and pi.max() <= 1):      # NaN fails both comparisons
        bad = ~((pi > 0) & (pi <= 1))
        raise PlanError(f"{what}.pi: every active entity needs 0 < pi ≤ 1 (nobody is exempt), entity "
                        f"{_examples(plan.index, bad)}")
    return pi


# ============================================================== the plan record, in files
#: the plan record (``attrs["yiwu_credit.plan"]``) key → the constant column that carries it in
#: the plan's rows, so that it survives CSV/Parquet/Excel files (``campaigns_per_year`` = budget / n)
PLAN_COLUMNS: dict[str, str] = {k: f"plan_{k}" for k in (
    "policy", "policy_version", "policy_sha256", "n", "budget", "floor", "scale_by_probability", "alpha",
    "entity_type_factor_scope", "population", "must_include", "notes")}
_SHA = re.compile(r"[0-9a-f]{64}")
_POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def plan_record_columns(record: Mapping[str, Any], n_rows: int) -> dict[str, pd.Categorical]:
    """The record as constant columns of ``n_rows`` (one-category categoricals: a byte a row);
    ``notes`` as a JSON list. :func:`read_plan_record` reads them back."""
    codes = np.zeros(n_rows, np.int8)
    out = {}
    for key, col in PLAN_COLUMNS.items():
        v = record[key]
        v = json.dumps(list(v), ensure_ascii=False) if key == "notes" else v
        v = v.item() if isinstance(v, np.generic) else v
        out[col] = pd.Categorical.from_codes(codes, categories=[v])
    return out


def _constant(s: pd.Series, what: str, col: str) -> Any:
    """The one value of a constant column (DataValidationError naming the rows that differ)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        bad = (codes != codes[0]) | (codes < 0)
        value = s.cat.categories[codes[0]] if codes[0] >= 0 else None
    else:
        arr = s.to_numpy(dtype=object)
        value = arr[0]
        bad = np.asarray(pd.isna(arr) | (arr != value), dtype=bool)
    if bad.any() or value is None:
        rows = np.flatnonzero(bad) if bad.any() else np.array([0])
        raise DataValidationError([Problem(what, col, "the plan record must be the same on every row (was the "
                                           "plan edited or two plans concatenated?); rebuild it with 'plan'",
                                           tuple(int(r) + 1 for r in rows[:5]), len(rows))])
    return value.item() if isinstance(value, np.generic) else value


def _parse(key: str, v: Any) -> Any:
    """A record value read from a file as its Python type; ValueError with the expectation."""
    if key in ("policy", "policy_version"):
        if not isinstance(v, str) or not v:
            raise ValueError("expected a non-empty text")
        return v
    if key == "policy_sha256":
        if not (isinstance(v, str) and _SHA.fullmatch(v)):
            raise ValueError("expected a SHA-256 (64 lowercase hex digits)")
        return v
    if key == "entity_type_factor_scope":
        if v not in SCOPES:
            raise ValueError(f"expected one of {list(SCOPES)}")
        return v
    if key == "scale_by_probability":
        t = {"true": True, "false": False}.get(str(v).strip().lower()) if not isinstance(v, bool) else v
        if t is None:
            raise ValueError("expected True or False")
        return t
    if key == "notes":
        try:
            notes = json.loads(v) if isinstance(v, str) else None
        except json.JSONDecodeError:
            notes = None
        if not (isinstance(notes, list) and all(isinstance(x, str) for x in notes)):
            raise ValueError("expected a JSON list of texts")
        return notes
    try:
        x = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x):
        raise ValueError("expected a finite number")
    if key in ("n", "population", "must_include"):
        if x != int(x) or x < (1 if key != "must_include" else 0):
            raise ValueError("expected a whole number" + (" ≥ 1" if key != "must_include" else " ≥ 0"))
        return int(x)
    lo_ok = {"budget": x > 0, "floor": 0 < x <= 1, "alpha": x >= 0}[key]
    if not lo_ok:
        raise ValueError({"budget": "expected a number > 0", "floor": "expected a number in (0, 1]",
                          "alpha": "expected a number ≥ 0"}[key])
    return x


def read_plan_record(plan: pd.DataFrame, what: str = "plan") -> dict[str, Any] | None:
    """The plan record carried by the plan's ``plan_*`` columns (:data:`PLAN_COLUMNS`), as
    :func:`supervision_plan` puts it in ``attrs``; None when the table has none of them (a plan
    made elsewhere). DataValidationError (exit 3) when some are missing, differ between rows or
    hold a value of the wrong kind."""
    present = [c for c in PLAN_COLUMNS.values() if c in plan.columns]
    if not present or len(plan) == 0:
        return None
    missing = [c for c in PLAN_COLUMNS.values() if c not in plan.columns]
    if missing:
        raise DataValidationError([Problem(what, c, "missing: the plan record's columns travel together "
                                           f"(found {present[:3]}…); rebuild the plan with 'plan'") for c in missing])
    rec: dict[str, Any] = {}
    problems = []
    for key, col in PLAN_COLUMNS.items():
        v = _constant(plan[col], what, col)
        try:
            rec[key] = _parse(key, v)
        except (ValueError, TypeError) as e:
            problems.append(Problem(what, col, f"{e}, got {v!r}"))
    if problems:
        raise DataValidationError(problems)
    notes = rec.pop("notes")
    pop, must = rec.pop("population"), rec.pop("must_include")
    return {**rec, "campaigns_per_year": rec["budget"] / rec["n"], "population": pop, "must_include": must,
            "notes": notes}


def plan_record(plan: pd.DataFrame, what: str = "plan") -> dict[str, Any]:
    """The plan's record: from its ``plan_*`` columns (checked, :func:`read_plan_record`), else
    its ``attrs["yiwu_credit.plan"]``, else empty (a plan made elsewhere)."""
    rec = read_plan_record(plan, what)
    return rec if rec is not None else dict(plan.attrs.get(PLAN_ATTR, {}))


def merge_plan_records(records: Sequence[dict[str, Any] | None], what: str = "plan") -> dict[str, Any]:
    """The one record of a plan read in partitions (each :func:`read_plan_record`'s result): the
    same in every partition that has one (DataValidationError otherwise), ``{}`` if none has."""
    got = [r for r in records if r is not None]
    if any(r != got[0] for r in got[1:]):
        raise DataValidationError([Problem(what, PLAN_COLUMNS["policy_sha256"], "the partitions carry different "
                                           "plan records (two plans concatenated?); rebuild the plan with 'plan'")])
    return got[0] if got else {}


def scores_policy(scored: pd.DataFrame, what: str = "scores") -> tuple[str, str] | None:
    """``(tier_policy, tier_policy_sha256)``: the policy that tiered the scores (columns written
    by ``score``), the same on every row; None for a table without them."""
    cols = ("tier_policy", "tier_policy_sha256")
    have = [c for c in cols if c in scored.columns]
    if not have or len(scored) == 0:
        return None
    if len(have) == 1:
        other = cols[1 - cols.index(have[0])]
        raise DataValidationError([Problem(what, other, f"missing while {have[0]} is present: the scores record "
                                           "which policy tiered them in both columns")])
    name = _constant(scored["tier_policy"], what, "tier_policy")
    sha = _constant(scored["tier_policy_sha256"], what, "tier_policy_sha256")
    if not (isinstance(sha, str) and _SHA.fullmatch(sha)):
        raise DataValidationError([Problem(what, "tier_policy_sha256", f"expected a SHA-256, got {sha!r}")])
    return str(name), sha


def resolve_plan_policy(scored: pd.DataFrame, policy: str | Path | Policy | None,
                        what: str = "scores") -> tuple[Policy, str | None]:
    """The sampling policy for planning ``scored``, and a note to print (or None).

    The scores record the policy that tiered them (``tier_policy`` = name@version and its hash):
    without ``policy`` it is that one, loaded by name (ConfigError, exit 4, when the name is not a
    shipped policy or the shipped one hashes differently: pass ``--policy PATH``); a ``policy``
    that hashes differently is refused (UsageError, exit 2). A table without those columns (not
    written by ``score``) is planned under ``policy`` or the default, with a note.
    """
    return recorded_policy(scores_policy(scored, what), policy, what, "tiered")


def recorded_policy(rec: tuple[str, str] | None, policy: str | Path | Policy | None, what: str,
                    verb: str) -> tuple[Policy, str | None]:
    """The policy a file records (``rec`` = (name@version, sha256) or None) or ``policy``, which
    must then be the same one (the one rule of :func:`resolve_plan_policy` and :func:`plan_policy`);
    ``verb`` says what that policy did to the file ("tiered", "planned")."""
    if rec is None:
        pol = load_policy(policy)
        note = None if policy is not None else (f"{what} record no policy (not written by this package): using "
                                                f"the default policy {pol.name}")
        return pol, note
    label, sha = rec
    if policy is not None:
        pol = load_policy(policy)
        if pol.sha256 != sha:
            raise UsageError(f"policy: {pol.name}@{pol.version} (sha256 {pol.sha256[:12]}…) is not the policy that "
                             f"{verb} the {what} (recorded in them: {label}, sha256 {sha[:12]}…): omit --policy to use that one"
                             + (f", or redo the {what} with --policy {policy}" if not isinstance(policy, Policy) else ""))
        return pol, None
    name = label.rsplit("@", 1)[0]
    if not _POLICY_NAME.fullmatch(name) or name.lower().endswith(".toml"):
        raise ConfigError(f"{what}: {label!r} is not a policy name; pass the policy file with --policy PATH")
    try:
        pol = load_policy(name)
    except ConfigError:
        raise ConfigError(f"the {what} were {verb} by policy {label} (sha256 {sha[:12]}…), which is not a shipped "
                          "policy: pass its file with --policy PATH") from None
    if pol.sha256 != sha:
        raise ConfigError(f"the {what} were {verb} by policy {label} (sha256 {sha[:12]}…), not the shipped {name} "
                          f"(sha256 {pol.sha256[:12]}…): pass the policy file with --policy PATH")
    return pol, None


def plan_policy(plan: pd.DataFrame, policy: str | Path | Policy | None = None,
                what: str = "plan") -> tuple[Policy, str | None]:
    """The policy a plan was made under (its ``plan_policy*`` record), or ``policy``, which must
    then be that one; the default (with a note) for a plan that records none."""
    rec = plan_record(plan, what)
    got = (f"{rec['policy']}@{rec.get('policy_version', '')}", rec["policy_sha256"]) \
        if rec.get("policy") and rec.get("policy_sha256") else None
    return recorded_policy(got, policy, what, "planned")


def check_plan_matches(plan: pd.DataFrame, scored: pd.DataFrame, policy: Policy | None = None,
                       what: str = "plan") -> None:
    """Refuse (DataValidationError, exit 3) a plan of another population — its entity ids are not
    those of ``scored`` — or, when both are known, planned under another policy than ``policy``."""
    p_ids, s_ids = as_entity_frame(plan, what).index, as_entity_frame(scored).index
    problems = []
    extra, lack = p_ids.difference(s_ids), s_ids.difference(p_ids)
    if len(extra) or len(lack):
        def ids(x: pd.Index) -> str:
            return ", ".join(repr(str(v)) for v in x[:3]) + (f" (+{len(x) - 3} more)" if len(x) > 3 else "")
        problems.append(Problem(what, "entity_id", "not the scored population: "
                                + "; ".join(m for m in (f"{len(extra)} planned entities not scored ({ids(extra)})" if len(extra) else "",
                                                        f"{len(lack)} scored entities not planned ({ids(lack)})" if len(lack) else "") if m)))
    rec = read_plan_record(plan, what) if policy is not None else None
    if rec is not None and rec["policy_sha256"] != policy.sha256:
        problems.append(Problem(what, PLAN_COLUMNS["policy_sha256"], f"planned under policy {rec['policy']}@"
                                f"{rec['policy_version']} (sha256 {rec['policy_sha256'][:12]}…), not {policy.name}@"
                                f"{policy.version} (sha256 {policy.sha256[:12]}…) that tiered the scores"))
    if problems:
        raise DataValidationError(problems)


# ============================================================== settings
def type_factor_matrix(fac: np.ndarray | Sequence[float], scope: str = "all") -> np.ndarray:
    """Entity-type factors per tier, (4, len(fac)): ``"all"`` applies them on every tier,
    ``"routine"`` on the routine tiers A–B only (C–D get 1), ``"none"`` nowhere."""
    f = np.asarray(fac, np.float64)
    if scope not in SCOPES:
        raise PlanError(f"entity_type_factor_scope: expected one of {list(SCOPES)}, got {scope!r}")
    m = np.ones((len(TIERS), len(f)))
    rows = {"all": range(len(TIERS)), "routine": [TIERS.index(t) for t in ROUTINE_TIERS], "none": []}[scope]
    for r in rows:
        m[r] = f
    return m


def sampling_settings(pol: Policy, *, scale_by_probability: bool | None = None, alpha: float | None = None,
                      scope: str | None = None) -> dict[str, Any]:
    """The plan knobs of a policy as arrays: tier weights/rates/caps (4,), entity types and their
    factors, ``alpha`` (the exponent on the calibrated probability within tier; 0 = flat) and the
    entity-type factor ``scope``. ``scale_by_probability=False`` means alpha 0; True means the
    policy's ``alpha`` (default 1, the pre-1.2 behaviour)."""
    s = pol.sampling
    tcfg = s.tiers
    etf = s.entity_type_factor
    scale = bool(s.scale_by_probability if scale_by_probability is None else scale_by_probability)
    a = float(s.alpha) if alpha is None else float(alpha)
    if not (math.isfinite(a) and a >= 0):
        raise PlanError(f"alpha: expected a finite number ≥ 0, got {alpha}")
    return {"tw": np.array([tcfg[t].weight for t in TIERS], np.float64),
            "rate": np.array([tcfg[t].annual_rate for t in TIERS], np.float64),
            "cap": np.array([tcfg[t].max_per_year for t in TIERS], np.float64),
            "etypes": tuple(etf), "fac": np.array([float(etf[k]) for k in etf] + [1.0]),
            "alpha": a if scale else 0.0,
            "scope": s.entity_type_factor_scope if scope is None else scope,
            "band": list(s.overall_rate_band) if s.clip_budget_to_band else None}


@dataclass(frozen=True)
class PlanSettings:
    """A policy's plan knobs, resolved for one scored table (see :func:`plan_settings`)."""

    policy: Policy
    floor: float
    tw: np.ndarray            # (4,) tier weights
    rate: np.ndarray          # (4,) annual rates
    cap: np.ndarray           # (4,) max_per_year
    etypes: tuple[str, ...]   # entity types with a factor
    fac: np.ndarray           # (len(etypes) + 1,) factors, the last for other/missing types
    alpha: float              # exponent on the calibrated probability within tier (0 = flat)
    scope: str                # entity-type factor scope
    band: tuple[float, float] | None   # overall band the default budget is clipped into
    must_cols: tuple[str, ...]
    flat: bool                # the policy scales by probability but the table has none: flat, noted


def plan_settings(policy: str | Path | Policy | None, columns: Sequence[str], *, floor: float | None = None,
                  scale_by_probability: bool | None = None, alpha: float | None = None,
                  scope: str | None = None) -> PlanSettings:
    """Resolve the policy's plan knobs and the overrides for a scored table with ``columns``.

    A policy that scales by probability plans flat within tier when the table has no
    ``probability`` column (noted in the plan's attrs); an explicit ``scale_by_probability`` /
    ``alpha`` then raises. PlanError for a floor outside (0, 1] or a missing ``tier`` column.
    """
    pol = load_policy(policy)
    floor = float(pol.sampling.min_inclusion_prob if floor is None else floor)
    if not (0.0 < floor <= 1.0):
        raise PlanError(f"floor: {floor} must be in (0, 1] (no entity is exempt)")
    cols = set(columns)
    if "tier" not in cols:
        raise PlanError("scored: missing column 'tier'")
    cfg = sampling_settings(pol, scale_by_probability=scale_by_probability, alpha=alpha, scope=scope)
    flat = cfg["alpha"] > 0 and "probability" not in cols and scale_by_probability is None and alpha is None
    if cfg["alpha"] > 0 and "probability" not in cols and not flat:
        raise PlanError("scored: scaling by probability needs a 'probability' column")
    band = None if cfg["band"] is None else (float(cfg["band"][0]), float(cfg["band"][1]))
    return PlanSettings(pol, floor, cfg["tw"], cfg["rate"], cfg["cap"], cfg["etypes"], cfg["fac"],
                        0.0 if flat else cfg["alpha"], cfg["scope"], band, tuple(pol.sampling.must_include), flat)


# ============================================================== cells
@dataclass(frozen=True)
class PlanCells:
    """A pool reduced to cells of identical plan inputs (tier, entity type, must-include, probability).

    Every unit of a cell gets the same weight, annual plan and pi whatever the candidate policy, and
    :func:`~yiwu_credit.supervision.allocation.allocate` gives bit-identical values on cells (with
    counts) and on units, so a plan is solved once per cell. ``inverse`` (N,) maps units to cells
    (None once only the counts are kept); ``p`` is None without probabilities.
    """

    group: np.ndarray        # (K,) tier * n_types + type code
    tier: np.ndarray         # (K,) 0..3
    must: np.ndarray         # (K,) bool
    p: np.ndarray | None     # (K,) calibrated probability
    count: np.ndarray        # (K,) int64 units per cell
    inverse: np.ndarray | None   # (N,) cell of each unit
    n_types: int
    n_must: int
    must_counts: tuple[tuple[str, int], ...]   # must-include column → flagged units
    N: int

    @property
    def detail(self) -> str:
        """`` (3 serious_dishonest)``: the must-include reasons for messages ('' if none)."""
        reasons = [f"{c} {col}" for col, c in self.must_counts if c > 0]
        return f" ({', '.join(reasons)})" if reasons else ""

    def counts_only(self) -> PlanCells:
        """The cells without the unit → cell map (what a global solve needs from a partition)."""
        return replace(self, inverse=None)


def plan_cells(scored: pd.DataFrame, etypes: Sequence[str], must_cols: Sequence[str], with_p: bool) -> PlanCells:
    """Validate ``scored`` (tier, optional entity_type, probability, must-include flags) into cells."""
    df = as_entity_frame(scored)
    check_unique_ids(df, "scored")
    N = len(df)
    if "tier" not in df.columns:
        raise PlanError("scored: missing column 'tier'")
    tier = _codes(df, "tier", TIERS, "scored", missing_ok=False)
    etypes = tuple(etypes)
    if "entity_type" in df.columns and etypes:
        et = _codes(df, "entity_type", etypes, "scored", missing_ok=True)
        et[et < 0] = len(etypes)
    else:
        et = np.full(N, len(etypes), np.int8)
    ng = len(etypes) + 1
    must = np.zeros(N, bool)
    must_counts = []
    for col in must_cols:
        f = _flag(df, col)
        must_counts.append((col, int(f.sum())))
        must |= f
    gid = (tier.astype(np.int64) * ng + et) * 2 + must
    p = None
    if with_p:
        if "probability" not in df.columns:
            raise PlanError("scored: scaling by probability needs a 'probability' column")
        p = df["probability"].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            raise PlanError(f"scored.probability: must be in [0, 1], entity {_examples(df.index, bad)}")
    g, pk, inv, cnt = _unique_cells(gid, p, None)
    return _cells(g, pk, cnt, inv, ng, int(must.sum()), tuple(must_counts), N)


def _unique_cells(gid: np.ndarray, p: np.ndarray | None, weights: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Distinct (gid, p) keys, their p, the inverse map and the (weighted) counts."""
    if p is not None:
        first, inv, cnt = _unique_pairs(gid, p)
        g, pk = gid[first], p[first]
    else:
        g, inv, cnt = np.unique(gid, return_inverse=True, return_counts=True)
        pk = None
    inv = inv.astype(np.intp).ravel()
    if weights is not None:
        cnt = np.bincount(inv, weights=weights, minlength=len(g))
    return g, pk, inv, cnt.astype(np.int64)


def _unique_pairs(gid: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique`` of the 16-byte keys (gid, p's bits) with return_index, inverse and counts,
    in the same order (bytewise, as a void key sorts) and with the same results, ~2× faster:
    a stable sort on p's bits, then a stable (radix) sort on the rank of the few group ids."""
    gid = np.asarray(gid, dtype=np.int64)
    if len(gid) and 0 <= gid.min() and gid.max() < 1 << 16:  # a few dozen small group ids: no sort
        groups = np.flatnonzero(np.bincount(gid))
        lookup = np.zeros(int(groups[-1]) + 1, dtype=np.intp)
        lookup[groups] = np.arange(len(groups))
        gcode = lookup[gid]
    else:
        groups, gcode = np.unique(gid, return_inverse=True)
    bytewise = np.argsort(np.argsort(groups.byteswap().view(np.uint64), kind="stable")).astype(np.int16)
    g = bytewise[gcode.ravel()]
    pk = np.ascontiguousarray(p, dtype=np.float64).view(np.int64).byteswap().view(np.uint64)
    by_p = np.argsort(pk, kind="stable")
    order = by_p[np.argsort(g[by_p], kind="stable")]
    a, b = g[order], pk[order]
    start = np.ones(len(order), dtype=bool)
    start[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    inv = np.empty(len(order), dtype=np.intp)
    inv[order] = np.cumsum(start) - 1
    return order[start], inv, np.diff(np.append(np.flatnonzero(start), len(order)))


def _cells(gid: np.ndarray, p: np.ndarray | None, count: np.ndarray, inverse: np.ndarray | None, ng: int,
           n_must: int, must_counts: tuple[tuple[str, int], ...], N: int) -> PlanCells:
    return PlanCells(group=gid // 2, tier=gid // 2 // ng, must=(gid % 2).astype(bool), p=p, count=count,
                     inverse=inverse, n_types=ng, n_must=n_must, must_counts=must_counts, N=N)


def merge_cells(parts: Sequence[PlanCells]) -> tuple[PlanCells, list[np.ndarray]]:
    """The cells of several partitions as one pool (counts summed over equal cells), and each
    partition's map from its cells to the merged ones."""
    if not parts:
        raise PlanError("scored: the pool is empty (no active entities)")
    if len(parts) == 1:
        return parts[0].counts_only(), [np.arange(len(parts[0].count))]
    ng = parts[0].n_types
    with_p = parts[0].p is not None
    if any(c.n_types != ng or (c.p is not None) != with_p for c in parts):
        raise PlanError("plan: partitions planned with different settings cannot be merged")
    gid = np.concatenate([c.group.astype(np.int64) * 2 + c.must for c in parts])
    p = np.concatenate([c.p for c in parts]) if with_p else None
    g, pk, inv, cnt = _unique_cells(gid, p, np.concatenate([c.count for c in parts]).astype(np.float64))
    bounds = np.cumsum([0] + [len(c.count) for c in parts])
    names = [col for col, _ in parts[0].must_counts]
    mc = tuple((col, sum(dict(c.must_counts).get(col, 0) for c in parts)) for col in names)
    merged = _cells(g, pk, cnt, None, ng, sum(c.n_must for c in parts), mc, sum(c.N for c in parts))
    return merged, [inv[bounds[i]:bounds[i + 1]] for i in range(len(parts))]


# ============================================================== the plan math
def _plan_allocations(w: np.ndarray, counts: np.ndarray | None, budget: float, n: int, floor: float,
                      must_code: np.ndarray, tier: np.ndarray, caps: np.ndarray, must: np.ndarray, n_must: int,
                      detail: str) -> tuple[np.ndarray, np.ndarray]:
    """Annual expected inspections (capped per tier, ≥ 1 for must-includes) and campaign pi ∝ it."""
    try:
        e = allocate(w, budget, Bound.of((np.array([0.0, 1.0]), must_code)),
                      Bound.of((caps, tier + 4 * must_code)), counts=counts)
    except Infeasible as ex:
        if ex.side == "below":
            raise PlanError(f"budget={budget:g} inspections/year is below the {n_must} must-include "
                            f"entities{detail}, each needing at least one a year") from None
        raise PlanError(f"budget={budget:g} inspections/year exceeds what the per-entity caps allow "
                        f"({ex.bound:g} = tier max_per_year × entities); lower the budget") from None
    try:
        pi = allocate(e, float(n), Bound.of(floor), Bound.of(1.0), must, 1.0, counts=counts)
    except Infeasible as ex:  # pragma: no cover - check_n rules out the reachable cases
        raise PlanError(f"n={n}: infeasible ({ex.side}, bound {ex.bound:g})") from None
    return e, pi


def plan_on_cells(c: PlanCells, tw: np.ndarray, rate: np.ndarray, cap: np.ndarray, fac: np.ndarray, *,
                  scope: str = "all", alpha: float = 0.0, floor: float, budget: float | None = None,
                  n: int | None = None, band: Sequence[float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """The plan on cells: weight, expected_per_year and pi per cell (K,), the budget and n.

    Weight = tier weight × entity-type factor (per ``scope``) × p^alpha × c_tier, with c_tier
    keeping each tier's total weight as without scaling (exact on integer-quantised p^alpha). The
    budget (inspections/year, default Σ annual_rate × factor) is spread ∝ weight under the tier
    caps; pi ∝ that, in [floor, 1], must-includes 1, Σ pi = n. This is the only implementation:
    :func:`supervision_plan` and :func:`yiwu_credit.supervision.frontier.policy_frontier` both call it.
    """
    if c.N == 0:
        raise PlanError("scored: the pool is empty (no active entities)")
    ng = c.n_types
    facm = type_factor_matrix(fac, scope)
    counts = np.bincount(c.group, weights=c.count, minlength=4 * ng).astype(np.int64)
    budget, n = resolve_budget_n(counts, rate, facm, budget, n, c.N, c.n_must, floor, c.detail, band)
    caps = np.concatenate([cap, np.maximum(cap, 1.0)])   # must-includes may exceed a cap below 1/yr
    gw = (tw[:, None] * facm).ravel()
    w = gw[c.group]
    if alpha > 0:
        if c.p is None:
            raise PlanError("scored: alpha > 0 (scale by probability) needs a 'probability' column")
        pa = c.p if alpha == 1 else c.p ** alpha
        pq = np.rint(pa * 2.0**32).astype(np.int64)
        gi = c.group.astype(np.intp)               # exact integer group sums via two float bincounts:
        hi = np.bincount(gi, weights=(pq >> 17) * c.count, minlength=4 * ng)   # every partial sum < 2**53
        lo = np.bincount(gi, weights=(pq & ((1 << 17) - 1)) * c.count, minlength=4 * ng)
        gsum = np.array([(int(a) * (1 << 17) + int(b)) / 2.0**32 for a, b in zip(hi, lo, strict=True)])
        num = (counts.reshape(4, ng) * facm).sum(axis=1)
        den = (gsum.reshape(4, ng) * facm).sum(axis=1)
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
        flat = np.isin(c.tier, np.flatnonzero(den == 0))
        w = np.where(flat, w, w * (pq / 2.0**32 * ratio[c.tier]))
    e, pi = _plan_allocations(w, c.count, budget, n, floor, c.must.astype(np.intp), c.tier, caps, c.must,
                              c.n_must, c.detail)
    return w, e, pi, budget, n


# ============================================================== group_counts → solve_groups → apply
@dataclass(frozen=True)
class PlanPart:
    """One partition prepared for planning: its validated ``cells`` (with the unit → cell map)
    and the entity ``frame`` whose carried columns the plan rows keep."""

    cells: PlanCells
    frame: pd.DataFrame


def group_counts(scored: pd.DataFrame, settings: PlanSettings) -> PlanPart:
    """Step 1, per partition: validate the scored rows and reduce them to cells with counts.
    ``part.cells.counts_only()`` is all the global step needs."""
    df = as_entity_frame(scored)
    return PlanPart(plan_cells(df, settings.etypes, settings.must_cols, with_p=settings.alpha > 0), df)


@dataclass(frozen=True)
class SolvedPlan:
    """Step 2's result: weight, expected_per_year and pi per merged cell (``tables``, (3, K)),
    each partition's cell map (``maps``) and the plan record (``attrs``)."""

    tables: np.ndarray
    maps: tuple[np.ndarray, ...]
    attrs: dict[str, Any]

    def for_part(self, k: int) -> SolvedPlan:
        """Only what partition ``k`` needs (its cells' values), for shipping to it."""
        return SolvedPlan(self.tables[:, self.maps[k]], (np.arange(len(self.maps[k])),), self.attrs)


def solve_groups(cells: Sequence[PlanCells], settings: PlanSettings, *, n: int | None = None,
                 budget: float | None = None) -> SolvedPlan:
    """Step 2, global: merge the partitions' cells and solve the plan on them (:func:`plan_on_cells`).

    PlanError for impossible requests (empty pool, n larger than the pool or too small for the
    must-includes and the floor, a budget outside the frequency caps).
    """
    merged, maps = merge_cells(cells)
    s = settings
    w, e, pi, budget_, n_ = plan_on_cells(merged, s.tw, s.rate, s.cap, s.fac, scope=s.scope, alpha=s.alpha,
                                          floor=s.floor, budget=budget, n=n, band=s.band)
    attrs = _plan_attrs(s, n_, budget_, merged.N, merged.n_must, clipped=budget is None and s.band is not None)
    return SolvedPlan(np.stack([w, e, pi]), tuple(maps), attrs)


def _plan_attrs(s: PlanSettings, n: int, budget: float, N: int, n_must: int, clipped: bool) -> dict[str, Any]:
    """The plan record (``attrs["yiwu_credit.plan"]``), which the draw's audit keeps."""
    notes = []
    band = s.policy.sampling.overall_rate_band
    if band and not (band[0] <= budget / N <= band[1]):
        notes.append(f"overall annual rate {budget / N:.2%} is outside the policy band {band[0]:.0%}–{band[1]:.0%}")
    if clipped and band and budget / N in (band[0], band[1]):
        notes.append(f"default budget clipped to the policy band: {budget / N:.2%} of the pool a year")
    if s.flat:
        notes.append(FLAT_NOTE)
    pol = s.policy
    return {"policy": pol.name, "policy_version": pol.version, "policy_sha256": pol.sha256, "n": n,
            "budget": budget, "floor": s.floor, "scale_by_probability": s.alpha > 0, "alpha": s.alpha,
            "entity_type_factor_scope": s.scope, "campaigns_per_year": budget / n,
            "population": N, "must_include": n_must, "notes": notes}


def apply(part: PlanPart, solved: SolvedPlan) -> pd.DataFrame:
    """Step 3, per partition: the plan rows (entity_id index): ``tier``, ``weight``,
    ``expected_per_year``, ``pi``, ``must_include`` and the carried columns. ``solved`` is the
    whole solution (one partition) or ``solved.for_part(k)``; attrs are not attached, but the
    record travels in the constant ``plan_*`` columns (:data:`PLAN_COLUMNS`)."""
    c, df = part.cells, part.frame
    if c.inverse is None or len(solved.maps) != 1 or solved.tables.shape[1] != len(c.count):
        raise PlanError("plan: apply needs the partition's own cells and solved.for_part(k)")
    N = len(c.inverse)
    block = np.empty((3, N))                      # one float block, filled in place (no copy)
    for s0 in range(0, N, 1 << 18):
        gi = c.inverse[s0:s0 + (1 << 18)]
        for row in range(3):
            np.take(solved.tables[row], gi, out=block[row, s0:s0 + len(gi)], mode="clip")
    out = pd.DataFrame(block.T, index=df.index, columns=["weight", "expected_per_year", "pi"], copy=False)
    out.insert(0, "tier", df["tier"])
    out["must_include"] = c.must[c.inverse]
    for col in CARRY:
        if col in df.columns:
            out[col] = df[col]
    for col, v in plan_record_columns(solved.attrs, N).items():
        out[col] = v
    out.index.name = "entity_id"
    return out


def supervision_plan(scored: pd.DataFrame, policy: str | Path | Policy | None = None, *, n: int | None = None,
                     budget: float | None = None, floor: float | None = None,
                     scale_by_probability: bool | None = None, alpha: float | None = None,
                     entity_type_factor_scope: str | None = None) -> pd.DataFrame:
    """Annual supervision plan and campaign inclusion probabilities, one row per entity.

    Parameters
    ----------
    scored : DataFrame indexed by ``entity_id`` with ``tier`` (A–D) and, optionally,
        ``probability`` (calibrated, [0, 1]), ``entity_type``, ``town``, ``industry`` and the
        must-include flags named in the policy (``serious_dishonest``, ``abnormal_operation``).
    policy : policy name, TOML path or Policy. Default: the policy that tiered ``scored`` (its
        ``tier_policy`` columns, see :func:`resolve_plan_policy`), else ``yiwu-2022``.
    n : campaign size (entities). Default: the annual budget rounded (one campaign a year).
    budget : inspections per year over the whole pool. Default: Σ tier ``annual_rate`` ×
        entity-type factor, the policy's own rates.
    Without a ``probability`` column a policy that scales by probability plans flat within tier
    (alpha 0) and says so in the notes; an explicit ``scale_by_probability``/``alpha`` raises.
    floor, scale_by_probability, alpha, entity_type_factor_scope : override the policy's
        ``min_inclusion_prob`` / ``scale_by_probability`` / ``alpha`` (within-tier weight ∝
        p^alpha) / ``entity_type_factor_scope`` (``"all"``, ``"routine"`` = tiers A–B, ``"none"``).

    Returns
    -------
    DataFrame (entity_id index) with ``tier``, ``weight`` (relative to B), ``expected_per_year``
    (inspections/year, capped at the tier's ``max_per_year``, ≥ 1 for must-includes, Σ = budget),
    ``pi`` (campaign inclusion probability π, Σ = n), ``must_include`` (bool) and the carried
    columns ``entity_type``/``town``/``industry`` when present. ``attrs["yiwu_credit.plan"]`` holds
    the policy name/hash and the parameters, which :func:`~yiwu_credit.supervision.systematic.draw`
    records in its audit; the same record travels in files as the constant ``plan_*`` columns
    (:func:`read_plan_record`).

    Raises PlanError for impossible requests (n larger than the pool, smaller than the
    must-includes, too small for the floor; a budget outside the frequency caps) and
    DataValidationError for duplicated entity ids.
    """
    df = as_entity_frame(scored)
    if policy is None:
        policy = resolve_plan_policy(df, None)[0]
    settings = plan_settings(policy, df.columns, floor=floor, scale_by_probability=scale_by_probability,
                             alpha=alpha, scope=entity_type_factor_scope)
    part = group_counts(df, settings)
    solved = solve_groups([part.cells], settings, n=n, budget=budget)
    out = apply(part, solved)
    out.attrs[PLAN_ATTR] = solved.attrs
    return out
