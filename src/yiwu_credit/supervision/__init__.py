"""Stage 5, supervision: one module per concern, nothing here imports a machine-learning library.

``policy`` (the validated policy) · ``prn`` (seeds, the PRN hash, the draw order) · ``fixedpoint``
(π in fixed point, the shortfall rule, systematic selection) · ``allocation`` (capped allocation)
· ``plan`` (``group_counts → solve_groups → apply``, ``supervision_plan``) · ``systematic`` (the
entity draw: ``prepare → offsets → select_range``, ``draw``) · ``joint`` (joint and rotating
campaigns) · ``audit`` (the audit hasher and record, the ``SamplingDesign`` protocol) ·
``verification`` (``verify``, ``verify_files``) · ``inspectors`` and ``assignments`` (the second
random) · ``estimates`` (published estimates) · ``frontier`` (the policy frontier). See docs/policy.md §9.

The names a caller needs are importable from here: ``from yiwu_credit.supervision import
supervision_plan, draw, verify``.
"""

from __future__ import annotations

from ..policy import TIERS, Policy, load_policy
from .allocation import inclusion_probabilities, resolve_budget_n
from .audit import ALGORITHM_VERSION, VerifyResult, audit_json, campaign_window, save_audit
from .estimates import publication_summary, results_table, tie_results, violation_rates
from .fixedpoint import MAX_N, SCALE, SCALE_BITS, fixed_point, systematic_select
from .frontier import Candidate, candidate_grid, policy_frontier
from .inspectors import assign_inspectors, load_roster
from .joint import JOINT_ALGORITHM, JOINT_FORMAT, JointDraw, joint_draw, rotate
from .plan import (
    FLAT_NOTE,
    PLAN_ATTR,
    SCOPES,
    PlanCells,
    plan_cells,
    plan_on_cells,
    sampling_settings,
    supervision_plan,
    type_factor_matrix,
)
from .prn import PRN_HASH, prn_keys, prn_uniform
from .systematic import AUDIT_FORMAT, DRAW_ALGORITHM, Draw, draw, start_from_seed
from .verification import (
    check_audit,
    conventional_assignments_path,
    load_audit,
    verify,
    verify_files,
)

__all__ = [
    "ALGORITHM_VERSION", "AUDIT_FORMAT", "DRAW_ALGORITHM", "FLAT_NOTE", "JOINT_ALGORITHM", "JOINT_FORMAT",
    "MAX_N", "PLAN_ATTR", "PRN_HASH", "SCALE", "SCALE_BITS", "SCOPES", "TIERS", "assign_inspectors",
    "audit_json", "campaign_window", "Candidate", "candidate_grid", "check_audit",
    "conventional_assignments_path", "Draw", "draw", "fixed_point", "inclusion_probabilities", "joint_draw",
    "JointDraw", "load_audit", "load_policy", "load_roster", "plan_cells", "plan_on_cells", "PlanCells",
    "Policy", "policy_frontier", "prn_keys", "prn_uniform", "publication_summary", "resolve_budget_n",
    "results_table", "rotate", "sampling_settings", "save_audit", "start_from_seed", "supervision_plan",
    "systematic_select", "tie_results", "type_factor_matrix", "verify", "verify_files", "VerifyResult",
    "violation_rates",
]
