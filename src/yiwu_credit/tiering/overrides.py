"""Policy overrides: rules that set or floor a tier whatever the model says.

Applied after the model tier (see :mod:`.cutoffs`), at scoring time, with the scoring policy's
``[overrides]``. Every rule but ``new_entity`` only raises a tier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..policy import FACT_FLAGS, FACT_NUMBERS, TIERS, Policy, load_policy

__all__ = ["apply_overrides", "fact_arrays", "override_codes", "override_ranks"]


def apply_overrides(model_tier: pd.Series, facts: pd.DataFrame, policy: Policy | str | None = None
                    ) -> pd.DataFrame:
    """Policy overrides on top of model tiers.

    ``facts`` holds bool columns serious_dishonest, abnormal_operation, adverse_conduct, is_new,
    new_with_record and the numbers recent_penalties, recent_fines_cny (see
    :func:`yiwu_credit.features.build.override_facts`; missing columns count as False / 0), aligned with
    ``model_tier``. Returns a frame with ``tier`` (final) and ``overrides`` (';'-joined rules that
    changed the tier, '' if none). Order: new entity → fixed tier; a young entity with a record →
    at least that tier; list, conduct or heavy recent penalties → at least a tier;
    serious-dishonest → D.
    """
    rank = {t: i for i, t in enumerate(TIERS)}
    r = model_tier.map(rank).to_numpy().astype(int)
    r, notes = override_ranks(r, fact_arrays(facts), load_policy(policy))
    return pd.DataFrame({"tier": np.array(TIERS)[r], "overrides": notes}, index=model_tier.index)


def fact_arrays(facts: pd.DataFrame) -> dict[str, np.ndarray]:
    """The fact columns :func:`override_ranks` reads, as numpy arrays (flags bool, numbers
    float); a missing column counts as False / 0."""
    n = len(facts)
    f = {c: facts[c].to_numpy(dtype=bool) if c in facts else np.zeros(n, dtype=bool) for c in FACT_FLAGS}
    f.update({c: facts[c].to_numpy(dtype=float) if c in facts else np.zeros(n) for c in FACT_NUMBERS})
    return f


def override_ranks(r: np.ndarray, f: dict[str, np.ndarray], pol: Policy) -> tuple[np.ndarray, np.ndarray]:
    """The numpy core of :func:`apply_overrides`: tier ranks (0=A..3=D) and fact arrays in, final
    ranks and the notes (object array of str) out. Every rule but ``new_entity`` only raises a
    tier, and more penalties never trigger fewer rules."""
    ranks, codes, texts = override_codes(r, f, pol)
    return ranks, np.array(texts, dtype=object)[codes]


def override_codes(r: np.ndarray, f: dict[str, np.ndarray], pol: Policy) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`override_ranks` with the notes as codes: final ranks, the index of each entity's
    note (int64) and the list of notes (index 0 is '', no rule changed the tier)."""
    o = pol.overrides
    rank = {t: i for i, t in enumerate(TIERS)}
    r = np.array(r, dtype=int)
    changed_by = np.zeros(len(r), dtype=np.int64)  # bit i: rule i changed the tier
    labels: list[str] = []
    none = np.zeros(len(r), dtype=bool)

    def rule(mask: np.ndarray, new_rank: np.ndarray, label: str) -> None:
        labels.append(label)
        if not mask.any():
            return
        changed_by[mask & (new_rank != r)] |= 1 << (len(labels) - 1)
        r[mask] = new_rank[mask]

    nt = o.new_entity_tier
    rule(f["is_new"], np.full(len(r), rank[nt]), f"new_entity->{nt}")
    # a record never makes a young entity look better than having none
    rule(f.get("new_with_record", none), np.maximum(r, rank[nt]), f"new_entity_record->{nt}+")
    ab = rank[o.abnormal_operation_min_tier]
    rule(f["abnormal_operation"], np.maximum(r, ab), f"abnormal_operation->{o.abnormal_operation_min_tier}+")
    ac = rank[o.adverse_conduct_min_tier]
    rule(f["adverse_conduct"], np.maximum(r, ac), f"adverse_conduct->{o.adverse_conduct_min_tier}+")
    if o.heavy_penalty_rule:
        cnt = f.get("recent_penalties", np.zeros(len(r)))
        fines = f.get("recent_fines_cny", np.zeros(len(r)))
        days = int(o.heavy_penalties_days)
        ht, st = o.heavy_penalties_min_tier, o.severe_penalties_min_tier
        rule(cnt >= o.heavy_penalties_min_count, np.maximum(r, rank[ht]), f"heavy_penalties_{days}d->{ht}+")
        severe = (cnt >= o.severe_penalties_min_count) | (fines >= o.severe_penalties_min_fines_cny)
        rule(severe, np.maximum(r, rank[st]), f"severe_penalties_{days}d->{st}+")
    rule(f["serious_dishonest"], np.full(len(r), rank[o.serious_dishonest_tier]),
         f"serious_dishonest->{o.serious_dishonest_tier}")
    # the notes: the labels of the rules that changed the tier, in rule order, one string per combination
    used = np.flatnonzero(np.bincount(changed_by, minlength=1))
    code_of = np.zeros(1 << len(labels), dtype=np.int64)
    code_of[used] = np.arange(len(used))  # used[0] is 0 whenever some entity kept its tier
    texts = [";".join(lb for i, lb in enumerate(labels) if bits >> i & 1) for bits in used]
    if not texts or texts[0] != "":
        texts, code_of = ["", *texts], code_of + 1
    return r, code_of[changed_by], texts
