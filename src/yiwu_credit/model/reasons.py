"""Reason codes: which features push an entity's risk up the most.

The one rule, shared by batch scoring (:meth:`~.estimator.TieredRiskModel.explain`) and the
single-entity path (:class:`yiwu_credit.pipeline.scoring.Scorer`): the ``k`` largest
per-feature margin contributions, largest first, ties broken by feature order (a stable
descending sort), keeping only contributions above :data:`MIN_CONTRIB`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["MIN_CONTRIB", "reason_texts", "top_reasons"]

#: contributions at or below this (margin units) are no reason
MIN_CONTRIB = 1e-9


def top_reasons(contrib: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For contributions (n, p): the feature index of each entity's reasons 1..min(k, p)
    (int array (n, min(k, p)), as ``np.argsort(-contrib, kind="stable")[:, :k]``) and whether
    each is a reason (contribution > :data:`MIN_CONTRIB`).

    Found by ``k`` passes of argmax (first maximum) rather than a full sort of every row.
    """
    vals = np.asarray(contrib, dtype=np.float64)
    n, p = vals.shape
    k = min(k, p)
    order = np.empty((n, k), dtype=np.intp)
    pos = np.empty((n, k), dtype=bool)
    rows = np.arange(n)
    work = vals.copy() if k > 1 else vals
    for i in range(k):
        j = np.argmax(work, axis=1)
        order[:, i] = j
        pos[:, i] = vals[rows, j] > MIN_CONTRIB
        if i + 1 < k:
            work[rows, j] = -np.inf
    return order, pos


def reason_texts(order: np.ndarray, positive: np.ndarray, values: Callable[[int, np.ndarray], object],
                 texts: Callable[[int, object], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Chinese and English reason texts (object arrays (n, k), None where no reason) for the
    reasons ``order``/``positive`` of :func:`top_reasons`.

    ``values(j, rows)``: feature ``j``'s values at the row positions ``rows`` (1-D);
    ``texts(j, uniques)``: the (zh, en) texts of feature ``j`` for distinct values. Each
    feature's texts are made once per distinct value, then gathered by code.
    """
    n, k = order.shape
    sel = np.flatnonzero(positive.ravel())
    feat = order.ravel()[sel]
    by = np.argsort(feat, kind="stable")
    feats, starts = np.unique(feat[by], return_index=True)
    ends = np.append(starts[1:], len(by))[:len(starts)]  # no reason at all: no run
    codes = np.zeros(n * k, dtype=np.intp)  # 0: no reason
    zh: list = [None]
    en: list = [None]
    for j, a, b in zip(feats, starts, ends, strict=True):
        at = sel[by[a:b]]
        ucodes, uniques = pd.factorize(values(int(j), at // k), use_na_sentinel=False)
        tz, te = texts(int(j), uniques)
        codes[at] = len(zh) + ucodes
        zh.extend(tz)
        en.extend(te)
    return (np.array(zh, dtype=object)[codes].reshape(n, k), np.array(en, dtype=object)[codes].reshape(n, k))
