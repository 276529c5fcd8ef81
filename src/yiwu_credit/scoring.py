"""Batch scoring: the main job. Dataset + bundle → one row per entity in the pool.

Every entity of the input is either scored or listed in ``excluded`` with its reason (closed
before as_of, or not yet established), so ``len(entities) == len(scored) + len(excluded)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bundle import Bundle, load_bundle
from .dataset import Dataset
from .features import _NAT, build_features, day_array, override_facts, pool, to_day
from .policy import TIERS, apply_overrides

REASON_TIERS = ("C", "D")


@dataclass
class ScoreResult:
    scored: pd.DataFrame    # entity_id index
    excluded: pd.DataFrame  # entity_id, reason
    features: pd.DataFrame  # the feature matrix used (entity_id index)


def score_entities(dataset: Dataset, as_of: str | pd.Timestamp, bundle: Bundle | str | None = None,
                   reasons: str = "CD") -> ScoreResult:
    """Score every entity alive at ``as_of``.

    ``reasons``: "CD" (default) computes reason codes for entities whose final tier is C or D
    or whose tier an override changed; "all" for everyone; "none" skips them. Reasons use exact
    TreeSHAP, which costs ~100× plain scoring, hence the default.

    ``scored`` columns: probability, credit_score, model_tier, tier, tier_zh, tier_en,
    overrides, is_new, serious_dishonest, abnormal_operation, adverse_conduct, entity_type,
    town, industry, reason_1..3 (name, _zh, _en), model_version.
    """
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
        "entity_type": ent["entity_type"], "town": ent["town"], "industry": ent["industry"],
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
    return ScoreResult(out, excluded, X)
