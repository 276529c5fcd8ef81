"""Configuration files on the ground floor: one loader for policies, catalogues and profiles.

Every configuration file goes "shipped name or path → read (UTF-8, else a named error) → parse
(TOML) → check every number is finite → validate (the caller's rules) → hash". The hash is one
form for all of them: SHA-256 of the canonical JSON of the parsed mapping (sorted keys, no ASCII
escaping), so it does not depend on comments or formatting. Any failure is a
:class:`~yiwu_credit.errors.ConfigError` (exit 4) naming the file and, for values, the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["ConfigText", "check_finite", "config_sha256", "locate", "parse_toml", "read_config", "read_text_file"]


@dataclass(frozen=True)
class ConfigText:
    """A configuration file read and parsed: the mapping, where it came from, its hash."""

    raw: dict[str, Any]
    source: str
    sha256: str


def config_sha256(raw: Any) -> str:
    """The one hash form of a configuration: SHA-256 of its canonical JSON."""
    blob = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def read_text_file(path: Path, source: str) -> str:
    """A UTF-8 text file (a BOM is allowed); a binary or other-encoded file is a ConfigError."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{source}: cannot read ({e.strerror or e})") from None
    if b"\x00" in data[:8192]:
        raise ConfigError(f"{source}: a binary file, not a TOML text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{source}: not UTF-8 text (byte {e.start} cannot be decoded; a GB18030 or other "
                          "encoding?): save the file as UTF-8") from None


def parse_toml(text: str, source: str) -> dict:
    """Parse TOML text; a syntax error becomes a ConfigError naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None


def check_finite(raw: Any, source: str, where: str = "") -> None:
    """Refuse ``nan`` and ``inf`` anywhere in a parsed configuration (ConfigError naming the key)."""
    if isinstance(raw, dict):
        for k, v in raw.items():
            check_finite(v, source, f"{where}.{k}" if where else str(k))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            check_finite(v, source, f"{where}[{i}]")
    elif isinstance(raw, float) and not math.isfinite(raw):
        raise ConfigError(f"{source}: {where} = {raw}: every number must be finite (no nan or inf)")


def locate(ref: str | Path, kind: str, folder: str, suffix: str = "") -> tuple[Path, str]:
    """Where a configuration or bundle named ``ref`` lives, and how to name it in messages: a path
    when ``ref`` names an existing file (a folder, for a bundle: ``suffix`` ""), contains a path separator or ends in ``suffix``;
    otherwise a shipped name (``resources/<folder>/<ref><suffix>`` in the package; ConfigError
    listing the shipped names when there is none). The one "shipped name or path" rule of
    policies, catalogues, profiles and model bundles."""
    text = str(ref)
    path = Path(ref)
    exists = path.is_file() if suffix else path.is_dir()   # a folder named like a shipped policy is no policy
    if exists or "/" in text or "\\" in text or (suffix and path.suffix.lower() == suffix):
        return path, text
    base = resources.files("yiwu_credit") / "resources" / folder
    res = base / f"{text}{suffix}"
    if not (res.is_file() if suffix else res.is_dir()):
        shipped = sorted(p.name[: len(p.name) - len(suffix)] for p in base.iterdir()
                         if (p.name.endswith(suffix) if suffix else p.is_dir()) and not p.name.startswith(("_", ".")))
        plural = "policies" if kind == "policy" else f"{kind}s"
        raise ConfigError(f"unknown {kind} {text!r}; shipped {plural}: {shipped}, or give a path")
    return Path(str(res)), f"{kind} {text}"


def read_config(ref: str | Path | None, kind: str, folder: str, default: str | None = None) -> ConfigText:
    """Read a configuration: ``ref`` is a shipped name (a file ``resources/<folder>/<ref>.toml`` of
    the package) or a path to a ``.toml`` file; ``None`` means ``default``. ``kind`` names it in
    messages ("policy", "profile", "catalogue"). Numbers are checked finite; the caller validates
    the rest."""
    ref = default if ref is None else ref
    if ref is None:
        raise ConfigError(f"no {kind} given")
    path, source = locate(ref, kind, folder, ".toml")
    if not path.is_file():
        raise ConfigError(f"{kind} file not found: {path}")
    text = read_text_file(path, source)
    raw = parse_toml(text, source)
    check_finite(raw, source)
    return ConfigText(raw, source, config_sha256(raw))
