"""yiwu_credit: credit-based risk supervision of market entities (义乌信用分级分类监管).

Point-in-time credit features from public-credit records, a calibrated tiered risk model with
reason codes, and double-random (双随机) inspection planning, drawing and estimation.

The pipeline, stage by stage (each name is importable from here; see docs/architecture.md)::

    data         load_dataset, load_records → Dataset  (contract, validation, sources, synthetic world)
    features     build_features                    (the declarative catalogue)
    model        TieredRiskModel, train, Bundle    (learner, calibration, points, bundles)
    pipeline     score_entities, Scorer            (features → model → tiers → reasons, batch and online)
    supervision  supervision_plan → draw → verify  (policy, inspectors, estimates, frontier)
    monitoring   monitor

Names are imported on first use, so ``import yiwu_credit`` is cheap and checking a published
draw (``verify``) never loads the machine-learning stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name → module that defines it
_API: dict[str, str] = {
    # errors
    "YiwuCreditError": "errors", "DataValidationError": "errors", "ConfigError": "errors",
    "BundleError": "errors", "PlanError": "errors", "OutputError": "errors", "UsageError": "errors",
    "Problem": "errors", "VerificationFailed": "errors", "RetrainNeeded": "errors",
    # data
    "Dataset": "data.dataset", "load_dataset": "data.dataset", "load_records": "data.dataset",
    "validation_report": "data.dataset",
    "Profile": "data.sources.profile", "load_profile": "data.sources.profile",
    "synth": "data.synth",
    # features
    "Catalogue": "features.catalogue", "load_catalogue": "features.catalogue",
    "build_features": "features.build", "override_facts": "features.build",
    # model
    "TieredRiskModel": "model.estimator", "build_labels": "model.labels", "train": "model.training",
    "Bundle": "model.bundle", "load_bundle": "model.bundle", "save_bundle": "model.bundle",
    "metrics": "model.evaluation", "monitor": "model.monitoring",
    # scoring
    "score_entities": "pipeline.scoring", "ScoreResult": "pipeline.scoring", "Scorer": "pipeline.scoring",
    # supervision
    "Policy": "policy", "load_policy": "policy", "apply_overrides": "tiering.overrides",
    "supervision_plan": "supervision.plan", "draw": "supervision.systematic", "verify": "supervision.verification",
    "verify_files": "supervision.verification", "joint_draw": "supervision.joint",
    "save_audit": "supervision.audit", "load_audit": "supervision.verification",
    "load_roster": "supervision.inspectors", "assign_inspectors": "supervision.inspectors",
    "tie_results": "supervision.estimates", "violation_rates": "supervision.estimates",
    "publication_summary": "supervision.estimates",
    "policy_frontier": "supervision.frontier",
    # closed loop and report
    "simulate_loop": "pipeline.closed_loop", "write_report": "report.html",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    mod = _API.get(name)
    if mod is None:
        raise AttributeError(f"module 'yiwu_credit' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{mod}")
    value = module if name == mod.rsplit(".", 1)[-1] else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .data import synth
    from .data.dataset import Dataset, load_dataset, load_records, validation_report
    from .data.sources.profile import Profile, load_profile
    from .errors import (
        BundleError,
        ConfigError,
        DataValidationError,
        OutputError,
        PlanError,
        Problem,
        RetrainNeeded,
        UsageError,
        VerificationFailed,
        YiwuCreditError,
    )
    from .features.build import build_features, override_facts
    from .features.catalogue import Catalogue, load_catalogue
    from .model.bundle import Bundle, load_bundle, save_bundle
    from .model.estimator import TieredRiskModel
    from .model.evaluation import metrics
    from .model.labels import build_labels
    from .model.monitoring import monitor
    from .model.training import train
    from .pipeline.closed_loop import simulate_loop
    from .pipeline.scoring import Scorer, ScoreResult, score_entities
    from .policy import Policy, load_policy
    from .report.html import write_report
    from .supervision.audit import save_audit
    from .supervision.estimates import publication_summary, tie_results, violation_rates
    from .supervision.frontier import policy_frontier
    from .supervision.inspectors import assign_inspectors, load_roster
    from .supervision.joint import joint_draw
    from .supervision.plan import supervision_plan
    from .supervision.systematic import draw
    from .supervision.verification import load_audit, verify, verify_files
    from .tiering.overrides import apply_overrides
