"""A synthetic Yiwu market-entity world with a known latent propensity to violate.

Each entity has a latent annual violation rate ``propensity`` driven by type, industry, age,
capital, town and an individual effect. Violations (a self-exciting process: a violation's practice
tends to go on, so a recent, heavily fined penalty predicts the next one; docs/synthetic-world.md)
drive complaints, penalties, list entries and inspection outcomes; the propensity also drives late
or missing annual reports and tax ratings. Uniform random inspection campaigns record their
inclusion probability. The ground truth is returned separately
(:attr:`World.truth`) and is never part of the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import uscc
from .contract import TABLES, YIWU_TOWNS
from .dataset import Dataset
from .io import write_table

__all__ = ["World", "generate", "roster", "simulate_results"]

# industry section → (share, 4-digit class codes, log-odds effect on violation)
_INDUSTRIES = {
    "F": (0.55, ["5137", "5131", "5132", "5139", "5191", "5211", "5261", "5292"], 0.0),
    "C": (0.14, ["2411", "2438", "1811", "2929", "3399", "1952"], 0.25),
    "H": (0.08, ["6210", "6110", "6291"], 0.45),
    "L": (0.05, ["7212", "7297", "7251"], 0.1),
    "G": (0.04, ["5810", "5990"], 0.0),
    "I": (0.03, ["6510", "6432"], -0.3),
    "E": (0.03, ["4710", "4910"], 0.2),
    "O": (0.04, ["8010", "8040"], 0.15),
    "M": (0.02, ["7320", "7491"], -0.4),
    "R": (0.01, ["8770", "9011"], 0.1),
    "A": (0.01, ["0111", "0190"], -0.2),
}
_TOWN_SHARE = np.array([18, 12, 9, 9, 8, 6, 5, 5, 7, 6, 4, 3, 5, 3], dtype=float)
_TOWN_EFFECT = np.array([0.1, 0.15, 0.0, 0.05, 0.0, -0.05, -0.1, 0.05, 0.0, 0.1, -0.1, -0.15, 0.0, -0.1])
_ADVERSE = np.array(["corrected", "pending", "info_not_published", "other_dept", "unreachable", "info_false", "refused"])
_ADVERSE_P = np.array([0.40, 0.15, 0.15, 0.10, 0.10, 0.06, 0.04])
_DOMAINS = np.array(["product_quality", "pricing", "advertising", "food_safety", "trademark", "licensing", "consumer_rights"])
_EPOCH = np.datetime64("1970-01-01", "D")
# Recidivism / state dependence of the violation process (all [P] proposed, docs/synthetic-world.md)
_Z0 = -3.8                 # log-odds intercept of the background propensity
_LAM_REF = 0.05            # propensity at which a violation's median seriousness is 1
_SEV_LAM = 0.4             # seriousness elasticity to propensity: serious violators are high-propensity
_SEV_SD = 0.8              # spread of log-seriousness between violations
_SEV_DRIFT = 0.25          # spread of a follow-on violation's seriousness around its parent's
_BRANCH = 0.35             # follow-on violations per violation of seriousness 1
_BRANCH_MAX = 0.85         # cap (keeps the process subcritical: clusters stay finite)
_PERSIST_DAYS = 180.0      # mean delay of a follow-on violation
_ONGOING_DAYS = 180        # an inspection within this many days after a violation can find it
_ONGOING_EFFECT = 0.8      # added to the inspection's adverse-result hazard per ongoing violation
_KEY = 1 << 20             # entity * _KEY + day: one sortable int64 per (entity, day)


@dataclass
class World:
    """A synthetic dataset plus its ground truth (entity_id index; propensity = background annual
    violation rate, before self-excitation)."""

    dataset: Dataset
    truth: pd.DataFrame
    seed: int

    def save(self, out: str | Path, format: str = "csv") -> tuple[Path, Path]:
        """Write the dataset to ``out/dataset`` and the truth to ``out/truth.parquet``."""
        out = Path(out)
        data_dir = self.dataset.save(out / "dataset", format=format)
        truth = write_table(self.truth.reset_index(), out / "truth.parquet")
        return data_dir, truth


def _days(s: str) -> int:
    return int((np.datetime64(s, "D") - _EPOCH).astype(np.int64))


def _to_date(d: np.ndarray) -> np.ndarray:
    return (d.astype("int64").astype("timedelta64[D]") + _EPOCH).astype("datetime64[s]")


def _frame(name: str, cols: dict) -> pd.DataFrame:
    df = pd.DataFrame(cols)
    return df[TABLES[name].column_names]


def generate(
    n_entities: int = 20_000,
    seed: int = 0,
    start: str = "2016-01-01",
    end: str = "2025-12-31",
    campaign_rate: float = 0.02,
) -> World:
    """Generate a world of ``n_entities`` with history from ``start`` to ``end`` (ISO dates).

    Deterministic per ``seed``. About 10 event rows per entity; 1M entities take about a minute.
    ``campaign_rate`` is the share of active entities drawn (uniformly) in each of two yearly
    random inspection campaigns.
    """
    if n_entities < 1:
        raise ValueError("n_entities must be >= 1")
    rng = np.random.default_rng(seed)
    n = n_entities
    t0, t1 = _days(start), _days(end)

    # ---- entities
    etype = rng.choice(np.array(["individual", "enterprise", "cooperative"]), size=n, p=[0.72, 0.265, 0.015])
    secs = list(_INDUSTRIES)
    sec_p = np.array([_INDUSTRIES[s][0] for s in secs])
    sec_idx = rng.choice(len(secs), size=n, p=sec_p / sec_p.sum())
    is_coop = etype == "cooperative"
    sec_idx[is_coop] = secs.index("A")
    cls = np.empty(n, dtype=object)
    sec_arr = np.array(secs)
    for i, s in enumerate(secs):
        m = sec_idx == i
        cls[m] = rng.choice(np.array(_INDUSTRIES[s][1]), size=int(m.sum()))
    industry = np.char.add(sec_arr[sec_idx].astype(str), cls.astype(str))
    town_idx = rng.choice(len(YIWU_TOWNS), size=n, p=_TOWN_SHARE / _TOWN_SHARE.sum())
    town = np.array(YIWU_TOWNS)[town_idx]
    age_years = np.minimum(rng.exponential(8.0, size=n), 30.0)
    est = (t1 - age_years * 365.25).astype(np.int64)
    cap = np.where(etype == "enterprise", rng.lognormal(np.log(100), 1.2, n),
                   np.where(is_coop, rng.lognormal(np.log(50), 0.8, n), rng.lognormal(np.log(5), 1.0, n)))
    cap = np.round(cap, 2)
    cap[(etype == "individual") & (rng.random(n) < 0.5)] = np.nan
    emp = np.where(etype == "enterprise", np.ceil(rng.lognormal(np.log(8), 1.0, n)), rng.integers(1, 6, n)).astype(float)
    emp[rng.random(n) < 0.1] = np.nan

    # ---- latent propensity (annual violation rate)
    sec_eff = np.array([_INDUSTRIES[s][2] for s in secs])[sec_idx]
    cap_f = np.nan_to_num(np.log1p(cap), nan=np.log1p(3.0))
    z = (_Z0 + 0.35 * (etype == "enterprise") - 0.3 * is_coop + sec_eff + _TOWN_EFFECT[town_idx]
         + 0.5 * (age_years < 2) - 0.12 * (cap_f - 2.5) + rng.normal(0, 1.25, n))
    lam = 1.5 / (1.0 + np.exp(-z))  # violations per year, 0..1.5

    # ---- closures (entities that leave the pool during the window)
    closes = rng.random(n) < np.clip(0.08 + 0.4 * lam, 0, 0.6)
    close_day = np.maximum(est, t0) + (rng.random(n) * (t1 - np.maximum(est, t0) + 1)).astype(np.int64)
    closes &= close_day < t1 - 30
    status = np.where(closes, np.where(rng.random(n) < 0.3, "revoked", "cancelled"), "active")
    closed_on = np.where(closes, close_day, -1)
    alive_to = np.where(closes, close_day, t1)
    alive_from = np.maximum(est, t0 - 3 * 365)  # history modelled from 3 years before start

    # entity ids (distinct)
    ids = uscc.generate(n, rng, etype)
    while True:
        dup = pd.Series(ids).duplicated().to_numpy()
        if not dup.any():
            break
        ids[dup] = uscc.generate(int(dup.sum()), rng, etype[dup])

    # ---- violations: a self-exciting (Hawkes) process on [alive_from, alive_to], see
    # docs/synthetic-world.md. Background violations arrive at the entity's rate ``lam``; each
    # violation has a seriousness ``sev`` (higher for high-propensity entities) and, as the same
    # practice goes on, triggers Poisson(min(_BRANCH_MAX, _BRANCH * sqrt(sev))) follow-on
    # violations after Exp(_PERSIST_DAYS) delays, of similar seriousness (cluster representation,
    # one vectorised generation at a time).
    span = np.maximum(alive_to - alive_from, 0)
    nv = rng.poisson(lam * span / 365.25)
    v_ent = np.repeat(np.arange(n), nv)
    v_day = alive_from[v_ent] + (rng.random(len(v_ent)) * span[v_ent]).astype(np.int64)
    v_sev = np.exp(_SEV_LAM * np.log(lam[v_ent] / _LAM_REF) + rng.normal(0, _SEV_SD, len(v_ent)))
    ents, days, sevs = [v_ent], [v_day], [v_sev]
    par_ent, par_day, par_sev = v_ent, v_day, v_sev
    while len(par_ent):
        kids = rng.poisson(np.minimum(_BRANCH_MAX, _BRANCH * np.sqrt(par_sev)))
        k_ent = np.repeat(par_ent, kids)
        k_day = np.repeat(par_day, kids) + np.ceil(rng.exponential(_PERSIST_DAYS, len(k_ent))).astype(np.int64)
        k_sev = np.repeat(par_sev, kids) * rng.lognormal(0.0, _SEV_DRIFT, len(k_ent))
        ok = k_day < alive_to[k_ent]
        par_ent, par_day, par_sev = k_ent[ok], k_day[ok], k_sev[ok]
        ents.append(par_ent)
        days.append(par_day)
        sevs.append(par_sev)
    v_ent, v_day, v_sev = np.concatenate(ents), np.concatenate(days), np.concatenate(sevs)

    # complaints: 45% of violations draw a substantiated complaint, plus background noise
    c_from_v = rng.random(len(v_ent)) < 0.45
    c1_ent, c1_day = v_ent[c_from_v], v_day[c_from_v] + rng.integers(0, 30, c_from_v.sum())
    bg_rate = 0.12 + 0.6 * lam
    nbg = rng.poisson(bg_rate * span / 365.25)
    c2_ent = np.repeat(np.arange(n), nbg)
    c2_day = alive_from[c2_ent] + (rng.random(len(c2_ent)) * span[c2_ent]).astype(np.int64)
    c_ent = np.concatenate([c1_ent, c2_ent])
    c_day = np.concatenate([c1_day, c2_day])
    subst = np.concatenate([rng.random(len(c1_ent)) < 0.85, rng.random(len(c2_ent)) < 0.1])
    subst_obj = subst.astype(object)
    subst_obj[rng.random(len(subst)) < 0.1] = None

    # penalties: about 59% of violations are penalised, serious ones more often; serious ones go
    # to the general procedure (about 62% of penalties) with a fine that grows with seriousness
    lsev = np.log(v_sev)
    p_from_v = rng.random(len(v_ent)) < np.clip(0.35 + 0.2 * np.log1p(v_sev), 0.05, 0.9)
    p_ent = v_ent[p_from_v]
    p_day = v_day[p_from_v] + rng.integers(15, 120, p_from_v.sum())
    general = rng.random(len(p_ent)) < 1 / (1 + np.exp(-(-0.3 + 0.9 * lsev[p_from_v])))
    fine = np.where(general, np.round(3000 * v_sev[p_from_v] * rng.lognormal(0, 0.6, len(p_ent)), -1),
                    np.round(rng.uniform(0, 200, len(p_ent)), -1))
    fine[general & (rng.random(len(p_ent)) < 0.08)] = 0.0  # warnings
    repaired = np.where(general & (rng.random(len(p_ent)) < 0.15), p_day + rng.integers(183, 900, len(p_ent)), -1)
    domain = rng.choice(_DOMAINS, size=len(p_ent))

    # annual reports: one row per year the entity existed at year end, due 30 June next year
    y0, y1 = int(str(_to_date(np.array([t0 - 3 * 365]))[0])[:4]), int(end[:4]) - 1
    years = np.arange(y0, y1 + 1)
    year_end = np.array([_days(f"{y}-12-31") for y in years])
    deadline = np.array([_days(f"{y + 1}-06-30") for y in years])
    exists = (est[:, None] <= year_end[None, :]) & (alive_to[:, None] > deadline[None, :])
    ar_ent, ar_yi = np.nonzero(exists)
    lam_ar = lam[ar_ent]
    u = rng.random(len(ar_ent))
    p_missing = np.clip(0.02 + 0.25 * lam_ar, 0, 0.5)
    p_late = np.clip(0.04 + 0.6 * lam_ar, 0, 0.7)
    missing = u < p_missing
    late = ~missing & (u < p_missing + p_late)
    jan1 = year_end[ar_yi] + 1
    filed = np.where(late, deadline[ar_yi] + rng.integers(1, 200, len(ar_ent)),
                     jan1 + rng.integers(0, 181, len(ar_ent)))
    filed = np.where(missing | (filed > t1), -1, filed)
    missing = filed < 0

    # abnormal-operation list: missing report → listed early July; 60% removed later
    ab1 = missing & (deadline[ar_yi] + 15 <= t1)
    ab1_ent = ar_ent[ab1]
    ab1_in = deadline[ar_yi][ab1] + rng.integers(1, 15, ab1.sum())
    ab1_out = np.where(rng.random(len(ab1_ent)) < 0.6, ab1_in + rng.integers(30, 700, len(ab1_ent)), -1)

    # random inspection campaigns: two per year, uniform over active entities
    insp = []
    ab2 = []
    yrs_all = range(int(start[:4]), int(end[:4]) + 1)
    for y in yrs_all:
        for half, md in ((1, "04-15"), (2, "10-15")):
            day = _days(f"{y}-{md}")
            if day > t1:
                continue
            pool = np.flatnonzero((est <= day) & (alive_to > day))
            k = max(1, int(round(campaign_rate * len(pool))))
            k = min(k, len(pool))
            sel = rng.choice(pool, size=k, replace=False)
            pi = np.full(k, k / len(pool))
            insp.append((sel, day + rng.integers(0, 60, k), pi, f"SJ{y}{half}"))
    # targeted inspections after 30% of complaints (not random: no inclusion_prob)
    tgt = rng.random(len(c_ent)) < 0.3
    t_ent, t_day = c_ent[tgt], c_day[tgt] + rng.integers(5, 40, tgt.sum())
    keep_t = t_day < alive_to[t_ent]
    insp.append((t_ent[keep_t], t_day[keep_t], np.full(keep_t.sum(), np.nan), None))
    i_ent = np.concatenate([s for s, _, _, _ in insp])
    i_day = np.concatenate([d for _, d, _, _ in insp])
    i_pi = np.concatenate([p for _, _, p, _ in insp])
    i_camp = np.concatenate([np.full(len(s), c, dtype=object) for s, _, _, c in insp])
    keep = (i_day <= t1) & (i_day < alive_to[i_ent])
    i_ent, i_day, i_pi, i_camp = i_ent[keep], i_day[keep], i_pi[keep], i_camp[keep]
    # an inspection finds a problem more often while a violation is ongoing: the entity's
    # violations in the _ONGOING_DAYS before the visit add to its background rate
    v_key = np.sort(v_ent.astype(np.int64) * _KEY + v_day)
    i_key = i_ent.astype(np.int64) * _KEY + i_day
    ongoing = np.searchsorted(v_key, i_key, side="left") - np.searchsorted(v_key, i_key - _ONGOING_DAYS, side="left")
    p_adv = 1 - np.exp(-1.2 * lam[i_ent] - _ONGOING_EFFECT * ongoing)
    adverse = rng.random(len(i_ent)) < p_adv
    res = np.where(rng.random(len(i_ent)) < 0.93, "no_problem", "no_activity").astype(object)
    res[adverse] = rng.choice(_ADVERSE, size=int(adverse.sum()), p=_ADVERSE_P)
    dept = rng.choice(np.array(["market_supervision", "tax", "fire", "ecology"]), size=len(i_ent), p=[0.7, 0.1, 0.1, 0.1])
    # unreachable → abnormal-operation list for cause
    unre = res == "unreachable"
    ab2_ent, ab2_in = i_ent[unre], i_day[unre] + rng.integers(5, 30, unre.sum())
    ab2_out = np.where(rng.random(len(ab2_ent)) < 0.4, ab2_in + rng.integers(30, 500, len(ab2_ent)), -1)
    ab2.append(0)

    # serious-dishonest list: rare, for high-propensity entities' penalties; court dishonest
    sd = general & (fine > 50_000) & (rng.random(len(p_ent)) < 0.3)
    sd_ent, sd_in = p_ent[sd], p_day[sd] + rng.integers(10, 60, sd.sum())
    sd_out = np.where(rng.random(len(sd_ent)) < 0.3, sd_in + rng.integers(365, 1100, len(sd_ent)), -1)
    cd = rng.random(n) < np.clip(0.04 * lam / 0.3, 0, 0.2)
    cd_ent = np.flatnonzero(cd)
    cd_in = np.maximum(alive_from[cd_ent], t0) + (rng.random(len(cd_ent)) * np.maximum(alive_to[cd_ent] - np.maximum(alive_from[cd_ent], t0), 1)).astype(np.int64)
    cd_out = np.where(rng.random(len(cd_ent)) < 0.5, cd_in + rng.integers(90, 800, len(cd_ent)), -1)

    l_ent = np.concatenate([ab1_ent, ab2_ent, sd_ent, cd_ent])
    l_in = np.concatenate([ab1_in, ab2_in, sd_in, cd_in])
    l_out = np.concatenate([ab1_out, ab2_out, sd_out, cd_out])
    l_list = np.concatenate([np.full(len(ab1_ent), "abnormal_operation"), np.full(len(ab2_ent), "abnormal_operation"),
                             np.full(len(sd_ent), "serious_dishonest"), np.full(len(cd_ent), "court_dishonest")])
    l_reason = np.concatenate([np.full(len(ab1_ent), "annual_report"), np.full(len(ab2_ent), "unreachable"),
                               np.full(len(sd_ent), "serious_violation"), np.full(len(cd_ent), "court_judgment")])

    # tax ratings for enterprises: yearly, worse with propensity; new firms get M
    ent_idx = np.flatnonzero(etype == "enterprise")
    tr_e, tr_yi = np.nonzero(exists[ent_idx])
    tr_ent = ent_idx[tr_e]
    score = 85 - 60 * lam[tr_ent] + rng.normal(0, 10, len(tr_ent))
    rating = np.select([score >= 90, score >= 70, score >= 40], ["A", "B", "C"], "D").astype(object)
    rating[(year_end[tr_yi] - est[tr_ent]) < 365] = "M"

    # ---- clip every event to the window and the entity's life
    def window(ent: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (day >= np.maximum(t0, est[ent])) & (day <= np.minimum(t1, alive_to[ent]))

    def clip_after(end_day: np.ndarray, start_day: np.ndarray, ent: np.ndarray) -> np.ndarray:
        # a removal/repair date after the window end or the entity's closure is not yet known
        return np.where((end_day > t1) | (end_day < start_day), -1, end_day)

    mc = window(c_ent, c_day)
    mp = window(p_ent, p_day)
    ml = window(l_ent, l_in)
    mar = (year_end[ar_yi] + 1 >= t0)
    repaired = clip_after(repaired, p_day, p_ent)
    l_out = clip_after(l_out, l_in, l_ent)

    def dates(d: np.ndarray) -> np.ndarray:
        out = _to_date(np.where(d < 0, 0, d))
        out[d < 0] = np.datetime64("NaT")
        return out

    entities = _frame("entities", {
        "entity_id": ids, "entity_type": etype, "industry": industry, "town": town,
        "established_on": _to_date(est), "registered_capital": cap, "employees": emp,
        "status": status, "closed_on": dates(closed_on),
    })
    penalties = _frame("penalties", {
        "entity_id": ids[p_ent[mp]], "decided_on": _to_date(p_day[mp]),
        "procedure": np.where(general[mp], "general", "simple"), "fine_cny": fine[mp],
        "domain": domain[mp], "repaired_on": dates(repaired[mp]),
    })
    inspections = _frame("inspections", {
        "entity_id": ids[i_ent], "inspected_on": _to_date(i_day), "result": res.astype(str),
        "campaign_id": i_camp, "inclusion_prob": i_pi, "department": dept,
    })
    complaints = _frame("complaints", {
        "entity_id": ids[c_ent[mc]], "received_on": _to_date(c_day[mc]),
        "substantiated": pd.array(subst_obj[mc], dtype="boolean"),
    })
    annual_reports = _frame("annual_reports", {
        "entity_id": ids[ar_ent[mar]], "year": pd.array(years[ar_yi[mar]], dtype="Int64"),
        "filed_on": dates(filed[mar]),
    })
    list_records = _frame("list_records", {
        "entity_id": ids[l_ent[ml]], "list": l_list[ml], "entered_on": _to_date(l_in[ml]),
        "removed_on": dates(l_out[ml]), "reason": l_reason[ml],
    })
    tax_ratings = _frame("tax_ratings", {
        "entity_id": ids[tr_ent], "year": pd.array(years[tr_yi], dtype="Int64"), "rating": rating.astype(str),
    })
    tables = {"entities": entities, "penalties": penalties, "inspections": inspections, "complaints": complaints,
              "annual_reports": annual_reports, "list_records": list_records, "tax_ratings": tax_ratings}
    for name, df in tables.items():
        if name != "entities":
            order = np.lexsort((df[TABLES[name].columns[1].name].to_numpy(), df["entity_id"].to_numpy()))
            tables[name] = df.iloc[order].reset_index(drop=True)
    counts = {k: (len(v), len(v), 0) for k, v in tables.items()}
    truth = pd.DataFrame({"propensity": lam, "annual_violation_prob": 1 - np.exp(-lam)},
                         index=pd.Index(ids, name="entity_id"))
    return World(Dataset(**tables, counts=counts, source=f"synth(n={n}, seed={seed})"), truth, seed)


def roster(n_inspectors: int = 120, seed: int = 0, entity_ids: np.ndarray | None = None) -> pd.DataFrame:
    """A synthetic inspector roster (执法检查人员名录库): inspector_id, department, towns
    (';'-joined, empty = every town), qualifications, conflicts (declared entity ids).

    Most inspectors cover two or three towns; a fifth cover all. ``entity_ids`` lets a few
    inspectors declare conflicts with real entities of the world.
    """
    rng = np.random.default_rng(seed)
    dept = rng.choice(np.array(["market_supervision", "tax", "fire", "ecology"]), n_inspectors, p=[0.7, 0.1, 0.1, 0.1])
    towns = []
    for _ in range(n_inspectors):
        if rng.random() < 0.2:
            towns.append("")
        else:
            towns.append(";".join(rng.choice(np.array(YIWU_TOWNS), size=int(rng.integers(2, 4)), replace=False)))
    quals = np.array(["general", "general;food", "general;product_quality", "general;special_equipment"])
    conflicts = np.full(n_inspectors, "", dtype=object)
    if entity_ids is not None and len(entity_ids):
        who = rng.choice(n_inspectors, size=max(1, n_inspectors // 10), replace=False)
        conflicts[who] = rng.choice(np.asarray(entity_ids, dtype=object), size=len(who))
    return pd.DataFrame({
        "inspector_id": [f"ZF{330782}{i:04d}" for i in range(n_inspectors)], "department": dept, "towns": towns,
        "qualifications": rng.choice(quals, n_inspectors, p=[0.55, 0.15, 0.2, 0.1]), "conflicts": conflicts,
    })


def simulate_results(selected: pd.Index | np.ndarray, truth: pd.DataFrame, seed: int, date: str) -> pd.DataFrame:
    """Inspection outcomes for drawn entities from the ground truth (synthetic worlds only):
    ``entity_id``, ``date``, ``result``; adverse with probability 1 - exp(-1.2 · propensity)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(selected, dtype=object)
    lam = truth.reindex(ids)["propensity"].fillna(truth["propensity"].median()).to_numpy()
    adverse = rng.random(len(ids)) < 1 - np.exp(-1.2 * lam)
    res = np.where(rng.random(len(ids)) < 0.93, "no_problem", "no_activity").astype(object)
    res[adverse] = rng.choice(_ADVERSE, size=int(adverse.sum()), p=_ADVERSE_P)
    d = np.datetime64(date, "D") + rng.integers(0, 60, len(ids)).astype("timedelta64[D]")
    return pd.DataFrame({"entity_id": ids, "date": d.astype(str), "result": res})
