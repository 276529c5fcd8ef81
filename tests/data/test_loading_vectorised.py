"""The vectorised loading checks flag exactly the rows the simple per-row rules flag, and every
fast path (runs of equal ids, the hashed USCC index, printable-ASCII ids, threads) gives the same
Dataset as the general path, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yiwu_credit import load_dataset
from yiwu_credit.data import checks as C
from yiwu_credit.data import dataset as dataset_module
from yiwu_credit.data import uscc
from yiwu_credit.data.contract import EVENT_TABLES, TABLES
from yiwu_credit.data.dates import MAX_DATE, MIN_DATE
from yiwu_credit.errors import DataValidationError

CODES = uscc.generate(6, np.random.default_rng(1)).tolist()
ID_TEXT = st.one_of(st.sampled_from(CODES), st.sampled_from([c.lower() for c in CODES]),
                    st.sampled_from([" " + CODES[0], CODES[1] + "\u3000", "９１" + CODES[2][2:], "", "  "]),
                    st.text(alphabet="0123456789ABIOZxyz ", max_size=20), st.none())


def _reason_per_row(x: object) -> int:
    if not isinstance(x, str):
        return 1
    if len(x) != 18:
        return 2
    if any(c not in uscc.CHARSET for c in x):
        return 3
    return 0 if uscc.is_valid(x) else 4


@settings(max_examples=200, deadline=None)
@given(st.lists(ID_TEXT | st.text(max_size=19), max_size=40))
def test_uscc_reason_codes_match_the_per_code_rule(values):
    got = uscc.reason_codes(values)
    assert got.tolist() == [_reason_per_row(v) for v in values]
    assert uscc.reason_codes(pa.array(values, pa.large_string())).tolist() == got.tolist()


def _runs(values: list[str | None], grouped: bool) -> tuple[pd.Series, C.Runs]:
    s, _, _, runs = C._ids(pd.Series(values, dtype="str"), grouped=grouped)
    return s, runs


def _first_position(ids: list[str | None], value: str | None) -> int:
    return next((i for i, x in enumerate(ids) if x == value or (x is None and value is None)), -1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ents=st.lists(ID_TEXT, min_size=1, max_size=12), events=st.lists(ID_TEXT, max_size=40),
       repeat=st.integers(1, 4))
@pytest.mark.slow
def test_entity_matching_equals_a_per_row_lookup(ents, events, repeat):
    events = [e for e in events for _ in range(repeat)]  # runs of equal ids, as tables come grouped
    ent_s, ent_runs = _runs(ents, grouped=False)
    norm_ents = [None if pd.isna(x) else x for x in ent_s]
    runs = {"entities": ent_runs}
    for name in EVENT_TABLES:
        runs[name] = _runs(events, grouped=True)[1]
    ev_s = _runs(events, grouped=False)[0]
    want = np.array([_first_position(norm_ents, None if pd.isna(x) else x) for x in ev_s], dtype=np.int64)
    general = C.lookup_dictionary(runs)
    want_dup = pd.Series(norm_ents, dtype=object).duplicated(keep=False).to_numpy() & ent_s.notna().to_numpy()
    assert np.array_equal(general.dup & ent_s.notna().to_numpy(), want_dup)  # as _check_entities uses it
    hashed = C.HashedIndex.build(ent_runs)
    for name in EVENT_TABLES:
        assert np.array_equal(general.pos[name], want)
        if hashed is not None:
            pos, key = hashed.match(runs[name])
            assert np.array_equal(pos, want)
            k = np.repeat(key.keys, key.lengths) if key.lengths is not None else key.keys
            # same key exactly when the same id (null equals null)
            same_id = ev_s.to_numpy(dtype=object)[:, None] == ev_s.to_numpy(dtype=object)[None, :]
            nulls = ev_s.isna().to_numpy()
            same_id |= nulls[:, None] & nulls[None, :]
            assert np.array_equal(k[:, None] == k[None, :], same_id)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(1949, 1953))), max_size=40))
def test_duplicate_entity_years_equal_pandas_duplicated(rows):
    ent = [r[0] for r in rows]
    years = pd.Series([r[1] for r in rows], dtype="Int64")
    want = pd.DataFrame({"e": ent, "y": years}).duplicated(["e", "y"], keep=False).to_numpy()
    keys = np.array(ent, dtype=np.int64)
    assert np.array_equal(C._duplicated(C._RunKeys(keys, None), years), want)
    if rows:  # as runs: consecutive equal keys collapsed
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        lengths = np.diff(starts, append=len(keys))
        assert np.array_equal(C._duplicated(C._RunKeys(keys[starts], lengths), years), want)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-4_000_000_000_000, 7_000_000_000_000)), max_size=30),
       st.sampled_from(["s", "ms", "us"]))
def test_dates_floor_to_the_day_like_pandas_normalize(millis, unit):
    factor = {"s": 1, "ms": 1, "us": 1000}[unit]
    vals = [None if m is None else (m // 1000 if unit == "s" else m * factor) for m in millis]
    raw = pd.Series(np.array([np.datetime64("NaT") if v is None else np.datetime64(v, unit) for v in vals],
                             dtype=f"datetime64[{unit}]"))
    col = TABLES["penalties"].column("decided_on")
    got, present = C._dates(TABLES["penalties"], col, raw, None)
    ref = raw.astype("datetime64[s]").dt.normalize()
    ref[(ref < MIN_DATE) | (ref > MAX_DATE)] = pd.NaT
    pd.testing.assert_series_equal(got, ref.astype("datetime64[s]"), check_names=False)
    assert np.array_equal(present, raw.notna().to_numpy())


def _dirty(world, path, shuffle: bool):
    """The small world as Parquet with lower-case, padded, unknown and missing ids, duplicate
    entities and (entity, year) pairs, out-of-range years and dates."""
    rng = np.random.default_rng(3)
    for name in TABLES:
        df = world.dataset.table(name).copy()
        if shuffle:
            df = df.sample(frac=1, random_state=2).reset_index(drop=True)
        ids = df["entity_id"].astype(object)
        k = rng.random(len(df)) < 0.05
        ids[k] = rng.choice(np.array([" x", None, "91330782MA2X000199", "ABCDEFGHIJKLMNOPQR"], dtype=object),
                            k.sum())
        k = rng.random(len(df)) < 0.05
        ids[k] = ids[k].str.lower()
        df["entity_id"] = pd.Series(ids, dtype="str")
        if "year" in df:
            y = df["year"].astype("Int64")
            y[rng.random(len(df)) < 0.03] = 1900
            df["year"] = y
        date = TABLES[name].date_column or "established_on"
        df.loc[rng.random(len(df)) < 0.02, date] = pd.Timestamp("1850-01-01")
        df = pd.concat([df, df.iloc[:3]], ignore_index=True)
        df.to_parquet(path / f"{name}.parquet", index=False)
    return path


def _snapshot(ds) -> dict:
    return {"tables": {n: ds.table(n) for n in TABLES}, "rejects": ds.rejects, "counts": ds.counts,
            "notes": ds.notes, "codes": {n: ds.entity_codes(n) for n in EVENT_TABLES}}


def _assert_same(a: dict, b: dict) -> None:
    for n in TABLES:
        pd.testing.assert_frame_equal(a["tables"][n], b["tables"][n], check_exact=True)
    pd.testing.assert_frame_equal(a["rejects"], b["rejects"], check_exact=True)
    assert a["counts"] == b["counts"] and a["notes"] == b["notes"]
    for n in EVENT_TABLES:
        assert np.array_equal(a["codes"][n], b["codes"][n])


@pytest.mark.slow
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("clean_entities", [False, True])
def test_fast_paths_equal_the_general_path(world, tmp_path, monkeypatch, shuffle, clean_entities):
    _dirty(world, tmp_path, shuffle)
    if clean_entities:  # the hashed USCC index applies only when every entity id is a distinct 18-byte id
        world.dataset.entities.to_parquet(tmp_path / "entities.parquet", index=False)
    for as_of in (None, "2024-06-30"):
        fast = _snapshot(load_dataset(tmp_path, as_of=as_of, strict=False))
        with monkeypatch.context() as m:
            m.setattr(C, "_run_starts", lambda arr: None)
            m.setattr(C, "_printable_ascii", lambda arr: None)
            m.setattr(C.HashedIndex, "build", classmethod(lambda cls, ent: None))
            m.setattr(dataset_module, "_workers", lambda: 1)
            general = _snapshot(load_dataset(tmp_path, as_of=as_of, strict=False))
        _assert_same(fast, general)
        assert len(fast["rejects"]) > 0


def test_strict_message_is_the_same_on_one_thread(world, tmp_path, monkeypatch):
    _dirty(world, tmp_path, shuffle=True)
    with pytest.raises(DataValidationError) as threaded:
        load_dataset(tmp_path)
    monkeypatch.setattr(dataset_module, "_workers", lambda: 1)
    with pytest.raises(DataValidationError) as single:
        load_dataset(tmp_path)
    assert str(threaded.value) == str(single.value)
