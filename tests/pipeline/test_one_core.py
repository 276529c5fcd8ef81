"""One record validator and one scoring function for batch and online scoring (issue 22).

The online :class:`Scorer` validates records with :func:`load_records` — the loader's own rules —
and scores them with the function behind :func:`score_entities`; these tests hold it to the
batch answer field by field, in both modes, on clean, text-typed and dirty records.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.data import synth
from yiwu_credit.data.contract import EVENT_TABLES, TABLES
from yiwu_credit.data.dataset import load_dataset, load_records
from yiwu_credit.errors import DataValidationError
from yiwu_credit.pipeline.scoring import Scorer, score_entities

AS_OF = "2026-01-01"


def _text_records(directory: Path) -> dict[str, list[dict]]:
    """Every table of a CSV dataset as records of text, as a CSV row carries them."""
    return {n: list(csv.DictReader(open(directory / f"{n}.csv", encoding="utf-8"))) for n in TABLES}


def _typed_records(ds) -> dict[str, list[dict]]:
    """Every table as records taken from DataFrame rows (Timestamps, NaT, NaN, numpy scalars)."""
    return {n: ds.table(n).to_dict("records") for n in TABLES}


def _request(records: dict[str, list[dict]], eid: str) -> tuple[dict, dict[str, list[dict]]]:
    ent = next(r for r in records["entities"] if r["entity_id"] == eid)
    return ent, {n: [r for r in records[n] if r["entity_id"] == eid] for n in EVENT_TABLES}


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _assert_same(one: dict, row: pd.Series, eid: str) -> None:
    """``one`` (Scorer) equals ``row`` (batch) in every column, exactly."""
    assert one["entity_id"] == eid
    for c, b in row.items():
        a = one[c]
        assert (_missing(a) and _missing(b)) or a == b, (eid, c, a, b)
    k = sum(1 for c in row.index if c.startswith("reason_") and c.count("_") == 1)
    assert one["reasons"] == [(row[f"reason_{j}"], row[f"reason_{j}_zh"], row[f"reason_{j}_en"])
                              for j in range(1, k + 1) if not _missing(row[f"reason_{j}"])]


@pytest.fixture(scope="module")
def w23(tmp_path_factory):
    """The issue's world: ``synth --entities 300 --seed 23`` as CSV, its batch answer at AS_OF."""
    d, _ = synth.generate(300, seed=23).save(tmp_path_factory.mktemp("w23"), format="csv")
    ds = load_dataset(d)
    return d, ds, score_entities(ds, AS_OF, reasons="all")


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer()


# ------------------------------------------------------------------ text and typed records


@pytest.mark.parametrize("form", ["text", "typed"])
def test_records_as_text_or_typed_give_the_batch_answer(w23, scorer, form):
    """The first 60 entities of the issue's world: records read as strings (a CSV row, JSON from
    another system) or taken from DataFrame rows (NaT dates, numpy scalars) score exactly as
    batch — the issue's entity 913307823K2HPB175G included (p 0.185, tier D)."""
    d, ds, run = w23
    records = _text_records(d) if form == "text" else _typed_records(ds)
    ids = [i for i in ds.entities["entity_id"][:60] if i in run.scored.index]
    assert len(ids) > 40
    for eid in ids:
        _assert_same(scorer.score_one(*_request(records, eid), AS_OF), run.scored.loc[eid], eid)
    eid = "913307823K2HPB175G"
    one = scorer.score_one(*_request(records, eid), AS_OF)
    assert (round(one["probability"], 3), one["tier"]) == (0.185, "D")


def test_rows_of_dataframes_are_records_too(w23, scorer):
    """An entity as a DataFrame row (Series) and events as DataFrames, NaT dates included."""
    d, ds, run = w23
    for eid in [i for i in ds.entities["entity_id"][:10] if i in run.scored.index]:
        ent = ds.entities[ds.entities["entity_id"] == eid].iloc[0]
        events = {n: ds.table(n)[ds.table(n)["entity_id"] == eid] for n in EVENT_TABLES}
        _assert_same(scorer.score_one(ent, events, AS_OF), run.scored.loc[eid], eid)


def test_score_many_equals_score_one(w23, scorer):
    d, ds, run = w23
    records = _text_records(d)
    ids = [i for i in ds.entities["entity_id"][:25] if i in run.scored.index]
    many = scorer.score_many([_request(records, i) for i in ids], AS_OF)
    for eid, got in zip(ids, many, strict=True):
        _assert_same(got, run.scored.loc[eid], eid)


# ------------------------------------------------------------------ the reproductions

EID = "913307823K2HPB175G"
_PEN = {"entity_id": EID, "decided_on": "2024-03-01", "procedure": "general", "fine_cny": "100",
        "domain": "market", "repaired_on": ""}
_INS = {"entity_id": EID, "inspected_on": "2025-03-01", "result": "no_problem", "campaign_id": "",
        "inclusion_prob": "", "department": ""}

#: (name, change to the entity, extra event rows, reason refused with) — every one the loader refuses
ENTITY_CASES = [
    ("entity_type", {"entity_type": "spaceship"}, "entity_type: not one of"),
    ("industry", {"industry": "??"}, "industry: not a GB/T 4754-2017 code"),
    ("not a USCC", {"entity_id": "12345"}, "entity_id: invalid USCC"),
    ("bad check digit", {"entity_id": EID[:-1] + ("0" if EID[-1] != "0" else "1")}, "entity_id: invalid USCC"),
    ("no date", {"established_on": "someday"}, "established_on: not an ISO date"),
    ("status", {"status": "asleep"}, "status: not one of"),
]
EVENT_CASES = [
    ("procedure", {"penalties": [dict(_PEN, procedure="summary-ish")]}, "procedure: not one of"),
    ("negative fine", {"penalties": [dict(_PEN, fine_cny=-5)]}, "fine_cny: must be >= 0"),
    ("fine as text", {"penalties": [dict(_PEN, fine_cny="five")]}, "fine_cny: not a number"),
    ("result zh label", {"inspections": [dict(_INS, result="发现问题已责令改正")]}, "result: not one of"),
    ("result en label", {"inspections": [dict(_INS, result="Corrected")]}, "result: not one of"),
    ("inclusion_prob", {"inspections": [dict(_INS, inclusion_prob=1.5)]}, "inclusion_prob: must be <= 1"),
    ("year", {"annual_reports": [{"entity_id": EID, "year": 2016.5, "filed_on": None}]}, "year: not a whole year"),
    ("boolean", {"complaints": [{"entity_id": EID, "received_on": "2025-01-01", "substantiated": "maybe"}]},
     "substantiated: not a boolean"),
    ("future date", {"complaints": [{"entity_id": EID, "received_on": "2999-01-01", "substantiated": True}]},
     "received_on: implausible date"),
]


def _base(w23):
    d, _, _ = w23
    return _request(_text_records(d), EID)


@pytest.mark.parametrize("case", ENTITY_CASES + [(n, {}, r) for n, _, r in EVENT_CASES], ids=lambda c: c[0])
def test_strict_refuses_every_reproduction(w23, scorer, case):
    name, change, reason = case
    ent, events = _base(w23)
    extra = next((e for n, e, _ in EVENT_CASES if n == name), {})
    events = {t: rows + extra.get(t, []) for t, rows in events.items()}
    with pytest.raises(DataValidationError, match=reason.replace("(", r"\(")):
        scorer.score_one(dict(ent, **change), events, AS_OF)


@pytest.mark.parametrize("case", [
    ("unknown table", lambda e, ev: (e, dict(ev, spaceships=[{"entity_id": EID}])), "unknown table 'spaceships'"),
    ("unknown field", lambda e, ev: (dict(e, colour="red"), ev), r"unknown field\(s\) \['colour'\]"),
    ("not records", lambda e, ev: (e, dict(ev, penalties="fine")), "expected a DataFrame or a list of records"),
], ids=lambda c: c[0])
@pytest.mark.parametrize("strict", [True, False])
def test_unknown_tables_and_fields_are_refused_in_both_modes(w23, case, strict):
    ent, events = _base(w23)
    with pytest.raises(DataValidationError, match=case[2]):
        Scorer(strict=strict).score_one(*case[1](ent, events), AS_OF)


@pytest.mark.parametrize("case", ENTITY_CASES, ids=lambda c: c[0])
def test_lenient_refuses_an_entity_whose_own_row_is_bad(w23, case):
    """Batch quarantines such an entity (it is not scored); online says why."""
    name, change, reason = case
    ent, events = _base(w23)
    with pytest.raises(DataValidationError, match=reason.split(": ", 1)[1].replace("(", r"\(")):
        Scorer(strict=False).score_one(dict(ent, **change), events, AS_OF)
    batch = load_records({"entities": [dict(ent, **change)], **events}, strict=False)
    assert len(batch.entities) == 0 and (batch.rejects["table"] == "entities").sum() == 1


@pytest.mark.parametrize("case", EVENT_CASES, ids=lambda c: c[0])
def test_lenient_flags_a_bad_event_row_as_batch_does(w23, case, tmp_path):
    """The bad row is quarantined and counted in data_issues, the entity scored on the rest:
    the same answer as batch ``score`` on the same rows read from files."""
    name, extra, _ = case
    ent, events = _base(w23)
    events = {t: rows + extra.get(t, []) for t, rows in events.items()}
    one = Scorer(strict=False).score_one(ent, events, AS_OF)
    assert one["data_issues"] == 1
    for t, rows in {"entities": [ent], **events}.items():
        pd.DataFrame(rows, columns=TABLES[t].column_names).to_csv(tmp_path / f"{t}.csv", index=False)
    run = score_entities(load_dataset(tmp_path, strict=False), AS_OF, reasons="all")
    _assert_same(one, run.scored.loc[EID], EID)


def test_chinese_result_labels_map_only_through_the_profile(w23):
    """'发现问题已责令改正' is the zh profile's label of 'corrected': mapped with profile="zh",
    an unknown code without it (never read as a clean inspection)."""
    ent, events = _base(w23)
    zh = dict(events, inspections=events["inspections"] + [dict(_INS, result="发现问题已责令改正")])
    code = dict(events, inspections=events["inspections"] + [dict(_INS, result="corrected")])
    clean = dict(events, inspections=events["inspections"] + [dict(_INS, result="no_problem")])
    mapped = Scorer(profile="zh").score_one(ent, zh, AS_OF)
    coded = Scorer().score_one(ent, code, AS_OF)
    assert mapped["probability"] == coded["probability"] and mapped["tier"] == coded["tier"]
    assert mapped["probability"] != Scorer().score_one(ent, clean, AS_OF)["probability"]
    with pytest.raises(DataValidationError, match="result: not one of"):
        Scorer().score_one(ent, zh, AS_OF)


# ------------------------------------------------------------------ one validator, every form

#: (table, column, bad value as typed, the same as text) — every kind of contract rule (and two
#: valid values, typed and as text)
RULES = [
    ("entities", "entity_type", "spaceship", "spaceship"),
    ("entities", "industry", "??", "??"),
    ("entities", "town", "\u200b稠城街道", "\u200b稠城街道"),
    ("entities", "registered_capital", -1.0, "-1"),
    ("entities", "employees", float("inf"), "inf"),
    ("entities", "established_on", "2016-02-30", "2016-02-30"),
    ("entities", "entity_id", EID.lower(), EID.lower()),
    ("penalties", "fine_cny", -5, "-5"),
    ("penalties", "procedure", "Simple", "Simple"),
    ("penalties", "decided_on", pd.NaT, ""),
    ("inspections", "result", "Corrected", "Corrected"),
    ("inspections", "inclusion_prob", 0.0, "0"),
    ("complaints", "substantiated", "maybe", "maybe"),
    ("complaints", "substantiated", True, "True"),
    ("annual_reports", "year", 1800, "1800"),
    ("annual_reports", "year", 2016.5, "2016.5"),
    ("list_records", "reason", "whatever", "whatever"),
    ("tax_ratings", "rating", "Z", "Z"),
    ("tax_ratings", "year", np.int64(2016), "2016"),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r[0]}.{r[1]}={r[3]!r}")
def test_every_rule_gives_one_verdict_in_every_form(w23, rule, tmp_path):
    """The same rows read from CSV files (the loader), as text records and as typed records
    give the same rejects, notes and counts: one validator."""
    table, column, typed, text = rule
    d, ds, _ = w23
    ids = [i for i in ds.entities["entity_id"][:40]]
    text_recs = {n: [r for r in rs if r["entity_id"] in ids] for n, rs in _text_records(d).items()}
    typed_recs = {n: [r for r in rs if r["entity_id"] in ids] for n, rs in _typed_records(ds).items()}
    assert text_recs[table], table
    text_recs[table][0] = dict(text_recs[table][0], **{column: text})
    typed_recs[table][0] = dict(typed_recs[table][0], **{column: typed})
    for n, rows in text_recs.items():
        pd.DataFrame(rows, columns=TABLES[n].column_names).to_csv(tmp_path / f"{n}.csv", index=False)
    forms = {"files": load_dataset(tmp_path, strict=False),
             "text": load_records(text_recs, strict=False),
             "typed": load_records(typed_recs, strict=False),
             "frames": load_records({n: pd.DataFrame(r, columns=TABLES[n].column_names)
                                     for n, r in typed_recs.items()}, strict=False)}
    key = ["table", "row", "entity_id", "column", "reason"]
    want = forms["files"]
    for name, got in forms.items():
        assert got.rejects[key].to_dict("records") == want.rejects[key].to_dict("records"), name
        assert got.counts == want.counts, name
        assert got.notes == want.notes, name
        for n in TABLES:
            pd.testing.assert_frame_equal(got.table(n), want.table(n), obj=f"{name} {n}")
    if text not in ("True", "2016"):  # a valid value typed or as text: the same (valid) verdict
        assert len(want.rejects) + len(want.notes) > 0  # each bad instance is refused or noted


def test_records_refused_in_strict_mode_name_table_column_and_row(w23):
    d, _, _ = w23
    ent, events = _base(w23)
    with pytest.raises(DataValidationError) as e:
        load_records({"entities": [ent], "penalties": [dict(_PEN), dict(_PEN, fine_cny="-5")]})
    [p] = e.value.problems
    assert (p.table, p.column, p.rows) == ("penalties", "fine_cny", (2,))


# ------------------------------------------------------------------ batch = online on a dirty world

_BAD = {"date": ["2016-02-30", "someday", "1800-01-01"], "float": ["-5", "NaN?", "inf"],
        "year": ["2016.5", "1800"], "bool": ["maybe"], "code": ["spaceship", "Corrected", "发现问题已责令改正"],
        "str": ["", "??"], "id": []}


def _dirty_world(tmp: Path, n: int, seed: int, share: float) -> Path:
    """A synthetic world as CSV with ``share`` of the cells of non-id columns corrupted."""
    d, _ = synth.generate(n, seed=seed).save(tmp, format="csv")
    rng = np.random.default_rng(seed)
    for name, t in TABLES.items():
        df = pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False)
        for col in t.columns:
            bad = _BAD.get(col.kind, [])
            if not bad or not len(df):
                continue
            hit = rng.random(len(df)) < share
            df.loc[hit, col.name] = rng.choice(bad, hit.sum())
        df.to_csv(d / f"{name}.csv", index=False)
    return d


def _batch_vs_online(d: Path, limit: int | None = None) -> int:
    ds = load_dataset(d, strict=False)
    assert len(ds.rejects) > 0
    run = score_entities(ds, AS_OF, reasons="all")
    records = _text_records(d)
    lenient, strict = Scorer(strict=False), Scorer(strict=True)
    rej = ds.rejects
    by_eid = {n: {} for n in EVENT_TABLES}
    for n in EVENT_TABLES:
        for r in records[n]:
            by_eid[n].setdefault(r["entity_id"], []).append(r)
    n_dirty = 0
    for ent in records["entities"][:limit]:
        raw = ent["entity_id"]
        events = {n: by_eid[n].get(raw, []) for n in EVENT_TABLES}
        eid = raw.strip().upper()
        mine = rej[rej["entity_id"] == eid]
        if eid in run.scored.index:
            _assert_same(lenient.score_one(ent, events, AS_OF), run.scored.loc[eid], eid)
            if len(mine):
                n_dirty += 1
                with pytest.raises(DataValidationError) as e:
                    strict.score_one(ent, events, AS_OF)
                got = {(p.table, p.column or "") for p in e.value.problems}
                assert got == {(t, c) for t, cs in zip(mine["table"], mine["column"], strict=True)
                               for c in cs.split(";")}, eid
            else:
                _assert_same(strict.score_one(ent, events, AS_OF), run.scored.loc[eid], eid)
        elif eid in set(run.excluded["entity_id"]):
            with pytest.raises(ValueError, match="not in the supervision pool"):
                lenient.score_one(ent, events, AS_OF)
        else:  # the entity row itself was rejected
            with pytest.raises(DataValidationError):
                lenient.score_one(ent, events, AS_OF)
            with pytest.raises(DataValidationError):
                strict.score_one(ent, events, AS_OF)
    return n_dirty


def test_batch_equals_online_on_a_dirty_world(tmp_path):
    assert _batch_vs_online(_dirty_world(tmp_path, 200, 3, 0.02)) > 5


@pytest.mark.slow
def test_batch_equals_online_on_1000_dirty_entities(tmp_path):
    assert _batch_vs_online(_dirty_world(tmp_path, 1000, 22, 0.01)) > 20


# ------------------------------------------------------------------ threads


def _outcome(sc: Scorer, req) -> object:
    try:
        return sc.score_one(*req, AS_OF)
    except (DataValidationError, ValueError) as e:
        return (type(e).__name__, str(e))


def test_a_scorer_shared_by_8_threads_gives_the_one_thread_answers(w23, scorer):
    """Concurrent calls are scored together; each still gets exactly its own answer or error:
    good requests, a refused one (bad fine), one out of the pool, one whose event names another
    entity, and the same entity twice at once."""
    d, ds, run = w23
    records = _text_records(d)
    ids = [i for i in ds.entities["entity_id"][:14] if i in run.scored.index]
    reqs = [_request(records, i) for i in ids]
    e0, ev0 = reqs[0]
    reqs += [(e0, dict(ev0, penalties=[dict(_PEN, entity_id=e0["entity_id"], fine_cny="-5")])),
             (dict(e0, established_on="2030-01-01"), {}),
             (e0, dict(ev0, complaints=[{"entity_id": ids[1], "received_on": "2025-01-01", "substantiated": "true"}])),
             (dict(e0, entity_id=e0["entity_id"].lower()), ev0)]
    want = [_outcome(scorer, r) for r in reqs]
    assert sum(isinstance(w, tuple) for w in want) == 3
    got: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for rep in range(2):
                for k in range(len(reqs)):
                    j = (k + t * 5) % len(reqs)
                    got[(t, rep * len(reqs) + j)] = _outcome(scorer, reqs[j])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(got) == 8 * 2 * len(reqs)
    for (_, i), one in got.items():
        assert one == want[i % len(reqs)]


def test_waiting_calls_are_scored_in_one_pass(w23, monkeypatch):
    """While one pass runs, calls that arrive wait and are then scored together."""
    d, ds, run = w23
    records = _text_records(d)
    ids = [i for i in ds.entities["entity_id"][:30] if i in run.scored.index][:8]
    sc = Scorer()
    sizes: list[int] = []
    real = sc.score_many

    def spy(entities, as_of):
        sizes.append(len(entities))
        return real(entities, as_of)

    monkeypatch.setattr(sc, "score_many", spy)
    threads = [threading.Thread(target=sc.score_one, args=(*_request(records, i), AS_OF)) for i in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(sizes) == len(ids) and max(sizes) > 1


# ------------------------------------------------------------------ rows sent with an entity are its own
@pytest.mark.parametrize("strict", [True, False])
def test_an_event_row_naming_another_entity_is_refused_and_one_naming_none_is_the_entity_s(w23, strict):
    """A penalty sent with entity X is X's: without an entity_id it counts for X (the same answer as
    with X's id); naming another entity it is refused in both modes (lenient mode would otherwise
    quarantine it out of sight and score X as clean)."""
    sc = Scorer(strict=strict)
    ent, events = _base(w23)
    pen = {"entity_id": EID, "decided_on": "2025-06-01", "procedure": "general", "fine_cny": "50000",
           "domain": "quality"}
    own = sc.score_one(ent, dict(events, penalties=[*events["penalties"], pen]), AS_OF)
    anon = sc.score_one(ent, dict(events, penalties=[*events["penalties"], {**pen, "entity_id": None}]), AS_OF)
    assert anon["probability"] == own["probability"] and anon["tier"] == own["tier"]
    with pytest.raises(DataValidationError, match="not the request's entity"):
        sc.score_one(ent, dict(events, penalties=[*events["penalties"], {**pen, "entity_id": "91330782MA00000001"}]),
                     AS_OF)


def test_each_answer_carries_the_notes_on_its_own_records(w23, scorer):
    """What validation repaired or grouped (a town read as 其他) is in that call's answer, and only
    in it: a pass shared by several calls is not used when it has notes."""
    ent, events = _base(w23)
    plain = scorer.score_one(ent, events, AS_OF)
    odd = scorer.score_one(dict(ent, town="稠城街 道X"), events, AS_OF)
    assert plain["notes"] == [] and any("town" in n for n in odd["notes"])
    d, _, batch = w23
    records = _text_records(d)
    ids = list(batch.scored.index[:4])
    reqs = [_request(records, i) for i in ids]
    reqs[0] = (dict(reqs[0][0], town="稠城街 道X"), reqs[0][1])
    results: dict[int, dict] = {}
    start = threading.Barrier(4)

    def call(i):
        start.wait()
        results[i] = scorer.score_one(*reqs[i], AS_OF)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any("town" in n for n in results[0]["notes"])
    assert all(results[i]["notes"] == [] for i in (1, 2, 3))


def test_a_waiting_call_times_out_instead_of_hanging(w23, monkeypatch):
    """A call waiting for another caller's long pass raises TimeoutError after ``timeout`` seconds;
    the long pass still answers its own caller."""
    import time

    sc = Scorer()
    ent, events = _base(w23)
    real = Scorer._run
    started = threading.Event()

    def slow(self, calls):
        started.set()
        time.sleep(1.5)
        real(self, calls)

    monkeypatch.setattr(Scorer, "_run", slow)
    out: dict[str, object] = {}
    t = threading.Thread(target=lambda: out.setdefault("first", sc.score_one(ent, events, AS_OF)))
    t.start()
    assert started.wait(10)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="within 0.2 s"):
        sc.score_one(ent, events, AS_OF, timeout=0.2)
    assert time.monotonic() - t0 < 1.2
    t.join()
    assert out["first"]["entity_id"] == EID and not sc._queue
