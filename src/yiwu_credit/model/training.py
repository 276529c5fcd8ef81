"""Training a bundle: features → labels → fit → out-of-time evaluation.

``train(dataset, as_of)`` fits on entities alive at ``as_of`` with labels over the following
horizon, and evaluates out of time at ``test_as_of`` (default: ``as_of + horizon``), i.e. on
a later population and later outcomes that the fit never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ..data.dataset import Dataset
from ..data.dates import Day
from ..errors import DataValidationError, Problem, UsageError
from ..features.build import build_features
from ..features.catalogue import Catalogue, load_catalogue
from ..policy import Policy, load_policy
from .estimator import TieredRiskModel
from .evaluation import calibration_table, metrics, tier_table
from .labels import build_labels, horizon_days

__all__ = ["TrainResult", "check_test_window", "train"]


@dataclass
class TrainResult:
    """The fitted model and its evaluation (tables are DataFrames, metrics JSON-ready)."""

    model: TieredRiskModel
    metrics: dict[str, Any]
    training: dict[str, Any]
    test_tiers: pd.DataFrame = field(repr=False)
    test_calibration: pd.DataFrame = field(repr=False)
    test_frame: pd.DataFrame = field(repr=False)  # y and probability per test entity
    reference: pd.DataFrame = field(repr=False, default=None)  # the training feature matrix
    warnings: list[str] = field(default_factory=list)  # doubts about the run (a test window overlapping the labels)


def train(dataset: Dataset, as_of: str, horizon: str | int | None = None, test_as_of: str | None = None,
          catalogue: Catalogue | str | None = None, policy: Policy | str | None = None,
          label_source: str = "all", truth: pd.DataFrame | None = None, **params: Any) -> TrainResult:
    """Fit a :class:`TieredRiskModel` at ``as_of`` and evaluate it out of time.

    ``horizon``: label horizon (default the policy's ``[labels].horizon_days``).
    ``params`` go to the model (e.g. ``learner="scorecard"``). ``truth`` (synthetic worlds only)
    adds agreement with the ground-truth propensity to the metrics.
    ``test_as_of`` must be after ``as_of`` (:func:`check_test_window`); UsageError for a bad horizon,
    DataValidationError when the training or test labels have no violations (or only violations).
    """
    cat = load_catalogue(catalogue)
    pol = load_policy(policy)
    day = Day.parse(as_of)
    test_day = Day.parse(test_as_of, "test_as_of") if test_as_of else None
    days = horizon_days(horizon, pol)                       # usage errors before any work
    test_day = test_day if test_day is not None else Day(day + days)
    notes = check_test_window(day, test_day, days)
    lab = build_labels(dataset, day, days, pol, source=label_source)
    _both_classes(lab["y"], f"training labels at {day}", "cannot fit", days)
    lte = build_labels(dataset, test_day, days, pol)
    _both_classes(lte["y"], f"out-of-time test labels at {test_day}", "cannot evaluate out of time", days)
    X = build_features(dataset, day, cat, pol)
    Xtr = X.loc[lab.index]
    model = TieredRiskModel(catalogue=cat, policy=pol, **params)
    weight = lab["weight"].to_numpy() if label_source == "campaigns" else None
    model.fit(Xtr, lab["y"].to_numpy(), sample_weight=weight)
    Xte = build_features(dataset, test_day, cat, pol)
    a = model.assess(Xte)
    y = lte["y"].to_numpy()
    m = {"train_oof": metrics(lab["y"].to_numpy(), model.oof_proba_, model.tiers_from_proba(model.oof_proba_)),
         "test_out_of_time": metrics(y, a["probability"].to_numpy(), a["tier"].to_numpy())}
    if truth is not None:
        t = truth.reindex(Xte.index)["propensity"].to_numpy()
        ok = ~np.isnan(t)
        m["truth"] = {
            "label_auc_of_true_propensity": float(roc_auc_score(y[ok], t[ok])),
            "spearman_model_vs_truth": float(spearmanr(a["probability"].to_numpy()[ok], t[ok]).statistic),
            "auc_model_for_top20pct_truth": float(roc_auc_score(t[ok] >= np.quantile(t[ok], 0.8),
                                                                a["probability"].to_numpy()[ok])),
        }
    training = {"as_of": str(day), "horizon_days": days, "test_as_of": str(test_day),
                "label_source": label_source, "n_train": int(len(Xtr)), "n_test": int(len(Xte)),
                "data_fingerprint": dataset.fingerprint()}
    if notes:
        training["warnings"] = notes
    frame = pd.DataFrame({"y": y, "probability": a["probability"], "tier": a["tier"],
                          "credit_score": a["credit_score"]}, index=Xte.index)
    return TrainResult(model, m, training, tier_table(y, a["tier"].to_numpy(), a["probability"].to_numpy()),
                       calibration_table(y, a["probability"].to_numpy()), frame, Xtr, notes)


def check_test_window(as_of: Day | str, test_as_of: Day | str, horizon: int) -> list[str]:
    """The one rule for the out-of-time test date: UsageError (exit 2) unless ``test_as_of`` is
    after ``as_of``; a warning (returned) when it is before ``as_of + horizon``, where the test
    population's outcomes overlap the training labels' window (not fully out of time)."""
    a, t = Day.parse(as_of), Day.parse(test_as_of, "test_as_of")
    if t <= a:
        raise UsageError(f"test_as_of: {t} is not after as_of {a}: the out-of-time test must be at a later date "
                         "than the training one (default as_of + horizon)")
    if t < a + horizon:
        return [f"test_as_of {t} is within the training label window ({a} + {horizon} days = {Day(a + horizon)}): "
                "the test outcomes overlap the training labels, so the test is only partly out of time"]
    return []


def _both_classes(y: pd.Series, what: str, consequence: str, days: int) -> None:
    """DataValidationError (exit 3) unless the labels hold violations and non-violations."""
    k, n = int(y.sum()), len(y)
    if n == 0:
        reason = f"no entities alive: {consequence}"
    elif k == 0:
        reason = f"no violations in the {days}-day horizon among {n:,} entities: {consequence}"
    elif k == n:
        reason = f"every one of the {n:,} entities has a violation in the {days}-day horizon: {consequence}"
    else:
        return
    raise DataValidationError([Problem("labels", "y", f"{what}: {reason}")])
