"""Batch scoring: the main job. Dataset + bundle (+ a tiering policy) → one row per entity in the pool.

Every entity of the input is either scored or listed in ``excluded`` with its reason (closed
before as_of, or not yet established), so ``len(entities) == len(scored) + len(excluded)``.

Features are computed under the bundle's policy and catalogue (the model's inputs mean what
they meant in training). Tiers — cut-offs and overrides — follow the *tiering policy*: the
bundle's by default, or ``policy=`` (``score --policy``), fitted on the bundle's reference
distribution at scoring time, so another policy's shares or thresholds take effect without a
refit. The output records which policy tiered it (columns ``tier_policy`` and
``tier_policy_sha256``; ``ScoreResult.tiering``; ``scored.attrs["tiering"]``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.columns import constant_strings, dictionary_take, encode_strings, string_column
from ..data.contract import TABLES
from ..data.dataset import Dataset
from ..data.dates import NAT, Day, day_array, to_day
from ..features.build import (
    EXCLUSION_REASONS,
    TABLE_DATE,
    EntityStatus,
    build_features,
    compute_columns,
    entity_events,
    entity_status,
    override_core,
    override_facts,
    pool,
    pool_events,
)
from ..features.ranges import range_check
from ..model.bundle import Bundle, load_bundle
from ..model.compiled import wanted
from ..model.reasons import top_reasons
from ..policy import TIERS, Policy, load_policy
from ..tiering.cutoffs import TierCutoffs
from ..tiering.overrides import fact_arrays, override_codes, override_ranks

__all__ = ["REASON_TIERS", "STALE_DATA_DAYS", "ScoreResult", "Scorer", "data_warnings", "last_event_date",
           "rejects_table", "score_entities", "tiering_policy"]

REASON_TIERS = ("C", "D")
#: an as_of this many days after the dataset's last recorded event is flagged as doubtful
STALE_DATA_DAYS = 365


@dataclass
class ScoreResult:
    """One scoring run: ``scored`` (entity_id index), ``excluded`` (entity_id, reason), the
    feature matrix used, doubts about the run, and the tier cut-offs with the policy behind them."""

    scored: pd.DataFrame
    excluded: pd.DataFrame
    features: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    tiering: TierCutoffs | None = None


def rejects_table(dataset: Dataset, excluded: pd.DataFrame) -> pd.DataFrame:
    """Every input row that is not in the scores, with why: the dataset's quarantined rows
    (``kind`` "rejected": table, row, entity_id, column, reason, source file and header) and the
    entities outside the supervision pool (``kind`` "out_of_pool")."""
    cols = ["kind", "table", "row", "entity_id", "column", "reason", "file", "header"]
    rej = dataset.rejects.assign(kind="rejected")
    ex = excluded.assign(table="entities", row=pd.NA, column="", kind="out_of_pool")
    return pd.concat([rej.reindex(columns=cols), ex.reindex(columns=cols)], ignore_index=True)


def last_event_date(dataset: Dataset) -> pd.Timestamp | None:
    """The latest event date in any event table (None if there are no events)."""
    last = None
    for name, t in TABLES.items():
        if t.date_column and len(dataset.table(name)):
            m = dataset.table(name)[t.date_column].max()
            if pd.notna(m) and (last is None or m > last):
                last = pd.Timestamp(m)
    return last


def data_warnings(dataset: Dataset, as_of: str | pd.Timestamp | Day) -> list[str]:
    """Doubts about scoring ``dataset`` at ``as_of`` that do not stop the run but must be shown."""
    day = Day.parse(as_of)
    out = []
    last = last_event_date(dataset)
    if last is not None and (day.timestamp - last).days > STALE_DATA_DAYS:
        out.append(f"as_of {day} is {(day.timestamp - last).days} days after the last recorded event "
                   f"({last.date()}): features will read as a clean record; is the data complete?")
    n_issue = int((dataset.issue_counts() > 0).sum())
    if n_issue:
        out.append(f"{n_issue:,} entities are scored on a partial history: some of their event rows were "
                   f"quarantined (column data_issues, rows in the rejects file)")
    return out


def tiering_policy(bundle: Bundle, policy: Policy | str | None) -> tuple[Policy, list[str]]:
    """The policy that tiers a run (``policy``, or the bundle's) and warnings about it."""
    pol = bundle.policy if policy is None else load_policy(policy)
    notes = []
    if pol.repair != bundle.policy.repair:
        notes.append(f"policy {pol.name} {pol.version} has other [repair] periods than the bundle's "
                     f"({bundle.policy.name} {bundle.policy.version}): features follow the bundle's (as in "
                     "training); override facts follow the tiering policy's")
    return pol, notes


def score_entities(dataset: Dataset, as_of: str | pd.Timestamp | Day, bundle: Bundle | str | None = None,
                   reasons: str = "CD", policy: Policy | str | None = None, *,
                   compiled: bool | None = None, timings: dict[str, float] | None = None) -> ScoreResult:
    """Score every entity alive at ``as_of``.

    ``policy`` (default: the bundle's) tiers the run: its ``[tiers]`` give the cut-offs on the
    bundle's reference distribution and its ``[overrides]`` the overrides; no refit is needed.
    ``reasons``: "CD" (default) computes reason codes for entities whose final tier is C or D
    or whose tier an override changed; "all" for everyone; "none" skips them.

    ``scored`` columns: probability, credit_score, model_tier, tier, tier_zh, tier_en,
    overrides, serious_dishonest, abnormal_operation, adverse_conduct, is_new, new_with_record,
    recent_penalties, recent_fines_cny, out_of_range (features beyond the training range),
    entity_type, town, industry, data_issues (quarantined event rows of the entity),
    reason_1..k (name, _zh, _en), model_version, tier_policy (name@version) and
    tier_policy_sha256. ``warnings`` lists doubts about the run (stale data, partial histories).
    ``compiled``: predict with the trees compiled to native code (extra ``fast``, see
    :mod:`yiwu_credit.model.compiled`; the same probabilities to 1e-9); None: as the environment
    variable ``YIWU_CREDIT_COMPILED`` says (off by default). ``timings``: a dict that receives
    the wall seconds of each stage (features, model, tiers_overrides, reasons, assemble) and
    their CPU seconds (``<stage>_cpu``), for benchmarks.
    """
    day = Day.parse(as_of)
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    if reasons not in ("CD", "all", "none"):
        raise ValueError(f"reasons must be 'CD', 'all' or 'none', got {reasons!r}")
    clock = _Clock(timings)
    m = b.model
    pol, notes = tiering_policy(b, policy)
    cut = b.tiering(pol)
    events = pool_events(dataset, day, b.policy, b.catalogue)
    X = build_features(dataset, day, b.catalogue, b.policy, events=events)
    clock("features")
    fast = wanted(compiled)
    M = m.feature_matrix(X, order="C" if fast else "F")  # compiled trees read rows; LightGBM either
    p = m.proba_from_margin(m.learner_.margin(M, compiled=fast))
    clock("model")
    fact_events = events if pol.repair == b.policy.repair else {
        **events, **pool_events(dataset, day, pol, b.catalogue, tables=("penalties",))}
    facts = override_facts(dataset, day, pol, b.catalogue, events=fact_events, index=X.index)
    model_rank = cut.ranks(p)
    rank, note_codes, note_texts = override_codes(model_rank, fact_arrays(facts), pol)
    clock("tiers_overrides")
    k = m.n_reasons
    rcols = [f"reason_{i}{s}" for i in range(1, k + 1) for s in ("", "_zh", "_en")]
    texts = {c: np.full(len(X), None, dtype=object) for c in rcols}
    if reasons != "none" and len(X):
        need = np.ones(len(X), dtype=bool) if reasons == "all" else (
            np.isin(rank, [TIERS.index(t) for t in REASON_TIERS]) | (note_codes != 0))
        if need.any():
            rows = np.flatnonzero(need)
            ex = m.reason_arrays(X, k, matrix=M, rows=rows)
            for c in rcols:
                if c in ex:
                    texts[c][need] = ex[c]
    clock("reasons")
    idx, remap = pool(dataset, day)
    ent = {c: dictionary_take(dataset.derived(("encoded", c), ("entities",), lambda c=c: encode_strings(
        dataset.entities[c])), idx) for c in ("entity_type", "town", "industry")}
    ranges = range_check(b)
    same_codes = all(list(f.categories or ()) == list(m.categories_.get(f.name, f.categories or ()))
                     for f in b.catalogue.features if f.is_categorical)
    # the model's matrix holds category codes as the range check reads them when the categories agree
    beyond = ranges.beyond(M if same_codes else ranges.matrix(X[list(m.feature_names_in_)]))
    oor_codes, oor_labels = ranges.flag_codes(beyond)
    n = len(X)
    out = pd.DataFrame({
        "probability": p, "credit_score": m.credit_points(p).round(1), "model_tier": string_column(TIERS, model_rank),
        "tier": string_column(TIERS, rank),
        "tier_zh": string_column([pol.tier_label(t, "zh") for t in TIERS], rank),
        "tier_en": string_column([pol.tier_label(t, "en") for t in TIERS], rank),
        "overrides": string_column(note_texts, note_codes), **{c: facts[c].to_numpy() for c in facts.columns},
        "out_of_range": string_column(oor_labels, oor_codes),
        **ent,
        "data_issues": _issue_counts(dataset, X.index),
        # reason texts stay object arrays (mostly None): no string inference over a million rows
        **{c: pd.Series(v, index=X.index, dtype=object, copy=False) for c, v in texts.items()},
        "model_version": constant_strings(b.version, n),
        "tier_policy": constant_strings(str(cut.policy), n),
        "tier_policy_sha256": constant_strings(cut.policy.sha256, n),
    }, index=X.index, copy=False)  # fresh arrays: no consolidation copy
    out.attrs["tiering"] = cut.to_dict()
    # entities not in the pool, with the reason
    gone = remap < 0
    status = entity_status(day_array(dataset.entities["established_on"])[gone],
                           day_array(dataset.entities["closed_on"])[gone], day)
    reason = np.array([EXCLUSION_REASONS.get(int(c), "") for c in range(4)], dtype=object)[status]
    excluded = pd.DataFrame({"entity_id": dataset.entities["entity_id"][gone].to_numpy(dtype=object),
                             "reason": reason})
    warnings = data_warnings(dataset, day) + notes
    n_oor = int((oor_codes != 0).sum())
    if n_oor:
        per = beyond.sum(axis=0)
        top = [j for j in np.argsort(-per, kind="stable")[:3] if per[j]]
        warnings.append(f"{n_oor:,} entities have feature values beyond the training range (column out_of_range; "
                        f"most often {', '.join(f'{ranges.names[j]} {int(per[j]):,}' for j in top)}): "
                        "the model extrapolates there")
    clock("assemble")
    return ScoreResult(out, excluded, X, warnings, cut)


def _issue_counts(dataset: Dataset, index: pd.Index) -> np.ndarray:
    """Quarantined event rows of each entity of ``index`` (int64, shape (n,))."""
    counts = dataset.issue_counts()
    if not len(counts):
        return np.zeros(len(index), dtype=np.int64)
    return counts.reindex(index, fill_value=0).to_numpy(dtype=np.int64)


class _Clock:
    """Wall and CPU seconds per stage into ``timings`` (``stage`` and ``stage_cpu``; a no-op
    without it): each call closes a stage."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings
        self.t, self.c = time.perf_counter(), time.process_time()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now, cpu = time.perf_counter(), time.process_time()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.t
            self.timings[stage + "_cpu"] = self.timings.get(stage + "_cpu", 0.0) + cpu - self.c
            self.t, self.c = now, cpu


class Scorer:
    """Scores one entity at a time for online use: the same catalogue, model, tiers, overrides
    and reasons as :func:`score_entities` (with the same ``policy``), on plain records and
    without pandas (p50 well under 1 ms including features; see ``benchmarks/single_entity.py``).

    >>> s = Scorer()                                             # the shipped bundle
    >>> s.score_one(entity, {"penalties": [...], ...}, "2026-01-01")  # doctest: +SKIP
    """

    def __init__(self, bundle: Bundle | str | None = None, n_reasons: int | None = None,
                 policy: Policy | str | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        m = self.bundle.model
        self.policy, self.warnings = tiering_policy(self.bundle, policy)
        self.tiering = self.bundle.tiering(self.policy)
        self.names = list(m.feature_names_in_)
        self.n_reasons = m.n_reasons if n_reasons is None else n_reasons
        self._feats = {f.name: f for f in self.bundle.catalogue.features}
        self._ranges = range_check(self.bundle)
        for c, cats in m.categories_.items():  # the online path passes catalogue codes directly
            if c in self._feats and list(self._feats[c].categories or ()) != list(cats):
                raise ValueError(f"model categories of {c!r} differ from the catalogue's")

    def score_one(self, entity: Mapping[str, Any], events: Mapping[str, Sequence[Mapping[str, Any]]],
                  as_of: str | pd.Timestamp | Day) -> dict[str, Any]:
        """Score one entity. ``entity``: entities columns → values; ``events``: table name → list
        of row dicts (dates as ISO strings or dates). Returns a dict like a row of
        ``score_entities(...).scored`` plus ``reasons`` (list of (feature, zh, en))."""
        b = self.bundle
        m = b.model
        pol = self.policy
        a = Day.parse(as_of)
        est, closed = entity.get("established_on"), entity.get("closed_on")
        est_day = NAT if est in (None, "") else to_day(est)
        closed_day = NAT if closed in (None, "") else to_day(closed)
        if entity_status(np.array([est_day]), np.array([closed_day]), a)[0] != EntityStatus.ALIVE:
            raise ValueError(f"entity {entity.get('entity_id')} is not in the supervision pool at {a}")
        ent, evs = entity_events(entity, events, a, b.policy, b.catalogue)
        cols = compute_columns(ent, evs, 1, a, b.catalogue)
        row = np.array([[cols[n][0] for n in self.names]], dtype=np.float64)
        cat_cols = [j for j, n in enumerate(self.names) if n in m.categories_]
        row[0, cat_cols] = np.where(row[0, cat_cols] < 0, np.nan, row[0, cat_cols])
        lg = getattr(m.learner_, "leaves", None)
        leaves = lg(row) if lg else None  # LightGBM: one call gives margin and reasons
        margin = m.learner_.margin_from_leaves(leaves) if lg else m.learner_.margin(row)
        p = float(m.proba_from_margin(margin)[0])
        model_rank = int(self.tiering.ranks(np.array([p]))[0])
        history = any(r.get(TABLE_DATE[t]) not in (None, "") and to_day(r[TABLE_DATE[t]]) < a
                      for t in TABLE_DATE for r in events.get(t, ()))
        pen = evs["penalties"] if pol.repair == b.policy.repair else entity_events(
            entity, {"penalties": events.get("penalties", ())}, a, pol, b.catalogue)[1]["penalties"]
        facts = override_core(evs["list_records"], evs["inspections"], np.array([history]),
                              np.array([a - est_day]), 1, pol, pen)
        ranks, notes = override_ranks(np.array([model_rank]), facts, pol)
        tier = TIERS[int(ranks[0])]
        out: dict[str, Any] = {
            "entity_id": entity.get("entity_id"), "probability": p,
            "credit_score": round(float(m.credit_points(p)), 1), "model_tier": TIERS[model_rank],
            "tier": tier, "tier_zh": pol.tier_label(tier, "zh"), "tier_en": pol.tier_label(tier, "en"),
            "overrides": str(notes[0]), **{k: v[0].item() for k, v in facts.items()},
            "out_of_range": str(self._ranges.flags(row)[0]), "model_version": b.version,
            "tier_policy": str(self.tiering.policy), "tier_policy_sha256": self.tiering.policy.sha256,
        }
        contrib = (m.learner_.contrib_from_leaves(leaves) if lg else m.learner_.contrib(row))[0]
        order, positive = top_reasons(contrib[None, :], self.n_reasons)
        reasons = []
        for j in order[0][positive[0]]:
            name = self.names[j]
            v = row[0, j]
            f = self._feats.get(name)
            if f is not None and f.is_categorical:
                v = f.categories[int(v)] if v == v else None
            reasons.append((name, f.reason(v, "zh") if f else f"{name}={v}", f.reason(v, "en") if f else f"{name}={v}"))
        out["reasons"] = reasons
        return out
