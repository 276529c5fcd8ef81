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

from ..errors import ConfigError, UsageError

__all__ = [
    "ISO_NAIVE", "LOCAL_TZ", "MAX_DATE", "MIN_DATE", "NAT", "ZONED", "Day", "day_array",
    "format_pattern", "is_iso_date", "parse_as_of", "parse_dates", "parse_text_dates", "to_day",
]

LOCAL_TZ = "Asia/Shanghai"
MIN_DATE = pd.Timestamp("1900-01-01")
MAX_DATE = pd.Timestamp("2100-12-31")
#: an ISO timestamp with a time and a zone designator (Z, ±hh, ±hhmm, ±hh:mm)
ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$")
#: an ISO date, optionally with a time and no zone: ``YYYY-MM-DD``, ``YYYY-MM-DD hh:mm[:ss[.f]]`` (T or space)
ISO_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


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
        try:  # the column parser's ISO shapes only (not 20240301, 2024-W10-1 or 2024-03)
            if len(t) == 10 and ISO_NAIVE.match(t):
                return datetime.date.fromisoformat(t).toordinal() - _ORDINAL_1970
            if ZONED.match(t) or ISO_NAIVE.match(t):
                t = re.sub(r"\s+(?=[Zz+-]\d*:?\d*$)", "", t)
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


# ============================================================== whole dates in a column (vectorised)
#: strftime directives a profile date format may use → (regex of a fixed-width field, of a free one)
_DIRECTIVES = {"Y": (r"\d{4}", r"\d{4}"), "m": (r"\d{2}", r"\d{1,2}"), "d": (r"\d{2}", r"\d{1,2}"),
               "H": (r"\d{2}", r"\d{2}"), "M": (r"\d{2}", r"\d{2}"), "S": (r"\d{2}", r"\d{2}")}


def format_pattern(fmt: str, where: str = "date format") -> re.Pattern[str]:
    """The text shape a strftime date format accepts, as an anchored regex: whole dates only.

    ``%Y`` is exactly four digits; ``%m``/``%d`` two digits where they touch another field
    (``%Y%m%d`` is exactly 8 digits), one or two between separators (``%Y/%m/%d`` reads
    ``2024/3/5``); ``%H %M %S`` two digits; other characters literally. A format must hold
    ``%Y``, ``%m`` and ``%d`` once each; any other directive (``%y``, ``%b``, ``%j``…) is a
    :class:`~yiwu_credit.errors.ConfigError` naming ``where``.
    """
    parts: list[tuple[str, str]] = []  # ("d", letter) or ("l", literal text)
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i + 1:i + 2]
            if code == "%":
                parts.append(("l", "%"))
            elif code in _DIRECTIVES:
                parts.append(("d", code))
            else:
                raise ConfigError(f"{where} {fmt!r}: directive %{code} is not supported (a whole date is "
                                  f"%Y, %m and %d; a time may add %H, %M, %S)")
            i += 2
        else:
            parts.append(("l", fmt[i]))
            i += 1
    codes = [c for k, c in parts if k == "d"]
    for need in "Ymd":
        if codes.count(need) != 1:
            raise ConfigError(f"{where} {fmt!r}: a whole date needs %{need} exactly once")
    out = []
    for j, (kind, v) in enumerate(parts):
        if kind == "l":
            out.append(re.escape(v))
            continue
        touches = any(0 <= k < len(parts) and (parts[k][0] == "d" or parts[k][1].isdigit()) for k in (j - 1, j + 1))
        out.append(_DIRECTIVES[v][0 if touches else 1])
    return re.compile("^" + "".join(out) + "$")


def _shape(txt: pd.Series, pattern: re.Pattern[str]) -> np.ndarray:
    """Which values have the whole-date shape ``pattern`` (vectorised; missing → False)."""
    return txt.str.match(pattern.pattern).fillna(False).to_numpy(dtype=bool)  # patterns are anchored ^…$


def parse_text_dates(txt: pd.Series, formats: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The one date parser for text columns: datetime64[s] (not yet floored to the day), NaT where
    a value is missing or not a whole date, and which values carried a zone (converted to Asia/Shanghai).

    A value is read only if its text has a whole-date shape: ISO (:data:`ISO_NAIVE`, :data:`ZONED`)
    or one of ``formats`` (:func:`format_pattern`), tried in order; then it must be a real calendar
    date. ``2024``, ``2024-03``, ``2024111`` (under ``%Y%m%d``) are not dates. ``txt``: trimmed
    text; vectorised, call it once per distinct value.
    """
    n = len(txt)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    converted = np.zeros(n, dtype=bool)
    if not n:
        return out, converted
    present = txt.notna().to_numpy()
    long = (txt.str.len() > 10).fillna(False).to_numpy(dtype=bool)
    zoned = np.zeros(n, dtype=bool)
    if long.any():
        zoned[long] = _shape(txt[long], ZONED)
    iso = ~zoned & _shape(txt, ISO_NAIVE)
    if iso.any():
        out[iso] = pd.to_datetime(txt[iso], format="ISO8601", errors="coerce").to_numpy(dtype="datetime64[s]")
    if zoned.any():
        zt = txt[zoned].str.replace(r"^(\d{4}-\d{2}-\d{2}) ", r"\1T", regex=True)  # the date-time space
        z = pd.to_datetime(zt.str.replace(r"\s+", "", regex=True), format="ISO8601", errors="coerce", utc=True)
        out[zoned] = z.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
        converted = zoned & ~np.isnat(out)
    for fmt in formats:  # the profile's own formats, for what ISO did not read
        todo = present & np.isnat(out) & ~iso & ~zoned
        if not todo.any():
            break
        todo[todo] = _shape(txt[todo], format_pattern(fmt))
        if todo.any():
            out[todo] = pd.to_datetime(txt[todo], format=fmt, errors="coerce").to_numpy(dtype="datetime64[s]")
    return out, converted


def is_iso_date(value: object) -> bool:
    """Whether ``value`` is a string holding a real calendar date ``YYYY-MM-DD`` (1900–2100)."""
    if not isinstance(value, str):
        return False
    try:
        parse_as_of(value)
    except UsageError:
        return False
    return True


def _as_text(v: object) -> object:
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, datetime.date):  # dates, datetimes and Timestamps: their ISO text (NaT: missing)
        return None if pd.isna(v) else v.isoformat()
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def parse_dates(values: pd.Series, formats: tuple[str, ...] = ()) -> pd.Series:
    """A column of dates (text, date objects or datetime64) as calendar days: a datetime64[ns]
    Series at midnight, Asia/Shanghai days, NaT where missing or not a whole date (see
    :func:`parse_text_dates`). For small tables (results, assignments); the loader has its own
    per-distinct-value path over the same parser."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        v = values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        v = values.to_numpy(dtype="datetime64[s]")
    else:
        txt = values.astype(object).map(_as_text)
        v = parse_text_dates(txt.astype(pd.StringDtype("pyarrow", na_value=np.nan)), formats)[0]
    secs = v.view(np.int64)
    nat = np.isnat(v)
    days = np.where(nat, 0, secs // 86_400) * 86_400
    out = days.astype("datetime64[s]")
    out[nat] = np.datetime64("NaT")
    return pd.Series(out.astype("datetime64[ns]"), index=values.index, name=values.name)
