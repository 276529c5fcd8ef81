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

__all__ = ["LOCAL_TZ", "MAX_DATE", "MIN_DATE", "NAT", "ZONED", "Day", "day_array", "parse_as_of", "to_day"]

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


#: the day number of a missing date: smaller than any real day, so never "before as_of" by accident
NAT = np.iinfo(np.int64).min
_ORDINAL_1970 = datetime.date(1970, 1, 1).toordinal()


def to_day(x: str | datetime.date | pd.Timestamp | np.datetime64) -> int:
    """Days since 1970-01-01 of a date (ISO string, date, datetime, Timestamp or datetime64).

    The batch loader's rule for one value: a zoned timestamp counts on its Asia/Shanghai date.
    Anything else (``"tomorrow"``, ``"2026-13-01"``) is a :class:`~yiwu_credit.errors.UsageError`.
    """
    if isinstance(x, datetime.datetime) and x.tzinfo is not None:
        x = pd.Timestamp(x).tz_convert(LOCAL_TZ)
    if isinstance(x, datetime.date):  # also datetime and pandas Timestamp
        return x.toordinal() - _ORDINAL_1970
    if isinstance(x, str):
        t = x.strip()
        try:
            if len(t) == 10:
                return datetime.date.fromisoformat(t).toordinal() - _ORDINAL_1970
            if ZONED.match(t) or len(t) > 10:
                return to_day(datetime.datetime.fromisoformat(t.replace("z", "Z").replace(" ", "T", 1)))
        except ValueError:
            pass
        raise UsageError(f"{x!r} is not an ISO date (YYYY-MM-DD)")
    return to_day(pd.Timestamp(x))


class Day(int):
    """A calendar day as days since 1970-01-01: ``as_of`` parsed once, at the boundary.

    ``Day.parse`` is the one way in (:func:`~yiwu_credit.data.dates.parse_as_of`: an ISO date
    ``YYYY-MM-DD``, a date or a Timestamp); functions that take ``as_of`` accept a Day as is,
    without parsing it again.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, value: str | datetime.date | pd.Timestamp | np.datetime64 | Day, what: str = "as_of") -> Day:
        if isinstance(value, Day):
            return value
        if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
            raise UsageError(f"{what}: {value!r} is a bare number; give an ISO date YYYY-MM-DD or a Day")
        return cls(parse_as_of(value, what).date().toordinal() - _ORDINAL_1970)

    @property
    def date(self) -> datetime.date:
        return datetime.date.fromordinal(int(self) + _ORDINAL_1970)

    @property
    def timestamp(self) -> pd.Timestamp:
        return pd.Timestamp(self.date)

    def __repr__(self) -> str:
        return f"Day({self.date.isoformat()})"

    def __str__(self) -> str:
        return self.date.isoformat()


def day_array(s: pd.Series) -> np.ndarray:
    """int64 days since epoch; NaT → a very small sentinel (never 'before as_of' by accident)."""
    secs = s.to_numpy(dtype="datetime64[s]", na_value=np.datetime64("NaT")).view(np.int64)
    out = secs // 86_400  # whole days, floored as numpy casts datetime64[s] to [D]
    out[secs == np.iinfo(np.int64).min] = NAT  # NaT
    return out
