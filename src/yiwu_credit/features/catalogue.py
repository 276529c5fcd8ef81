"""The declarative feature catalogue: loading, validation, hashing.

The catalogue (``features/catalogue.toml``) is data reviewed by domain experts; this module
checks it and expands windows into concrete output features.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import check_finite, config_sha256, read_config
from ..data.contract import ENTITY_TYPES, TABLES, YIWU_TOWNS
from ..errors import ConfigError

__all__ = ["AGGREGATIONS", "CATEGORIES", "DERIVED", "FAMILIES", "OTHER_TOWN", "SECTIONS",
    "TAX_RANK", "TRANSFORMS", "Catalogue", "Feature", "FeatureSpec", "load_catalogue",
    "parse_catalogue", "window_text"]

AGGREGATIONS = ("attribute", "count", "sum", "max", "days_since_last", "days_since_first",
                "decayed_count", "share", "flag", "growth", "streak", "latest")
TRANSFORMS = ("age_days", "value", "category", "section")
FAMILIES = ("basic", "dynamic", "supervision", "judicial", "social", "tax")
#: Columns derived point-in-time (see features.py), usable in filters.
DERIVED = {"annual_reports": {"status": ("on_time", "late", "missing")}}
_NEED_COLUMN = ("sum", "max", "latest", "attribute")
_NEED_WINDOW = ("growth", "days_since_last")
SECTIONS = tuple("ABCDEFGHIJKLMNOPQRST")
OTHER_TOWN = "其他"
CATEGORIES = {"entity_type": ENTITY_TYPES, "section": SECTIONS, "town": (*YIWU_TOWNS, OTHER_TOWN)}
TAX_RANK = {"A": 0, "B": 1, "M": 2, "C": 3, "D": 4}

_WINDOW_ZH = {30: "一个月", 90: "三个月", 180: "半年", 365: "一年", 730: "两年", 1095: "三年"}
_WINDOW_EN = {30: "month", 90: "3 months", 180: "6 months", 365: "year", 730: "2 years", 1095: "3 years"}


def window_text(days: int | None, lang: str) -> str:
    """Human text for a window ("近一年" / "past year")."""
    if days is None:
        return "" if lang == "zh" else "record"
    return (_WINDOW_ZH.get(days, f"{days}天") if lang == "zh" else _WINDOW_EN.get(days, f"{days} days"))


@dataclass(frozen=True)
class FeatureSpec:
    """One catalogue entry (before window expansion)."""

    name: str
    family: str
    table: str
    aggregation: str
    direction: int
    zh: str
    en: str
    reason_zh: str
    reason_en: str
    column: str | None = None
    filter: tuple[tuple[str, Any], ...] = ()
    windows: tuple[int, ...] = ()
    half_life: float | None = None
    transform: str | None = None
    reason_missing_zh: str | None = None
    reason_missing_en: str | None = None
    special_codes: tuple[float, ...] = ()


@dataclass(frozen=True)
class Feature:
    """One output column: a spec at one window (or none)."""

    name: str
    spec: FeatureSpec
    window: int | None

    @property
    def is_categorical(self) -> bool:
        return self.spec.transform in ("category", "section")

    @property
    def categories(self) -> tuple[str, ...] | None:
        if self.spec.transform == "section":
            return CATEGORIES["section"]
        if self.spec.transform == "category":
            return CATEGORIES[self.spec.column]
        return None

    def reasons(self, values: np.ndarray | pd.Series, lang: str = "zh") -> np.ndarray:
        """Vectorised :meth:`reason` for many values (object array of str)."""
        vals = pd.Series(values)
        tpl = self.spec.reason_zh if lang == "zh" else self.spec.reason_en
        alt = self.spec.reason_missing_zh if lang == "zh" else self.spec.reason_missing_en
        win = window_text(self.window, lang)
        missing = vals.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(vals.dtype):
            v = np.nan_to_num(vals.to_numpy(dtype="float64", na_value=np.nan))
            whole = (np.abs(v - np.round(v)) < 1e-9) | (np.abs(v) >= 100)
            txt = np.empty(len(v), dtype=object)
            txt[whole] = pd.Series(np.round(v[whole]).astype(np.int64)).astype(str).to_numpy(dtype=object)
            txt[~whole] = np.char.mod("%.2f", v[~whole]).astype(object)
        else:
            txt = vals.astype(object).map(str).to_numpy()
        txt[missing] = "缺失" if lang == "zh" else "missing"
        pre, _, post = tpl.replace("{window}", win).partition("{value}")
        out = (pre + pd.Series(txt, dtype=object) + post).to_numpy(dtype=object, copy=True) if "{value}" in tpl else \
            np.full(len(vals), tpl.replace("{window}", win), dtype=object)
        if alt and missing.any():
            out[missing] = alt.replace("{window}", win).replace("{value}", txt[missing][0])
        return out

    def reason(self, value: Any, lang: str = "zh") -> str:
        tpl = self.spec.reason_zh if lang == "zh" else self.spec.reason_en
        missing = value is None or (isinstance(value, float) and value != value)
        alt = self.spec.reason_missing_zh if lang == "zh" else self.spec.reason_missing_en
        if missing and alt:
            tpl = alt
        if value is None or (isinstance(value, float) and value != value):
            value = "缺失" if lang == "zh" else "missing"
        elif isinstance(value, float):
            value = f"{value:.0f}" if abs(value - round(value)) < 1e-9 or abs(value) >= 100 else f"{value:.2f}"
        return tpl.format(value=value, window=window_text(self.window, lang))


@dataclass(frozen=True)
class Catalogue:
    """A validated catalogue. ``features`` are the expanded output columns in order."""

    name: str
    version: str
    specs: tuple[FeatureSpec, ...]
    sources: dict[str, Any]
    sha256: str
    source: str

    @cached_property
    def features(self) -> tuple[Feature, ...]:
        out = []
        for s in self.specs:
            if s.windows:
                out.extend(Feature(f"{s.name}_{w}d", s, w) for w in s.windows)
            else:
                out.append(Feature(s.name, s, None))
        return tuple(out)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def directions(self) -> dict[str, int]:
        return {f.name: f.spec.direction for f in self.features}


def _spec(i: int, raw: dict, src: str) -> FeatureSpec:
    where = f"{src} feature #{i + 1} ({raw.get('name', '?')})"
    for k in ("name", "family", "table", "aggregation", "zh", "en", "reason_zh", "reason_en"):
        if not isinstance(raw.get(k), str) or not raw[k]:
            raise ConfigError(f"{where}: missing or empty '{k}'")
    known = {"name", "family", "table", "aggregation", "column", "filter", "windows", "half_life",
             "transform", "direction", "zh", "en", "reason_zh", "reason_en", "reason_missing_zh",
             "reason_missing_en", "special_codes"}
    extra = set(raw) - known
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}")
    if raw["family"] not in FAMILIES:
        raise ConfigError(f"{where}: unknown family {raw['family']!r}; expected one of {list(FAMILIES)}")
    table = raw["table"]
    if table not in TABLES:
        raise ConfigError(f"{where}: unknown table {table!r}; expected one of {list(TABLES)}")
    agg = raw["aggregation"]
    if agg not in AGGREGATIONS:
        raise ConfigError(f"{where}: unknown aggregation {agg!r}; expected one of {list(AGGREGATIONS)}")
    cols = {c.name: c for c in TABLES[table].columns}
    derived = DERIVED.get(table, {})
    column = raw.get("column")
    if agg in _NEED_COLUMN and column is None:
        raise ConfigError(f"{where}: aggregation {agg!r} needs a 'column'")
    if column is not None and column not in cols:
        raise ConfigError(f"{where}: unknown column {column!r} in table {table!r}")
    if agg in ("sum", "max") and cols[column].kind not in ("float", "int"):
        raise ConfigError(f"{where}: {agg} needs a numeric column, {column!r} is {cols[column].kind}")
    if (agg == "attribute") != (table == "entities"):
        raise ConfigError(f"{where}: 'attribute' is the aggregation for table 'entities' and only for it")
    transform = raw.get("transform")
    if agg == "attribute":
        if transform not in TRANSFORMS:
            raise ConfigError(f"{where}: attribute needs transform in {list(TRANSFORMS)}, got {transform!r}")
        if transform == "category" and column not in CATEGORIES:
            raise ConfigError(f"{where}: no fixed category list for column {column!r}")
    elif transform is not None:
        raise ConfigError(f"{where}: 'transform' applies only to attributes")
    if agg == "streak" and table != "annual_reports":
        raise ConfigError(f"{where}: 'streak' is defined for annual_reports (one row per year)")
    if agg == "latest" and table != "tax_ratings":
        raise ConfigError(f"{where}: 'latest' is defined for tax_ratings")
    filt = raw.get("filter", {})
    if not isinstance(filt, dict):
        raise ConfigError(f"{where}: 'filter' must be a table of column = value(s)")
    for fc, fv in filt.items():
        if fc in derived:
            allowed = derived[fc]
        elif fc in cols:
            allowed = cols[fc].codes
            if cols[fc].kind == "bool":
                allowed = (True, False)
        else:
            raise ConfigError(f"{where}: filter on unknown column {fc!r} of table {table!r}")
        vals = fv if isinstance(fv, list) else [fv]
        if allowed is not None and any(v not in allowed for v in vals):
            raise ConfigError(f"{where}: filter {fc} = {fv!r} not in {list(allowed)}")
    windows = raw.get("windows", [])
    if not isinstance(windows, list) or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in windows):
        raise ConfigError(f"{where}: 'windows' must be a list of positive whole days, got {windows!r}")
    if sorted(set(windows)) != windows:
        raise ConfigError(f"{where}: 'windows' must be increasing without repeats, got {windows!r}")
    if agg in _NEED_WINDOW and not windows:
        raise ConfigError(f"{where}: aggregation {agg!r} needs 'windows'")
    if agg in ("attribute", "flag", "streak", "latest", "days_since_first") and windows:
        raise ConfigError(f"{where}: aggregation {agg!r} takes no 'windows'")
    half = raw.get("half_life")
    if (agg == "decayed_count") != (half is not None):
        raise ConfigError(f"{where}: 'half_life' (days > 0) goes with decayed_count and only with it")
    if half is not None and (not isinstance(half, int | float) or half <= 0):
        raise ConfigError(f"{where}: 'half_life' must be > 0 days, got {half!r}")
    direction = raw.get("direction")
    if direction not in (-1, 0, 1) or isinstance(direction, bool):
        raise ConfigError(f"{where}: 'direction' must be -1, 0 or 1, got {direction!r}")
    if transform in ("category", "section") and direction != 0:
        raise ConfigError(f"{where}: a categorical feature has direction 0")
    special = raw.get("special_codes", [])
    if not isinstance(special, list) or any(isinstance(v, bool) or not isinstance(v, int | float) for v in special):
        raise ConfigError(f"{where}: 'special_codes' must be a list of numbers, got {special!r}")
    if special and transform in ("category", "section"):
        raise ConfigError(f"{where}: a categorical feature takes no 'special_codes'")
    for k in ("reason_missing_zh", "reason_missing_en"):
        if k in raw and not isinstance(raw[k], str):
            raise ConfigError(f"{where}: '{k}' must be a string")
    for k in ("reason_zh", "reason_en", *[m for m in ("reason_missing_zh", "reason_missing_en") if m in raw]):
        try:
            raw[k].format(value=1, window="w")
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"{where}: '{k}' may use only {{value}} and {{window}}: {e}") from None
    return FeatureSpec(
        name=raw["name"], family=raw["family"], table=table, aggregation=agg, direction=int(direction),
        zh=raw["zh"], en=raw["en"], reason_zh=raw["reason_zh"], reason_en=raw["reason_en"], column=column,
        filter=tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filt.items())),
        windows=tuple(windows), half_life=half, transform=transform,
        reason_missing_zh=raw.get("reason_missing_zh"), reason_missing_en=raw.get("reason_missing_en"),
        special_codes=tuple(float(v) for v in special),
    )


def parse_catalogue(raw: dict, source: str = "<catalogue>") -> Catalogue:
    """Validate a parsed catalogue dict."""
    check_finite(raw, source)
    meta = raw.get("catalogue", {})
    if not isinstance(meta.get("name"), str) or not isinstance(meta.get("version"), str):
        raise ConfigError(f"{source}: [catalogue] needs 'name' and 'version' strings")
    feats = raw.get("feature")
    if not isinstance(feats, list) or not feats:
        raise ConfigError(f"{source}: no [[feature]] entries")
    specs = tuple(_spec(i, f, source) for i, f in enumerate(feats))
    sources = raw.get("sources", {})
    for t in ("annual_reports", "tax_ratings"):
        d = sources.get(t, {}).get("date_from_year")
        if not (isinstance(d, dict) and 1 <= d.get("month", 0) <= 12 and 1 <= d.get("day", 0) <= 31):
            raise ConfigError(f"{source}: [sources.{t}].date_from_year needs month and day")
    cat = Catalogue(meta["name"], meta["version"], specs, sources, "", source)
    names = cat.names
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: duplicate feature name(s) {dup}")
    sha = config_sha256({"catalogue": meta, "sources": sources, "feature": feats})
    return Catalogue(meta["name"], meta["version"], specs, sources, sha, source)


def load_catalogue(path: str | Path | Catalogue | None = None) -> Catalogue:
    """Load and validate a catalogue TOML (default: the shipped ``features/catalogue.toml``)."""
    if isinstance(path, Catalogue):
        return path
    cfg = read_config(path, "catalogue", "features", default="catalogue")
    return parse_catalogue(cfg.raw, "features/catalogue.toml" if path is None else cfg.source)
