"""Tier cut-offs: from a policy's ``[tiers]`` and a bundle's reference distribution.

Tiering is a step of its own, applied at scoring time. A fitted model keeps the calibrated
out-of-fold probabilities of its training population (``oof_proba_``, with ``oof_weight_`` when
the fit was weighted): the *reference distribution*. A policy turns it into cut-offs:

* ``method = "shares"``: the cut-off of tier X is the (weighted) quantile of the reference
  probabilities at the cumulative share of tiers A..X, so on the training population the tiers
  hold the policy's shares (to ties);
* ``method = "thresholds"``: the policy's probabilities are the cut-offs.

A probability ``p`` is in tier A if ``p <= cutoff_A``, B if ``cutoff_A < p <= cutoff_B``, and so
on; D is everything above ``cutoff_C``. Changing the policy's shares or thresholds changes the
tiers of the next scoring run; no refit is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..policy import TIERS, Policy, TierPolicy, load_policy

__all__ = ["PolicyStamp", "TierCutoffs", "fit_cutoffs", "tier_cutoffs"]


@dataclass(frozen=True)
class PolicyStamp:
    """Which policy tiered a run: name, version and SHA-256 of its canonical form."""

    name: str
    version: str
    sha256: str

    @classmethod
    def of(cls, policy: Policy) -> PolicyStamp:
        return cls(policy.name, policy.version, policy.sha256)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class TierCutoffs:
    """Upper probability bounds of tiers A, B and C under one policy (D is everything above)."""

    cutoffs: tuple[float, float, float]
    method: str
    policy: PolicyStamp

    def ranks(self, p: np.ndarray) -> np.ndarray:
        """Tier rank (0 = A … 3 = D) of each probability, int64 array."""
        return np.searchsorted(np.asarray(self.cutoffs, dtype=float), np.asarray(p, dtype=float),
                               side="left").astype(np.int64)

    def tiers(self, p: np.ndarray) -> np.ndarray:
        """Tier letter of each probability (array of str)."""
        return np.array(TIERS)[self.ranks(p)]

    def to_dict(self) -> dict:
        """JSON-ready record (for manifests, output metadata and reports)."""
        return {"policy": self.policy.name, "policy_version": self.policy.version,
                "policy_sha256": self.policy.sha256, "method": self.method,
                "cutoffs": {t: float(c) for t, c in zip(TIERS[:-1], self.cutoffs, strict=True)}}


def fit_cutoffs(reference: np.ndarray, weight: np.ndarray | None, tiers: TierPolicy) -> np.ndarray:
    """Cut-offs (A, B, C) for a policy's ``[tiers]`` on reference probabilities.

    ``shares``: for each cumulative share s, the smallest reference probability whose cumulative
    (weighted) share reaches s; made non-decreasing. ``thresholds``: the policy's values.
    """
    if tiers.method == "thresholds":
        return np.array([tiers.thresholds[t] for t in TIERS[:-1]], dtype=float)
    if tiers.method != "shares":
        raise ValueError(f"[tiers].method must be 'shares' or 'thresholds', got {tiers.method!r}")
    p = np.asarray(reference, dtype=float)
    if p.ndim != 1 or len(p) == 0 or np.isnan(p).any():
        raise ValueError("the reference distribution must be a non-empty 1-D array of probabilities "
                         "without NaN (the model's oof_proba_)")
    w = np.ones(len(p)) if weight is None else np.asarray(weight, dtype=float)
    if w.shape != p.shape or (w < 0).any() or not w.sum() > 0:
        raise ValueError("reference weights must be non-negative, one per probability, not all 0")
    shares = np.cumsum([tiers.shares[t] for t in TIERS[:-1]])
    order = np.argsort(p, kind="stable")
    cw = np.cumsum(w[order]) / w.sum()
    cuts = [p[order][min(np.searchsorted(cw, s), len(p) - 1)] for s in shares]
    return np.maximum.accumulate(np.array(cuts, dtype=float))


def tier_cutoffs(reference: np.ndarray, weight: np.ndarray | None,
                 policy: Policy | str | None = None) -> TierCutoffs:
    """:func:`fit_cutoffs` for a policy (a name, path or :class:`Policy`), stamped with it."""
    pol = load_policy(policy)
    c = fit_cutoffs(reference, weight, pol.tiers)
    return TierCutoffs((float(c[0]), float(c[1]), float(c[2])), pol.tiers.method, PolicyStamp.of(pol))
