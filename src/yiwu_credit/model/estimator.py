"""The tiered risk model: calibrated probability of violation, credit score, tier, reasons.

:class:`TieredRiskModel` follows scikit-learn's estimator contract (``__init__`` stores
parameters; ``fit`` learns attributes ending in ``_``; prediction never learns). Two learners:

* ``"lightgbm"`` (default): gradient-boosted trees with monotone constraints from the feature
  catalogue's directions; deterministic (fixed seed, ``deterministic=True``, row-wise, fixed
  thread count).
* ``"scorecard"``: supervised binning (:mod:`.binning`: IV-optimal bins under a monotone,
  peak or valley trend, minimum bin size, special codes, missing and unseen bins) → weight of
  evidence → logistic regression with non-negative coefficients, read as a points table
  (:attr:`points_table_`, :meth:`binning_table`, :attr:`iv_`).

The probability is calibrated on out-of-fold margins (Platt by default, or isotonic); the credit
score is :class:`~.points.PointsScale` (``pdo`` points double the odds of good). The fit keeps
the calibrated out-of-fold probabilities of the training rows (``oof_proba_``, and ``oof_weight_``
if weighted): the reference distribution on which :mod:`yiwu_credit.tiering` fits tier cut-offs
for any policy at prediction time — :meth:`predict_tier` and :meth:`assess` use the ``policy``
parameter (or the one passed), so changing it needs no refit. :meth:`points` splits every score
into a base and one column per feature that add up to it exactly (Platt's slope folded in).

``predict_proba`` returns the (n, 2) array scikit-learn tools expect; the pandas-in, pandas-out
views are :meth:`assess` (probability, score, tier), :meth:`predict_tier`, :meth:`credit_score`
and :meth:`explain` (reason codes), all indexed like ``X``. ``score(X, y)`` is ROC AUC, the
scikit-learn meaning of "score" (higher is better), so model selection works unchanged.
"""

from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..errors import DataValidationError, Problem
from ..features.catalogue import Catalogue, load_catalogue
from ..policy import Policy
from ..tiering.cutoffs import TierCutoffs, tier_cutoffs
from .binning import MISSING_POLICIES, TRENDS, fit_binning
from .inputs import as_categorical, as_frame, column_major, is_categorical, row_major
from .learners import LGBLearner, ScorecardLearner
from .points import PointsScale
from .reasons import reason_texts, top_reasons

__all__ = ["BASE_COLUMN", "TargetError", "TieredRiskModel", "positive_class"]

_EPS = 1e-6

# ------------------------------------------------------------------------ the estimator

_MONOTONE_INT = {1: "ascending", -1: "descending", 0: "none"}
_LGB_SIGN = {"ascending": 1, "descending": -1, "none": 0}
#: Parameters added after the first bundles were pickled, with their defaults (old pickles load).
_ADDED_PARAMS = {"max_n_bins": 10, "min_bin_size": 0.05, "special_codes": None, "missing": "bin", "min_iv": None,
                 "pos_label": None}
BASE_COLUMN = "base"


class TargetError(DataValidationError, ValueError):
    """A target ``y`` the model cannot read without guessing (exit 3 in the CLI; a ``ValueError``
    for scikit-learn): missing values, one class only, or classes whose violation class is not
    named by ``pos_label``."""

    def __init__(self, reason: str, rows: tuple[int, ...] = (), n_rows: int = 0):
        super().__init__([Problem("target", "y", reason, rows, n_rows)])


def _shown(classes: np.ndarray) -> str:
    return "[" + ", ".join(repr(c.item() if isinstance(c, np.generic) else c) for c in classes[:10]) + \
        (", …" if len(classes) > 10 else "") + "]"


def positive_class(y: Any, pos_label: Any = None) -> tuple[np.ndarray, Any]:
    """The sorted classes of a binary target and its positive (violation) class.

    Without ``pos_label`` only targets whose violation class is unambiguous are read: 0/1
    (violation = 1), boolean (True) and -1/1 (1). Any other target (``"bad"``/``"good"``, 1/2...)
    is refused with the classes found, as are missing values, one class only and a ``pos_label``
    that is not among the classes: a target read backwards scores bad entities as good.
    """
    y_arr = np.asarray(y)
    missing = np.asarray(pd.isna(y_arr), dtype=bool).reshape(-1)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise TargetError("missing target value(s) (NaN/None): every training row needs a label",
                          tuple(int(r) + 1 for r in rows[:5]), len(rows))
    try:
        classes = np.unique(y_arr)
    except TypeError:
        raise TargetError(f"target mixes value types ({sorted({type(v).__name__ for v in y_arr.tolist()})}); "
                          "one type of class label is needed") from None
    if len(classes) < 2:
        raise TargetError(f"y has only one class {_shown(classes)}: a risk model needs both violators "
                          "and non-violators")
    if len(classes) > 2:
        raise TargetError(f"Only binary classification is supported: y has {len(classes)} classes "
                          f"{_shown(classes)}")
    if pos_label is not None:
        hit = [c for c in classes.tolist() if c == pos_label]
        if not hit:
            raise TargetError(f"pos_label={pos_label!r} is not a class of y; classes found: {_shown(classes)}")
        return classes, hit[0]
    values = classes.tolist()
    if y_arr.dtype.kind == "b" or all(isinstance(c, bool) for c in values):
        return classes, True
    if y_arr.dtype.kind in "iuf" and (set(values) == {0, 1} or set(values) == {-1, 1}):
        return classes, classes[-1].item()
    raise TargetError(f"classes {_shown(classes)} found in y: which one is the violation? Name it with "
                      "pos_label= (only 0/1, boolean and -1/1 targets are read without it, 1/True being "
                      "the violation)")


def _min_child_samples(n: int) -> int:
    """``min_child_samples="auto"``: 100 rows per leaf, fewer on small data (n/20, at least 2)."""
    return int(min(100, max(2, n // 20)))


def _trend(value: Any, column: str) -> str:
    """A monotone direction (-1/0/1 or a trend name) as a trend name; a clear error otherwise."""
    if isinstance(value, str) and value in TRENDS:
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_) and int(value) in _MONOTONE_INT:
        return _MONOTONE_INT[int(value)]
    raise ValueError(f"monotone direction of column {column!r} must be -1, 0, 1 or one of {list(TRENDS)}, "
                     f"got {value!r}")


class TieredRiskModel(ClassifierMixin, BaseEstimator):
    """Calibrated probability of violation, credit score, tier A–D and reason codes.

    Works on the catalogue's features and on any tabular credit data (numeric and categorical
    columns, own names).

    Parameters
    ----------
    learner : "lightgbm" | "scorecard"
    monotone : how risk may move with each numeric column. "catalogue" (default): the catalogue's
        directions for its own features, no constraint (with a warning naming them) for other
        columns; "auto": the same, but other columns get the ``"auto"`` trend; a dict
        ``{column: direction}`` (-1, 0, 1, "ascending", "descending", "auto", "peak", "valley",
        "none"; ascending = riskier as the value grows) overriding those defaults; None: no
        constraints. Categorical columns take no direction (the scorecard orders categories by
        event rate). LightGBM accepts only ascending/descending ("auto" is resolved from the data;
        peak/valley columns are left unconstrained, with a warning).
    catalogue : catalogue path or object: default directions and special codes of its features,
        reason texts.
    policy : policy name/path/object whose ``[tiers]`` :meth:`predict_tier` and :meth:`assess`
        apply by default (not used by ``fit``: cut-offs are fitted at prediction time on the
        reference distribution, see :mod:`yiwu_credit.tiering`).
    cv : folds (int) or a scikit-learn splitter for the out-of-fold calibration margins.
    calibration : "sigmoid" (Platt, default: smooth, keeps the ranking so share-based cut-offs
        are exact) | "isotonic" (a step function: ties can move many entities across a cut-off) | None — fitted on out-of-fold margins from ``cv`` folds.
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda, max_bin : LightGBM;
        ``min_child_samples="auto"`` is 100 rows, or n/20 on small data.
    max_n_bins, min_bin_size, special_codes, missing, min_iv, C : scorecard. Bins per feature
        at most ``max_n_bins``, each with at least ``min_bin_size`` of the total weight;
        ``special_codes`` ``{column: [values]}`` (added to the catalogue's) get their own bins;
        ``missing="bin"``: missing values get their own bin when it holds ``min_bin_size``, else
        WOE 0; ``"neutral"``: always WOE 0. Features with IV below ``min_iv`` are left out
        (None: keep all). ``C``: inverse L2 regularisation of the logistic regression.
    base_points, base_odds, pdo : the points scale (score ``base_points`` at odds good:bad =
        ``base_odds``; ``pdo`` points double the odds).
    n_reasons : reason codes per entity.
    random_state, n_jobs : determinism and threads.
    pos_label : the violation class of ``y``. Needed for any target but 0/1, boolean and -1/1
        (where it is 1/True): ``fit`` refuses ``"bad"``/``"good"`` or 1/2 without it, naming the
        classes found, rather than guess which one is the violation (:func:`positive_class`).
        ``classes_`` stays sorted, ``predict_proba``'s columns follow it and ``predict`` returns
        labels as given; :meth:`assess`, tiers and scores use the probability of ``pos_label``.
    """

    _parameter_constraints: dict = {
        "learner": [StrOptions({"lightgbm", "scorecard"})],
        "monotone": [StrOptions({"catalogue", "auto"}), dict, None],
        "catalogue": [str, os.PathLike, Catalogue, None],
        "policy": [str, os.PathLike, Policy, None],
        "calibration": [StrOptions({"sigmoid", "isotonic"}), None],
        "cv": ["cv_object"],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "min_child_samples": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "max_bin": [Interval(Integral, 2, None, closed="left")],
        "max_n_bins": [Interval(Integral, 1, None, closed="left"), None],
        "min_bin_size": [Interval(Real, 0, 0.5, closed="right")],
        "special_codes": [dict, None],
        "missing": [StrOptions(set(MISSING_POLICIES))],
        "min_iv": [Interval(Real, 0, None, closed="left"), None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "base_points": [Real],
        "base_odds": [Interval(Real, 0, None, closed="neither")],
        "pdo": [Interval(Real, 0, None, closed="neither")],
        "n_reasons": [Interval(Integral, 0, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "n_jobs": [Interval(Integral, 1, None, closed="left")],
        "pos_label": "no_validation",
    }

    def __init__(self, learner: str = "lightgbm", monotone: str | dict | None = "catalogue",
                 catalogue: str | Catalogue | None = None, policy: str | Policy | None = None,
                 calibration: str | None = "sigmoid", cv: int = 5, n_estimators: int = 80,
                 learning_rate: float = 0.1, num_leaves: int = 7, min_child_samples: int | str = "auto",
                 reg_lambda: float = 1.0, max_bin: int = 63, max_n_bins: int | None = 10,
                 min_bin_size: float = 0.05, special_codes: dict | None = None, missing: str = "bin",
                 min_iv: float | None = None, C: float = 1.0,
                 base_points: float = 600.0, base_odds: float = 50.0, pdo: float = 40.0,
                 n_reasons: int = 3, random_state: int = 0, n_jobs: int = 2, pos_label: Any = None):
        self.learner = learner
        self.monotone = monotone
        self.catalogue = catalogue
        self.policy = policy
        self.calibration = calibration
        self.cv = cv
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.max_n_bins = max_n_bins
        self.min_bin_size = min_bin_size
        self.special_codes = special_codes
        self.missing = missing
        self.min_iv = min_iv
        self.C = C
        self.base_points = base_points
        self.base_odds = base_odds
        self.pdo = pdo
        self.n_reasons = n_reasons
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.pos_label = pos_label

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop("n_bins", None)  # replaced by max_n_bins (quantile bins of the old scorecard)
        state.pop("tier_cutoffs_", None)  # cut-offs are fitted at prediction time (yiwu_credit.tiering)
        if "oof_proba_" in state:
            state.setdefault("oof_weight_", None)  # older fits did not keep their weights
        for k, v in _ADDED_PARAMS.items():
            state.setdefault(k, v)
        if "classes_" in state:  # fitted before pos_label: the target was 0/1
            state.setdefault("positive_class_", state["classes_"][-1])
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # -------------------------------------------------------------- fitting
    def _prepare(self, X: Any, fitting: bool, order: str = "F") -> np.ndarray:
        """The float64 matrix (n, p) the learners see: categorical columns as category codes
        (NaN for missing or unseen), in ``feature_names_in_`` order. Row-major ("C") to fit, and
        when ``order="C"`` (compiled trees read rows); else column-major ("F"), cheaper to build."""
        if order not in ("C", "F"):
            raise ValueError(f"order must be 'C' or 'F', got {order!r}")
        if fitting:
            Xf = as_frame(X)
            if Xf.shape[1] == 0:
                raise ValueError(f"0 feature(s) (shape={Xf.shape}) while a minimum of 1 is required.")
            if Xf.shape[0] == 0:
                raise ValueError(f"0 sample(s) (shape={Xf.shape}) while a minimum of 1 is required.")
            self.feature_names_in_ = np.array([str(c) for c in Xf.columns], dtype=object)
            self.n_features_in_ = Xf.shape[1]
            self.categories_ = {c: list(Xf[c].cat.categories) if isinstance(Xf[c].dtype, pd.CategoricalDtype)
                                else sorted(pd.unique(Xf[c].dropna().astype(str)))
                                for c in Xf.columns if is_categorical(Xf[c])}
        else:
            check_is_fitted(self, "learner_")
            Xf = as_frame(X, list(self.feature_names_in_))
            if Xf.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {Xf.shape[1]} features, but TieredRiskModel is expecting "
                                 f"{self.n_features_in_} features as input.")
            if isinstance(X, pd.DataFrame):
                missing = [c for c in self.feature_names_in_ if c not in Xf.columns]
                if missing:
                    raise ValueError(f"X is missing feature column(s) {missing}")
        cols = []
        for c in self.feature_names_in_:
            s = Xf[c]
            if c in self.categories_:
                codes = as_categorical(s, self.categories_[c]).codes
                cols.append(np.where(codes < 0, np.nan, codes))
            else:
                try:  # numeric columns are read in place (to_numeric would copy them)
                    num = s if pd.api.types.is_numeric_dtype(s.dtype) else pd.to_numeric(s, errors="raise")
                    col = num.to_numpy(dtype="float64", na_value=np.nan)
                except (ValueError, TypeError):
                    raise ValueError(f"feature {c!r} is not numeric and was not categorical at fit time") from None
                if np.isinf(col).any():
                    raise ValueError(f"Input X contains infinity in feature {c!r}.")
                cols.append(col)
        return row_major(cols, len(Xf)) if fitting or order == "C" else column_major(cols, len(Xf))

    def _resolve_monotone(self, M: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> None:
        """``monotone_`` (trend per column), ``monotone_constraints_`` (LightGBM signs) and
        ``special_codes_`` from the parameters and the catalogue; warnings name the columns
        left unconstrained."""
        names = list(self.feature_names_in_)
        cat = load_catalogue(self.catalogue)
        directions = cat.directions if self.monotone is not None else {}
        given: dict = {} if not isinstance(self.monotone, dict) else dict(self.monotone)
        unknown = sorted(map(str, set(given) - set(names)))
        if unknown:
            raise ValueError(f"monotone names column(s) not in X: {unknown}")
        trends: dict[str, str] = {}
        free, by_name = [], []
        for c in names:
            if c in given:
                t = _trend(given[c], c)
                if c in self.categories_ and t != "none":
                    raise ValueError(f"monotone: column {c!r} is categorical and takes no direction "
                                     f"(the scorecard orders its categories by event rate), got {given[c]!r}")
            elif self.monotone is None or c in self.categories_:
                t = "none"
            elif c in directions:
                t = _MONOTONE_INT[directions[c]]
                by_name.append(c)
            elif self.monotone == "auto":
                t = "auto"
            else:
                t = "none"
                free.append(c)
            trends[c] = t
        if free:
            extra = (f"; column(s) {by_name} take their direction from the catalogue by name"
                     if by_name else "")
            warnings.warn(f"no monotone direction for column(s) {free}: they are unconstrained{extra}. "
                          "Give directions with monotone={column: 'ascending'|'descending'|'auto'|'peak'|"
                          "'valley'|'none'} or monotone='auto'.", UserWarning, stacklevel=3)
        special = {f.name: [float(v) for v in f.spec.special_codes] for f in cat.features
                   if f.name in trends and f.spec.special_codes}
        for c, codes in (self.special_codes or {}).items():
            if c not in trends:
                raise ValueError(f"special_codes names column {c!r} not in X")
            if c in self.categories_:
                raise ValueError(f"special_codes: column {c!r} is categorical; special codes are numeric values")
            vals = list(codes) if isinstance(codes, list | tuple | set | np.ndarray) else [codes]
            if not all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
                raise ValueError(f"special_codes of column {c!r} must be finite numbers, got {codes!r}")
            special[c] = sorted({float(v) for v in vals})
        self.monotone_ = trends
        self.special_codes_ = special
        signs, odd = [], []
        ww = np.ones(len(y)) if w is None else w
        for j, c in enumerate(names):
            t = trends[c]
            if t in ("peak", "valley"):
                odd.append(c)
            if t == "auto" and self.learner == "lightgbm":  # the binning's trend; a shape: none
                t = fit_binning(M[:, j], y, ww, trend="auto", special_codes=special.get(c, ()),
                                min_bin_size=self.min_bin_size, max_n_bins=self.max_n_bins).trend
            signs.append(_LGB_SIGN.get(t, 0))
        if odd and self.learner == "lightgbm":
            warnings.warn(f"LightGBM takes only increasing or decreasing constraints: column(s) {odd} "
                          "(peak/valley) are unconstrained", UserWarning, stacklevel=3)
        self.monotone_constraints_ = signs

    def _make_learner(self):
        names = list(self.feature_names_in_)
        if self.learner == "lightgbm":
            mono = self.monotone_constraints_
            cat_idx = [names.index(c) for c in self.categories_]
            mcs = self.min_child_samples_
            params = {
                "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_child_samples": mcs, "min_child_weight": 1e-3, "reg_lambda": self.reg_lambda,
                "max_bin": self.max_bin, "seed": self.random_state, "deterministic": True, "force_row_wise": True,
                "num_threads": self.n_jobs, "verbose": -1, "min_data_per_group": min(20, mcs), "cat_smooth": 10.0,
            }
            return LGBLearner(params, self.n_estimators, mono, cat_idx, names)
        cats = {names.index(c): v for c, v in self.categories_.items()}
        special = {names.index(c): v for c, v in self.special_codes_.items()}
        return ScorecardLearner(names, [self.monotone_[c] for c in names], cats, special, self.missing,
                                 self.min_bin_size, self.max_n_bins, self.C, self.min_iv)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TieredRiskModel:
        """Fit learner and calibration, and keep the reference distribution (``oof_proba_``,
        ``oof_weight_``) for tiering. ``X``: (n, p) frame or array; ``y``: 0/1, boolean, -1/1, or
        two classes of which ``pos_label`` is the violation (:func:`positive_class`)."""
        self._validate_params()
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        Xf = self._prepare(X, fitting=True)
        y_arr = column_or_1d(y, warn=True)
        if len(y_arr) != len(Xf):
            raise ValueError(f"Found input variables with inconsistent numbers of samples: [{len(Xf)}, {len(y_arr)}]")
        if not np.asarray(pd.isna(y_arr), dtype=bool).any():
            kind = type_of_target(y_arr, raise_unknown=True)
            if kind in ("continuous", "continuous-multioutput"):
                raise TargetError(f"Unknown label type: {kind}. TieredRiskModel needs a binary target.")
        self.classes_, self.positive_class_ = positive_class(y_arr, self.pos_label)
        y01 = (y_arr == self.positive_class_).astype(float)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w is not None and (w.shape != (len(y01),) or (w < 0).any()):
            raise ValueError("sample_weight must be non-negative with one weight per row")
        if w is not None and not w.sum() > 0:
            raise ValueError("Sample weights must contain at least one non-zero number.")
        self.min_child_samples_ = (_min_child_samples(len(y01)) if self.min_child_samples == "auto"
                                   else int(self.min_child_samples))
        self._resolve_monotone(Xf, y01, w)
        self.learner_ = self._make_learner().fit(Xf, y01, w)
        # out-of-fold margins for calibration and cut-offs
        min_class = int(min(np.bincount(y01.astype(int))))
        if isinstance(self.cv, int | np.integer):
            k = min(int(self.cv), min_class)
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state) if k >= 2 else None
        else:
            splitter = check_cv(self.cv, y01, classifier=True)
        if self.calibration is not None and splitter is not None:
            oof = np.empty(len(y01))
            for tr, te in splitter.split(Xf, y01):
                m = self._make_learner().fit(Xf[tr], y01[tr], None if w is None else w[tr])
                oof[te] = m.margin(Xf[te])
            if self.calibration == "isotonic":
                self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=_EPS, y_max=1 - _EPS)
                self.calibrator_.fit(oof, y01, sample_weight=w)
            elif self.calibration == "sigmoid":
                self.calibrator_ = LogisticRegression(C=1e6).fit(oof[:, None], y01, sample_weight=w)
            else:
                raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or None, got {self.calibration!r}")
            self.oof_proba_ = self.proba_from_margin(oof)
        else:
            self.calibrator_ = None
            self.oof_proba_ = self.proba_from_margin(self.learner_.margin(Xf))
        self.oof_weight_ = None if w is None else w.copy()
        self.reference_scores_ = np.quantile(self.credit_points(self.oof_proba_), np.linspace(0, 1, 11))
        return self

    def proba_from_margin(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probability of violation for raw margins (clipped to [1e-6, 1 - 1e-6])."""
        cal = getattr(self, "calibrator_", None)
        if cal is None:
            p = 1.0 / (1.0 + np.exp(-margin))
        elif isinstance(cal, IsotonicRegression):
            p = cal.predict(margin)
        else:  # Platt: the logistic of a linear map of the margin (no per-call sklearn overhead)
            p = 1.0 / (1.0 + np.exp(-(cal.coef_[0, 0] * margin + cal.intercept_[0])))
        return np.clip(p, _EPS, 1 - _EPS)

    # -------------------------------------------------------------- prediction
    def _violation_first(self) -> bool:
        """Whether the violation class sorts first in ``classes_`` (e.g. "bad" before "good")."""
        return bool(self.classes_[0] == self.positive_class_)

    def _margin(self, X: Any) -> np.ndarray:
        Xf = self._prepare(X, fitting=False)  # checks the model is fitted
        return self.learner_.margin(Xf)

    def violation_proba(self, X: Any) -> np.ndarray:
        """Calibrated probability of violation (of ``pos_label``), shape (n,)."""
        return self.proba_from_margin(self._margin(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw margin (log-odds before calibration) of ``classes_[1]`` (scikit-learn's sign
        convention), shape (n,); the violation's margin unless the violation class sorts first."""
        m = self._margin(X)
        return -m if self._violation_first() else m

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2), columns in ``classes_`` order: P(no violation),
        P(violation) for 0/1 targets."""
        p = self.violation_proba(X)
        return np.column_stack([p, 1 - p] if self._violation_first() else [1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class, in ``y``'s own labels (scikit-learn's convention); for supervision
        use :meth:`predict_tier`."""
        p = self.violation_proba(X)
        hit = (p > 0.5).astype(int)
        return self.classes_[hit ^ 1 if self._violation_first() else hit]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """ROC AUC of the calibrated probability (scikit-learn's 'higher is better' score)."""
        return float(roc_auc_score(np.asarray(y) == self.positive_class_, self.violation_proba(X),
                                   sample_weight=sample_weight))

    @property
    def points_scale(self) -> PointsScale:
        """The credit-score scale of this model (``base_points``, ``base_odds``, ``pdo``)."""
        return PointsScale(float(self.base_points), float(self.base_odds), float(self.pdo))

    def credit_points(self, p: np.ndarray) -> np.ndarray:
        """Credit score of probabilities of violation (see :class:`~.points.PointsScale`)."""
        return self.points_scale.score(p)

    def tier_cutoffs(self, policy: Policy | str | None = None) -> TierCutoffs:
        """Tier cut-offs of ``policy`` (default: the ``policy`` parameter) on this model's
        reference distribution (``oof_proba_``, weighted by ``oof_weight_``)."""
        check_is_fitted(self, "oof_proba_")
        return tier_cutoffs(self.oof_proba_, self.oof_weight_, self.policy if policy is None else policy)

    def tiers_from_proba(self, p: np.ndarray, policy: Policy | str | None = None) -> np.ndarray:
        """Model tier letters (before overrides) of probabilities under ``policy`` (array of str)."""
        return self.tier_cutoffs(policy).tiers(p)

    def _index(self, X: Any) -> pd.Index:
        return X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(X))

    def credit_score(self, X: Any) -> pd.Series:
        """Credit score in points (higher = better credit), indexed like X."""
        return pd.Series(self.credit_points(self.violation_proba(X)), index=self._index(X), name="credit_score")

    def predict_tier(self, X: Any, policy: Policy | str | None = None) -> pd.Series:
        """Model tier A–D (before policy overrides) under ``policy`` (default: the ``policy``
        parameter), indexed like X."""
        p = self.violation_proba(X)
        return pd.Series(self.tiers_from_proba(p, policy), index=self._index(X), name="tier")

    def assess(self, X: Any, policy: Policy | str | None = None) -> pd.DataFrame:
        """probability, credit_score and model tier (under ``policy``, default the ``policy``
        parameter) in one pass, indexed like X."""
        p = self.violation_proba(X)
        return pd.DataFrame({"probability": p, "credit_score": self.credit_points(p),
                             "tier": self.tiers_from_proba(p, policy)}, index=self._index(X))

    def feature_matrix(self, X: Any, order: str = "C") -> np.ndarray:
        """The float64 matrix (n, p) the learner sees: ``feature_names_in_`` order, categorical
        columns as category codes (NaN for missing or unseen). For callers that predict and
        explain the same rows without preparing them twice. ``order``: "C" (row-major, as the
        compiled trees read it) or "F" (column-major: LightGBM reads it as fast, and it is
        cheaper to build); the same values either way."""
        return self._prepare(X, fitting=False, order=order)

    def contributions(self, X: Any, method: str = "path") -> pd.DataFrame:
        """Per-feature contributions to the margin, shape (n, p), indexed like X.

        LightGBM: ``method="path"`` (path attribution, about the cost of scoring; default) or
        ``"shap"`` (exact TreeSHAP, ~100× the cost). Scorecard: coefficient · WOE, i.e. risk
        above (> 0) or below the population's odds (``method`` is ignored). Each row adds up to
        the margin less a constant (the trees' base value, or the scorecard's intercept); in
        score points see :meth:`points`.
        """
        Xf = self._prepare(X, fitting=False)
        return pd.DataFrame(self.learner_.contrib(Xf, method), index=self._index(X),
                            columns=list(self.feature_names_in_))

    def explain(self, X: Any, k: int | None = None, method: str = "path", *,
                matrix: np.ndarray | None = None) -> pd.DataFrame:
        """Reason codes: the top ``k`` features pushing each entity's risk up
        (:func:`~.reasons.top_reasons`).

        Returns a frame indexed like X with, for i = 1..k: ``reason_i`` (feature name),
        ``reason_i_zh``/``reason_i_en`` (catalogue texts with the entity's value; the feature
        name and value for columns not in the catalogue) and ``reason_i_contrib`` (margin units).
        ``method`` as in :meth:`contributions` (path attribution by default: exact TreeSHAP is
        ~100× plain scoring). ``matrix``: :meth:`feature_matrix` of X, when the caller has it.
        ``score_entities`` explains tiers C and D and overrides by default.
        """
        index = self._index(X)
        if len(X) == 0:
            return pd.DataFrame(index=index)
        return pd.DataFrame(self.reason_arrays(X, k, method, matrix=matrix), index=index)

    def reason_arrays(self, X: Any, k: int | None = None, method: str = "path", *,
                      matrix: np.ndarray | None = None, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`explain`'s columns as numpy arrays (texts and names as object arrays), for
        callers that place them in a frame of their own. ``rows``: explain only these row
        positions of X (and of ``matrix``, its :meth:`feature_matrix`), without copying X."""
        k = self.n_reasons if k is None else k
        M = self._prepare(X, fitting=False) if matrix is None else matrix
        if rows is not None:
            M = M[rows] if matrix is not None else self._prepare(as_frame(X).iloc[rows], fitting=False)
        vals = self.learner_.contrib(M, method)
        order, positive = top_reasons(vals, k)
        cat = load_catalogue(self.catalogue)
        feats = {f.name: f for f in cat.features}
        names = np.array(self.feature_names_in_, dtype=object)
        Xf = as_frame(X, list(self.feature_names_in_))
        out: dict[str, Any] = {}
        at = np.arange(len(vals))

        def values(j: int, r: np.ndarray) -> Any:
            f = names[j]
            if f in feats and not feats[f].is_categorical:  # numbers: the matrix holds them as they are
                return M[r, j]
            return Xf[f].iloc[r if rows is None else rows[r]]  # categories (and other columns) as given

        def texts(j: int, uniques: Any) -> tuple[np.ndarray, np.ndarray]:
            f = names[j]
            if f in feats:
                return feats[f].reasons(uniques, "zh"), feats[f].reasons(uniques, "en")
            t = (f + "=" + pd.Series(uniques).astype(object).map(str)).to_numpy(dtype=object)
            return t, t

        zh, en = reason_texts(order, positive, values, texts)
        for i in range(order.shape[1]):
            j, pos = order[:, i], positive[:, i]
            out[f"reason_{i + 1}"] = np.where(pos, names[j], None)
            out[f"reason_{i + 1}_zh"] = zh[:, i]
            out[f"reason_{i + 1}_en"] = en[:, i]
            out[f"reason_{i + 1}_contrib"] = np.where(pos, vals[at, j], np.nan)
        return out

    def feature_importance(self) -> pd.Series:
        """Gain (LightGBM) or coef × WOE standard deviation (scorecard) per feature, descending."""
        check_is_fitted(self, "learner_")
        return self.learner_.importance(list(self.feature_names_in_))

    @property
    def feature_importances_(self) -> np.ndarray:
        """:meth:`feature_importance` as shares summing to 1 (all 0 if nothing was learned), in
        ``feature_names_in_`` order."""
        fi = self.feature_importance().reindex(list(self.feature_names_in_)).to_numpy(dtype=np.float64)
        total = fi.sum()
        return fi / total if total > 0 else np.zeros_like(fi)

    # -------------------------------------------------------------- points and binning
    def _linear_calibration(self) -> tuple[float, float]:
        """(slope, intercept) of the calibrated log-odds in the margin; (1, 0) for isotonic,
        whose non-linear part goes to a ``calibration`` column of :meth:`points`."""
        cal = getattr(self, "calibrator_", None)
        if cal is None or isinstance(cal, IsotonicRegression):
            return 1.0, 0.0
        return float(cal.coef_[0, 0]), float(cal.intercept_[0])

    def points(self, X: Any, method: str = "path") -> pd.DataFrame:
        """Score points per feature plus a ``base`` column; each row adds up to
        :meth:`credit_score` (to rounding, wherever the probability is not clipped at 1e-6).

        The calibration is folded in: points = −pdo/ln 2 · slope · contribution, where slope is
        Platt's. Scorecard: the points of the entity's bin in :attr:`points_table_`. LightGBM: the
        path attribution (``method="shap"``: TreeSHAP) in points. With isotonic calibration a
        ``calibration`` column holds the non-linear rest.
        """
        Xf = self._prepare(X, fitting=False)
        k, base0 = self.points_scale.linear(*self._linear_calibration())
        C = self.learner_.contrib(Xf, method)
        P = pd.DataFrame(k * C, index=self._index(X), columns=list(self.feature_names_in_))
        base = BASE_COLUMN
        while base in P.columns:
            base = "_" + base
        P.insert(0, base, base0 + k * self.learner_.base_margin(method))
        if isinstance(getattr(self, "calibrator_", None), IsotonicRegression):
            score = self.credit_points(self.proba_from_margin(self.learner_.margin(Xf)))
            P["calibration"] = score - P.sum(axis=1).to_numpy()
        return P

    def _scorecard(self) -> ScorecardLearner:
        check_is_fitted(self, "learner_")
        if not isinstance(self.learner_, ScorecardLearner):
            raise AttributeError("binning tables, IV and the points table exist for learner='scorecard'")
        return self.learner_

    @property
    def iv_(self) -> pd.Series:
        """Information value of each feature's binning (scorecard), in feature order."""
        return pd.Series(self._scorecard().iv, index=list(self.feature_names_in_), name="iv")

    @property
    def selected_features_(self) -> list[str]:
        """Features in the scorecard (IV at least ``min_iv``)."""
        return [c for c, s in zip(self.feature_names_in_, self._scorecard().selected, strict=True) if s]

    def binning_table(self, feature: str) -> pd.DataFrame:
        """One feature's bins: count, share, events, event rate, WOE, IV and points."""
        L = self._scorecard()
        names = list(self.feature_names_in_)
        if feature not in names:
            raise KeyError(f"no feature {feature!r}; features are {names}")
        j = names.index(feature)
        k, _ = self.points_scale.linear(*self._linear_calibration())
        t = L.binnings[j].table()
        t.insert(0, "feature", feature)
        t["points"] = k * L.coef[j] * t["woe"].to_numpy() + 0.0  # no -0.0
        return t

    @property
    def points_table_(self) -> pd.DataFrame:
        """The scorecard: feature, bin, count, event rate, WOE, IV and points per bin, and the
        ``base`` row. An entity's score is the base plus its bins' points (calibration folded
        in; needs a linear calibration, i.e. not isotonic)."""
        L = self._scorecard()
        if isinstance(getattr(self, "calibrator_", None), IsotonicRegression):
            raise AttributeError("points_table_ adds up only under a linear calibration "
                                 "(calibration='sigmoid' or None); use points(X) with isotonic")
        cols = ["feature", "bin", "count", "event_rate", "woe", "iv", "points"]
        parts = [self.binning_table(c)[cols] for c in self.feature_names_in_]
        k, base0 = self.points_scale.linear(*self._linear_calibration())
        base = pd.DataFrame([{"feature": BASE_COLUMN, "bin": "", "count": int(L.binnings[0].count.sum()),
                              "event_rate": np.nan, "woe": np.nan, "iv": np.nan,
                              "points": base0 + k * L.base_margin()}])
        return pd.concat([base, *parts], ignore_index=True)
