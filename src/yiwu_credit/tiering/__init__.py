"""Tiering: calibrated probabilities → tiers A–D under a policy, then the policy's overrides.

Cut-offs come from the policy in force at scoring time, fitted on the bundle's reference
distribution (:mod:`.cutoffs`); overrides set or floor tiers from point-in-time facts
(:mod:`.overrides`).
"""

from .cutoffs import PolicyStamp, TierCutoffs, fit_cutoffs, tier_cutoffs
from .overrides import apply_overrides, override_ranks

__all__ = ["PolicyStamp", "TierCutoffs", "apply_overrides", "fit_cutoffs", "override_ranks", "tier_cutoffs"]
