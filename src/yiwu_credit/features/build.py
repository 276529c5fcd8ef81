"""Point-in-time credit features from the declarative catalogue.

``build_features(dataset, as_of)`` returns one row per entity alive at ``as_of`` (entity_id
index, sorted), computed only from facts dated strictly before ``as_of``. Credit repair is
honoured through the policy's ``[repair]`` periods: a penalty decided on day d with publicity
period P counts for as_of in (d, d + P) and not from its ``repaired_on`` (if before as_of);
a list entry counts while entered_on < as_of <= removed_on.

The function is pure over one :class:`Dataset`, so it runs unchanged on a partition of entities
with their co-partitioned events (see ``yiwu_credit.distributed.engine``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.contract import TABLES
from ..data.dataset import Dataset
from ..data.dates import NAT, Day, day_array, to_day
from ..data.uscc import fixed_width, string_buffers
from ..policy import Policy, load_policy
from .catalogue import OTHER_TOWN, TAX_RANK, Catalogue, Feature, load_catalogue

__all__ = [
    "AR_STATUS", "BOOL_CODES", "EXCLUSION_REASONS", "FACT_TABLES", "NAT", "TABLE_DATE", "Day", "Events",
    "EntityStatus", "alive", "build_features", "code_array", "compute_columns", "day_array", "entity_arrays",
    "entity_status", "events_at", "events_from_arrays", "override_core",
    "override_facts", "pool", "pool_events", "pool_index", "sort_ids", "table_arrays", "to_day",
]

_EPOCH = np.datetime64("1970-01-01", "D")
#: event tables the override facts read (besides the catalogue's)
FACT_TABLES = ("inspections", "list_records", "penalties")


def sort_ids(ids: pd.Series) -> np.ndarray:
    """Stable order (int64 positions) that sorts entity ids bytewise (UTF-8), as Arrow's sort does.

    Ids of one length (a USCC is 18 characters) are sorted by a least-significant-byte radix
    sort over the byte positions that vary (a city's ids share their leading bytes): ~3× Arrow's
    comparison sort, the same order. Other ids go to Arrow's sort.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(ids, type=pa.large_string())
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    n = len(arr)
    if n and not arr.null_count:
        off = string_buffers(arr)[0]
        width = int(off[1] - off[0])
        data = fixed_width(arr, width) if 0 < width <= 64 and np.all(np.diff(off) == width) else None
        if data is not None:
            order = np.arange(n, dtype=np.int64)
            for col in np.ascontiguousarray(data.T)[::-1]:  # last byte first; each pass stable
                if col.min() != col.max():
                    order = order[np.argsort(col[order], kind="stable")]
            return order
    return pc.sort_indices(arr).to_numpy().astype(np.int64)


class EntityStatus:
    """Codes of :func:`entity_status`."""

    ALIVE = 0
    NOT_ESTABLISHED = 1  # established on or after as_of
    CLOSED = 2  # revoked or cancelled before as_of
    NO_DATE = 3  # no establishment date


#: why an entity is outside the supervision pool, by :class:`EntityStatus` code
EXCLUSION_REASONS = {
    EntityStatus.NOT_ESTABLISHED: "not established before as_of",
    EntityStatus.CLOSED: "revoked/cancelled before as_of (out of the supervision pool)",
    EntityStatus.NO_DATE: "not alive at as_of",
}


def entity_status(established: np.ndarray, closed: np.ndarray, as_of_day: int) -> np.ndarray:
    """Who is alive at as_of — the one rule. ``established``/``closed``: day numbers (``NAT``
    for missing). Alive: established before as_of and not closed before it. Returns
    :class:`EntityStatus` codes (int8, shape (n,))."""
    est = np.asarray(established, dtype=np.int64)
    clo = np.asarray(closed, dtype=np.int64)
    ok = (est != NAT) & (est < as_of_day) & ((clo == NAT) | (clo >= as_of_day))
    return np.where(ok, EntityStatus.ALIVE,
                    np.where((est != NAT) & (est >= as_of_day), EntityStatus.NOT_ESTABLISHED,
                             np.where((clo != NAT) & (clo < as_of_day), EntityStatus.CLOSED,
                                      EntityStatus.NO_DATE))).astype(np.int8)


def alive(entities: pd.DataFrame, as_of_day: int) -> np.ndarray:
    """Entities alive at as_of (bool, shape (n,)); see :func:`entity_status`."""
    status = entity_status(day_array(entities["established_on"]), day_array(entities["closed_on"]), as_of_day)
    return status == EntityStatus.ALIVE


def pool(dataset: Dataset, as_of_day: int) -> tuple[np.ndarray, np.ndarray]:
    """The supervision pool at as_of: positions in ``entities`` of the alive entities sorted by
    entity_id (shape (n_alive,)), and the inverse map (shape (n_entities,), -1 = not in pool).
    Cached on the dataset, since features, overrides and scoring all need it."""
    def make() -> tuple[np.ndarray, np.ndarray]:
        ent = dataset.entities
        idx = np.flatnonzero(alive(ent, as_of_day))
        idx = idx[sort_ids(ent["entity_id"].iloc[idx])]
        remap = np.full(len(ent), -1, dtype=np.int64)
        remap[idx] = np.arange(len(idx))
        return idx, remap

    return dataset.derived(("pool", as_of_day), ("entities",), make)


@dataclass
class Events:
    """Rows of one event table usable at as_of: output row ``pos``, ``age`` in days (>= 1).

    Code columns are small ints indexing ``codes[column]`` (-1 = missing), so filters compare
    integers instead of strings.
    """

    pos: np.ndarray
    age: np.ndarray
    cols: dict[str, np.ndarray]
    codes: dict[str, tuple]


def code_array(s: pd.Series, codes: tuple) -> np.ndarray:
    """Index (int16) of each value of ``s`` in ``codes``; -1 for missing or unknown values."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        res = pc.index_in(pa.array(s, type=pa.string()), value_set=pa.array(list(codes), type=pa.string()))
        return res.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int16)
    except ImportError:  # pragma: no cover
        return pd.Categorical(s, categories=list(codes)).codes.astype(np.int16)


def _year_date(y: np.ndarray, month: int, day: int) -> np.ndarray:
    """Day number of (year + 1)-month-day for each year (float array; the publication or filing
    deadline). Computed once per distinct year (a table holds millions of rows of a few years)."""
    ok = ~np.isnan(y)
    out = np.full(len(y), NAT, dtype=np.int64)
    if ok.any():
        yi = y[ok].astype(np.int64)
        lo, hi = int(yi.min()), int(yi.max())
        if hi - lo > len(yi):  # a few scattered years (an unvalidated record): each row directly
            out[ok] = _deadline(yi + 1, month, day)
        else:
            out[ok] = _deadline(np.arange(lo + 1, hi + 2, dtype=np.int64), month, day)[yi - lo]
    return out


def _deadline(years: np.ndarray, month: int, day: int) -> np.ndarray:
    """Day number of month-day of each year (int64 array)."""
    months = (years - 1970) * 12 + (month - 1)
    d = months.astype("datetime64[M]").astype("datetime64[D]") + np.timedelta64(day - 1, "D")
    return (d - _EPOCH).astype(np.int64)


AR_STATUS = ("on_time", "late", "missing")
BOOL_CODES = (False, True)


def table_arrays(df: pd.DataFrame, name: str) -> dict[str, np.ndarray]:
    """A table as plain numpy columns: dates as int64 day numbers (missing = a tiny sentinel),
    code columns as int16 indexes into the contract's code list (-1 = missing), numbers and
    years as float64, booleans as int16 (missing = 0). ``entity_id`` is left out."""
    out: dict[str, np.ndarray] = {}
    for c in TABLES[name].columns:
        if c.kind == "date":
            out[c.name] = day_array(df[c.name])
        elif c.kind == "code":
            out[c.name] = code_array(df[c.name], c.codes)
        elif c.kind in ("float", "int", "year"):
            out[c.name] = df[c.name].to_numpy(dtype="float64", na_value=np.nan)
        elif c.kind == "bool":
            out[c.name] = df[c.name].fillna(False).to_numpy(dtype=bool).astype(np.int16)
    return out


def events_at(ds: Dataset, name: str, as_of_day: int, remap: np.ndarray, policy: Policy,
              catalogue: Catalogue) -> Events:
    """The rows of table ``name`` that are known and (where it applies) publicly shown at as_of."""
    codes = ds.entity_codes(name)
    pos = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return events_from_arrays(name, table_arrays(ds.table(name), name), pos, as_of_day, policy, catalogue)


def events_from_arrays(name: str, a: dict[str, np.ndarray], pos: np.ndarray, as_of_day: int, policy: Policy,
                       catalogue: Catalogue) -> Events:
    """The numpy core of :func:`events_at`: ``a`` from :func:`table_arrays`, ``pos`` the output row
    of each input row (-1 = not in the pool). Pure; runs on any partition or a single entity."""
    t = TABLES[name]
    lists: dict[str, tuple] = {}
    if name == "penalties":
        date = a["decided_on"]
        rep = policy.repair
        fine = a["fine_cny"]
        lists["procedure"] = t.column("procedure").codes
        general = a["procedure"] == lists["procedure"].index("general")
        period = np.where(~general, rep.simple_procedure_days,
                          np.where(fine <= 0, rep.warning_days,
                                   np.where(fine <= rep.low_fine_max_cny, rep.low_fine_days,
                                            rep.general_penalty_days)))
        repaired = a["repaired_on"]
        keep = (as_of_day - date < period) & ~((repaired != NAT) & (repaired < as_of_day))
        cols = {"procedure": a["procedure"], "fine_cny": fine}
    elif name == "list_records":
        date = a["entered_on"]
        removed = a["removed_on"]
        keep = (removed == NAT) | (removed >= as_of_day)
        lists["list"] = t.column("list").codes
        cols = {"list": a["list"]}
    elif name == "annual_reports":
        src = catalogue.sources["annual_reports"]["date_from_year"]
        date = _year_date(a["year"], src["month"], src["day"])
        filed = a["filed_on"]
        known = (filed != NAT) & (filed < as_of_day)
        status = np.where(known & (filed <= date), 0, np.where(known, 1, 2)).astype(np.int16)
        lists["status"] = AR_STATUS
        keep = np.ones(len(date), dtype=bool)
        cols = {"status": status, "year": a["year"]}
    elif name == "tax_ratings":
        src = catalogue.sources["tax_ratings"]["date_from_year"]
        date = _year_date(a["year"], src["month"], src["day"])
        keep = np.ones(len(date), dtype=bool)
        rank_of = np.array([TAX_RANK[c] for c in t.column("rating").codes] + [np.nan], dtype=float)
        r = a["rating"]
        cols = {"rating": rank_of[np.where(r < 0, len(rank_of) - 1, r)], "year": a["year"]}
    elif name == "inspections":
        date = a["inspected_on"]
        keep = np.ones(len(date), dtype=bool)
        lists["result"] = t.column("result").codes
        cols = {"result": a["result"]}
    elif name == "complaints":
        date = a["received_on"]
        keep = np.ones(len(date), dtype=bool)
        lists["substantiated"] = BOOL_CODES
        cols = {"substantiated": a["substantiated"]}
    else:  # pragma: no cover
        raise KeyError(name)
    keep &= (pos >= 0) & (date != NAT) & (date < as_of_day)
    return Events(pos[keep], (as_of_day - date[keep]).astype(np.int64), {k: v[keep] for k, v in cols.items()},
                  lists)


def _mask(ev: Events, filt: tuple) -> np.ndarray:
    m = np.ones(len(ev.pos), dtype=bool)
    for col, val in filt:
        m &= _lut(ev.codes[col], val if isinstance(val, tuple | list) else (val,))[ev.cols[col].astype(np.intp) + 1]
    return m


@functools.lru_cache(maxsize=256)
def _lut(codes: tuple, vals: tuple) -> np.ndarray:
    """Boolean lookup over code indexes shifted by one (slot 0 is code -1, missing)."""
    lut = np.zeros(len(codes) + 1, dtype=bool)
    lut[[codes.index(v) + 1 for v in vals]] = True
    lut.flags.writeable = False
    return lut


def _windowed_counts(pos: np.ndarray, age: np.ndarray, windows: tuple[int, ...], n: int,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Sums over nested windows, shape (n, len(windows)): each row goes to its smallest window
    once, then a cumulative sum over windows (one bincount instead of one per window). float64;
    counts are whole numbers, exact."""
    w = np.asarray(windows, dtype=np.int64)
    b = np.searchsorted(w, age, side="left")  # first window with w >= age
    inside = b < len(w)
    k = len(w)
    # window-major (k, n): each window's column is contiguous, and the running sum adds whole rows
    sums = np.bincount(b[inside] * n + pos[inside], weights=None if weights is None else weights[inside],
                       minlength=n * k).astype(np.float64, copy=False).reshape(k, n)
    for j in range(1, k):
        sums[j] += sums[j - 1]
    return sums.T


def _per_window(ev: Events, m: np.ndarray, windows: tuple[int, ...], n: int,
                weights: np.ndarray | None = None) -> np.ndarray:
    if windows:
        return _windowed_counts(ev.pos[m], ev.age[m], windows, n, None if weights is None else weights[m])
    return np.bincount(ev.pos[m], weights=None if weights is None else weights[m], minlength=n)[:, None].astype(float)


def _compute(f: Feature, ev: Events, n: int, cache: dict) -> np.ndarray:
    """Values of all windows of spec ``f.spec`` (shape (n, max(1, len(windows))))."""
    s = f.spec
    key = (s.table, s.filter)
    if key not in cache:
        cache[key] = _mask(ev, s.filter)
    m = cache[key]
    ws = s.windows
    agg = s.aggregation
    if agg == "count":
        return _per_window(ev, m, ws, n).astype(float)
    if agg == "flag":
        return (_per_window(ev, m, ws, n) > 0).astype(float)
    if agg == "sum":
        v = np.nan_to_num(ev.cols[s.column].astype(float))
        return _per_window(ev, m, ws, n, v)
    if agg == "decayed_count":
        v = np.power(0.5, ev.age / s.half_life)
        return _per_window(ev, m, ws, n, v)
    if agg == "share":
        num = _per_window(ev, m, ws, n)
        den = _per_window(ev, np.ones_like(m), ws, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    if agg == "growth":
        w = ws[0]
        both = _windowed_counts(ev.pos[m], ev.age[m], (w, 2 * w), n)
        out = 2 * both[:, :1] - both[:, 1:2]  # recent - previous = c_w - (c_2w - c_w)
        return out.astype(float)
    if agg in ("max", "days_since_last", "days_since_first"):
        cols = []
        for w in ws or (None,):
            mm = m if w is None else m & (ev.age <= w)
            if agg == "max":
                out = np.zeros(n)
                np.maximum.at(out, ev.pos[mm], np.nan_to_num(ev.cols[s.column][mm].astype(float)))
            elif agg == "days_since_last":
                out = np.full(n, float(w + 1))
                np.minimum.at(out, ev.pos[mm], ev.age[mm].astype(float))
            else:
                out = np.zeros(n)
                np.maximum.at(out, ev.pos[mm], ev.age[mm].astype(float))
            cols.append(out)
        return np.column_stack(cols)
    if agg == "streak":
        # rows are one per (entity, year); the streak is the number of matching years after the
        # entity's latest non-matching year
        year = ev.cols["year"]
        last_ok = np.full(n, -np.inf)
        np.maximum.at(last_ok, ev.pos[~m], year[~m])
        hit = m & (year > last_ok[ev.pos])
        return np.bincount(ev.pos[hit], minlength=n)[:, None].astype(float)
    if agg == "latest":
        year = ev.cols["year"]
        latest = np.full(n, -np.inf)
        np.maximum.at(latest, ev.pos[m], year[m])
        sel = m & (year == latest[ev.pos])
        out = np.full(n, np.nan)
        out[ev.pos[sel]] = ev.cols[s.column][sel]
        return out[:, None]
    raise AssertionError(agg)  # pragma: no cover


def _no_events(f: Feature, n: int) -> np.ndarray:
    """What :func:`_compute` gives when the table has no usable rows (fast path, same values;
    read-only, shared between calls)."""
    s = f.spec
    return _no_events_cached(s.aggregation, s.windows, n)


@functools.lru_cache(maxsize=512)
def _no_events_cached(aggregation: str, windows: tuple[int, ...], n: int) -> np.ndarray:
    ws = windows or (None,)
    if aggregation in ("share", "latest"):
        out = np.full((n, len(ws)), np.nan)
    elif aggregation == "days_since_last":
        out = np.tile(np.array([float(w + 1) for w in ws]), (n, 1))
    else:
        out = np.zeros((n, len(ws)))
    out.flags.writeable = False
    return out


def entity_arrays(ent: pd.DataFrame, catalogue: Catalogue) -> dict[str, np.ndarray]:
    """The entity attributes the catalogue needs, as numpy: ``established_on`` day numbers,
    numeric columns as float64, and each categorical attribute feature's category codes (int64,
    keyed by feature name; unknown towns → 其他, other unknowns → -1)."""
    out: dict[str, np.ndarray] = {}
    for f in catalogue.features:
        s = f.spec
        if s.table != "entities":
            continue
        col = ent[s.column]
        if s.transform == "age_days":
            out[s.column] = day_array(col)
        elif s.transform == "value":
            out[s.column] = col.to_numpy(dtype="float64", na_value=np.nan)
        else:
            vals = col.str.slice(0, 1) if s.transform == "section" else col
            out[f.name] = _category_codes(f, code_array(vals, f.categories).astype(np.int64))
    return out


def _category_codes(f: Feature, codes: np.ndarray) -> np.ndarray:
    if f.spec.column == "town":  # free text: any town outside the known list is 其他
        return np.where(codes < 0, f.categories.index(OTHER_TOWN), codes)
    return codes


def compute_columns(ent: dict[str, np.ndarray], events: dict[str, Events], n: int, as_of_day: int,
                    catalogue: Catalogue) -> dict[str, np.ndarray]:
    """Every catalogue feature for ``n`` pool rows from entity arrays and per-table Events.

    Pure numpy; categorical attributes come back as category codes. Shared by the batch path
    (:func:`build_features`) and the partitions of a distributed run.
    """
    columns: dict[str, np.ndarray] = {}
    cache: dict = {}
    done: set[str] = set()
    for f in catalogue.features:
        s = f.spec
        if s.table == "entities":
            if s.transform == "age_days":
                columns[f.name] = (as_of_day - ent[s.column]).astype(float)
            elif s.transform == "value":
                columns[f.name] = ent[s.column]
            else:
                columns[f.name] = ent[f.name]
            continue
        if s.name in done:
            continue
        ev = events[s.table]
        vals = _compute(f, ev, n, cache) if len(ev.pos) else _no_events(f, n)
        names = [f"{s.name}_{w}d" for w in s.windows] if s.windows else [s.name]
        for j, nm in enumerate(names):
            columns[nm] = vals[:, j]
        done.add(s.name)
    return columns


def pool_events(dataset: Dataset, as_of: str | pd.Timestamp | Day, policy: Policy | str | None = None,
                catalogue: Catalogue | str | None = None, tables: Sequence[str] | None = None) -> dict[str, Events]:
    """:func:`events_at` of every table the catalogue and the override facts read (or of
    ``tables``), built once and shared by :func:`build_features` and :func:`override_facts`."""
    cat = load_catalogue(catalogue)
    pol = load_policy(policy)
    day = Day.parse(as_of)
    _, remap = pool(dataset, day)
    if tables is None:
        tables = sorted({f.spec.table for f in cat.features if f.spec.table != "entities"} | set(FACT_TABLES))
    return {t: events_at(dataset, t, day, remap, pol, cat) for t in tables}


def build_features(dataset: Dataset, as_of: str | pd.Timestamp | Day, catalogue: Catalogue | str | None = None,
                   policy: Policy | str | None = None, *, events: Mapping[str, Events] | None = None) -> pd.DataFrame:
    """Credit features at ``as_of``: DataFrame (n_alive, n_features), index ``entity_id`` sorted.

    Numeric features are float64; basic categorical attributes are pandas ``category`` with the
    catalogue's fixed categories (unknown towns map to 其他). ``events``: the pool's Events from
    :func:`pool_events` with the same as_of, policy and catalogue (built here when not given).
    """
    cat = load_catalogue(catalogue)
    pol = load_policy(policy)
    as_of_day = Day.parse(as_of)
    idx, remap = pool(dataset, as_of_day)
    tables = sorted({f.spec.table for f in cat.features if f.spec.table != "entities"})
    events = {t: events[t] if events is not None and t in events else events_at(dataset, t, as_of_day, remap, pol, cat)
              for t in tables}
    # the entity attributes of every entity, once per dataset and catalogue; the pool's rows by position
    every = dataset.derived(("entity_arrays", cat.sha256), ("entities",), lambda: entity_arrays(dataset.entities, cat))
    cols = compute_columns({k: v[idx] for k, v in every.items()}, events, len(idx), as_of_day, cat)
    for f in cat.features:
        if f.is_categorical:
            cols[f.name] = pd.Categorical.from_codes(cols[f.name], categories=list(f.categories))
        elif not cols[f.name].flags.writeable:  # a shared no-events column: the frame gets its own
            cols[f.name] = cols[f.name].copy()
    # the columns as they are (copy=False): no consolidation copy of the whole matrix (~0.2 GB at 1M)
    return pd.DataFrame({name: cols[name] for name in cat.names}, index=pool_index(dataset, as_of_day), copy=False)


def pool_index(dataset: Dataset, as_of_day: int) -> pd.Index:
    """The pool's entity ids in :func:`pool` order (``str`` Index named entity_id), cached."""
    def make() -> pd.Index:
        idx, _ = pool(dataset, as_of_day)
        return pd.Index(dataset.entities["entity_id"].take(idx).astype("str"), name="entity_id")

    return dataset.derived(("pool_index", as_of_day), ("entities",), make)


def override_facts(dataset: Dataset, as_of: str | pd.Timestamp | Day, policy: Policy | str | None = None,
                   catalogue: Catalogue | str | None = None, *,
                   events: Mapping[str, Events] | None = None, index: pd.Index | None = None) -> pd.DataFrame:
    """Point-in-time facts behind the policy overrides, one row per entity alive at as_of.

    Columns (bool): ``serious_dishonest`` and ``abnormal_operation`` (currently listed),
    ``adverse_conduct`` (an inspection result in ``[overrides].adverse_conduct_results`` within
    ``adverse_conduct_days``), ``is_new`` (established within ``new_entity_days`` and no penalty,
    inspection, complaint or list record yet), ``new_with_record`` (established within
    ``new_entity_days`` with such a record); numbers: ``recent_penalties`` and
    ``recent_fines_cny`` (general-procedure penalties decided within ``heavy_penalties_days`` and
    still publicly shown, and their fines). Index entity_id, sorted like build_features.
    ``events``: Events from :func:`pool_events` with the same as_of, this policy's ``[repair]``
    and catalogue (built here when not given). ``index``: the pool's entity_id index when the
    caller has it (``build_features(...).index`` at the same as_of), to skip rebuilding it.
    """
    pol = load_policy(policy)
    cat = load_catalogue(catalogue)
    a = Day.parse(as_of)
    ent = dataset.entities
    idx, remap = pool(dataset, a)
    n = len(idx)
    ev = dict(events or {})
    for t in FACT_TABLES:
        if t not in ev:
            ev[t] = events_at(dataset, t, a, remap, pol, cat)
    lr, ins, pen = ev["list_records"], ev["inspections"], ev["penalties"]
    history = np.zeros(n, dtype=bool)
    for name in ("penalties", "inspections", "complaints", "list_records"):
        df = dataset.table(name)
        codes = dataset.entity_codes(name)
        d = day_array(df[TABLE_DATE[name]])
        m = (codes >= 0) & (d != NAT) & (d < a)
        p = remap[np.maximum(codes[m], 0)]
        history[p[p >= 0]] = True
    age = a - day_array(ent["established_on"]).take(idx)
    facts = override_core(lr, ins, history, age, n, pol, pen)
    if index is None:
        index = pd.Index(ent["entity_id"].to_numpy(dtype=object)[idx].astype(str), name="entity_id")
    elif len(index) != n:
        raise ValueError(f"index has {len(index)} entries, the pool at {a} has {n}")
    return pd.DataFrame(facts, index=index)


def override_core(lr: Events, ins: Events, history: np.ndarray, age_days: np.ndarray, n: int,
                  policy: Policy, pen: Events | None = None) -> dict[str, np.ndarray]:
    """The override facts (arrays of shape (n,)) from list, inspection and penalty Events,
    whether each entity has any record before as_of, and its age in days. Without ``pen`` the
    penalty counts are 0."""
    o = policy.overrides

    def any_of(ev: Events, m: np.ndarray) -> np.ndarray:
        return np.bincount(ev.pos[m], minlength=n) > 0

    young = age_days <= o.new_entity_days
    count, fines = np.zeros(n, dtype=np.int64), np.zeros(n)
    if pen is not None and len(pen.pos) and o.heavy_penalty_rule:
        m = _mask(pen, (("procedure", "general"),)) & (pen.age <= o.heavy_penalties_days)
        count = np.bincount(pen.pos[m], minlength=n).astype(np.int64)
        fines = np.bincount(pen.pos[m], weights=np.nan_to_num(pen.cols["fine_cny"][m]), minlength=n)
    return {
        "serious_dishonest": any_of(lr, _mask(lr, (("list", "serious_dishonest"),))),
        "abnormal_operation": any_of(lr, _mask(lr, (("list", "abnormal_operation"),))),
        "adverse_conduct": any_of(ins, _mask(ins, (("result", o.adverse_conduct_results),))
                                  & (ins.age <= o.adverse_conduct_days)),
        "is_new": young & ~history,
        "new_with_record": young & history,
        "recent_penalties": count,
        "recent_fines_cny": fines,
    }


TABLE_DATE = {"penalties": "decided_on", "inspections": "inspected_on", "complaints": "received_on",
              "list_records": "entered_on"}
