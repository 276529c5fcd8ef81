"""Audit records: how a draw is published, checked and verified (一公开).

* :class:`AuditHasher` is the one frame hasher: ``frame_sha256`` = SHA-256 of the ids in draw
  order concatenated (UTF-8), then their byte lengths as uint32 LE; ``pi_sha256`` = SHA-256 of
  the int64 fixed-point π in draw order. Fed range by range, so one machine and Dask hash alike.
* :func:`audit_header` starts every record (format, algorithm, version, PRN hash, fixed-point
  bits, library version, seed); each design adds its fields.
* :class:`SamplingDesign` is the protocol a sampling design implements — ``select`` (draw),
  ``audit`` (its record), ``check`` (field types) and ``verify`` (recompute and compare).
  :mod:`~yiwu_credit.supervision.verification` dispatches on the record's ``format``. To add a design,
  write one module with an object satisfying the protocol (see ``systematic.SYSTEMATIC_PPS``), list it
  in ``verification.DESIGNS`` and add its tests (exact π by simulation, verify round trip).
* Field checks (:func:`check_fields` and the specs) turn a malformed record into a
  ``ConfigError`` naming the source and field; :class:`VerifyResult` is what verification returns.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..data.dates import is_iso_date, parse_as_of
from ..data.io import write_text
from ..errors import ConfigError, PlanError, UsageError
from .fixedpoint import SCALE, SCALE_BITS
from .prn import M64, PRN_HASH, IdBytes

__all__ = [
    "ALGORITHM_VERSION", "COUNT", "IDS", "OPT_SHA", "OPT_STRS", "POSITIVE", "SEED", "SHA256", "START", "UINT64",
    "AuditHasher",
    "FieldSpec", "SEAL", "SEAL_SCHEME", "SamplingDesign", "VerifyResult", "audit_header", "audit_json", "audit_seal",
    "campaign_window", "check_fields", "diff_ids", "id_list", "is_date", "is_int", "is_num", "missing_fields",
    "precheck", "save_audit", "seal_audit", "seal_problems", "seed_value",
]

ALGORITHM_VERSION = "1"

#: (what is expected, predicate) for one audit field
FieldSpec = tuple[str, Callable[[Any], bool]]


# ============================================================== hashing
class AuditHasher:
    """``frame_sha256`` and ``pi_sha256`` of a draw, fed with the ids and int64 π in draw order.

    Reference: ``sha256(b"".join(b) + b"".join(len(b).to_bytes(4, "little")))`` over
    ``b = id.encode()`` in draw order, and ``sha256(pi_int.astype("<i8").tobytes())``.
    """

    def __init__(self) -> None:
        self._frame, self._pi = hashlib.sha256(), hashlib.sha256()
        self._lens: list[np.ndarray | tuple[int, int]] = []

    def update(self, ids: IdBytes, q: np.ndarray | None = None) -> None:
        """Add the next ids (an :class:`IdBytes` in draw order) and, optionally, their int64 π."""
        self._frame.update(ids.data[ids.offsets[0]:ids.offsets[-1]])
        self._lens.append((ids.width, ids.n) if ids.width is not None else np.diff(ids.offsets).astype("<u4"))
        if q is not None:
            self._pi.update(np.ascontiguousarray(q, dtype="<i8"))

    @property
    def frame_sha256(self) -> str:
        h = self._frame.copy()
        for x in self._lens:
            if isinstance(x, tuple):
                w, n = x
                block = np.full(min(n, 1 << 20), w, "<u4")
                for s0 in range(0, n, len(block)):
                    h.update(block[:min(len(block), n - s0)])
            else:
                h.update(x)
        return h.hexdigest()

    @property
    def pi_sha256(self) -> str:
        return self._pi.hexdigest()


def id_list(ids: pd.Index | Sequence[Any]) -> list[str]:
    """Ids as a JSON-ready list of strings."""
    return [str(x) for x in (ids.tolist() if isinstance(ids, pd.Index) else ids)]


# ============================================================== the record
def _library_version() -> str:
    from .._version import __version__

    return __version__


def seed_value(seed: Any) -> int | str:
    """A seed as recorded: strings as given, integers as int."""
    return seed if isinstance(seed, str) else int(seed)


def audit_header(fmt: str, algorithm: str, seed: Any, version: str = ALGORITHM_VERSION) -> dict[str, Any]:
    """The fields every audit record starts with."""
    return {"format": fmt, "algorithm": algorithm, "algorithm_version": version, "prn_hash": PRN_HASH,
            "fixed_point_bits": SCALE_BITS, "library_version": _library_version(), "seed": seed_value(seed)}


def campaign_window(start: Any, end: Any) -> dict[str, str]:
    """The campaign window ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` (inclusive), checked.

    Accepts ISO date strings, dates or Timestamps; PlanError if unreadable or start > end.
    """
    out = {}
    for k, v in (("start", start), ("end", end)):
        if v is None or isinstance(v, bool | numbers.Number):
            raise PlanError(f"campaign window {k}: expected an ISO date YYYY-MM-DD, got {v!r}")
        try:
            out[k] = parse_as_of(v, "date").strftime("%Y-%m-%d")
        except UsageError as e:
            raise PlanError(f"campaign window {k}: expected an ISO date YYYY-MM-DD, got {v!r} "
                            f"({str(e).removeprefix('date: ')})") from None
    if out["start"] > out["end"]:
        raise PlanError(f"campaign window: start {out['start']} is after end {out['end']}")
    return out


def audit_json(audit: Any) -> str:
    """An audit record (or a draw holding one in ``.audit``) as the UTF-8 JSON text that is
    published (sorted keys, one field a line)."""
    if not isinstance(audit, Mapping):
        audit = audit.audit
    return json.dumps(audit, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def save_audit(audit: Any, path: str | os.PathLike) -> Path:
    """Write an audit record (or a draw) as UTF-8 JSON, atomically."""
    return write_text(path, audit_json(audit))


# ============================================================== the seal
#: the audit field holding the seal, and the seal's scheme
SEAL = "seal"
SEAL_SCHEME = "yiwu-credit/seal/1"


def _canonical(value: Any) -> bytes:
    """The canonical JSON bytes of a value (sorted keys, no spaces, UTF-8): the same before and
    after the published JSON round trip."""
    def plain(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"audit value of type {type(o).__name__} is not JSON")

    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      default=plain).encode("utf-8")


def audit_seal(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The seal of an audit record: SHA-256 of every field but the seal (canonical JSON) and of
    them all together (``sha256``, one value to publish beside the record).

    ``verify`` recomputes the draw itself (seed, start, n, hashes, selected ids, inspectors with the
    roster) but not what later steps merely read — the campaign window, the plan record and its
    parameters, the inspector block without its roster; the seal covers every field, so a hand
    edit of any of them is named. (It is a checksum, not a signature: publish ``sha256`` with the
    draw to bind the record.)
    """
    fields = {k: hashlib.sha256(_canonical(v)).hexdigest() for k, v in sorted(audit.items()) if k != SEAL}
    return {"scheme": SEAL_SCHEME, "sha256": hashlib.sha256(_canonical(fields)).hexdigest(), "fields": fields}


def seal_audit(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its seal (re)made over every other field: what a draw records."""
    body = {k: v for k, v in audit.items() if k != SEAL}
    return {**body, SEAL: audit_seal(body)}


def seal_problems(audit: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(mismatches, unverified)`` of an audit's seal: one message per field changed, added or
    removed since the draw; ``unverified`` when the record has no seal (written before sealing)."""
    seal = audit.get(SEAL)
    if seal is None:
        return [], ["seal: the audit has no seal (written before yiwu-credit sealed its audits); its campaign "
                    "window, plan record and parameters cannot be checked — redraw or re-issue the audit"]
    if not (isinstance(seal, Mapping) and seal.get("scheme") == SEAL_SCHEME and isinstance(seal.get("fields"), Mapping)):
        return [f"seal: not a {SEAL_SCHEME} seal"], []
    want = audit_seal(audit)
    got = seal["fields"]
    mm = [f"seal: field '{k}' was changed after the draw" for k in want["fields"]
          if k in got and got[k] != want["fields"][k]]
    mm += [f"seal: field '{k}' was added after the draw" for k in want["fields"] if k not in got]
    mm += [f"seal: field '{k}' was removed after the draw" for k in got if k not in want["fields"]]
    if not mm and seal.get("sha256") != want["sha256"]:
        mm.append("seal: its sha256 does not match its fields")
    return mm, []


# ============================================================== field checks
def is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _is_ids(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def is_date(v: Any) -> bool:
    """Whether ``v`` is an ISO date string ``YYYY-MM-DD`` (the one parser, :mod:`~yiwu_credit.data.dates`)."""
    return is_iso_date(v)


def _is_sha(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


SEED: FieldSpec = ("an int or a non-empty string", lambda v: is_int(v) or (isinstance(v, str) and v != ""))
SHA256: FieldSpec = ("a SHA-256 hex string", _is_sha)
IDS: FieldSpec = ("a list of entity ids (strings)", _is_ids)
OPT_STRS: FieldSpec = ("null or a list of strings",
                       lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
OPT_SHA: FieldSpec = ("null or a SHA-256 hex string", lambda v: v is None or _is_sha(v))
COUNT: FieldSpec = ("a whole number ≥ 0", lambda v: is_int(v) and v >= 0)
POSITIVE: FieldSpec = ("a whole number ≥ 1", lambda v: is_int(v) and v >= 1)
START: FieldSpec = (f"a whole number in [0, 2**{SCALE_BITS})", lambda v: is_int(v) and 0 <= v < SCALE)
UINT64: FieldSpec = ("a whole number in [0, 2**64)", lambda v: is_int(v) and 0 <= v <= M64)


def check_fields(obj: Mapping[str, Any], spec: Mapping[str, FieldSpec], source: str, prefix: str = "") -> None:
    """ConfigError naming ``source`` and the field for the first present field of the wrong type."""
    for k, (want, ok) in spec.items():
        if k in obj and not ok(obj[k]):
            got = repr(obj[k])
            got = got if len(got) <= 60 else got[:57] + "..."
            raise ConfigError(f"{source}: field '{prefix}{k}': expected {want}, got {got}")


def missing_fields(audit: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """One message per required field that the record lacks."""
    return [f"audit: missing field '{k}'" for k in keys if k not in audit]


def precheck(audit: Mapping[str, Any], design: SamplingDesign, required: Sequence[str]) -> VerifyResult | None:
    """A failed result if the record lacks a ``required`` field or is not ``design``'s algorithm
    and version, else None (go on and recompute)."""
    miss = missing_fields(audit, required)
    if miss:
        return VerifyResult(False, tuple(miss))
    if (audit["algorithm"], str(audit["algorithm_version"])) != (design.algorithm, design.version):
        return VerifyResult(False, (f"algorithm: {audit['algorithm']} v{audit['algorithm_version']} is not "
                                    f"{design.algorithm} v{design.version}",))
    return None


def diff_ids(recorded: Sequence[str], recomputed: Sequence[str], what: str) -> list[str]:
    """Messages naming the ids that differ between a recorded and a recomputed selection."""
    a, b = [str(x) for x in recorded], [str(x) for x in recomputed]
    if a == b:
        return []
    sa, sb = set(a), set(b)
    only_a, only_b = [x for x in a if x not in sb], [x for x in b if x not in sa]
    if not only_a and not only_b:
        return [f"{what}: same entities but in a different order"]
    msg = f"{what}: {len(only_a)} recorded id(s) not in the recomputed draw"
    if only_a:
        msg += f" {only_a[:10]}"
    msg += f"; {len(only_b)} recomputed id(s) missing from the record"
    if only_b:
        msg += f" {only_b[:10]}"
    return [msg]


# ============================================================== verification result and the protocol
@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification.

    ``ok`` is true only when nothing mismatched *and* nothing recorded in the audit was left
    unchecked. ``mismatches``: one message per difference; ``unverified``: parts of the audit that
    could not be checked (e.g. the inspector draw without its roster); ``checked``: what was
    recomputed and matched (entities; inspectors; the published assignments file).
    """

    ok: bool
    mismatches: tuple[str, ...] = ()
    recomputed: dict[str, Any] = field(default_factory=dict)
    checked: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            if not self.checked:
                return "OK: the draw recomputes exactly from the seed and the frame"
            return "OK:\n" + "\n".join(f"  - {m}" for m in self.checked)
        parts = []
        if self.mismatches:
            parts.append("MISMATCH:\n" + "\n".join(f"  - {m}" for m in self.mismatches))
        if self.unverified:
            parts.append("NOT VERIFIED:\n" + "\n".join(f"  - {m}" for m in self.unverified))
        if self.checked:
            parts.append("checked:\n" + "\n".join(f"  - {m}" for m in self.checked))
        return "\n".join(parts)


@runtime_checkable
class SamplingDesign(Protocol):
    """A sampling design: how a campaign is selected, recorded and verified.

    ``format``/``algorithm``/``version`` identify its audit records. ``select`` draws (its
    arguments are the design's own) and returns an object with ``.audit``; ``audit`` builds the
    record from the draw's values; ``check`` checks the record's field types (ConfigError);
    ``verify`` recomputes the draw from the record and the frame(s) and names every mismatch.
    """

    format: str
    algorithm: str
    version: str

    def select(self, *args: Any, **kwargs: Any) -> Any: ...

    def audit(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def check(self, audit: Mapping[str, Any], source: str) -> None: ...

    def verify(self, audit: Mapping[str, Any], frame: Any, **kwargs: Any) -> VerifyResult: ...
