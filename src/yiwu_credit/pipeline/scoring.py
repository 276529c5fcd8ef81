"""Batch scoring: the main job. Dataset + bundle (+ a tiering policy) → one row per entity in the pool.

Every entity of the input is either scored or listed in ``excluded`` with its reason (closed
before as_of, or not yet established), so ``len(entities) == len(scored) + len(excluded)``.

Features are computed under the bundle's policy and catalogue (the model's inputs mean what
they meant in training). Tiers — cut-offs and overrides — follow the *tiering policy*: the
bundle's by default, or ``policy=`` (``score --policy``), fitted on the bundle's reference
distribution at scoring time, so another policy's shares or thresholds take effect without a
refit. The output records which policy tiered it (columns ``tier_policy`` and
``tier_policy_sha256``; ``ScoreResult.tiering``; ``scored.attrs["tiering"]``).

One scoring function (``_score``: features → model → tiers → overrides → reasons → assembly)
serves every path: :func:`score_entities` (batch, and each Dask partition) and :class:`Scorer`
(online), which validates its records with :func:`~yiwu_credit.data.dataset.load_records` — the
loader's own rules — so batch and online answers agree field by field.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.columns import constant_strings, dictionary_take, encode_strings, string_column
from ..data.contract import TABLES
from ..data.dataset import Dataset, load_records
from ..data.dates import Day, day_array
from ..data.sources.profile import Profile, load_profile
from ..data.uscc import is_valid, normalise_ids
from ..errors import DataValidationError, Problem
from ..features.build import (
    EXCLUSION_REASONS,
    build_features,
    entity_status,
    override_facts,
    pool,
    pool_events,
)
from ..features.ranges import RangeCheck, range_check
from ..model.bundle import Bundle, load_bundle
from ..model.compiled import wanted
from ..policy import TIERS, Policy, load_policy
from ..tiering.cutoffs import TierCutoffs
from ..tiering.overrides import fact_arrays, override_codes

__all__ = ["MAX_COALESCED", "REASON_TIERS", "STALE_DATA_DAYS", "ScoreResult", "Scorer", "data_warnings", "last_event_date",
           "rejects_table", "score_entities", "tiering_policy"]

REASON_TIERS = ("C", "D")
#: an as_of this many days after the dataset's last recorded event is flagged as doubtful
STALE_DATA_DAYS = 365


@dataclass
class ScoreResult:
    """One scoring run: ``scored`` (entity_id index), ``excluded`` (entity_id, reason), the
    feature matrix used, doubts about the run, and the tier cut-offs with the policy behind them."""

    scored: pd.DataFrame
    excluded: pd.DataFrame
    features: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    tiering: TierCutoffs | None = None


def rejects_table(dataset: Dataset, excluded: pd.DataFrame) -> pd.DataFrame:
    """Every input row that is not in the scores, with why: the dataset's quarantined rows
    (``kind`` "rejected": table, row, entity_id, column, reason, source file and header) and the
    entities outside the supervision pool (``kind`` "out_of_pool")."""
    cols = ["kind", "table", "row", "entity_id", "column", "reason", "file", "header"]
    rej = dataset.rejects.assign(kind="rejected")
    ex = excluded.assign(table="entities", row=pd.NA, column="", kind="out_of_pool")
    return pd.concat([rej.reindex(columns=cols), ex.reindex(columns=cols)], ignore_index=True)


def last_event_date(dataset: Dataset) -> pd.Timestamp | None:
    """The latest event date in any event table (None if there are no events)."""
    last = None
    for name, t in TABLES.items():
        if t.date_column and len(dataset.table(name)):
            m = dataset.table(name)[t.date_column].max()
            if pd.notna(m) and (last is None or m > last):
                last = pd.Timestamp(m)
    return last


def data_warnings(dataset: Dataset, as_of: str | pd.Timestamp | Day) -> list[str]:
    """Doubts about scoring ``dataset`` at ``as_of`` that do not stop the run but must be shown."""
    day = Day.parse(as_of)
    out = []
    last = last_event_date(dataset)
    if last is not None and (day.timestamp - last).days > STALE_DATA_DAYS:
        out.append(f"as_of {day} is {(day.timestamp - last).days} days after the last recorded event "
                   f"({last.date()}): features will read as a clean record; is the data complete?")
    n_issue = int((dataset.issue_counts() > 0).sum())
    if n_issue:
        out.append(f"{n_issue:,} entities are scored on a partial history: some of their event rows were "
                   f"quarantined (column data_issues, rows in the rejects file)")
    return out


def tiering_policy(bundle: Bundle, policy: Policy | str | None) -> tuple[Policy, list[str]]:
    """The policy that tiers a run (``policy``, or the bundle's) and warnings about it."""
    pol = bundle.policy if policy is None else load_policy(policy)
    notes = []
    if pol.repair != bundle.policy.repair:
        notes.append(f"policy {pol.name} {pol.version} has other [repair] periods than the bundle's "
                     f"({bundle.policy.name} {bundle.policy.version}): features follow the bundle's (as in "
                     "training); override facts follow the tiering policy's")
    return pol, notes


def score_entities(dataset: Dataset, as_of: str | pd.Timestamp | Day, bundle: Bundle | str | None = None,
                   reasons: str = "CD", policy: Policy | str | None = None, *,
                   compiled: bool | None = None, timings: dict[str, float] | None = None) -> ScoreResult:
    """Score every entity alive at ``as_of``.

    ``policy`` (default: the bundle's) tiers the run: its ``[tiers]`` give the cut-offs on the
    bundle's reference distribution and its ``[overrides]`` the overrides; no refit is needed.
    ``reasons``: "CD" (default) computes reason codes for entities whose final tier is C or D
    or whose tier an override changed; "all" for everyone; "none" skips them.

    ``scored`` columns: probability, credit_score, model_tier, tier, tier_zh, tier_en,
    overrides, serious_dishonest, abnormal_operation, adverse_conduct, is_new, new_with_record,
    recent_penalties, recent_fines_cny, out_of_range (features beyond the training range),
    entity_type, town, industry, data_issues (quarantined event rows of the entity),
    reason_1..k (name, _zh, _en), model_version, tier_policy (name@version) and
    tier_policy_sha256. ``warnings`` lists doubts about the run (stale data, partial histories).
    ``compiled``: predict with the trees compiled to native code (extra ``fast``, see
    :mod:`yiwu_credit.model.compiled`; the same probabilities to 1e-9); None: as the environment
    variable ``YIWU_CREDIT_COMPILED`` says (off by default). ``timings``: a dict that receives
    the wall seconds of each stage (features, model, tiers_overrides, reasons, assemble) and
    their CPU seconds (``<stage>_cpu``), for benchmarks.
    """
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    return _score(dataset, Day.parse(as_of), _Setup.of(b, policy), reasons, compiled, timings)


@dataclass(frozen=True)
class _Setup:
    """What a run takes from the bundle and the tiering policy, made once (a :class:`Scorer`
    keeps it across calls)."""

    bundle: Bundle
    policy: Policy
    notes: list[str]
    cut: TierCutoffs
    ranges: RangeCheck
    same_codes: bool  # the model's category codes are the catalogue's (the range check reads them as they are)

    @classmethod
    def of(cls, b: Bundle, policy: Policy | str | None) -> _Setup:
        pol, notes = tiering_policy(b, policy)
        m = b.model
        same = all(list(f.categories or ()) == list(m.categories_.get(f.name, f.categories or ()))
                   for f in b.catalogue.features if f.is_categorical)
        return cls(b, pol, notes, b.tiering(pol), range_check(b), same)


def _score(dataset: Dataset, day: Day, setup: _Setup, reasons: str = "CD", compiled: bool | None = None,
           timings: dict[str, float] | None = None, n_reasons: int | None = None) -> ScoreResult:
    """The one scoring function (batch, online and each partition of a distributed run):
    features → model → tiers → overrides → reasons → assembly. See :func:`score_entities`."""
    if reasons not in ("CD", "all", "none"):
        raise ValueError(f"reasons must be 'CD', 'all' or 'none', got {reasons!r}")
    clock = _Clock(timings)
    b, pol, notes, cut = setup.bundle, setup.policy, setup.notes, setup.cut
    m = b.model
    events = pool_events(dataset, day, b.policy, b.catalogue)
    X = build_features(dataset, day, b.catalogue, b.policy, events=events)
    clock("features")
    fast = wanted(compiled)
    M = m.feature_matrix(X, order="C" if fast else "F")  # compiled trees read rows; LightGBM either
    p = m.proba_from_margin(m.learner_.margin(M, compiled=fast))
    clock("model")
    fact_events = events if pol.repair == b.policy.repair else {
        **events, **pool_events(dataset, day, pol, b.catalogue, tables=("penalties",))}
    facts = override_facts(dataset, day, pol, b.catalogue, events=fact_events, index=X.index)
    model_rank = cut.ranks(p)
    rank, note_codes, note_texts = override_codes(model_rank, fact_arrays(facts), pol)
    clock("tiers_overrides")
    k = m.n_reasons if n_reasons is None else n_reasons
    rcols = [f"reason_{i}{s}" for i in range(1, k + 1) for s in ("", "_zh", "_en")]
    texts = {c: np.full(len(X), None, dtype=object) for c in rcols}
    if reasons != "none" and len(X):
        need = np.ones(len(X), dtype=bool) if reasons == "all" else (
            np.isin(rank, [TIERS.index(t) for t in REASON_TIERS]) | (note_codes != 0))
        if need.any():
            rows = np.flatnonzero(need)
            ex = m.reason_arrays(X, k, matrix=M, rows=rows)
            for c in rcols:
                if c in ex:
                    texts[c][need] = ex[c]
    clock("reasons")
    idx, remap = pool(dataset, day)
    ent = {c: dictionary_take(dataset.derived(("encoded", c), ("entities",), lambda c=c: encode_strings(
        dataset.entities[c])), idx) for c in ("entity_type", "town", "industry")}
    ranges = setup.ranges
    # the model's matrix holds category codes as the range check reads them when the categories agree
    beyond = ranges.beyond(M if setup.same_codes else ranges.matrix(X[list(m.feature_names_in_)]))
    oor_codes, oor_labels = ranges.flag_codes(beyond)
    n = len(X)
    out = pd.DataFrame({
        "probability": p, "credit_score": m.credit_points(p).round(1), "model_tier": string_column(TIERS, model_rank),
        "tier": string_column(TIERS, rank),
        "tier_zh": string_column([pol.tier_label(t, "zh") for t in TIERS], rank),
        "tier_en": string_column([pol.tier_label(t, "en") for t in TIERS], rank),
        "overrides": string_column(note_texts, note_codes), **{c: facts[c].to_numpy() for c in facts.columns},
        "out_of_range": string_column(oor_labels, oor_codes),
        **ent,
        "data_issues": _issue_counts(dataset, X.index),
        # reason texts stay object arrays (mostly None): no string inference over a million rows
        **{c: pd.Series(v, index=X.index, dtype=object, copy=False) for c, v in texts.items()},
        "model_version": constant_strings(b.version, n),
        "tier_policy": constant_strings(str(cut.policy), n),
        "tier_policy_sha256": constant_strings(cut.policy.sha256, n),
    }, index=X.index, copy=False)  # fresh arrays: no consolidation copy
    out.attrs["tiering"] = cut.to_dict()
    # entities not in the pool, with the reason
    gone = remap < 0
    status = entity_status(day_array(dataset.entities["established_on"])[gone],
                           day_array(dataset.entities["closed_on"])[gone], day)
    reason = np.array([EXCLUSION_REASONS.get(int(c), "") for c in range(4)], dtype=object)[status]
    excluded = pd.DataFrame({"entity_id": dataset.entities["entity_id"][gone].to_numpy(dtype=object),
                             "reason": reason})
    warnings = data_warnings(dataset, day) + notes
    n_oor = int((oor_codes != 0).sum())
    if n_oor:
        per = beyond.sum(axis=0)
        top = [j for j in np.argsort(-per, kind="stable")[:3] if per[j]]
        warnings.append(f"{n_oor:,} entities have feature values beyond the training range (column out_of_range; "
                        f"most often {', '.join(f'{ranges.names[j]} {int(per[j]):,}' for j in top)}): "
                        "the model extrapolates there")
    clock("assemble")
    return ScoreResult(out, excluded, X, warnings, cut)


def _issue_counts(dataset: Dataset, index: pd.Index) -> np.ndarray:
    """Quarantined event rows of each entity of ``index`` (int64, shape (n,))."""
    counts = dataset.issue_counts()
    if not len(counts):
        return np.zeros(len(index), dtype=np.int64)
    return counts.reindex(index, fill_value=0).to_numpy(dtype=np.int64)


class _Clock:
    """Wall and CPU seconds per stage into ``timings`` (``stage`` and ``stage_cpu``; a no-op
    without it): each call closes a stage."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings
        self.t, self.c = time.perf_counter(), time.process_time()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now, cpu = time.perf_counter(), time.process_time()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.t
            self.timings[stage + "_cpu"] = self.timings.get(stage + "_cpu", 0.0) + cpu - self.c
            self.t, self.c = now, cpu


class Scorer:
    """Online scoring: entities given as records, validated by the data contract
    (:func:`~yiwu_credit.data.dataset.load_records`, the loader's own rules) and scored by the
    same function as :func:`score_entities` — the same features, model, tiers, overrides,
    reasons and output columns, field for field.

    ``strict=True`` (default): a record that breaks the contract refuses the request
    (:class:`~yiwu_credit.errors.DataValidationError` naming table, column, row and reason).
    ``strict=False``: bad event rows are quarantined and counted in ``data_issues``, as batch
    ``score`` does; an entity whose own row is bad is refused. Event rows given with an entity are
    that entity's (a row without ``entity_id`` gets it; a row naming another entity is refused in
    both modes). Each answer carries ``notes``: what validation repaired or grouped in its records
    (a town read as 其他, a reason read as ``other``). ``profile``: how the
    records name fields and codes (e.g. ``"zh"``). Safe to share across threads (a call builds
    its own Dataset; the bundle's lookups are made here, once).

    >>> s = Scorer()                                             # the shipped bundle
    >>> s.score_one(entity, {"penalties": [...], ...}, "2026-01-01")  # doctest: +SKIP
    """

    def __init__(self, bundle: Bundle | str | None = None, n_reasons: int | None = None,
                 policy: Policy | str | None = None, *, strict: bool = True,
                 profile: str | Path | Profile | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self._setup = _Setup.of(self.bundle, policy)
        self.policy, self.warnings, self.tiering = self._setup.policy, self._setup.notes, self._setup.cut
        self.n_reasons = self.bundle.model.n_reasons if n_reasons is None else n_reasons
        self.strict = strict
        self.profile = load_profile(profile)
        self._cond = threading.Condition()
        self._queue: list[_Call] = []
        self._busy = False
        learner = self.bundle.model.learner_
        for warm in ("_feature_paths",):  # a lazy lookup made before any thread reads it
            if hasattr(learner, warm):
                getattr(learner, warm)()

    def score_records(self, tables: Mapping[str, pd.DataFrame | Sequence[Mapping[str, Any]]],
                      as_of: str | pd.Timestamp | Day) -> tuple[ScoreResult, Dataset]:
        """Validate ``tables`` (as :func:`~yiwu_credit.data.dataset.load_records`, in this
        scorer's mode and profile) and score them: the run and the validated dataset."""
        day = Day.parse(as_of)
        # validated as batch ``score`` loads (no as_of): later events are left out by the features
        ds = load_records(tables, None, self.strict, profile=self.profile, source="request")
        return _score(ds, day, self._setup, "all", n_reasons=self.n_reasons), ds

    def score_many(self, entities: Sequence[tuple[Mapping[str, Any], Mapping[str, Sequence[Mapping[str, Any]]]]],
                   as_of: str | pd.Timestamp | Day) -> list[dict[str, Any]]:
        """Score several entities, each ``(entity, events)`` as for :meth:`score_one`, as one
        request: one validation and one scoring pass (strict mode: any bad record refuses the
        whole request); one dict per entity, in order."""
        tables: dict[str, list[Mapping[str, Any]]] = {"entities": []}
        for entity, events in entities:
            entity = entity.to_dict() if isinstance(entity, pd.Series) else entity
            tables["entities"].append(entity)
            for name, rows in events.items():
                if isinstance(rows, pd.DataFrame):
                    rows = rows.to_dict("records")
                if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
                    raise DataValidationError([Problem(str(name), None, "expected a DataFrame or a list of records, "
                                                                        f"got {type(rows).__name__}")])
                tables.setdefault(name, []).extend(_own_rows(entity, str(name), rows))
        run, ds = self.score_records(tables, as_of)
        return [_row(run, ds, i, as_of) for i in _positions(len(tables["entities"]), ds)]

    def score_one(self, entity: Mapping[str, Any], events: Mapping[str, Sequence[Mapping[str, Any]]],
                  as_of: str | pd.Timestamp | Day, *, timeout: float | None = None) -> dict[str, Any]:
        """Score one entity. ``entity``: entities columns → values; ``events``: table name → list
        of row dicts (values typed or as text; dates as ISO strings, dates or timestamps).
        Returns a dict like a row of ``score_entities(...).scored`` plus ``entity_id`` and
        ``reasons`` (list of (feature, zh, en)). Raises DataValidationError for a bad record
        (strict mode) or a rejected entity row, ValueError for an entity out of the pool.

        Calls made at the same time from several threads are scored together (one validation
        and scoring pass for the waiting calls: the fixed cost of a pass is shared, so throughput
        grows with threads instead of falling to GIL contention); each call gets exactly the
        answer, or the error, it gets alone (a pass that fails is redone call by call).
        ``timeout`` (seconds): a call still waiting for another caller's pass by then raises
        :class:`TimeoutError` (a large request holds the others for the length of its pass)."""
        call = _Call(entity, events, as_of)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._queue.append(call)
            while not call.done:
                if self._busy:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        if call in self._queue:
                            self._queue.remove(call)
                        raise TimeoutError(f"score_one: no answer within {timeout} s (another caller's pass "
                                           "is still running)")
                    self._cond.wait(left)
                    continue
                self._busy = True
                batch, self._queue = self._queue[:MAX_COALESCED], self._queue[MAX_COALESCED:]
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()   # first: the state below is only changed under the lock
                    for c in batch:        # interrupted: unfinished calls go back to the queue, not failed
                        if not c.done:
                            self._queue.append(c)
                    self._busy = False
                    self._cond.notify_all()
        if call.error is not None:
            raise call.error
        return call.result

    def _run(self, calls: list[_Call]) -> None:
        """Score waiting calls together where that cannot change an answer, else one by one."""
        groups: dict[Any, list[_Call]] = {}
        for c in calls:
            groups.setdefault(str(c.as_of), []).append(c)
        for group in groups.values():
            if len(group) > 1 and _separable(group):
                try:
                    outs = self.score_many([(c.entity, c.events) for c in group], group[0].as_of)
                except Exception:  # noqa: BLE001 - a refusal or an entity out of the pool: each call alone
                    outs = None
                if outs is not None and not any(o["notes"] for o in outs):  # notes would be the pass's, not a call's
                    for c, out in zip(group, outs, strict=True):
                        c.result, c.done = out, True
                    continue
            for c in group:
                try:
                    c.result = self.score_many([(c.entity, c.events)], c.as_of)[0]
                except Exception as e:  # noqa: BLE001 - handed to the calling thread
                    c.error = e
                c.done = True


#: at most this many waiting calls are scored in one pass
MAX_COALESCED = 64


@dataclass
class _Call:
    """One waiting :meth:`Scorer.score_one` call and its outcome."""

    entity: Mapping[str, Any]
    events: Mapping[str, Any]
    as_of: Any
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    done: bool = False


def _separable(calls: list[_Call]) -> bool:
    """Whether calls can share a pass without one affecting another: distinct entity ids (under
    the one id rule) and every event row naming its own call's entity exactly (a row naming
    another entity of the pass would attach to it)."""
    try:
        ids = [c.entity.get("entity_id") for c in calls]
        norm = normalise_ids(ids)
        if any(i is None for i in norm) or len(set(norm)) != len(norm):
            return False
        return all(isinstance(rows, Sequence) and not isinstance(rows, str | bytes)
                   and all(isinstance(r, Mapping) and r.get("entity_id") == i for r in rows)
                   for c, i in zip(calls, ids, strict=True) for rows in c.events.values())
    except Exception:  # noqa: BLE001 - anything unusual is scored call by call
        return False


def _own_rows(entity: Mapping[str, Any], table: str, rows: Sequence[Any]) -> list[Any]:
    """The event rows given with ``entity``: a row without ``entity_id`` is the entity's (the
    request says so); a row naming another entity (under the one id rule) is refused in both
    modes, never quarantined out of sight (the caller sent it for this entity)."""
    eid = entity.get("entity_id") if isinstance(entity, Mapping) else None
    key = normalise_ids([eid])[0] if eid is not None else None
    if key is not None and not is_valid(key):
        key = None   # the entity's own id is refused by validation, with its reason; rows are not matched to it
    out = []
    for j, r in enumerate(rows):
        if isinstance(r, Mapping) and key is not None:
            rid = r.get("entity_id")
            if rid is None or (isinstance(rid, str) and not rid.strip()) or (not isinstance(rid, str) and pd.isna(rid)):
                r = {**r, "entity_id": eid}
            elif normalise_ids([rid])[0] != key:
                raise DataValidationError([Problem(table, "entity_id", f"the row names entity {rid!r}, not the "
                                                   f"request's entity {eid!r}", (j + 1,), 1)])
        out.append(r)
    return out


def _positions(n: int, ds: Dataset) -> list[int]:
    """Positions in ``ds.entities`` of the request's ``n`` entities, in request order; an entity
    row that broke the contract (lenient mode quarantined it) refuses the request with its
    reasons: an entity is scored on its own row or not at all."""
    rej = ds.rejects[ds.rejects["table"] == "entities"] if len(ds.rejects) else ds.rejects
    if len(rej):
        raise DataValidationError([Problem("entities", r["column"] or None, r["reason"], (int(r["row"]),), 1)
                                   for _, r in rej.iterrows()])
    if len(ds.entities) != n:  # pragma: no cover - every entity row is kept or rejected
        raise AssertionError("entities lost in validation")
    return list(range(n))


def _row(run: ScoreResult, ds: Dataset, i: int, as_of: Any) -> dict[str, Any]:
    """The ``i``-th entity of ``ds`` as a dict: its row of ``run.scored`` (Python values) plus
    ``entity_id`` and ``reasons``; ValueError if it is outside the supervision pool."""
    eid = ds.entities["entity_id"].iloc[i]
    if eid not in run.scored.index:
        why = run.excluded.loc[run.excluded["entity_id"] == eid, "reason"]
        raise ValueError(f"entity {eid} is not in the supervision pool at {Day.parse(as_of)}"
                         + (f": {why.iloc[0]}" if len(why) else ""))
    out: dict[str, Any] = {"entity_id": eid, "notes": list(ds.notes)}  # what validation repaired or grouped
    for c, v in run.scored.loc[eid].items():
        out[str(c)] = None if v is None or v is pd.NA else v.item() if isinstance(v, np.generic) else v
    k = sum(1 for c in run.scored.columns if c.startswith("reason_") and c.count("_") == 1)
    out["reasons"] = [(out[f"reason_{j}"], out[f"reason_{j}_zh"], out[f"reason_{j}_en"])
                      for j in range(1, k + 1) if out.get(f"reason_{j}") is not None]
    return out
