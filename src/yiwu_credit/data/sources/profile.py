"""Source profiles: how a bureau's export maps onto the data contract.

A profile is a TOML file (shipped: ``resources/profiles/zh.toml``) with, per contract table, the file
or database relation names, the column headers (with aliases) and headers to ignore; per code
column, the source values of each contract code (exact values, and regular expressions written
``"re:<pattern>"`` for free-text columns whose values are sentences, e.g. list_records.reason);
and extra date formats. The default profile is
the contract itself: English file names and headers, contract codes, ISO dates, extra columns
allowed. Validated on load; every problem is a :class:`~yiwu_credit.errors.ConfigError` naming
the file and key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import read_config
from ...errors import ConfigError
from ..contract import TABLES
from ..dates import format_pattern

__all__ = ["CONTRACT", "PATTERN_PREFIX", "Profile", "TableMap", "load_profile"]

#: A code value starting with this is a regular expression (Python ``re``, searched anywhere in
#: the value after the value is read as a key: NFKC, format characters removed, trimmed).
PATTERN_PREFIX = "re:"


@dataclass(frozen=True)
class TableMap:
    """One table of a profile: source names, ``columns`` contract column → accepted headers."""

    names: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]]
    ignore: tuple[str, ...] = ()
    sheet: str | None = None


@dataclass(frozen=True)
class Profile:
    """A validated source profile (see the module docstring)."""

    name: str
    version: str
    source: str
    tables: Mapping[str, TableMap]
    codes: Mapping[str, Mapping[str, str]]  # contract column (or "bool") → source value → contract code
    date_formats: tuple[str, ...] = ()
    strict_headers: bool = False
    sha256: str = ""
    title: str = ""
    #: contract column → ((regular expression, contract code), ...), in the order written
    patterns: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def header_map(self, table: str, headers: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
        """Map a source header row: (contract column → source header, missing columns with the
        headers that were expected, unmapped headers). A contract column whose headers appear more
        than once is reported as missing with the reason."""
        tm = self.tables[table]
        present = {h.strip(): h for h in headers}
        found: dict[str, str] = {}
        missing: list[str] = []
        for col in TABLES[table].column_names:
            cands = [h for h in (*tm.columns.get(col, ()), col) if h in present]
            cands = list(dict.fromkeys(cands))
            if len(cands) == 1:
                found[col] = present[cands[0]]
            elif len(cands) > 1:
                missing.append(f"{col} (ambiguous: headers {cands} all map to it)")
            else:
                missing.append(f"{col} (expected header {' or '.join(repr(h) for h in tm.columns.get(col, (col,)))})")
        used = set(found.values())
        unmapped = [h for h in headers if h not in used and h.strip() not in tm.ignore] if self.strict_headers else []
        return found, missing, unmapped


def _contract() -> Profile:
    tables = {n: TableMap(names=(n,), columns={c: (c,) for c in t.column_names}) for n, t in TABLES.items()}
    return Profile(name="contract", version="1", source="the data contract", tables=tables, codes={},
                   title="data contract (English names, ISO dates)")


CONTRACT = _contract()


def _strs(v: Any, where: str) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x.strip() for x in v):
        raise ConfigError(f"{where}: expected a non-empty list of names, got {v!r}")
    return tuple(x.strip() for x in v)


def _names(v: Any, where: str) -> tuple[str, ...]:
    """Table names: a file name in the dataset directory (or a relation), never a path."""
    names = _strs(v, where)
    for n in names:
        if any(c in n for c in "/\\\0") or n in (".", "..") or (len(n) > 1 and n[1] == ":" and n[0].isalpha()):
            raise ConfigError(f"{where}: {n!r} is not a table name: a name is a file name inside the dataset "
                              "directory (or a database relation), without a path, '..' or a drive")
    return names


def _pattern(p: str, where: str) -> str:
    """A ``re:`` pattern, checked: it compiles, does not match empty text (it would match every
    value) and is stable under NFKC (values are matched after NFKC, so a full-width character in
    the pattern could never match)."""
    p = p.strip()
    try:
        rx = re.compile(p)
    except re.error as e:
        raise ConfigError(f"{where}: bad regular expression {PATTERN_PREFIX}{p!r}: {e}") from None
    if not p or rx.search("") is not None:
        raise ConfigError(f"{where}: regular expression {PATTERN_PREFIX}{p!r} matches empty text, so it "
                          "would match every value")
    if unicodedata.normalize("NFKC", p) != p:
        raise ConfigError(f"{where}: regular expression {PATTERN_PREFIX}{p!r} has characters that Unicode "
                          f"NFKC changes (full-width letters or brackets): values are matched after NFKC, "
                          f"write {unicodedata.normalize('NFKC', p)!r}")
    return p


def _validate(raw: dict, src: str) -> Profile:
    meta = raw.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise ConfigError(f"{src}: [meta] needs name = \"...\"")
    unknown = set(raw) - {"meta", "tables", "codes", "dates"}
    if unknown:
        raise ConfigError(f"{src}: unknown section(s) {sorted(unknown)}; expected meta, tables, codes, dates")
    tables_raw = raw.get("tables", {})
    if not isinstance(tables_raw, dict):
        raise ConfigError(f"{src}: [tables] must be a table of contract tables")
    bad = set(tables_raw) - set(TABLES)
    if bad:
        raise ConfigError(f"{src}: [tables.{sorted(bad)[0]}] is not a contract table; tables are {list(TABLES)}")
    tables = {}
    for name, t in TABLES.items():
        cfg = tables_raw.get(name, {})
        where = f"{src} [tables.{name}]"
        if not isinstance(cfg, dict):
            raise ConfigError(f"{where}: must be a table")
        cols_raw = cfg.get("columns", {})
        if not isinstance(cols_raw, dict):
            raise ConfigError(f"{where}.columns: must be a table column = [headers]")
        extra = set(cols_raw) - set(t.column_names)
        if extra:
            raise ConfigError(f"{where}.columns: {sorted(extra)} not column(s) of {name}; columns are {t.column_names}")
        cols = {c: _strs(cols_raw[c], f"{where}.columns.{c}") if c in cols_raw else (c,) for c in t.column_names}
        seen: dict[str, str] = {}
        for c, hs in cols.items():
            for h in hs:
                if h in seen and seen[h] != c:
                    raise ConfigError(f"{where}.columns: header {h!r} maps to both {seen[h]} and {c}")
                seen[h] = c
        sheet = cfg.get("sheet")
        if sheet is not None and not isinstance(sheet, str):
            raise ConfigError(f"{where}.sheet: expected a sheet name")
        tables[name] = TableMap(names=_names(cfg.get("names", [name]), f"{where}.names"), columns=cols,
                                ignore=tuple(cfg.get("ignore", ())), sheet=sheet or None)
    code_cols = {c.name: c.codes for t in TABLES.values() for c in t.columns if c.kind == "code"}
    codes: dict[str, dict[str, str]] = {}
    patterns: dict[str, tuple[tuple[str, str], ...]] = {}
    for col, m in raw.get("codes", {}).items():
        where = f"{src} [codes.{col}]"
        allowed = ("true", "false") if col == "bool" else code_cols.get(col)
        if allowed is None:
            raise ConfigError(f"{where}: {col!r} is not a code column; code columns are {sorted(code_cols)} and bool")
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: must be a table code = [source values]")
        values: dict[str, str] = {}
        pats: list[tuple[str, str]] = []
        for code, srcs in m.items():
            if code not in allowed:
                raise ConfigError(f"{where}: {code!r} is not one of {list(allowed)}")
            for v in _strs(srcs, f"{where}.{code}"):
                if v.startswith(PATTERN_PREFIX) and col != "bool":
                    pats.append((_pattern(v[len(PATTERN_PREFIX):], f"{where}.{code}"), code))
                    continue
                if v in values and values[v] != code:
                    raise ConfigError(f"{where}: value {v!r} maps to both {values[v]} and {code}")
                values[v] = code
        codes[col] = values
        if pats:
            patterns[col] = tuple(pats)
    dates = raw.get("dates", {})
    fmts = dates.get("formats", []) if isinstance(dates, dict) else None
    if not isinstance(fmts, list) or not all(isinstance(f, str) and "%" in f for f in fmts):
        raise ConfigError(f"{src} [dates].formats: expected a list of strftime formats like \"%Y/%m/%d\"")
    for fmt in fmts:  # whole dates only: year, month and day, each once (docs/data-contract.md)
        format_pattern(fmt, f"{src} [dates].formats:")
    strict = meta.get("strict_headers", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"{src} [meta].strict_headers: expected true or false")
    return Profile(name=meta["name"], version=str(meta.get("version", "")), source=src, tables=tables,
                   codes=codes, date_formats=tuple(fmts), strict_headers=strict,
                   title=str(meta.get("title_en", "")), patterns=patterns)


def load_profile(profile: str | Path | Profile | None = None) -> Profile:
    """A shipped profile by name (``"zh"``), a TOML path, a Profile, or None for the contract."""
    if profile is None or isinstance(profile, Profile):
        return profile or CONTRACT
    if str(profile) == "contract":
        return CONTRACT
    cfg = read_config(profile, "profile", "profiles")
    p = _validate(cfg.raw, cfg.source)
    return Profile(**{**p.__dict__, "sha256": cfg.sha256})
