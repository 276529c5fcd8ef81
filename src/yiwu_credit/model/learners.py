"""The two learners behind :class:`~yiwu_credit.model.estimator.TieredRiskModel`.

Both work on the float64 matrix the estimator prepares (categorical columns as category codes)
and give a raw margin (log-odds before calibration), per-feature contributions that add up to
it less a constant (:meth:`base_margin`), and importances.

* :class:`LGBLearner`: LightGBM with monotone constraints; path attribution or TreeSHAP.
* :class:`ScorecardLearner`: supervised bins → WOE → logistic regression with coefficients ≥ 0.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .binning import fit_binning
from .compiled import CompiledTrees

__all__ = ["SMALL_BATCH", "LGBLearner", "ScorecardLearner", "nonneg_logistic"]

SMALL_BATCH = 20_000  # below this many rows, one thread: starting threads costs more than it saves
_BLOCK = 8192  # rows per block of the path attribution
_LEAF_BLOCK = 32_768  # rows per call for leaf indices (keeps the float64 (rows × trees) output small)


class LGBLearner:
    """LightGBM on the numeric matrix (categorical columns hold category codes)."""

    def __init__(self, params: dict, n_estimators: int, monotone: list[int], cat_idx: list[int],
                 names: list[str]):
        self.params, self.n_estimators, self.monotone = params, n_estimators, monotone
        self.cat_idx, self.names = cat_idx, names

    def _threads(self, n: int) -> int:
        return 1 if n < SMALL_BATCH else self.params["num_threads"]

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> LGBLearner:
        params = dict(self.params, monotone_constraints=self.monotone, monotone_constraints_method="advanced")
        ds = lgb.Dataset(X, label=y, weight=w, categorical_feature=self.cat_idx, feature_name=self.names,
                         free_raw_data=True, params={"verbose": -1, "max_bin": params.get("max_bin", 255)})
        self.booster = lgb.train(params, ds, num_boost_round=self.n_estimators)
        return self

    def margin(self, X: np.ndarray, compiled: bool = False) -> np.ndarray:
        """Raw margin, shape (n,); ``compiled``: with the trees compiled to native code
        (:class:`~.compiled.CompiledTrees`, extra ``fast``; the same values to ~1e-15)."""
        if compiled:
            return self.compiled_trees().margin(X, n_jobs=self._threads(len(X)))
        return self.booster.predict(X, raw_score=True, num_threads=self._threads(len(X)))

    def compiled_trees(self) -> CompiledTrees:
        """The booster compiled (from the on-disk cache when it is there), kept for later calls."""
        cached = getattr(self, "_compiled", None)
        if cached is None:
            cached = self._compiled = CompiledTrees(self.booster)
        return cached

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
        out = np.empty((len(X), len(self.names)))
        self._feature_paths()  # built once, before any thread reads it

        def block(s: int) -> None:  # leaf indices a block at a time: no (n × trees) array
            leaves = self.booster.predict(X[s:s + _LEAF_BLOCK], pred_leaf=True, num_threads=1)
            out[s:s + _LEAF_BLOCK] = self.contrib_from_leaves(leaves[:, None] if leaves.ndim == 1 else leaves)

        starts = range(0, len(X), _LEAF_BLOCK)
        if nt > 1 and len(starts) > 1:  # blocks on the learner's threads (LightGBM and numpy release the GIL)
            with ThreadPoolExecutor(max_workers=nt) as pool:
                list(pool.map(block, starts))
        else:
            for s in starts:
                block(s)
        return out

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf index of each row in each tree, shape (n, n_trees) (int32, as LightGBM gives it)."""
        leaves = self.booster.predict(X, pred_leaf=True, num_threads=self._threads(len(X)))
        return leaves[:, None] if leaves.ndim == 1 else leaves

    def contrib_from_leaves(self, leaves: np.ndarray) -> np.ndarray:
        """Path attribution from leaf indices, shape (n, p): for each feature, the sum over the
        trees, in tree order, of the path table's entry for the leaf reached.

        A tree of a few leaves splits on a few features: per feature, only the trees that split
        on it are gathered (the others add exactly 0), a block of rows at a time, and summed
        tree by tree (``add.reduce`` over the trees' axis accumulates in order), so the sums are
        bit for bit those of the dense (rows × trees × features) gather at a fraction of its
        memory traffic, in few large numpy calls (which release the GIL: :meth:`contrib` runs
        blocks on threads).
        """
        leaves = np.asarray(leaves)
        n = leaves.shape[0]
        _, offsets = self._path_table()
        out = np.zeros((len(self.names), n))
        for s in range(0, n, _BLOCK):  # row blocks small enough to stay in cache
            at = leaves[s:s + _BLOCK].T.astype(np.intp) + offsets[:, None]  # (trees, rows): rows of the table
            for j, trees, column in self._feature_paths():
                out[j, s:s + _BLOCK] = np.add.reduce(column.take(at[trees]), axis=0)
        return out.T

    def _feature_paths(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per feature some tree splits on: its index, those trees (in order) and its column of
        the path table (float64 copies of the float32 entries)."""
        cached = getattr(self, "_paths_by_feature", None)
        if cached is None:
            table, offsets = self._path_table()
            ends = np.append(offsets[1:], len(table))
            used = np.array([(table[a:b] != 0).any(axis=0) for a, b in zip(offsets, ends, strict=True)])
            cached = self._paths_by_feature = [
                (j, np.flatnonzero(used[:, j]), np.ascontiguousarray(table[:, j], dtype=np.float64))
                for j in range(table.shape[1]) if used[:, j].any()]
        return cached

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

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_paths", None)  # derived; rebuilt on first use
        state.pop("_paths_by_feature", None)
        state.pop("_compiled", None)
        state.pop("_base", None)
        return state

    def base_margin(self, method: str = "path") -> float:
        """The margin less the contributions' sum: the trees' root values ("path"), or the
        expected margin ("shap")."""
        if method == "shap":
            x = np.full((1, len(self.names)), np.nan)
            return float(self.booster.predict(x, pred_contrib=True, num_threads=1)[0, -1])
        cached = getattr(self, "_base", None)
        if cached is None:
            roots = [t["tree_structure"] for t in self.booster.dump_model()["tree_info"]]
            cached = self._base = float(sum(r.get("internal_value", r.get("leaf_value", 0.0)) for r in roots))
        return cached

    def importance(self, names: list[str]) -> pd.Series:
        """Total gain per feature (0 for features never split on)."""
        gain = np.nan_to_num(np.asarray(self.booster.feature_importance("gain"), dtype=np.float64))
        return pd.Series(gain, index=names).sort_values(ascending=False, kind="stable")


def nonneg_logistic(Z: np.ndarray, y: np.ndarray, w: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression with coefficients >= 0 (intercept free).

    Minimises ``0.5·|β|² + C·Σ wᵢ·logloss(yᵢ, zᵢ)`` (scikit-learn's convention for ``C``) by
    L-BFGS-B. Non-negative coefficients on WOE keep every feature's points in the order of its
    bins' risk: a correlated feature cannot flip its trend.
    """
    n, p = Z.shape
    sw = float(w.sum())
    scale = 1.0 / (C * sw)  # objective divided by C·Σw for conditioning

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, b0 = theta[:p], theta[p]
        z = Z @ beta + b0
        loss = float((w * (np.logaddexp(0.0, z) - y * z)).sum()) / sw + 0.5 * scale * float(beta @ beta)
        r = w * (1.0 / (1.0 + np.exp(-z)) - y) / sw
        return loss, np.concatenate([Z.T @ r + scale * beta, [r.sum()]])

    ybar = float(np.clip((w * y).sum() / sw, 1e-6, 1 - 1e-6))
    theta0 = np.concatenate([np.zeros(p), [math.log(ybar / (1 - ybar))]])
    res = minimize(f, theta0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * p + [(None, None)],
                   options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-9})
    return res.x[:p], float(res.x[p])


class ScorecardLearner:
    """Supervised bins (:mod:`.binning`) → WOE → logistic regression with coefficients ≥ 0.

    The margin is additive: ``intercept + Σ_j coef_j · woe_j(bin)``. Features whose IV is
    below ``min_iv`` get coefficient 0 (not selected).
    """

    def __init__(self, names: list[str], trends: list[str], categories: dict[int, list],
                 special: dict[int, list[float]], missing: str, min_bin_size: float,
                 max_n_bins: int | None, C: float, min_iv: float | None):
        self.names, self.trends, self.categories, self.special = names, trends, categories, special
        self.missing, self.min_bin_size, self.max_n_bins = missing, min_bin_size, max_n_bins
        self.C, self.min_iv = C, min_iv

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> ScorecardLearner:
        w = np.ones(len(y)) if w is None else w
        self.binnings = [
            fit_binning(X[:, j], y, w, name=self.names[j], categories=self.categories.get(j),
                        trend=self.trends[j], special_codes=self.special.get(j, ()), missing=self.missing,
                        min_bin_size=self.min_bin_size, max_n_bins=self.max_n_bins)
            for j in range(X.shape[1])]
        self.iv = np.array([b.iv for b in self.binnings])
        self.selected = np.ones(len(self.iv), dtype=bool) if self.min_iv is None else self.iv >= self.min_iv
        self.coef = np.zeros(X.shape[1])
        Z = self._woe(X)[:, self.selected]
        if Z.shape[1]:
            self.coef[self.selected], self.intercept = nonneg_logistic(Z, y, w, self.C)
        else:
            ybar = float(np.clip((w * y).sum() / w.sum(), 1e-6, 1 - 1e-6))
            self.intercept = math.log(ybar / (1 - ybar))
        return self

    def _woe(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([b.transform(X[:, j]) for j, b in enumerate(self.binnings)])

    def margin(self, X: np.ndarray, compiled: bool = False) -> np.ndarray:
        """Raw margin, shape (n,) (``compiled`` is for trees; a scorecard has none)."""
        return self._woe(X) @ self.coef + self.intercept

    def contrib(self, X: np.ndarray, method: str = "path") -> np.ndarray:
        """coef · WOE per feature: risk above (> 0) or below the population's odds."""
        return self._woe(X) * self.coef

    def base_margin(self, method: str = "path") -> float:
        return float(self.intercept)

    def importance(self, names: list[str]) -> pd.Series:
        """coef × the weighted standard deviation of the feature's WOE in training."""
        sd = []
        for b in self.binnings:
            tw = b.weight.sum()
            mu = float(b.weight @ b.woe) / tw if tw > 0 else 0.0
            sd.append(math.sqrt(float(b.weight @ (b.woe - mu) ** 2) / tw) if tw > 0 else 0.0)
        return pd.Series(np.abs(self.coef) * np.array(sd), index=names).sort_values(ascending=False, kind="stable")
