"""Reason codes: which features push an entity's risk up the most.

The one rule, shared by batch scoring (:meth:`~.estimator.TieredRiskModel.explain`) and the
single-entity path (:class:`yiwu_credit.pipeline.scoring.Scorer`): the ``k`` largest
per-feature margin contributions, largest first, ties broken by feature order (a stable
descending sort), keeping only contributions above :data:`MIN_CONTRIB`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_CONTRIB", "top_reasons"]

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
