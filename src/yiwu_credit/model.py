"""The tiered risk model: calibrated probability of violation, credit score, tier, reasons.

:class:`TieredRiskModel` follows scikit-learn's estimator contract (``__init__`` stores
parameters; ``fit`` learns attributes ending in ``_``; prediction never learns). Two learners:

* ``"lightgbm"`` (default): gradient-boosted trees with monotone constraints from the feature
  catalogue's directions; deterministic (fixed seed, ``deterministic=True``, row-wise, fixed
  thread count).
* ``"scorecard"``: quantile binning → weight of evidence (monotone where the catalogue gives a
  direction) → logistic regression, with a points table (:attr:`points_table_`).

The probability is calibrated on out-of-fold margins (Platt by default, or isotonic); the credit
score is ``base_points + pdo / ln 2 · ln((1 - p) / p / base_odds)`` — higher is better, and
``pdo`` points double the odds of good. Tiers come from cut-offs on the calibrated probability
fitted to the policy's target shares (or its fixed thresholds).

``predict_proba`` returns the (n, 2) array scikit-learn tools expect; the pandas-in, pandas-out
views are :meth:`assess` (probability, score, tier), :meth:`predict_tier`, :meth:`credit_score`
and :meth:`explain` (reason codes), all indexed like ``X``. ``score(X, y)`` is ROC AUC, the
scikit-learn meaning of "score" (higher is better), so model selection works unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .catalogue import Catalogue, load_catalogue
from .policy import TIERS, Policy, load_policy

_EPS = 1e-6


# ------------------------------------------------------------------------ input handling

def _as_frame(X: Any, names: list[str] | None = None) -> pd.DataFrame:
    if sp.issparse(X):
        raise TypeError("sparse input is not supported: pass a dense DataFrame or array")
    if isinstance(X, pd.DataFrame):
        if all(isinstance(c, str) for c in X.columns):
            return X
        return X.rename(columns=str)
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data "
                         "(one row per entity, one column per feature).")
    cols = names if names is not None and len(names) == arr.shape[1] else [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


def _as_categorical(s: pd.Series, categories: list) -> pd.Categorical:
    """``s`` as a Categorical over exactly ``categories`` (unknown values become missing)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        if list(s.cat.categories) == categories:
            return s.array
        return s.cat.set_categories(categories).array
    vals = s.astype("str").where(s.notna(), None) if s.dtype != object else s.map(str, na_action="ignore")
    return pd.Categorical(vals, categories=categories)


def _is_cat(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


SMALL_BATCH = 20_000  # below this many rows, one thread: starting threads costs more than it saves


class _LGBLearner:
    """LightGBM on the numeric matrix (categorical columns hold category codes)."""

    def __init__(self, params: dict, n_estimators: int, monotone: list[int], cat_idx: list[int],
                 names: list[str]):
        self.params, self.n_estimators, self.monotone = params, n_estimators, monotone
        self.cat_idx, self.names = cat_idx, names

    def _threads(self, n: int) -> int:
        return 1 if n < SMALL_BATCH else self.params["num_threads"]

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> _LGBLearner:
        params = dict(self.params, monotone_constraints=self.monotone, monotone_constraints_method="advanced")
        ds = lgb.Dataset(X, label=y, weight=w, categorical_feature=self.cat_idx, feature_name=self.names,
                         free_raw_data=True, params={"verbose": -1, "max_bin": params.get("max_bin", 255)})
        self.booster = lgb.train(params, ds, num_boost_round=self.n_estimators)
        return self

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X, raw_score=True, num_threads=self._threads(len(X)))

    def contrib(self, X: np.ndarray, method: str = "path") -> np.ndarray:
        """Per-feature margin contributions, shape (n, p).

        ``"shap"``: exact TreeSHAP (``pred_contrib``), ~100× the cost of scoring.
        ``"path"``: path attribution (Saabas): along each tree's root-to-leaf path, the change
        in node value is credited to the split feature. It needs only the leaf indices (about
        the cost of scoring) and a precomputed (leaf × feature) table; like SHAP it adds up to
        the margin, and for shallow trees it ranks the top reasons much the same.
        """
        nt = self._threads(len(X))
        if method == "shap":
            return self.booster.predict(X, pred_contrib=True, num_threads=nt)[:, :-1]
        if method != "path":
            raise ValueError(f"method must be 'path' or 'shap', got {method!r}")
        return self.contrib_from_leaves(self.leaves(X))

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf index of each row in each tree, shape (n, n_trees)."""
        leaves = self.booster.predict(X, pred_leaf=True, num_threads=self._threads(len(X))).astype(np.int64)
        return leaves[:, None] if leaves.ndim == 1 else leaves

    def margin_from_leaves(self, leaves: np.ndarray) -> np.ndarray:
        """The raw margin from leaf indices (sum of leaf values), shape (n,)."""
        values, offsets = self._leaf_values()
        return values[offsets[None, :] + leaves].sum(axis=1)

    def contrib_from_leaves(self, leaves: np.ndarray) -> np.ndarray:
        """Path attribution from leaf indices, shape (n, p)."""
        table, offsets = self._path_table()
        out = np.empty((leaves.shape[0], table.shape[1]), dtype=np.float64)
        rows = offsets[None, :] + leaves
        for s in range(0, len(rows), 2048):  # gather (chunk, trees, features) and sum over trees
            out[s:s + 2048] = table[rows[s:s + 2048]].sum(axis=1, dtype=np.float64)
        return out

    def _path_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(total leaves × features) path contributions and each tree's first row."""
        cached = getattr(self, "_paths", None)
        if cached is not None:
            return cached
        dump = self.booster.dump_model()
        p = len(dump["feature_names"])
        rows, offsets = [], []
        for tree in dump["tree_info"]:
            n_leaves = tree["num_leaves"]
            offsets.append(sum(len(r) for r in rows))
            t = np.zeros((n_leaves, p))
            stack = [(tree["tree_structure"], np.zeros(p))]
            while stack:
                node, acc = stack.pop()
                if "leaf_index" in node:
                    t[node["leaf_index"]] = acc
                    continue
                v = node["internal_value"]
                f = node["split_feature"]
                for child in (node["left_child"], node["right_child"]):
                    cv = child["leaf_value"] if "leaf_index" in child else child["internal_value"]
                    a = acc.copy()
                    a[f] += cv - v
                    stack.append((child, a))
            rows.append(t)
        self._paths = (np.vstack(rows).astype(np.float32), np.array(offsets, dtype=np.int64))
        return self._paths

    def _leaf_values(self) -> tuple[np.ndarray, np.ndarray]:
        cached = getattr(self, "_values", None)
        if cached is None:
            dump = self.booster.dump_model()
            vals, offsets = [], []
            for tree in dump["tree_info"]:
                offsets.append(len(vals))
                leaf = np.zeros(tree["num_leaves"])
                stack = [tree["tree_structure"]]
                while stack:
                    node = stack.pop()
                    if "leaf_index" in node:
                        leaf[node["leaf_index"]] = node["leaf_value"]
                    elif "left_child" in node:
                        stack += [node["left_child"], node["right_child"]]
                    else:  # a single-leaf tree
                        leaf[0] = node.get("leaf_value", 0.0)
                vals.extend(leaf)
            cached = self._values = (np.array(vals), np.array(offsets, dtype=np.int64))
        return cached

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_paths", None)  # derived; rebuilt on first use
        state.pop("_values", None)
        return state

    def importance(self, names: list[str]) -> pd.Series:
        return pd.Series(self.booster.feature_importance("gain"), index=names).sort_values(ascending=False)


class _ScorecardLearner:
    """Quantile bins → WOE (monotone by direction) → logistic regression; additive margins."""

    def __init__(self, n_bins: int, monotone: list[int], cat_idx: list[int], n_levels: dict[int, int], C: float):
        self.n_bins, self.monotone, self.cat_idx, self.n_levels, self.C = n_bins, monotone, cat_idx, n_levels, C

    def _bin(self, X: np.ndarray) -> list[np.ndarray]:
        out = []
        for j in range(X.shape[1]):
            v = X[:, j]
            if j in self.n_levels:  # category codes; missing or unseen → the last bin
                out.append(np.where(np.isnan(v), self.n_levels[j], v).astype(np.int64))
            else:
                b = np.searchsorted(self.edges[j], v, side="right")
                out.append(np.where(np.isnan(v), len(self.edges[j]) + 1, b))
        return out

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> _ScorecardLearner:
        w = np.ones(len(y)) if w is None else w
        self.edges = []
        for j in range(X.shape[1]):
            v = X[:, j][~np.isnan(X[:, j])]
            if j in self.n_levels or not len(v):
                self.edges.append(np.array([]))
            else:
                self.edges.append(np.unique(np.quantile(v, np.linspace(0, 1, self.n_bins + 1)[1:-1])))
        bins = self._bin(X)
        tot_b, tot_g = float((w * y).sum()), float((w * (1 - y)).sum())
        self.woe = []
        for j, b in enumerate(bins):
            k = self.n_levels[j] + 1 if j in self.n_levels else len(self.edges[j]) + 2
            bad = np.bincount(b, weights=w * y, minlength=k) + 0.5
            good = np.bincount(b, weights=w * (1 - y), minlength=k) + 0.5
            woe = np.log((bad / (tot_b + 0.5 * k)) / (good / (tot_g + 0.5 * k)))
            d = self.monotone[j]
            if d != 0 and j not in self.n_levels:
                n_num = len(self.edges[j]) + 1  # numeric bins, the missing bin left free
                cnt = np.bincount(b, weights=w, minlength=k)[:n_num] + 1e-9
                iso = IsotonicRegression(increasing=d > 0)
                woe[:n_num] = iso.fit_transform(np.arange(n_num), woe[:n_num], sample_weight=cnt)
            self.woe.append(woe)
        Z = self._woe(bins)
        self.lr = LogisticRegression(C=self.C, max_iter=1000)
        self.lr.fit(Z, y, sample_weight=w)
        return self

    def _woe(self, bins: list[np.ndarray]) -> np.ndarray:
        return np.column_stack([self.woe[j][np.minimum(b, len(self.woe[j]) - 1)] for j, b in enumerate(bins)])

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self._woe(self._bin(X)) @ self.lr.coef_[0] + self.lr.intercept_[0]

    def contrib(self, X: np.ndarray, method: str = "path") -> np.ndarray:
        Z = self._woe(self._bin(X))
        lo = np.array([min(w.min() * c, w.max() * c) for w, c in zip(self.woe, self.lr.coef_[0], strict=True)])
        return Z * self.lr.coef_[0] - lo  # risk added relative to each feature's safest bin

    def importance(self, names: list[str]) -> pd.Series:
        spread = [abs(c) * (w.max() - w.min()) for w, c in zip(self.woe, self.lr.coef_[0], strict=True)]
        return pd.Series(spread, index=names).sort_values(ascending=False)


# ------------------------------------------------------------------------ the estimator

class TieredRiskModel(ClassifierMixin, BaseEstimator):
    """Calibrated probability of violation, credit score, tier A–D and reason codes.

    Parameters
    ----------
    learner : "lightgbm" | "scorecard"
    monotone : "catalogue" (directions of the default or given catalogue, matched by column
        name), a dict ``{column: -1|0|1}``, or None for no constraints.
    catalogue : catalogue path or object used for monotone directions and reason texts.
    policy : policy name/path/object for tier cut-offs and labels.
    cv : folds (int) or a scikit-learn splitter for the out-of-fold calibration margins.
    calibration : "sigmoid" (Platt, default: smooth, keeps the ranking so share-based cut-offs
        are exact) | "isotonic" (a step function: ties can move many entities across a cut-off) | None — fitted on out-of-fold margins from ``cv`` folds.
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda, max_bin : LightGBM.
    n_bins, C : scorecard binning and inverse regularisation.
    base_points, base_odds, pdo : the points scale (score ``base_points`` at odds good:bad =
        ``base_odds``; ``pdo`` points double the odds).
    n_reasons : reason codes per entity.
    random_state, n_jobs : determinism and threads.
    """

    def __init__(self, learner: str = "lightgbm", monotone: str | dict | None = "catalogue",
                 catalogue: str | Catalogue | None = None, policy: str | Policy | None = None,
                 calibration: str | None = "sigmoid", cv: int = 5, n_estimators: int = 80,
                 learning_rate: float = 0.1, num_leaves: int = 7, min_child_samples: int = 100,
                 reg_lambda: float = 1.0, max_bin: int = 63, n_bins: int = 8, C: float = 1.0,
                 base_points: float = 600.0, base_odds: float = 50.0, pdo: float = 40.0,
                 n_reasons: int = 3, random_state: int = 0, n_jobs: int = 2):
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
        self.n_bins = n_bins
        self.C = C
        self.base_points = base_points
        self.base_odds = base_odds
        self.pdo = pdo
        self.n_reasons = n_reasons
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # -------------------------------------------------------------- fitting
    def _prepare(self, X: Any, fitting: bool) -> np.ndarray:
        """The float64 matrix (n, p) the learners see: categorical columns as category codes
        (NaN for missing or unseen), in ``feature_names_in_`` order."""
        if fitting:
            Xf = _as_frame(X)
            if Xf.shape[1] == 0:
                raise ValueError(f"0 feature(s) (shape={Xf.shape}) while a minimum of 1 is required.")
            if Xf.shape[0] == 0:
                raise ValueError(f"0 sample(s) (shape={Xf.shape}) while a minimum of 1 is required.")
            self.feature_names_in_ = np.array([str(c) for c in Xf.columns], dtype=object)
            self.n_features_in_ = Xf.shape[1]
            self.categories_ = {c: list(Xf[c].cat.categories) if isinstance(Xf[c].dtype, pd.CategoricalDtype)
                                else sorted(pd.unique(Xf[c].dropna().astype(str)))
                                for c in Xf.columns if _is_cat(Xf[c])}
        else:
            check_is_fitted(self, "learner_")
            Xf = _as_frame(X, list(self.feature_names_in_))
            if Xf.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {Xf.shape[1]} features, but TieredRiskModel is expecting "
                                 f"{self.n_features_in_} features as input.")
            if isinstance(X, pd.DataFrame):
                missing = [c for c in self.feature_names_in_ if c not in Xf.columns]
                if missing:
                    raise ValueError(f"X is missing feature column(s) {missing}")
        M = np.empty((len(Xf), len(self.feature_names_in_)), dtype=np.float64)
        for j, c in enumerate(self.feature_names_in_):
            s = Xf[c]
            if c in self.categories_:
                codes = _as_categorical(s, self.categories_[c]).codes
                M[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                try:
                    M[:, j] = pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
                except (ValueError, TypeError):
                    raise ValueError(f"feature {c!r} is not numeric and was not categorical at fit time") from None
                if np.isinf(M[:, j]).any():
                    raise ValueError(f"Input X contains infinity in feature {c!r}.")
        return M

    def _directions(self) -> list[int]:
        names = list(self.feature_names_in_)
        if self.monotone is None:
            d = {}
        elif self.monotone == "catalogue":
            d = load_catalogue(self.catalogue).directions
        elif isinstance(self.monotone, dict):
            d = self.monotone
        else:
            raise ValueError(f"monotone must be 'catalogue', a dict or None, got {self.monotone!r}")
        return [0 if c in self.categories_ else int(d.get(c, 0)) for c in names]

    def _make_learner(self):
        mono = self.monotone_constraints_
        names = list(self.feature_names_in_)
        cat_idx = [names.index(c) for c in self.categories_]
        if self.learner == "lightgbm":
            params = {
                "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_child_samples": self.min_child_samples, "min_child_weight": 1e-3, "reg_lambda": self.reg_lambda,
                "max_bin": self.max_bin, "seed": self.random_state, "deterministic": True, "force_row_wise": True,
                "num_threads": self.n_jobs, "verbose": -1, "min_data_per_group": 20, "cat_smooth": 10.0,
            }
            return _LGBLearner(params, self.n_estimators, mono, cat_idx, names)
        if self.learner == "scorecard":
            levels = {names.index(c): len(v) for c, v in self.categories_.items()}
            return _ScorecardLearner(self.n_bins, mono, cat_idx, levels, self.C)
        raise ValueError(f"learner must be 'lightgbm' or 'scorecard', got {self.learner!r}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TieredRiskModel:
        """Fit learner, calibration and tier cut-offs. ``X``: (n, p) frame or array; ``y``: 0/1."""
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        Xf = self._prepare(X, fitting=True)
        y_arr = column_or_1d(y, warn=True)
        if len(y_arr) != len(Xf):
            raise ValueError(f"Found input variables with inconsistent numbers of samples: [{len(Xf)}, {len(y_arr)}]")
        kind = type_of_target(y_arr, raise_unknown=True)
        if kind in ("continuous", "continuous-multioutput"):
            raise ValueError(f"Unknown label type: {kind}. TieredRiskModel needs a binary target.")
        if kind not in ("binary", "unknown"):
            if len(np.unique(y_arr)) > 2:
                raise ValueError(f"Only binary classification is supported. The type of the target is {kind}.")
        self.classes_, y01 = np.unique(y_arr, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("y has only one class; a risk model needs both violators and non-violators.")
        y01 = y01.astype(float)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w is not None and (w.shape != (len(y01),) or (w < 0).any()):
            raise ValueError("sample_weight must be non-negative with one weight per row")
        self.monotone_constraints_ = self._directions()
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
            self.oof_proba_ = self._calibrate(oof)
        else:
            self.calibrator_ = None
            self.oof_proba_ = self._calibrate(self.learner_.margin(Xf))
        self.tier_cutoffs_ = self._fit_cutoffs(self.oof_proba_, w)
        self.reference_scores_ = np.quantile(self._points(self.oof_proba_), np.linspace(0, 1, 11))
        return self

    def _calibrate(self, margin: np.ndarray) -> np.ndarray:
        cal = getattr(self, "calibrator_", None)
        if cal is None:
            p = 1.0 / (1.0 + np.exp(-margin))
        elif isinstance(cal, IsotonicRegression):
            p = cal.predict(margin)
        else:  # Platt: the logistic of a linear map of the margin (no per-call sklearn overhead)
            p = 1.0 / (1.0 + np.exp(-(cal.coef_[0, 0] * margin + cal.intercept_[0])))
        return np.clip(p, _EPS, 1 - _EPS)

    def _fit_cutoffs(self, p: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        """Upper probability bounds of tiers A, B, C (D is everything above)."""
        pol = load_policy(self.policy)
        if pol.tiers["method"] == "thresholds":
            return np.array([pol.tiers["thresholds"][t] for t in TIERS[:-1]], dtype=float)
        shares = np.cumsum([pol.tiers["shares"][t] for t in TIERS[:-1]])
        order = np.argsort(p, kind="stable")
        ww = np.ones(len(p)) if w is None else w
        cw = np.cumsum(ww[order]) / ww.sum()
        cuts = [p[order][min(np.searchsorted(cw, s), len(p) - 1)] for s in shares]
        return np.maximum.accumulate(np.array(cuts, dtype=float))

    # -------------------------------------------------------------- prediction
    def decision_function(self, X: Any) -> np.ndarray:
        """Raw margin (log-odds before calibration), shape (n,)."""
        Xf = self._prepare(X, fitting=False)
        return self.learner_.margin(Xf)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): columns P(no violation), P(violation)."""
        p = self._calibrate(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class (scikit-learn's convention); for supervision use :meth:`predict_tier`."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p > 0.5).astype(int)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """ROC AUC of the calibrated probability (scikit-learn's 'higher is better' score)."""
        return float(roc_auc_score(np.asarray(y) == self.classes_[1], self.predict_proba(X)[:, 1],
                                   sample_weight=sample_weight))

    def _points(self, p: np.ndarray) -> np.ndarray:
        factor = self.pdo / math.log(2)
        return self.base_points + factor * (np.log((1 - p) / p) - math.log(self.base_odds))

    def tiers_from_proba(self, p: np.ndarray) -> np.ndarray:
        """Tier letters for probabilities (array of str)."""
        return np.array(TIERS)[np.searchsorted(self.tier_cutoffs_, p, side="left")]

    def _index(self, X: Any) -> pd.Index:
        return X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(X))

    def credit_score(self, X: Any) -> pd.Series:
        """Credit score in points (higher = better credit), indexed like X."""
        return pd.Series(self._points(self.predict_proba(X)[:, 1]), index=self._index(X), name="credit_score")

    def predict_tier(self, X: Any) -> pd.Series:
        """Model tier A–D (before policy overrides), indexed like X."""
        return pd.Series(self.tiers_from_proba(self.predict_proba(X)[:, 1]), index=self._index(X), name="tier")

    def assess(self, X: Any) -> pd.DataFrame:
        """probability, credit_score and model tier in one pass, indexed like X."""
        p = self.predict_proba(X)[:, 1]
        return pd.DataFrame({"probability": p, "credit_score": self._points(p), "tier": self.tiers_from_proba(p)},
                            index=self._index(X))

    def contributions(self, X: Any, method: str = "path") -> pd.DataFrame:
        """Per-feature contributions to the margin, shape (n, p), indexed like X.

        LightGBM: ``method="path"`` (path attribution, about the cost of scoring; default) or
        ``"shap"`` (exact TreeSHAP, ~100× the cost). Scorecard: WOE·coefficient above each
        feature's safest bin (``method`` is ignored). Each row adds up to the margin less a
        constant (the tree ensemble's base value, or the scorecard's safest profile).
        """
        Xf = self._prepare(X, fitting=False)
        return pd.DataFrame(self.learner_.contrib(Xf, method), index=self._index(X),
                            columns=list(self.feature_names_in_))

    def explain(self, X: Any, k: int | None = None, method: str = "path") -> pd.DataFrame:
        """Reason codes: the top ``k`` features pushing each entity's risk up.

        Returns a frame indexed like X with, for i = 1..k: ``reason_i`` (feature name),
        ``reason_i_zh``/``reason_i_en`` (catalogue texts with the entity's value; the feature
        name and value for columns not in the catalogue) and ``reason_i_contrib`` (margin units).
        ``method`` as in :meth:`contributions` (path attribution by default: exact TreeSHAP is
        ~100× plain scoring). ``score_entities`` explains tiers C and D and overrides by default.
        """
        k = self.n_reasons if k is None else k
        if len(X) == 0:
            return pd.DataFrame(index=self._index(X))
        C = self.contributions(X, method)
        vals = C.to_numpy()
        order = np.argsort(-vals, axis=1, kind="stable")[:, :k]
        cat = load_catalogue(self.catalogue)
        feats = {f.name: f for f in cat.features}
        names = np.array(C.columns)
        Xf = _as_frame(X, list(self.feature_names_in_))
        out: dict[str, Any] = {}
        rows = np.arange(len(C))
        for i in range(min(k, len(names))):
            j = order[:, i]
            contrib = vals[rows, j]
            pos = contrib > 1e-9
            zh = np.full(len(C), None, dtype=object)
            en = np.full(len(C), None, dtype=object)
            for fj in np.unique(j[pos]):
                r = np.flatnonzero(pos & (j == fj))
                f = names[fj]
                v = Xf[f].iloc[r]
                if f in feats:
                    zh[r] = feats[f].reasons(v, "zh")
                    en[r] = feats[f].reasons(v, "en")
                else:
                    zh[r] = en[r] = (f + "=" + v.astype(object).map(str)).to_numpy(dtype=object)
            out[f"reason_{i + 1}"] = np.where(pos, names[j], None)
            out[f"reason_{i + 1}_zh"] = zh
            out[f"reason_{i + 1}_en"] = en
            out[f"reason_{i + 1}_contrib"] = np.where(pos, contrib, np.nan)
        return pd.DataFrame(out, index=C.index)

    def feature_importance(self) -> pd.Series:
        """Gain (LightGBM) or points spread (scorecard) per feature, descending."""
        check_is_fitted(self, "learner_")
        return self.learner_.importance(list(self.feature_names_in_))

    @property
    def points_table_(self) -> pd.DataFrame:
        """Scorecard points per (feature, bin): points lost relative to the safest bin."""
        check_is_fitted(self, "learner_")
        if not isinstance(self.learner_, _ScorecardLearner):
            raise AttributeError("points_table_ exists for learner='scorecard'")
        L = self.learner_
        factor = self.pdo / math.log(2)
        rows = []
        for j, c in enumerate(self.feature_names_in_):
            coef = L.lr.coef_[0][j]
            risk = coef * L.woe[j]
            if c in self.categories_:
                labels = [*map(str, self.categories_[c]), "missing/other"]
            else:
                e = L.edges[j]
                lows = [-np.inf, *e]
                highs = [*e, np.inf]
                labels = [f"[{lo:g}, {hi:g})" for lo, hi in zip(lows, highs, strict=True)] + ["missing"]
            for b, lab in enumerate(labels[: len(risk)]):
                rows.append({"feature": c, "bin": lab, "woe": L.woe[j][b],
                             "points_lost": factor * (risk[b] - risk.min())})
        return pd.DataFrame(rows)
