"""Probe rows: a few entities' records kept in a model bundle with the predictions the model gave
them when the bundle was written (``probes.json``), checked when the bundle is loaded.

A bundle that loads but predicts differently — another LightGBM build, a damaged pickle that
still unpickles, a changed feature computation — is refused (:class:`BundleError`, exit 5) before
it scores anything, so a service that has loaded its bundle knows it is ready. Each probe is one
entity's records (text values, as a CSV row or a JSON request carries them) at ``as_of``, with
the calibrated probability and the model tier (under the bundle's policy, before overrides).
The records go through the same validation and features as every scoring path
(:func:`~yiwu_credit.data.dataset.load_records`, :func:`~yiwu_credit.features.build.build_features`).

Bundles written before probes existed have no ``probes.json`` and load without the check;
:func:`add_probes` adds them to an existing bundle without touching its other files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.contract import TABLES
from ..data.dataset import Dataset, load_records
from ..errors import BundleError, DataValidationError
from ..features.build import build_features
from ..policy import TIERS

__all__ = ["PROBES_FILE", "PROBE_TOLERANCE", "add_probes", "check_probes", "make_probes", "probe_predictions",
           "write_probes"]

PROBES_FILE = "probes.json"
#: largest difference of a probe's probability from the recorded one (LightGBM builds may differ
#: in the last bits of a sum; a wrong model differs by far more)
PROBE_TOLERANCE = 1e-9
_FORMAT = "yiwu-credit-probes/1"


def _text(v: Any) -> str | None:
    """A cell as the text a CSV row would hold (missing → None)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _records(ds: Dataset, eid: str) -> dict[str, list[dict[str, str | None]]]:
    return {n: [{c: _text(v) for c, v in r.items()} for r in ds.table(n)[ds.table(n)["entity_id"] == eid]
                .to_dict("records")] for n in TABLES}


def probe_predictions(model: Any, catalogue: Any, policy: Any, probes: dict[str, Any]) -> list[tuple[float, str]]:
    """(probability, model tier) of each probe, computed now."""
    out = []
    cut = model.tier_cutoffs(policy)
    for probe in probes["probes"]:
        X = build_features(load_records(probe["records"]), probes["as_of"], catalogue, policy)
        if len(X) != 1:
            raise BundleError(f"probe {probe['records']['entities'][0].get('entity_id')} is not in the "
                              f"supervision pool at {probes['as_of']}")
        p = model.violation_proba(X)   # the violation's probability, whatever order the classes sort in
        out.append((float(p[0]), TIERS[int(cut.ranks(p)[0])]))
    return out


def make_probes(model: Any, catalogue: Any, policy: Any, as_of: str = "2026-01-01", n: int = 5,
                seed: int = 0) -> dict[str, Any]:
    """``n`` probes from a small synthetic world: the entities at evenly spaced quantiles of the
    model's probability (low to high risk, so several tiers), with their predictions."""
    from ..data import synth

    ds = synth.generate(200, seed=seed).dataset
    X = build_features(ds, as_of, catalogue, policy)
    p = model.predict_proba(X)[:, 1]
    order = np.argsort(p, kind="stable")
    picks = [X.index[order[int(round(q * (len(order) - 1)))]] for q in np.linspace(0, 1, n)]
    probes = {"format": _FORMAT, "as_of": as_of,
              "probes": [{"records": _records(ds, eid)} for eid in dict.fromkeys(picks)]}
    for probe, (prob, tier) in zip(probes["probes"], probe_predictions(model, catalogue, policy, probes), strict=True):
        probe["probability"], probe["model_tier"] = prob, tier
    return probes


def check_probes(model: Any, catalogue: Any, policy: Any, path: Path) -> None:
    """BundleError naming the probe unless every probe of ``path`` (a probes file) gets its
    recorded probability (within :data:`PROBE_TOLERANCE`) and model tier."""
    try:
        probes = json.loads(path.read_text(encoding="utf-8"))
        want = [(float(x["probability"]), str(x["model_tier"])) for x in probes["probes"]]
        if probes.get("format") != _FORMAT or not want:
            raise ValueError(f"expected format {_FORMAT} with at least one probe")
        got = probe_predictions(model, catalogue, policy, probes)
    except (ValueError, KeyError, TypeError, DataValidationError) as e:
        raise BundleError(f"{path}: unreadable probe rows ({type(e).__name__}: {e})") from None
    for x, (p0, t0), (p1, t1) in zip(probes["probes"], want, got, strict=True):
        if abs(p1 - p0) > PROBE_TOLERANCE or t1 != t0:
            eid = x["records"]["entities"][0].get("entity_id")
            raise BundleError(f"{path.parent}: probe entity {eid} gets probability {p1:.12g} (tier {t1}), the bundle "
                              f"recorded {p0:.12g} (tier {t0}): this model does not predict as it did when the bundle "
                              "was written; refusing to score with it")


def write_probes(path: Path, probes: dict[str, Any]) -> None:
    """Write ``probes`` as ``path / probes.json`` (atomically)."""
    from ..data.io import write_text

    write_text(path / PROBES_FILE, json.dumps(probes, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def add_probes(path: str | Path, as_of: str = "2026-01-01") -> Path:
    """Add probe rows to an existing bundle (one without them): ``probes.json`` and its SHA-256
    in the manifest's ``files``; every other file stays byte for byte as it was."""
    from ..data.io import sha256_file, write_text
    from .bundle import load_bundle

    b = load_bundle(path)
    p = b.path
    if PROBES_FILE in b.manifest["files"]:
        raise BundleError(f"{p}: the bundle has probe rows already")
    mpath = p / "manifest.json"
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    if json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n" != mpath.read_text(encoding="utf-8"):
        raise BundleError(f"{mpath}: not in the layout save_bundle writes; not rewritten")
    write_probes(p, make_probes(b.model, b.catalogue, b.policy, as_of))
    manifest["files"][PROBES_FILE] = sha256_file(p / PROBES_FILE)
    write_text(mpath, json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    load_bundle(p)  # the probes check out
    return p
