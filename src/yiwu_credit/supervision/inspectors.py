"""Random inspectors for drawn entities (双随机: the second random), with recusal (回避).

Roster CSV columns: ``inspector_id``, ``department``, ``towns`` (";"-separated; empty = all
towns), ``qualifications`` (";"-separated), ``conflicts`` (";"-separated entity_ids the
inspector has declared a conflict of interest with).

Algorithm (:func:`assign_inspectors`): each (entity, inspector) pair gets a random priority
``fmix64(prn(entity) ^ prn(inspector) * K)`` from the seed — reproducible on any platform and
independent of row order. Entities are visited in PRN order; each takes the ``per_entity``
eligible inspectors with spare capacity and the lowest priorities (a uniformly random choice
among them). If an entity is left short because the workload caps were used up by earlier
entities, an augmenting path (Ford–Fulkerson on entities → inspectors → capacity) moves
earlier assignments to other eligible inspectors. The augmenting step is exact: when no path
exists the constraints cannot be met for that entity whatever the assignment, and
:class:`~yiwu_credit.errors.PlanError` names the entity and the constraint that binds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, PlanError
from ..policy import InspectorPolicy, Policy, load_policy
from .assignments import assignment_map, compare_assignments, inspectors_by_entity
from .audit import VerifyResult
from .prn import fmix64, prn_keys, seed_text, subseed

__all__ = ["ROSTER_COLUMNS", "Roster", "assign_inspectors", "assignment_map", "compare_assignments",
           "inspector_record", "inspectors_by_entity", "load_roster", "previous_sha256", "roster_sha256",
           "verify_assignment"]

ROSTER_COLUMNS = ("inspector_id", "department", "towns", "qualifications", "conflicts")
ASSIGN_ALGORITHM = "prn-priority-greedy-augmenting/1"
RECORD_ATTR = "yiwu_credit.supervision.inspectors"
_K = np.uint64(0x9E3779B97F4A7C15)


def _split(v: Any) -> frozenset[str]:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return frozenset()
    return frozenset(x.strip() for x in str(v).split(";") if x.strip())


def _split_ids(v: Any) -> frozenset[str]:
    """A ";"-separated list of entity ids under the one id rule (NFKC, trim, upper case)."""
    from ..data.uscc import normalise_ids

    parts = _split(v)
    return frozenset(x for x in normalise_ids(sorted(parts)) if x is not None) if parts else parts


@dataclass(frozen=True)
class Roster:
    """A validated inspector roster. ``table`` is indexed by ``inspector_id`` with ``department``
    (str) and ``towns`` / ``qualifications`` / ``conflicts`` as frozensets (empty towns = all)."""

    table: pd.DataFrame
    source: str = "roster"

    def __len__(self) -> int:
        return len(self.table)


def load_roster(source: str | os.PathLike | pd.DataFrame | Roster) -> Roster:
    """Read and validate a roster (CSV/xlsx/Parquet path or DataFrame) with the one reader; inspector
    ids and conflict entity ids follow the one id rule (NFKC, trim, upper case). ConfigError names
    file, column and rows."""
    if isinstance(source, Roster):
        return source
    from ..data.tables import read_input
    from ..errors import DataValidationError

    if isinstance(source, pd.DataFrame):
        df, src = source.copy(), "roster"
    else:
        p = Path(source)
        if not p.is_file():
            raise ConfigError(f"roster file not found: {p}")
        if p.stat().st_size == 0:
            raise ConfigError(f"{p}: the roster file is empty (no header row; expected columns "
                              f"{list(ROSTER_COLUMNS)})")
        try:
            df = read_input(p, "roster", required=(), id_columns=())
        except DataValidationError as e:
            raise ConfigError(f"{p}: {'; '.join(str(x) for x in e.problems)}") from None
        src = str(p)
    if df.index.name == "inspector_id":
        df = df.reset_index()
    missing = [c for c in ROSTER_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"{src}: missing column(s) {missing}; expected {list(ROSTER_COLUMNS)}")
    if len(df) == 0:
        raise ConfigError(f"{src}: the roster is empty")
    from ..data.uscc import normalise_ids

    ids = pd.Series(normalise_ids(df["inspector_id"]), index=df.index, dtype=object).fillna("")
    empty = np.flatnonzero((ids == "").to_numpy())
    if len(empty):
        raise ConfigError(f"{src}.inspector_id: empty id in data row(s) {empty[:5].tolist()}")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise ConfigError(f"{src}.inspector_id: duplicate id(s) {sorted(set(dup))[:5]} "
                          f"(rows {dup.index[:5].tolist()})")
    from ..data.checks import key_text

    # the loader's one rule for key text (format characters removed, NFKC: '；' is ';', '义亭镇\u200b' is
    # '义亭镇'), so towns and qualifications compare with the plan's and lists split as written
    df = df.assign(**{c: key_text(df[c].astype(object).where(df[c].notna(), None))[0]
                      for c in ("department", "towns", "qualifications", "conflicts")})
    dept = df["department"].fillna("").astype(str).str.strip()
    empty = np.flatnonzero((dept == "").to_numpy())
    if len(empty):
        raise ConfigError(f"{src}.department: empty department in data row(s) {empty[:5].tolist()}")
    table = pd.DataFrame({
        "department": dept.to_numpy(),
        "towns": [_split(v) for v in df["towns"]],
        "qualifications": [_split(v) for v in df["qualifications"]],
        "conflicts": [_split_ids(v) for v in df["conflicts"]],
    }, index=pd.Index(ids.to_numpy(), name="inspector_id"))
    return Roster(table=table, source=src)


def _sha_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def roster_sha256(roster: Roster | pd.DataFrame | str | os.PathLike) -> str:
    """SHA-256 of the canonical form of a parsed roster (what the assignment depends on).

    Canonical form: the UTF-8 JSON (no spaces, ``ensure_ascii=False``) of the list, sorted by
    inspector id, of ``[inspector_id, department, sorted towns, sorted qualifications, sorted
    conflicts]``. Row order, column order, quoting, a byte-order mark or spaces around ";" do
    not change it; any change to who may inspect what does.
    """
    t = load_roster(roster).table
    rows = [[str(i), str(r.department), sorted(r.towns), sorted(r.qualifications), sorted(r.conflicts)]
            for i, r in zip(t.index, t.itertuples(index=False), strict=True)]
    return _sha_json(sorted(rows))


def previous_sha256(previous: pd.DataFrame | Mapping[str, Iterable[str]]) -> str:
    """SHA-256 of the canonical previous assignments: JSON of entity → sorted inspector ids."""
    return _sha_json({e: sorted(v) for e, v in _previous_map(previous).items()})


def _previous_map(previous: pd.DataFrame | Mapping[str, Iterable[str]] | None) -> dict[str, set[str]]:
    """Entity → inspector ids of the previous campaign, both under the one id rule (NFKC, trim,
    upper case), so a lower-case or padded id still excludes its inspector."""
    from ..data.uscc import normalise_ids

    if previous is None:
        return {}
    if isinstance(previous, pd.DataFrame):
        p = previous.reset_index() if "entity_id" not in previous.columns else previous
        if not {"entity_id", "inspector_id"} <= set(p.columns):
            raise PlanError("previous: expected columns entity_id and inspector_id (an assign_inspectors result)")
        pairs = list(zip(p["entity_id"], p["inspector_id"], strict=True))
    else:
        pairs = [(e, x) for e, v in previous.items() for x in ([v] if isinstance(v, str) else v)]
    es, js = normalise_ids([e for e, _ in pairs]), normalise_ids([j for _, j in pairs])
    out: dict[str, set[str]] = {}
    for e, i in zip(es, js, strict=True):
        if e is not None and i is not None:
            out.setdefault(e, set()).add(i)
    return out


def _entities(selected: pd.DataFrame | pd.Index | Sequence[str]) -> tuple[pd.Index, np.ndarray]:
    if isinstance(selected, pd.DataFrame):
        df = selected.set_index("entity_id") if "entity_id" in selected.columns else selected
        ids = pd.Index(df.index.astype(str), name="entity_id")
        town = df["town"].astype(object).where(df["town"].notna(), None).to_numpy() if "town" in df.columns \
            else np.full(len(df), None, dtype=object)
    else:
        ids = pd.Index([str(x) for x in selected], name="entity_id")
        town = np.full(len(ids), None, dtype=object)
    if ids.has_duplicates:
        raise PlanError(f"selected: duplicate entity_id(s) {sorted(set(ids[ids.duplicated()]))[:5]}")
    return ids, town


def assign_inspectors(selected: pd.DataFrame | pd.Index | Sequence[str], roster: Roster | pd.DataFrame | str | os.PathLike,
                      seed: int | str, *, per_entity: int | None = None, max_per_inspector: int | None = None,
                      previous: pd.DataFrame | Mapping[str, Iterable[str]] | None = None,
                      qualification: str | Sequence[str] | None = None, departments: str | Sequence[str] | None = None,
                      policy: str | Path | Policy | None = None,
                      no_repeat_consecutive: bool | None = None) -> pd.DataFrame:
    """Assign ``per_entity`` distinct random inspectors to each drawn entity, reproducibly.

    Parameters
    ----------
    selected : the drawn entities: a DataFrame indexed by ``entity_id`` (a ``town`` column is
        used for coverage; entities without a town need inspectors covering all towns) or ids.
    roster : a :class:`Roster`, DataFrame or CSV path.
    seed : campaign seed (the assignment is a function of seed, entity ids and roster only).
    per_entity, max_per_inspector : default from the policy ``[sampling.inspectors]``.
    previous : the previous campaign's assignments (``entity_id``, ``inspector_id``) or a mapping
        entity → inspector ids; with the policy's ``no_repeat_consecutive`` those inspectors
        may not check the same entity again.
    qualification : qualification(s) every assigned inspector must hold for this campaign.
    departments : restrict the roster to these departments.
    no_repeat_consecutive : default from the policy.

    Returns a DataFrame with one row per assignment: ``entity_id``, ``slot`` (1..per_entity),
    ``inspector_id``, ``department``; sorted by entity and slot. ``attrs["yiwu_credit.supervision.inspectors"]``
    records the roster hash and the resolved parameters (see :func:`inspector_record`, which
    puts them in the draw's audit). Raises PlanError naming the entity and the constraint (town
    coverage, qualification, conflicts, previous campaign, workload caps) when no valid
    assignment exists.
    """
    need_policy = (per_entity is None or max_per_inspector is None or policy is not None
                   or (previous is not None and no_repeat_consecutive is None))
    icfg = load_policy(policy).sampling.inspectors if need_policy else InspectorPolicy()
    k = int(icfg.per_entity if per_entity is None else per_entity)
    cap = int(icfg.max_per_inspector if max_per_inspector is None else max_per_inspector)
    no_repeat = bool(icfg.no_repeat_consecutive if no_repeat_consecutive is None else no_repeat_consecutive)
    if k < 1 or cap < 1:
        raise PlanError(f"per_entity={k} and max_per_inspector={cap} must both be ≥ 1")
    ros = load_roster(roster)
    table = ros.table
    if departments is not None:
        want = {departments} if isinstance(departments, str) else set(departments)
        table = table[table["department"].isin(want)]
        if table.empty:
            raise PlanError(f"roster: no inspectors in department(s) {sorted(want)}")
    quals = set() if qualification is None else ({qualification} if isinstance(qualification, str) else set(qualification))
    record = {
        "algorithm": ASSIGN_ALGORITHM, "roster_sha256": roster_sha256(ros), "roster_size": len(ros),
        "seed": seed if isinstance(seed, str) else int(seed_text(seed)), "per_entity": k, "max_per_inspector": cap,
        "no_repeat_consecutive": no_repeat, "qualification": sorted(quals) or None,
        "departments": None if departments is None else sorted(want),
        "previous_sha256": None if previous is None else previous_sha256(previous),
    }
    ids, town = _entities(selected)
    E, n_insp = len(ids), len(table)
    if E == 0:
        empty = pd.DataFrame({"entity_id": pd.Series(dtype=str), "slot": pd.Series(dtype=int),
                              "inspector_id": pd.Series(dtype=str), "department": pd.Series(dtype=str)})
        empty.attrs[RECORD_ATTR] = record
        return empty
    if k > n_insp:
        raise PlanError(f"roster: {n_insp} inspector(s) cannot give each entity {k} distinct inspectors")
    if n_insp * cap < k * E:
        raise PlanError(f"workload caps: {n_insp} inspectors × max_per_inspector={cap} = {n_insp * cap} < "
                        f"{k} × {E} entities; raise max_per_inspector or add inspectors")

    insp = table.index.to_numpy(dtype=object)
    all_towns = np.array([len(t) == 0 for t in table["towns"]])
    qual_ok = np.array([quals <= q for q in table["qualifications"]]) if quals else np.ones(n_insp, bool)
    town_vec: dict[Any, np.ndarray] = {None: all_towns}
    for t in set(town) - {None}:
        town_vec[t] = all_towns | np.array([t in ts for ts in table["towns"]])
    conflicts: dict[str, set[int]] = {}
    for j, cs in enumerate(table["conflicts"]):
        for e in cs:
            conflicts.setdefault(e, set()).add(j)
    pos = {x: j for j, x in enumerate(insp)}
    prev_j: dict[str, set[int]] = {}
    if no_repeat:
        for e, s in _previous_map(previous).items():
            prev_j[e] = {pos[x] for x in s if x in pos}
    from ..data.uscc import normalise_ids

    keys = normalise_ids(ids)              # the one id rule: a drawn id matches its conflicts however spelt
    if any(k != e for k, e in zip(keys, ids, strict=True)):
        conflicts = {e: conflicts[k] for k, e in zip(keys, ids, strict=True) if k in conflicts}
        prev_j = {e: prev_j[k] for k, e in zip(keys, ids, strict=True) if k in prev_j}

    def eligible(i: int) -> np.ndarray:
        m = town_vec[town[i]] & qual_ok
        bad = conflicts.get(ids[i], set()) | prev_j.get(ids[i], set())
        if bad:
            m = m.copy()
            m[list(bad)] = False
        return m

    stream = subseed("inspectors", seed)
    ke = prn_keys(ids, stream)
    kj = prn_keys(pd.Index(insp.astype(str)), stream) * _K
    tmp = np.empty(n_insp, np.uint64)

    def priority(i: int) -> np.ndarray:
        h = kj ^ ke[i]
        fmix64(h, tmp)
        return h

    load = np.zeros(n_insp, np.int64)
    assign: list[set[int]] = [set() for _ in range(E)]
    holders: list[set[int]] = [set() for _ in range(n_insp)]
    short: list[int] = []
    order = np.argsort(ke, kind="stable")
    for i in order:
        m = eligible(i) & (load < cap)
        cand = np.flatnonzero(m)
        pr = priority(i)[cand]
        take = cand[np.argsort(pr, kind="stable")[:k]]
        for j in take:
            assign[i].add(int(j))
            holders[j].add(int(i))
        load[take] += 1
        if len(take) < k:
            short.append(int(i))

    for i in short:
        while len(assign[i]) < k:
            if not _augment(i, assign, holders, load, cap, eligible, priority, ke):
                raise PlanError(_diagnose(i, ids, town, table, quals, conflicts, prev_j, k, cap, eligible))

    rows = []
    for i in range(E):
        pr = priority(i)
        js = sorted(assign[i], key=lambda j, p=pr: int(p[j]))
        rows += [(ids[i], s_ + 1, insp[j], table["department"].iat[j]) for s_, j in enumerate(js)]
    out = pd.DataFrame(rows, columns=["entity_id", "slot", "inspector_id", "department"])
    out = out.sort_values(["entity_id", "slot"], ignore_index=True)
    out.attrs[RECORD_ATTR] = record
    return out


def _augment(e0: int, assign: list[set[int]], holders: list[set[int]], load: np.ndarray, cap: int,
             eligible: Any, priority: Any, rank: np.ndarray) -> bool:
    """One more inspector for entity ``e0`` along a BFS augmenting path; False if none exists."""
    parent: dict[int, int] = {}           # inspector -> entity that would take it
    via: dict[int, int] = {}              # entity (other than e0) -> inspector it would give up
    seen_e = {e0}
    queue = deque([e0])
    while queue:
        e = queue.popleft()
        m = eligible(e)
        cand = [j for j in np.flatnonzero(m) if j not in assign[e] and j not in parent]
        pr = priority(e)
        cand.sort(key=lambda j, p=pr: int(p[j]))
        for j in cand:
            parent[j] = e
            if load[j] < cap:             # augment: e0 takes j1, each e_i swaps j_i for j_{i+1}
                load[j] += 1
                cur = j
                while True:
                    taker = parent[cur]
                    assign[taker].add(cur)
                    holders[cur].add(taker)
                    if taker == e0:
                        return True
                    lost = via[taker]
                    assign[taker].discard(lost)
                    holders[lost].discard(taker)
                    cur = lost
            for e2 in sorted(holders[j], key=lambda x: int(rank[x])):
                if e2 not in seen_e:
                    seen_e.add(e2)
                    via[e2] = j
                    queue.append(e2)
    return False


def _diagnose(i: int, ids: pd.Index, town: np.ndarray, table: pd.DataFrame, quals: set[str],
              conflicts: dict[str, set[int]], prev_j: dict[str, set[int]], k: int, cap: int, eligible: Any) -> str:
    e, t = ids[i], town[i]
    insp = table.index
    cover = np.array([len(ts) == 0 or (t is not None and t in ts) for ts in table["towns"]])
    qual = cover & np.array([quals <= q for q in table["qualifications"]])
    conf = sorted(insp[j] for j in conflicts.get(e, set()) if qual[j])
    rep = sorted(insp[j] for j in prev_j.get(e, set()) if qual[j] and insp[j] not in conf)
    n_elig = int(eligible(i).sum())
    where = f"town {t!r}" if t is not None else "an unknown town (only all-town inspectors qualify)"
    if n_elig < k:
        parts = [f"{int(cover.sum())} cover {where}"]
        if quals:
            parts.append(f"{int(qual.sum())} of them hold {sorted(quals)}")
        if conf:
            parts.append(f"{len(conf)} recused for declared conflicts ({', '.join(conf)})")
        if rep:
            parts.append(f"{len(rep)} checked it in the previous campaign ({', '.join(rep)})")
        binding = ("town coverage" if cover.sum() < k else "qualification" if qual.sum() < k
                   else "recusal (conflicts / previous campaign)")
        return (f"entity {e}: only {n_elig} eligible inspector(s), {k} needed — {'; '.join(parts)}. "
                f"Binding constraint: {binding}")
    return (f"entity {e}: its {n_elig} eligible inspectors (covering {where}) are all at "
            f"max_per_inspector={cap} and their other entities cannot be reassigned. Binding constraint: "
            f"workload caps; raise max_per_inspector or add inspectors for {where}")


# ------------------------------------------------------------------ the audit record and its verification
def inspector_record(assignments: pd.DataFrame) -> dict[str, Any]:
    """The audit block of an inspector draw: :func:`assign_inspectors`' parameters (roster hash,
    seed, per_entity, max_per_inspector, no_repeat_consecutive, qualification, departments,
    previous assignments hash) and ``assignment`` (entity → sorted inspector ids)."""
    rec = assignments.attrs.get(RECORD_ATTR) if isinstance(assignments, pd.DataFrame) else None
    if not rec:
        raise PlanError("assignments: no inspector-draw record attached; pass the unchanged result of "
                        "assign_inspectors")
    return {**rec, "assignment": assignment_map(assignments)}


def _published(published: pd.DataFrame | str | os.PathLike) -> tuple[dict[str, list[str]] | None, str]:
    """The published assignments as entity → sorted ids, or (None, what is wrong with the file)."""
    if isinstance(published, pd.DataFrame):
        name, df = "assignments", published
    else:
        p = Path(published)
        name = p.name
        if not p.is_file():
            return None, f"{p}: published assignments file not found"
        from ..data.tables import read_input
        from ..errors import DataValidationError

        try:
            df = read_input(p, "assignments", required=("entity_id", "inspector_id"))
        except DataValidationError as e:  # 0 bytes, not a table, bad encoding: not what was published
            return None, f"{name}: unreadable published assignments ({'; '.join(str(x) for x in e.problems)})"
    try:
        return assignment_map(df), name
    except PlanError as e:
        return None, f"{name}: {e}"


def verify_assignment(record: Mapping[str, Any], selected: pd.DataFrame,
                      roster: Roster | pd.DataFrame | str | os.PathLike | None, *,
                      previous: pd.DataFrame | Mapping[str, Iterable[str]] | None = None,
                      published: pd.DataFrame | str | os.PathLike | None = None) -> VerifyResult:
    """Recompute a recorded inspector draw (the audit's ``inspectors`` block).

    ``selected``: the drawn entities' plan rows (``town`` matters). Checks the roster's canonical
    hash, recomputes the assignment with the recorded parameters and compares it entity by
    entity, and compares the ``published`` assignments (table or CSV path) with the record.
    Without a roster (or without the previous assignments the draw used) the inspector draw is
    reported as *unverified*, never as OK. ConfigError if the roster itself is malformed.
    """
    mm: list[str] = []
    unv: list[str] = []
    chk: list[str] = []
    rec_asg = record["assignment"]
    n_pairs = sum(len(v) for v in rec_asg.values())
    if roster is None:
        unv.append(f"inspectors: the audit records an inspector draw ({n_pairs} assignments, roster SHA-256 "
                   f"{record['roster_sha256'][:12]}…) but no roster was given — the second random was NOT "
                   "verified; pass the roster (verify --inspectors ROSTER)")
    else:
        ros = load_roster(roster)
        h = roster_sha256(ros)
        roster_ok = h == record["roster_sha256"]
        if not roster_ok:
            mm.append(f"inspectors.roster_sha256: the roster {ros.source} hashes to {h[:12]}…, the audit recorded "
                      f"{record['roster_sha256'][:12]}… (inspectors added, removed or changed)")
        prev_rec = record.get("previous_sha256")
        can_recompute = True
        if prev_rec and previous is None:
            can_recompute = False
            unv.append(f"inspectors: the draw excluded the previous campaign's inspectors (previous assignments "
                       f"SHA-256 {prev_rec[:12]}…) but they were not given — the assignment was NOT recomputed; "
                       "pass them (verify --previous FILE)")
        elif prev_rec and previous_sha256(previous) != prev_rec:
            mm.append(f"inspectors.previous_sha256: the previous assignments given hash to "
                      f"{previous_sha256(previous)[:12]}…, the audit recorded {prev_rec[:12]}…")
        elif not prev_rec and previous is not None:
            mm.append("inspectors.previous_sha256: previous assignments were given but the audit records that "
                      "none were used")
            previous = None
        if can_recompute:
            try:
                got = assign_inspectors(selected, ros, record["seed"], per_entity=record["per_entity"],
                                        max_per_inspector=record["max_per_inspector"], previous=previous,
                                        qualification=record.get("qualification"),
                                        departments=record.get("departments"),
                                        no_repeat_consecutive=record["no_repeat_consecutive"])
            except PlanError as e:
                mm.append(f"inspectors: the assignment cannot be recomputed from the roster: {e}")
            else:
                diff = compare_assignments(rec_asg, assignment_map(got), "inspectors", "the audit records",
                                           "recomputed from the roster")
                mm += diff
                if not diff and roster_ok:
                    chk.append(f"inspectors: roster hash matches and all {n_pairs} assignments ({len(rec_asg)} "
                               f"entities) recompute exactly from seed {record['seed']!r} and the roster")
    if published is None:
        chk.append("published assignments: no file given or found next to the audit — not compared")
    else:
        pub, name = _published(published)
        if pub is None:
            mm.append(name)
        else:
            diff = compare_assignments(rec_asg, pub, name, "the audit records", "the file lists")
            mm += diff
            if not diff:
                chk.append(f"published assignments: {name} lists exactly the recorded assignment")
    return VerifyResult(not mm and not unv, tuple(mm), {}, tuple(chk), tuple(unv))
