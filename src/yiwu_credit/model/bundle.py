"""Versioned model bundles: the fitted model plus everything needed to trust and reuse it.

A bundle is a directory::

    manifest.json    name, version, library versions, catalogue/policy hashes, features, the
                     reference distribution's size and hash and the cut-offs it gives under the
                     bundle's policy, training window, data fingerprint, metrics, SHA-256 of each file
    model.joblib     the fitted TieredRiskModel: learner, calibrator and the reference
                     distribution (``oof_proba_``/``oof_weight_``: calibrated out-of-fold
                     probabilities of the training population) that tier cut-offs are fitted on
                     at scoring time (a pickle: load bundles only from a trusted source)
    catalogue.toml   the feature catalogue the model was trained on
    policy.toml      the policy used for labels and features in training; the default tiering
                     policy (``score_entities(..., policy=)`` tiers with another one, no refit)
    reference.parquet  a fixed sample (≤ 5,000 rows, no entity ids) of the training feature
                     matrix: the reference population for stability monitoring (CSI)
    ranges.json      min/max per numeric feature and seen categories per categorical one over
                     the whole training matrix (out-of-range flags at scoring, ``ranges.py``)
    probes.json      a few entities' records with the probability and model tier the model gave
                     them, re-checked at load (:mod:`.probes`; older bundles have none)

:func:`load_bundle` verifies every hash and the format version before unpickling anything, so a
tampered or incompatible bundle is refused with a clear :class:`BundleError`. Nothing in the
manifest depends on the time or machine, so retraining with the same data, config and seed
reproduces the bundle bit for bit.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from .._version import __version__
from ..config import locate
from ..data.io import atomic_path, sha256_file, write_text
from ..errors import BundleError, ConfigError
from ..features.catalogue import Catalogue, load_catalogue
from ..features.ranges import RANGES_FILE, feature_ranges
from ..policy import Policy, load_policy
from ..tiering.cutoffs import TierCutoffs
from .estimator import TieredRiskModel

__all__ = ["DEFAULT_BUNDLE", "FORMAT", "LEGACY_MODULES", "READABLE_FORMATS", "REFERENCE_ROWS", "Bundle",
           "load_bundle", "reference_sample", "resolve_bundle_path", "save_bundle"]

#: Format written. /2: tier cut-offs are no longer frozen in the model (fitted at scoring time on
#: the model's reference distribution); /1 bundles are read (their cut-offs are re-derived and
#: checked against the manifest).
FORMAT = "yiwu-credit-bundle/2"
READABLE_FORMATS = ("yiwu-credit-bundle/1", FORMAT)
#: Modules of yiwu_credit 0.1 (a flat package) that 0.1 bundles name in their pickle → where
#: those classes live now. Only consulted while a bundle is unpickled.
LEGACY_MODULES = {
    "yiwu_credit.model": "yiwu_credit.model.estimator",
    "yiwu_credit.binning": "yiwu_credit.model.binning",
    "yiwu_credit.catalogue": "yiwu_credit.features.catalogue",
}
#: Classes renamed since bundles were pickled: old name → (module, new name). Installed on the
#: estimator module (and the 0.1 ``yiwu_credit.model``) only while a bundle is unpickled.
LEGACY_CLASSES = {"_LGBLearner": ("yiwu_credit.model.learners", "LGBLearner"),
                  "_ScorecardLearner": ("yiwu_credit.model.learners", "ScorecardLearner")}
DEFAULT_BUNDLE = "default"


@dataclass
class Bundle:
    """A verified, loaded bundle."""

    model: TieredRiskModel
    manifest: dict[str, Any]
    catalogue: Catalogue
    policy: Policy
    path: Path
    reference: pd.DataFrame | None = None  # training-population feature sample (monitoring)
    ranges: dict[str, Any] | None = None  # training feature ranges (ranges.json; None in old bundles)

    @property
    def version(self) -> str:
        return f"{self.manifest['name']}@{self.manifest['version']}"

    def tiering(self, policy: Policy | str | None = None) -> TierCutoffs:
        """Tier cut-offs of ``policy`` (default: the bundle's) on the model's reference distribution."""
        return self.model.tier_cutoffs(self.policy if policy is None else policy)


def _versions() -> dict[str, str]:
    import lightgbm
    import numpy
    import pandas
    import sklearn

    return {"yiwu_credit": __version__, "scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__,
            "numpy": numpy.__version__, "pandas": pandas.__version__}


REFERENCE_ROWS = 5_000


def reference_sample(X: pd.DataFrame, n: int = REFERENCE_ROWS, seed: int = 0) -> pd.DataFrame:
    """A deterministic sample of a feature matrix without entity ids (the monitoring reference)."""
    take = X if len(X) <= n else X.sample(n=n, random_state=seed).sort_index()
    return take.reset_index(drop=True)


def save_bundle(model: TieredRiskModel, path: str | Path, *, name: str, version: str, catalogue: Catalogue,
                policy: Policy, training: dict[str, Any], metrics: dict[str, Any],
                reference: pd.DataFrame | None = None) -> Path:
    """Write a bundle directory (each file atomically; the manifest last). ``reference`` is the
    training feature matrix (or a sample); up to 5,000 rows without ids are stored, and its
    ranges (``ranges.json``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    stored = copy.copy(model)  # catalogue and policy live in their own files; load_bundle puts them back
    stored.catalogue = stored.policy = None
    with atomic_path(path / "model.joblib") as tmp:
        joblib.dump(stored, tmp, compress=3)
    write_text(path / "catalogue.toml", Path(catalogue.source).read_text(encoding="utf-8")
               if Path(catalogue.source).is_file()
               else (resources.files("yiwu_credit") / "resources" / "features" / "catalogue.toml").read_text(encoding="utf-8"))
    pol_src = Path(policy.source)
    write_text(path / "policy.toml", pol_src.read_text(encoding="utf-8") if pol_src.is_file() else
               (resources.files("yiwu_credit") / "resources" / "policy" / f"{policy.name}.toml").read_text(encoding="utf-8"))
    names = ["model.joblib", "catalogue.toml", "policy.toml"]
    if reference is not None:
        with atomic_path(path / "reference.parquet") as tmp:
            reference_sample(reference).to_parquet(tmp, index=False)
        names.append("reference.parquet")
        write_text(path / RANGES_FILE, json.dumps(feature_ranges(reference), indent=1, sort_keys=True) + "\n")
        names.append(RANGES_FILE)
    from .probes import PROBES_FILE, make_probes, write_probes

    write_probes(path, make_probes(model, catalogue, policy))
    names.append(PROBES_FILE)
    files = {f: sha256_file(path / f) for f in names}
    manifest = {
        "format": FORMAT, "name": name, "version": version, "versions": _versions(),
        "catalogue": {"name": catalogue.name, "version": catalogue.version, "sha256": catalogue.sha256},
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256},
        "features": list(model.feature_names_in_), "learner": model.learner,
        "params": {k: v for k, v in model.get_params().items()
                   if k not in ("catalogue", "policy") and isinstance(v, int | float | str | type(None))},
        "reference": _reference_record(model),
        "tier_cutoffs": list(model.tier_cutoffs(policy).cutoffs),
        "training": training, "metrics": metrics, "files": files,
    }
    write_text(path / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def _reference_record(model: TieredRiskModel) -> dict[str, Any]:
    """Size, weighting and SHA-256 of the model's reference distribution (for the manifest)."""
    h = hashlib.sha256(model.oof_proba_.astype("<f8").tobytes())
    if model.oof_weight_ is not None:
        h.update(model.oof_weight_.astype("<f8").tobytes())
    return {"n": int(len(model.oof_proba_)), "weighted": model.oof_weight_ is not None, "sha256": h.hexdigest()}


def resolve_bundle_path(path: str | Path | None) -> Path:
    """A bundle directory: an explicit path, or a shipped bundle name (default 'default')."""
    try:
        return locate(DEFAULT_BUNDLE if path is None else path, "bundle", "models")[0]
    except ConfigError as e:
        raise BundleError(str(e)) from None


def _check_manifest(manifest: Any, mpath: Path) -> None:
    """BundleError naming the manifest file and field unless every field load_bundle reads has its type."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath}: manifest must be a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") not in READABLE_FORMATS:
        raise BundleError(f"{mpath.parent}: unsupported bundle format {manifest.get('format')!r}; "
                          f"this library reads {', '.join(READABLE_FORMATS)}")

    def bad(field: str, want: str) -> BundleError:
        got = repr(manifest.get(field.split(".")[0]))
        return BundleError(f"{mpath}: field {field!r}: expected {want}, got {got[:60]}")

    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise bad("files", "an object file name → SHA-256 string")
    for f in ("name", "version"):
        if not isinstance(manifest.get(f), str):
            raise bad(f, "a string")
    versions = manifest.get("versions")
    if not isinstance(versions, dict) or not isinstance(versions.get("yiwu_credit"), str):
        raise bad("versions", "an object with a 'yiwu_credit' version string")
    cat = manifest.get("catalogue")
    if not isinstance(cat, dict) or not isinstance(cat.get("sha256"), str):
        raise bad("catalogue", "an object with a 'sha256' string")
    feats = manifest.get("features")
    if not isinstance(feats, list) or not all(isinstance(x, str) for x in feats):
        raise bad("features", "a list of feature names")
    for f in ("metrics", "training", "policy"):
        if f in manifest and not isinstance(manifest[f], dict):
            raise bad(f, "an object")


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Load and verify a bundle (default: the shipped ``models/default``): file hashes, format,
    versions, cut-offs and, when the bundle has them, its probe rows (:mod:`.probes`)."""
    from .probes import PROBES_FILE

    p = resolve_bundle_path(path)
    mpath = p / "manifest.json"
    if not mpath.is_file():
        raise BundleError(f"no model bundle at {p} (manifest.json not found)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath}: manifest is not valid JSON: {e}") from None
    _check_manifest(manifest, mpath)
    files = manifest["files"]
    for f in ("model.joblib", "catalogue.toml", "policy.toml",
              *(o for o in ("reference.parquet", RANGES_FILE, PROBES_FILE) if o in files)):
        if f not in files:
            raise BundleError(f"{p}: manifest lists no hash for {f}")
        if not (p / f).is_file():
            raise BundleError(f"{p}: {f} is missing")
        got = sha256_file(p / f)
        if got != files[f]:
            raise BundleError(f"{p}: {f} has been modified (SHA-256 {got[:12]}… ≠ manifest {files[f][:12]}…); "
                              "refusing to load a tampered bundle")
    built = manifest.get("versions", {}).get("yiwu_credit", "0")
    if built.split(".")[0] != __version__.split(".")[0]:
        raise BundleError(f"{p}: built with yiwu_credit {built}, incompatible with {__version__}")
    try:
        catalogue = load_catalogue(p / "catalogue.toml")
        policy = load_policy(p / "policy.toml")
    except ConfigError as e:
        raise BundleError(f"{p}: {e}") from None
    if catalogue.sha256 != manifest["catalogue"]["sha256"]:
        raise BundleError(f"{p}: catalogue hash does not match the manifest")
    now = _versions()
    for lib in ("scikit-learn", "lightgbm"):
        if manifest["versions"].get(lib) != now[lib]:
            warnings.warn(f"bundle {p.name} was built with {lib} {manifest['versions'].get(lib)}, running {now[lib]}",
                          stacklevel=2)
    try:
        with _legacy_layout():
            model = joblib.load(p / "model.joblib")
    except Exception as e:  # a pickle from another library version can fail in many ways
        raise BundleError(f"{p}: model.joblib could not be loaded ({type(e).__name__}: {e})") from None
    if not isinstance(model, TieredRiskModel) or list(model.feature_names_in_) != manifest["features"]:
        raise BundleError(f"{p}: model does not match its manifest (features differ)")
    # the model reads texts and directions from its own catalogue and policy
    model.catalogue = catalogue
    model.policy = policy
    _check_cutoffs(model, manifest, p)
    if PROBES_FILE in files:  # bundles written before probes have none: no check
        from .probes import check_probes

        check_probes(model, catalogue, policy, p / PROBES_FILE)
    reference = pd.read_parquet(p / "reference.parquet") if "reference.parquet" in files else None
    ranges = json.loads((p / RANGES_FILE).read_text(encoding="utf-8")) if RANGES_FILE in files else None
    return Bundle(model, manifest, catalogue, policy, p, reference, ranges)


def _check_cutoffs(model: TieredRiskModel, manifest: dict[str, Any], p: Path) -> None:
    """BundleError unless the reference distribution gives the manifest's cut-offs under the
    bundle's policy (a /1 bundle fitted with weights cannot: its weights were not kept)."""
    want = manifest.get("tier_cutoffs")
    if want is None:
        return
    got = list(model.tier_cutoffs(model.policy).cutoffs)
    if got != [float(c) for c in want]:
        raise BundleError(f"{p}: the tier cut-offs of the bundle's policy on the stored reference distribution "
                          f"({got}) differ from the manifest's ({want}); a bundle written before weights were "
                          "kept with the reference cannot be tiered reproducibly: retrain it")


@contextmanager
def _legacy_layout() -> Iterator[None]:
    """Let a pickle written by yiwu_credit 0.1 find its classes (see :data:`LEGACY_MODULES`).

    Pickle resolves ``module.Class`` by importing ``module`` and reading the attribute. A legacy
    module that no longer exists is aliased in ``sys.modules``; one that is a package now
    (``yiwu_credit.model``) gets the classes defined in its successor as attributes. Renamed
    classes (:data:`LEGACY_CLASSES`) are found under their old names. All is undone afterwards.
    """
    added_modules: list[str] = []
    added_attrs: list[tuple[Any, str]] = []
    try:
        est = importlib.import_module("yiwu_credit.model.estimator")
        for old, (mod, new) in LEGACY_CLASSES.items():
            if not hasattr(est, old):
                setattr(est, old, getattr(importlib.import_module(mod), new))
                added_attrs.append((est, old))
        for old, new in LEGACY_MODULES.items():
            target = importlib.import_module(new)
            if old not in sys.modules:
                sys.modules[old] = target
                added_modules.append(old)
            elif sys.modules[old] is not target:
                pkg = sys.modules[old]
                classes = [n for n, v in vars(target).items()
                           if isinstance(v, type) and (v.__module__ == new or n in LEGACY_CLASSES)]
                for name in classes:
                    if not hasattr(pkg, name):
                        setattr(pkg, name, getattr(target, name))
                        added_attrs.append((pkg, name))
        yield
    finally:
        for old in added_modules:
            sys.modules.pop(old, None)
        for pkg, name in added_attrs:
            delattr(pkg, name)
