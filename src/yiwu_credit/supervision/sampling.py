"""Compatibility names: plans, draws, audits and joint campaigns, from the modules that hold them.

``sampling`` was split into one module per concern (see the package docstring); this module
keeps ``from yiwu_credit.supervision.sampling import draw`` and friends working. New code
imports from the modules themselves.
"""

from __future__ import annotations

from .allocation import inclusion_probabilities, resolve_budget_n
from .audit import ALGORITHM_VERSION, VerifyResult, audit_json, campaign_window, save_audit
from .fixedpoint import MAX_N, SCALE, SCALE_BITS, fixed_point, systematic_select
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
    "ALGORITHM_VERSION", "AUDIT_FORMAT", "DRAW_ALGORITHM", "FLAT_NOTE", "JOINT_ALGORITHM", "JOINT_FORMAT", "MAX_N",
    "PLAN_ATTR", "PRN_HASH", "SCALE", "SCALE_BITS", "SCOPES", "Draw", "JointDraw", "PlanCells", "VerifyResult",
    "audit_json", "campaign_window", "check_audit", "conventional_assignments_path", "draw", "fixed_point",
    "inclusion_probabilities", "joint_draw", "load_audit", "plan_cells", "plan_on_cells", "prn_keys", "prn_uniform",
    "resolve_budget_n", "rotate", "sampling_settings", "save_audit", "start_from_seed", "supervision_plan",
    "systematic_select", "type_factor_matrix", "verify", "verify_files",
]
