"""Batch scoring: the main job. Dataset + bundle → one row per entity in the pool.

Every entity of the input is either scored or listed in ``excluded`` with its reason (closed
before as_of, or not yet established), so ``len(entities) == len(scored) + len(excluded)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.contract import TABLES
from ..data.dataset import Dataset
from ..data.dates import parse_as_of
from ..features.build import (
    _NAT,
    TABLE_DATE,
    build_features,
    compute_columns,
    day_array,
    entity_events,
    override_core,
    override_facts,
    pool,
    to_day,
)
from ..features.ranges import range_check
from ..model.bundle import Bundle, load_bundle
from ..supervision.policy import TIERS, apply_overrides, override_ranks

REASON_TIERS = ("C", "D")
#: an as_of this many days after the dataset's last recorded event is flagged as doubtful
STALE_DATA_DAYS = 365


@dataclass
class ScoreResult:
    scored: pd.DataFrame    # entity_id index
    excluded: pd.DataFrame  # entity_id, reason
    features: pd.DataFrame  # the feature matrix used (entity_id index)
    warnings: list[str] = field(default_factory=list)  # doubts about the run, for the output and the report


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


def data_warnings(dataset: Dataset, as_of: pd.Timestamp) -> list[str]:
    """Doubts about scoring ``dataset`` at ``as_of`` that do not stop the run but must be shown."""
    out = []
    last = last_event_date(dataset)
    if last is not None and (as_of - last).days > STALE_DATA_DAYS:
        out.append(f"as_of {as_of.date()} is {(as_of - last).days} days after the last recorded event "
                   f"({last.date()}): features will read as a clean record; is the data complete?")
    n_issue = int((dataset.issue_counts() > 0).sum())
    if n_issue:
        out.append(f"{n_issue:,} entities are scored on a partial history: some of their event rows were "
                   f"quarantined (column data_issues, rows in the rejects file)")
    return out


def score_entities(dataset: Dataset, as_of: str | pd.Timestamp, bundle: Bundle | str | None = None,
                   reasons: str = "CD") -> ScoreResult:
    """Score every entity alive at ``as_of``.

    ``reasons``: "CD" (default) computes reason codes for entities whose final tier is C or D
    or whose tier an override changed; "all" for everyone; "none" skips them. Reasons use exact
    TreeSHAP, which costs ~100× plain scoring, hence the default.

    ``scored`` columns: probability, credit_score, model_tier, tier, tier_zh, tier_en,
    overrides, serious_dishonest, abnormal_operation, adverse_conduct, is_new, new_with_record,
    recent_penalties, recent_fines_cny, entity_type, town, industry, data_issues (quarantined
    event rows of the entity), out_of_range (features beyond the training range), reason_1..3
    (name, _zh, _en), model_version. ``warnings`` lists doubts about the run (stale data, partial
    histories).
    """
    as_of = parse_as_of(as_of)
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    if reasons not in ("CD", "all", "none"):
        raise ValueError(f"reasons must be 'CD', 'all' or 'none', got {reasons!r}")
    X = build_features(dataset, as_of, b.catalogue, b.policy)
    facts = override_facts(dataset, as_of, b.policy, b.catalogue)
    a = b.model.assess(X)
    final = apply_overrides(a["tier"], facts, b.policy)
    idx, _ = pool(dataset, to_day(as_of))
    ent = dataset.entities[["entity_type", "town", "industry"]].take(idx).set_axis(X.index)
    out = pd.DataFrame({
        "probability": a["probability"], "credit_score": a["credit_score"].round(1), "model_tier": a["tier"],
        "tier": final["tier"],
        "tier_zh": final["tier"].map({t: b.policy.tier_label(t, "zh") for t in TIERS}),
        "tier_en": final["tier"].map({t: b.policy.tier_label(t, "en") for t in TIERS}),
        "overrides": final["overrides"], **{c: facts[c] for c in facts.columns},
        "out_of_range": range_check(b).frame_flags(X[list(b.model.feature_names_in_)]),
        "entity_type": ent["entity_type"], "town": ent["town"], "industry": ent["industry"],
        "data_issues": dataset.issue_counts().reindex(X.index, fill_value=0).to_numpy(dtype=np.int64),
    }, index=X.index)
    k = b.model.n_reasons
    rcols = [f"reason_{i}{s}" for i in range(1, k + 1) for s in ("", "_zh", "_en")]
    texts = {c: np.full(len(X), None, dtype=object) for c in rcols}
    if reasons != "none" and len(X):
        need = np.ones(len(X), dtype=bool) if reasons == "all" else (
            np.isin(final["tier"].to_numpy(dtype=object), REASON_TIERS) | (final["overrides"] != "").to_numpy())
        if need.any():
            ex = b.model.explain(X.iloc[np.flatnonzero(need)], k)
            for c in rcols:
                texts[c][need] = ex[c].to_numpy(dtype=object)
    out = pd.concat([out, pd.DataFrame(texts, index=out.index, dtype=object)], axis=1)  # object: no string re-encoding
    out["model_version"] = b.version
    # entities not in the pool, with the reason
    a_day = to_day(as_of)
    gone = np.ones(len(dataset.entities), dtype=bool)
    gone[idx] = False
    all_ids = dataset.entities["entity_id"]
    est = day_array(dataset.entities["established_on"])[gone]
    closed = day_array(dataset.entities["closed_on"])[gone]
    reason = np.where(est >= a_day, "not established before as_of",
                      np.where((closed != _NAT) & (closed < a_day),
                               "revoked/cancelled before as_of (out of the supervision pool)", "not alive at as_of"))
    excluded = pd.DataFrame({"entity_id": all_ids[gone].to_numpy(dtype=object), "reason": reason})
    warnings = data_warnings(dataset, as_of)
    n_oor = int((out["out_of_range"] != "").sum())
    if n_oor:
        top = out.loc[out["out_of_range"] != "", "out_of_range"].str.split(";").explode().value_counts().head(3)
        warnings.append(f"{n_oor:,} entities have feature values beyond the training range (column out_of_range; "
                        f"most often {', '.join(f'{k} {v:,}' for k, v in top.items())}): the model extrapolates there")
    return ScoreResult(out, excluded, X, warnings)


class Scorer:
    """Scores one entity at a time for online use: the same catalogue, model, tiers, overrides
    and reasons as :func:`score_entities`, on plain records and without pandas (p50 well under
    1 ms including features; see ``benchmarks/single_entity.py``).

    >>> s = Scorer()                                             # the shipped bundle
    >>> s.score_one(entity, {"penalties": [...], ...}, "2026-01-01")  # doctest: +SKIP
    """

    def __init__(self, bundle: Bundle | str | None = None, n_reasons: int | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        m = self.bundle.model
        self.names = list(m.feature_names_in_)
        self.n_reasons = m.n_reasons if n_reasons is None else n_reasons
        self._feats = {f.name: f for f in self.bundle.catalogue.features}
        self._ranges = range_check(self.bundle)
        for c, cats in m.categories_.items():  # the online path passes catalogue codes directly
            if c in self._feats and list(self._feats[c].categories or ()) != list(cats):
                raise ValueError(f"model categories of {c!r} differ from the catalogue's")

    def score_one(self, entity: Mapping[str, Any], events: Mapping[str, Sequence[Mapping[str, Any]]],
                  as_of: str | pd.Timestamp) -> dict[str, Any]:
        """Score one entity. ``entity``: entities columns → values; ``events``: table name → list
        of row dicts (dates as ISO strings or dates). Returns a dict like a row of
        ``score_entities(...).scored`` plus ``reasons`` (list of (feature, zh, en))."""
        b = self.bundle
        m = b.model
        a = to_day(as_of)
        est = entity.get("established_on")
        closed = entity.get("closed_on")
        if est is None or to_day(est) >= a or (closed not in (None, "") and to_day(closed) < a):
            raise ValueError(f"entity {entity.get('entity_id')} is not in the supervision pool at {as_of}")
        ent, evs = entity_events(entity, events, a, b.policy, b.catalogue)
        cols = compute_columns(ent, evs, 1, a, b.catalogue)
        row = np.array([[cols[n][0] for n in self.names]], dtype=np.float64)
        cat_cols = [j for j, n in enumerate(self.names) if n in m.categories_]
        row[0, cat_cols] = np.where(row[0, cat_cols] < 0, np.nan, row[0, cat_cols])
        lg = getattr(m.learner_, "leaves", None)
        leaves = lg(row) if lg else None  # LightGBM: one call gives margin and reasons
        margin = m.learner_.margin_from_leaves(leaves) if lg else m.learner_.margin(row)
        p = float(m._calibrate(margin)[0])
        model_rank = int(np.searchsorted(m.tier_cutoffs_, p, side="left"))
        history = any(r.get(TABLE_DATE[t]) not in (None, "") and to_day(r[TABLE_DATE[t]]) < a
                      for t in TABLE_DATE for r in events.get(t, ()))
        facts = override_core(evs["list_records"], evs["inspections"], np.array([history]),
                              np.array([a - to_day(est)]), 1, b.policy, evs["penalties"])
        ranks, notes = override_ranks(np.array([model_rank]), facts, b.policy)
        tier = TIERS[int(ranks[0])]
        out: dict[str, Any] = {
            "entity_id": entity.get("entity_id"), "probability": p,
            "credit_score": round(float(m._points(np.array([p]))[0]), 1), "model_tier": TIERS[model_rank],
            "tier": tier, "tier_zh": b.policy.tier_label(tier, "zh"), "tier_en": b.policy.tier_label(tier, "en"),
            "overrides": str(notes[0]), **{k: v[0].item() for k, v in facts.items()},
            "out_of_range": str(self._ranges.flags(row)[0]), "model_version": b.version,
        }
        contrib = (m.learner_.contrib_from_leaves(leaves) if lg else m.learner_.contrib(row))[0]
        order = np.argsort(-contrib, kind="stable")[: self.n_reasons]
        reasons = []
        for j in order:
            if contrib[j] <= 1e-9:
                break
            name = self.names[j]
            v = row[0, j]
            f = self._feats.get(name)
            if f is not None and f.is_categorical:
                v = f.categories[int(v)] if v == v else None
            reasons.append((name, f.reason(v, "zh") if f else f"{name}={v}", f.reason(v, "en") if f else f"{name}={v}"))
        out["reasons"] = reasons
        return out
