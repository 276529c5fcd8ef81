"""Dates at the boundary: the one parser for ``as_of`` and the contract's date rules.

Dates are calendar days in Yiwu's local time (Asia/Shanghai, UTC+8). A timestamp that carries a
time zone (``2019-08-08T00:00:00+08:00``, ``…Z``) is converted to the local date; a naive one is
taken as local. Dates before :data:`MIN_DATE` or after :data:`MAX_DATE` are implausible.
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd

from ..errors import UsageError

__all__ = ["LOCAL_TZ", "MAX_DATE", "MIN_DATE", "ZONED", "parse_as_of"]

LOCAL_TZ = "Asia/Shanghai"
MIN_DATE = pd.Timestamp("1900-01-01")
MAX_DATE = pd.Timestamp("2100-12-31")
#: an ISO timestamp with a time and a zone designator (Z, ±hh, ±hhmm, ±hh:mm)
ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$")


def parse_as_of(value: str | datetime.date | pd.Timestamp | None, what: str = "as_of") -> pd.Timestamp:
    """The scoring date as a midnight :class:`pandas.Timestamp`; :class:`UsageError` (exit 2)
    for anything but a real calendar date ``YYYY-MM-DD`` between 1900 and 2100."""
    if isinstance(value, datetime.date | np.datetime64):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    else:
        text = "" if value is None else str(value).strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise UsageError(f"{what}: {value!r} is not a date; give an ISO date YYYY-MM-DD, e.g. 2026-01-01")
        try:
            ts = pd.Timestamp(datetime.date.fromisoformat(text))
        except ValueError as e:
            raise UsageError(f"{what}: {value!r} is not a calendar date ({e}); give YYYY-MM-DD") from None
    ts = ts.normalize()
    if not MIN_DATE <= ts <= MAX_DATE:
        raise UsageError(f"{what}: {ts.date()} is outside {MIN_DATE.date()}..{MAX_DATE.date()}")
    return ts
