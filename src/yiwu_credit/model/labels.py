"""Training labels: was a violation detected in (as_of, as_of + horizon]?

Two designs:

* ``source="all"`` — every entity alive at as_of; y = 1 if any violation event of the policy's
  ``[labels]`` kinds (general-procedure penalty, adverse inspection result, abnormal-operation
  entry for cause other than a late report, serious-dishonest entry) is dated in the horizon.
  Weight 1. Detection depends on who was looked at, so this label is what regulators *found*.
* ``source="campaigns"`` — only entities inspected in a random campaign (``inclusion_prob``
  recorded) in the horizon; y = adverse result of that inspection; weight = 1 / inclusion_prob
  (Horvitz–Thompson). When the draw depended on risk (credit-graded campaigns), an unweighted fit
  over-represents high-risk entities; the inverse-probability weights undo that so the fitted
  model estimates the violation rate of the whole population. Use it for retraining on campaign
  outcomes (see docs/model-card.md).
"""

from __future__ import annotations

import datetime
import math
import warnings

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.dates import NAT, Day, day_array
from ..errors import UsageError
from ..features.build import alive
from ..policy import MAX_HORIZON_DAYS, Policy, load_policy

__all__ = ["MAX_HORIZON_DAYS", "build_labels", "horizon_days"]


#: the longest label horizon accepted (10 years): a longer one is a typo, not a design


def horizon_days(horizon: str | int | pd.Timedelta | None, policy: Policy | str | None = None) -> int:
    """The label horizon in whole days: ``horizon`` (days, or a pandas offset such as ``"365D"``),
    or the policy's ``[labels].horizon_days`` when ``None``. UsageError (exit 2) unless it is a
    whole number of days in [1, :data:`MAX_HORIZON_DAYS`] (this is the one place it is parsed)."""
    if horizon is None:
        return load_policy(policy).labels.horizon_days
    bad = UsageError(f"horizon: expected a whole number of days from 1 to {MAX_HORIZON_DAYS} (e.g. 365 or "
                     f"365D), got {horizon!r}")
    if isinstance(horizon, bool | np.bool_):
        raise bad
    if isinstance(horizon, int | np.integer):
        days = int(horizon)
    elif isinstance(horizon, float | np.floating):
        if not (math.isfinite(horizon) and float(horizon).is_integer()):
            raise bad
        days = int(horizon)
    elif isinstance(horizon, str | pd.Timedelta | datetime.timedelta):
        text = horizon.strip() if isinstance(horizon, str) else None
        if text is not None and text.isdigit():    # ASCII digits only (str.isdigit also takes "²")
            days = int(text) if text.isascii() else -1
        else:
            try:
                with warnings.catch_warnings():        # deprecated units ("12H"): refused or parsed, quietly
                    warnings.simplefilter("ignore")
                    td = pd.Timedelta(horizon)
            except (ValueError, TypeError, OverflowError):
                raise bad from None
            if td is pd.NaT or td % pd.Timedelta(days=1) != pd.Timedelta(0):
                raise bad
            days = int(td.days)
    else:
        raise bad
    if not 1 <= days <= MAX_HORIZON_DAYS:
        raise bad
    return days


def build_labels(dataset: Dataset, as_of: str | pd.Timestamp, horizon: str | int | None = None,
                 policy: Policy | str | None = None, source: str = "all") -> pd.DataFrame:
    """Labels for entities alive at ``as_of``: DataFrame indexed by entity_id (sorted) with
    ``y`` (0/1 int), ``weight`` (float) and, for campaigns, ``inclusion_prob``. ``horizon``
    (default: the policy's ``[labels].horizon_days``): see :func:`horizon_days`.
    """
    pol = load_policy(policy)
    cfg = pol.labels
    a = Day.parse(as_of)
    b = a + horizon_days(horizon, pol)
    ent = dataset.entities
    live = alive(ent, a)
    ids = ent["entity_id"].to_numpy(dtype=object)
    hit = np.zeros(len(ent), dtype=bool)

    def mark(name: str, date_col: str, mask: np.ndarray) -> None:
        d = day_array(dataset.table(name)[date_col])
        codes = dataset.entity_codes(name)
        m = mask & (codes >= 0) & (d != NAT) & (d > a) & (d <= b)
        hit[codes[m]] = True

    if source == "all":
        if cfg.general_penalty:
            p = dataset.penalties
            mark("penalties", "decided_on", (p["procedure"] == "general").to_numpy())
        ins = dataset.inspections
        mark("inspections", "inspected_on", ins["result"].isin(cfg.adverse_results).to_numpy())
        lr = dataset.list_records
        ab = (lr["list"] == "abnormal_operation") & ~lr["reason"].isin(cfg.abnormal_operation_exclude_reasons).fillna(False)
        sd = (lr["list"] == "serious_dishonest") & cfg.serious_dishonest
        mark("list_records", "entered_on", (ab | sd).to_numpy())
        out = pd.DataFrame({"y": hit[live].astype(int), "weight": 1.0},
                           index=pd.Index(ids[live].astype(str), name="entity_id"))
        return out.sort_index()
    if source == "campaigns":
        ins = dataset.inspections
        d = day_array(ins["inspected_on"])
        codes = dataset.entity_codes("inspections")
        pi = ins["inclusion_prob"].to_numpy(dtype="float64", na_value=np.nan)
        m = (codes >= 0) & ~np.isnan(pi) & (d > a) & (d <= b)
        m &= live[np.maximum(codes, 0)]
        sub = pd.DataFrame({
            "entity_id": ids[codes[m]].astype(str),
            "y": ins["result"].isin(cfg.adverse_results).to_numpy()[m].astype(int),
            "inclusion_prob": pi[m],
        })
        # an entity drawn in several campaigns: one row per entity, worst result, largest π
        g = sub.groupby("entity_id", sort=True).agg(y=("y", "max"), inclusion_prob=("inclusion_prob", "max"))
        g["weight"] = 1.0 / g["inclusion_prob"]
        return g[["y", "weight", "inclusion_prob"]]
    raise ValueError(f"source must be 'all' or 'campaigns', got {source!r}")
