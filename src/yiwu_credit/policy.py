"""The supervision policy: tiers, credit-repair periods, overrides, labels, sampling, monitoring.

A policy is a TOML file validated on load (see ``resources/policy/yiwu-2022.toml``). Code reads it
through :class:`Policy`; nothing policy-like is hard-coded elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .config import check_finite, config_sha256, read_config
from .data.contract import ENTITY_TYPES, INSPECTION_RESULTS, LIST_REASONS
from .errors import ConfigError

__all__ = [
    "DEFAULT_POLICY", "FACT_FLAGS", "FACT_NUMBERS", "HEAVY_PENALTY_KEYS", "MAX_HORIZON_DAYS", "POSTURE_ZH", "SECTIONS", "TIERS",
    "InspectorPolicy", "Label", "LabelPolicy", "MonitoringPolicy", "OverridePolicy", "Policy", "RepairPolicy",
    "SamplingPolicy", "TierPolicy", "TierSampling", "load_policy", "policy_from_raw",
]

TIERS: tuple[str, ...] = ("A", "B", "C", "D")
DEFAULT_POLICY = "yiwu-2022"
#: ``[sampling.tiers.X].flag``: the supervision posture of a tier, with its Chinese name.
POSTURE_ZH: dict[str, str] = {"leave_in_peace": "无事不扰", "normal": "常规监管", "watch": "重点关注",
                              "everywhere": "无处不在"}
HEAVY_PENALTY_KEYS: tuple[str, ...] = (
    "heavy_penalties_days", "heavy_penalties_min_count", "heavy_penalties_min_tier",
    "severe_penalties_min_count", "severe_penalties_min_fines_cny", "severe_penalties_min_tier",
)
FACT_FLAGS: tuple[str, ...] = ("serious_dishonest", "abnormal_operation", "adverse_conduct", "is_new", "new_with_record")
FACT_NUMBERS: tuple[str, ...] = ("recent_penalties", "recent_fines_cny")
#: the longest label horizon (days) a policy or ``--horizon`` may set
MAX_HORIZON_DAYS = 3660


def _num(cfg: dict, key: str, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if key not in cfg:
        raise ConfigError(f"{where}: missing key '{key}'")
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{where}.{key}: expected a number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"{where}.{key}: {v} is outside [{lo}, {hi}]")
    return float(v)


def _tier(cfg: dict, key: str, where: str) -> str:
    v = cfg.get(key)
    if v not in TIERS:
        raise ConfigError(f"{where}.{key}: expected one of {', '.join(TIERS)}, got {v!r}")
    return v


def _codes(cfg: dict, key: str, where: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    v = cfg.get(key, [])
    if not isinstance(v, list) or any(x not in allowed for x in v):
        raise ConfigError(f"{where}.{key}: expected a list drawn from {list(allowed)}, got {v!r}")
    return tuple(v)


@dataclass(frozen=True)
class Label:
    """A bilingual label."""

    zh: str
    en: str


@dataclass(frozen=True)
class TierPolicy:
    """``[tiers]``: how calibrated probabilities become tiers A–D.

    ``method`` ``"shares"`` puts the cut-offs at the quantiles ``shares`` of a reference score
    distribution; ``"thresholds"`` uses ``thresholds`` (probabilities, A < B < C) directly.
    """

    method: str
    shares: Mapping[str, float]
    thresholds: Mapping[str, float]
    labels: Mapping[str, Label]


@dataclass(frozen=True)
class RepairPolicy:
    """``[repair]``: days after which a penalty is repaired (no longer published or counted)."""

    general_penalty_days: float
    low_fine_max_cny: float
    low_fine_days: float
    warning_days: float
    simple_procedure_days: float


@dataclass(frozen=True)
class OverridePolicy:
    """``[overrides]``: rules that set or floor a tier whatever the model says.

    The heavy-penalty rule is optional (policies before 1.1.0 lack it): ``heavy_penalties_days``
    and the fields after it are ``None`` then.
    """

    serious_dishonest_tier: str
    abnormal_operation_min_tier: str
    adverse_conduct_min_tier: str
    adverse_conduct_results: tuple[str, ...]
    adverse_conduct_days: float
    new_entity_days: float
    new_entity_tier: str
    heavy_penalties_days: float | None = None
    heavy_penalties_min_count: float | None = None
    heavy_penalties_min_tier: str | None = None
    severe_penalties_min_count: float | None = None
    severe_penalties_min_fines_cny: float | None = None
    severe_penalties_min_tier: str | None = None

    @property
    def heavy_penalty_rule(self) -> bool:
        return self.heavy_penalties_days is not None


@dataclass(frozen=True)
class LabelPolicy:
    """``[labels]``: what counts as a violation within ``horizon_days`` after the as-of date."""

    horizon_days: int
    general_penalty: bool
    adverse_results: tuple[str, ...]
    abnormal_operation_exclude_reasons: tuple[str, ...]
    serious_dishonest: bool


@dataclass(frozen=True)
class TierSampling:
    """``[sampling.tiers.X]``: relative weight, planned annual rate and cap (checks per year)."""

    weight: float
    annual_rate: float
    max_per_year: float
    flag: str


@dataclass(frozen=True)
class InspectorPolicy:
    """``[sampling.inspectors]``: the second random (inspectors per entity, workload cap)."""

    per_entity: int = 2
    max_per_inspector: int = 40
    no_repeat_consecutive: bool = True


@dataclass(frozen=True)
class SamplingPolicy:
    """``[sampling]``: the inclusion-probability design of random inspection campaigns.

    ``alpha`` is the exponent on the calibrated probability within a tier (0 = flat); it applies
    only when ``scale_by_probability``. ``overall_rate_band`` bounds the campaign's overall rate
    when ``clip_budget_to_band``.
    """

    tiers: Mapping[str, TierSampling]
    min_inclusion_prob: float
    must_include: tuple[str, ...]
    scale_by_probability: bool = False
    alpha: float = 1.0
    entity_type_factor_scope: str = "all"
    entity_type_factor: Mapping[str, float] = field(default_factory=dict)
    overall_rate_band: tuple[float, float] = (0.0, 1.0)
    clip_budget_to_band: bool = False
    inspectors: InspectorPolicy = field(default_factory=InspectorPolicy)


@dataclass(frozen=True)
class MonitoringPolicy:
    """``[monitoring]``: stability (PSI/CSI) and discrimination thresholds: ``*_warn`` → status
    ``watch``, ``*_retrain`` and ``auc_drop_retrain`` → status ``retrain``."""

    psi_warn: float
    psi_retrain: float
    csi_warn: float
    csi_retrain: float
    auc_drop_retrain: float


@dataclass(frozen=True)
class Policy:
    """A validated policy: the parsed TOML (``raw``) and typed, read-only views of its sections."""

    raw: dict[str, Any]
    source: str

    @property
    def name(self) -> str:
        return self.raw["meta"]["name"]

    @property
    def version(self) -> str:
        return self.raw["meta"]["version"]

    @property
    def title(self) -> Label:
        return Label(self.raw["meta"]["title_zh"], self.raw["meta"]["title_en"])

    @functools.cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON form of the policy (independent of TOML formatting)."""
        return config_sha256(self.raw)

    @functools.cached_property
    def tiers(self) -> TierPolicy:
        t = self.raw["tiers"]
        return TierPolicy(t["method"], _ro({k: float(t["shares"][k]) for k in TIERS}),
                          _ro({k: float(t["thresholds"][k]) for k in TIERS[:-1]}),
                          _ro({k: Label(**t["labels"][k]) for k in TIERS}))

    def __getstate__(self) -> dict[str, Any]:
        return {"raw": self.raw, "source": self.source}   # the views are rebuilt, not pickled

    def tier_label(self, tier: str, lang: str = "zh") -> str:
        return getattr(self.tiers.labels[tier], lang)

    @functools.cached_property
    def repair(self) -> RepairPolicy:
        return RepairPolicy(**{k: float(v) for k, v in self.raw["repair"].items()})

    @functools.cached_property
    def overrides(self) -> OverridePolicy:
        o = dict(self.raw["overrides"])
        o["adverse_conduct_results"] = tuple(o["adverse_conduct_results"])
        return OverridePolicy(**o)

    @functools.cached_property
    def labels(self) -> LabelPolicy:
        lab = self.raw["labels"]
        return LabelPolicy(int(lab["horizon_days"]), bool(lab.get("general_penalty", True)),
                           tuple(lab["adverse_results"]), tuple(lab.get("abnormal_operation_exclude_reasons", ())),
                           bool(lab.get("serious_dishonest", True)))

    @functools.cached_property
    def sampling(self) -> SamplingPolicy:
        s = dict(self.raw["sampling"])
        s["tiers"] = _ro({k: TierSampling(**{"flag": "normal", **s["tiers"][k]}) for k in TIERS})
        s["must_include"] = tuple(s.get("must_include", ()))
        s["entity_type_factor"] = _ro({k: float(v) for k, v in (s.get("entity_type_factor") or {}).items()})
        if "overall_rate_band" in s:
            s["overall_rate_band"] = tuple(float(b) for b in s["overall_rate_band"])
        s["inspectors"] = InspectorPolicy(**s.get("inspectors", {}))
        return SamplingPolicy(**s)

    @functools.cached_property
    def monitoring(self) -> MonitoringPolicy:
        return MonitoringPolicy(**{k: float(v) for k, v in self.raw["monitoring"].items()})


def _ro(d: dict) -> Mapping:
    return MappingProxyType(d)


SECTIONS = ("meta", "tiers", "repair", "overrides", "labels", "sampling", "monitoring")


def _known(d: dict, allowed: Sequence[str], src: str, where: str) -> None:
    """Refuse settings nobody reads (a typo would otherwise be ignored silently)."""
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        place = f" [{where}]" if where else ""
        raise ConfigError(f"{src}{place}: unknown setting(s) {unknown}; expected some of {sorted(allowed)}")


def _validate(raw: dict, src: str) -> None:
    for section in SECTIONS:
        if not isinstance(raw.get(section), dict):
            raise ConfigError(f"{src}: missing section [{section}]")
    _known(raw, SECTIONS, src, "")
    _known(raw["meta"], ("name", "version", "title_zh", "title_en"), src, "meta")
    for section, view in (("tiers", TierPolicy), ("repair", RepairPolicy), ("overrides", OverridePolicy),
                          ("labels", LabelPolicy), ("sampling", SamplingPolicy), ("monitoring", MonitoringPolicy)):
        _known(raw[section], [f.name for f in fields(view)], src, section)
    for k, tc in raw["sampling"].get("tiers", {}).items():
        _known(tc if isinstance(tc, dict) else {}, [f.name for f in fields(TierSampling)], src, f"sampling.tiers.{k}")
    _known(raw["sampling"].get("inspectors", {}), [f.name for f in fields(InspectorPolicy)], src, "sampling.inspectors")
    meta = raw["meta"]
    for k in ("name", "version", "title_zh", "title_en"):
        if not isinstance(meta.get(k), str):
            raise ConfigError(f"{src} [meta].{k}: expected a string")
    t = raw["tiers"]
    if t.get("method") not in ("shares", "thresholds"):
        raise ConfigError(f"{src} [tiers].method: expected 'shares' or 'thresholds', got {t.get('method')!r}")
    shares = t.get("shares", {})
    if set(shares) != set(TIERS):
        raise ConfigError(f"{src} [tiers].shares: needs exactly the keys {list(TIERS)}")
    for k in TIERS:
        _num(shares, k, f"{src} [tiers].shares", 0.0, 1.0)
    if abs(sum(shares.values()) - 1.0) > 1e-9:
        raise ConfigError(f"{src} [tiers].shares: must sum to 1, sums to {sum(shares.values())}")
    th = t.get("thresholds", {})
    vals = [_num(th, k, f"{src} [tiers].thresholds", 0.0, 1.0) for k in TIERS[:-1]]
    if vals != sorted(vals) or len(set(vals)) != len(vals):
        raise ConfigError(f"{src} [tiers].thresholds: A < B < C required, got {vals}")
    for k in TIERS:
        lab = t.get("labels", {}).get(k, {})
        if not (isinstance(lab.get("zh"), str) and isinstance(lab.get("en"), str)):
            raise ConfigError(f"{src} [tiers.labels.{k}]: needs 'zh' and 'en' strings")
    r = raw["repair"]
    for k in ("general_penalty_days", "low_fine_max_cny", "low_fine_days", "warning_days", "simple_procedure_days"):
        _num(r, k, f"{src} [repair]", 0)
    o = raw["overrides"]
    _tier(o, "serious_dishonest_tier", f"{src} [overrides]")
    _tier(o, "abnormal_operation_min_tier", f"{src} [overrides]")
    _tier(o, "adverse_conduct_min_tier", f"{src} [overrides]")
    _tier(o, "new_entity_tier", f"{src} [overrides]")
    _codes(o, "adverse_conduct_results", f"{src} [overrides]", INSPECTION_RESULTS)
    _num(o, "adverse_conduct_days", f"{src} [overrides]", 0)
    _num(o, "new_entity_days", f"{src} [overrides]", 0)
    if any(k in o for k in HEAVY_PENALTY_KEYS):  # optional rule (policies before 1.1.0 lack it)
        for k in HEAVY_PENALTY_KEYS:
            if k.endswith("_tier"):
                _tier(o, k, f"{src} [overrides]")
            else:
                _num(o, k, f"{src} [overrides]", 0 if k.endswith("_cny") else 1)
        if o["severe_penalties_min_count"] < o["heavy_penalties_min_count"]:
            raise ConfigError(f"{src} [overrides]: severe_penalties_min_count must be >= heavy_penalties_min_count")
    lab = raw["labels"]
    _num(lab, "horizon_days", f"{src} [labels]", 1, MAX_HORIZON_DAYS)
    if not isinstance(lab["horizon_days"], int):
        raise ConfigError(f"{src} [labels].horizon_days: expected a whole number of days, got {lab['horizon_days']!r}")
    _codes(lab, "adverse_results", f"{src} [labels]", INSPECTION_RESULTS)
    for k in ("general_penalty", "serious_dishonest"):
        if not isinstance(lab.get(k, True), bool):
            raise ConfigError(f"{src} [labels].{k}: expected true or false, got {lab[k]!r}")
    if "abnormal_operation_exclude_reasons" in lab:
        _codes(lab, "abnormal_operation_exclude_reasons", f"{src} [labels]", LIST_REASONS)  # list_records.reason
    s = raw["sampling"]
    _num(s, "min_inclusion_prob", f"{src} [sampling]", 0.0, 1.0)
    if s["min_inclusion_prob"] <= 0:
        raise ConfigError(f"{src} [sampling].min_inclusion_prob: must be > 0 (no entity is exempt)")
    _codes(s, "must_include", f"{src} [sampling]", ("serious_dishonest", "abnormal_operation"))
    for k in TIERS:
        tc = s.get("tiers", {}).get(k)
        if not isinstance(tc, dict):
            raise ConfigError(f"{src} [sampling.tiers.{k}]: missing")
        _num(tc, "weight", f"{src} [sampling.tiers.{k}]", 0.0)
        if tc["weight"] <= 0:
            raise ConfigError(f"{src} [sampling.tiers.{k}].weight: must be > 0 (no tier is exempt)")
        _num(tc, "annual_rate", f"{src} [sampling.tiers.{k}]", 0.0, 1.0)
        _num(tc, "max_per_year", f"{src} [sampling.tiers.{k}]", 0.0)
        if tc["max_per_year"] <= 0:
            raise ConfigError(f"{src} [sampling.tiers.{k}].max_per_year: must be > 0 (no tier is exempt)")
        if tc["annual_rate"] > tc["max_per_year"]:
            raise ConfigError(f"{src} [sampling.tiers.{k}]: annual_rate {tc['annual_rate']} exceeds "
                              f"max_per_year {tc['max_per_year']}")
        flags = tuple(POSTURE_ZH)
        if tc.get("flag", "normal") not in flags:
            raise ConfigError(f"{src} [sampling.tiers.{k}].flag: expected one of {list(flags)}, got {tc.get('flag')!r}")
    w = [s["tiers"][k]["weight"] for k in TIERS]
    if w != sorted(w):
        raise ConfigError(f"{src} [sampling.tiers]: weights must not decrease from A to D, got {w}")
    if not isinstance(s.get("scale_by_probability", False), bool):
        raise ConfigError(f"{src} [sampling].scale_by_probability: expected true or false")
    if "alpha" in s:   # optional (policies before 1.2.0 lack it: scale_by_probability means alpha 1)
        _num(s, "alpha", f"{src} [sampling]", 0.0, 4.0)
    if not isinstance(s.get("clip_budget_to_band", False), bool):
        raise ConfigError(f"{src} [sampling].clip_budget_to_band: expected true or false")
    scope = s.get("entity_type_factor_scope", "all")
    if scope not in ("all", "routine", "none"):
        raise ConfigError(f"{src} [sampling].entity_type_factor_scope: expected 'all', 'routine' (tiers A–B) "
                          f"or 'none', got {scope!r}")
    band = s.get("overall_rate_band", [0.0, 1.0])
    if (not isinstance(band, list) or len(band) != 2 or any(isinstance(b, bool) or not isinstance(b, int | float) for b in band)
            or not 0 <= band[0] <= band[1] <= 1):
        raise ConfigError(f"{src} [sampling].overall_rate_band: expected [low, high] with 0 ≤ low ≤ high ≤ 1, got {band!r}")
    for k, v in s.get("entity_type_factor", {}).items():
        if k not in ENTITY_TYPES:
            raise ConfigError(f"{src} [sampling.entity_type_factor].{k}: unknown entity type "
                              f"(expected one of {', '.join(ENTITY_TYPES)})")
        _num(s["entity_type_factor"], k, f"{src} [sampling.entity_type_factor]", 0.0)
        if v <= 0:
            raise ConfigError(f"{src} [sampling.entity_type_factor].{k}: must be > 0")
    ins = s.get("inspectors", {})
    for k in ("per_entity", "max_per_inspector"):
        _num(ins, k, f"{src} [sampling.inspectors]", 1)
        if not isinstance(ins[k], int):
            raise ConfigError(f"{src} [sampling.inspectors].{k}: expected a whole number, got {ins[k]!r}")
    if not isinstance(ins.get("no_repeat_consecutive", True), bool):
        raise ConfigError(f"{src} [sampling.inspectors].no_repeat_consecutive: expected true or false")
    m = raw["monitoring"]
    for k in ("psi_warn", "psi_retrain", "csi_warn", "csi_retrain", "auc_drop_retrain"):
        _num(m, k, f"{src} [monitoring]", 0.0)


def policy_from_raw(raw: dict[str, Any], source: str) -> Policy:
    """A Policy from a parsed TOML mapping (e.g. a modified copy of ``policy.raw``), validated
    (ConfigError naming ``source``)."""
    check_finite(raw, source)
    _validate(raw, source)
    return Policy(raw=raw, source=source)


def load_policy(policy: str | Path | Policy | None = None) -> Policy:
    """Load and validate a policy: a shipped name (``"yiwu-2022"``), a TOML path, or a Policy."""
    if isinstance(policy, Policy):
        return policy
    cfg = read_config(policy or DEFAULT_POLICY, "policy", "policy")
    _validate(cfg.raw, cfg.source)
    return Policy(raw=cfg.raw, source=cfg.source)
