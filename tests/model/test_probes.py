"""Probe rows in model bundles: recorded predictions re-checked at load (a mismatch → exit 5)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yiwu_credit.data.io import sha256_file
from yiwu_credit.errors import BundleError
from yiwu_credit.model.bundle import load_bundle, resolve_bundle_path
from yiwu_credit.model.probes import PROBES_FILE, add_probes, probe_predictions
from yiwu_credit.pipeline.scoring import Scorer

LEGACY = Path(__file__).parent / "data" / "bundle-0.1"


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(resolve_bundle_path(None), dst)
    return dst


def _rehash(p: Path, name: str) -> None:
    m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
    m["files"][name] = sha256_file(p / name)
    (p / "manifest.json").write_text(json.dumps(m, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                     encoding="utf-8")


def test_the_shipped_bundle_has_probes_of_several_tiers(bundle):
    probes = json.loads((bundle.path / PROBES_FILE).read_text(encoding="utf-8"))
    assert PROBES_FILE in bundle.manifest["files"]
    assert len({p["model_tier"] for p in probes["probes"]}) >= 3
    got = probe_predictions(bundle.model, bundle.catalogue, bundle.policy, probes)
    assert got == [(p["probability"], p["model_tier"]) for p in probes["probes"]]


def test_probes_equal_the_online_scorer(bundle):
    """The probes' recorded predictions are what the scoring path gives their records."""
    probes = json.loads((bundle.path / PROBES_FILE).read_text(encoding="utf-8"))
    sc = Scorer(bundle)
    for p in probes["probes"]:
        recs = dict(p["records"])
        one = sc.score_one(recs.pop("entities")[0], recs, probes["as_of"])
        assert one["probability"] == pytest.approx(p["probability"], abs=1e-12)
        assert one["model_tier"] == p["model_tier"]


@pytest.mark.parametrize("change", [
    lambda x: x.update(probability=x["probability"] * 1.01),
    lambda x: x.update(model_tier="A" if x["model_tier"] != "A" else "D"),
    lambda x: x["records"]["entities"][0].update(registered_capital="999999"),
], ids=["probability", "tier", "records"])
def test_a_probe_that_does_not_predict_as_recorded_refuses_the_bundle(tmp_path, change):
    p = _copy(tmp_path)
    probes = json.loads((p / PROBES_FILE).read_text(encoding="utf-8"))
    for x in probes["probes"]:
        change(x)
    (p / PROBES_FILE).write_text(json.dumps(probes), encoding="utf-8")
    _rehash(p, PROBES_FILE)  # a consistent manifest: only the probe check can catch it
    with pytest.raises(BundleError, match="probe entity .* gets probability"):
        load_bundle(p)


def test_a_refused_probe_exits_5_from_the_cli(tmp_path, world_dir):
    p = _copy(tmp_path)
    probes = json.loads((p / PROBES_FILE).read_text(encoding="utf-8"))
    probes["probes"][0]["probability"] += 0.01
    (p / PROBES_FILE).write_text(json.dumps(probes), encoding="utf-8")
    _rehash(p, PROBES_FILE)
    r = subprocess.run([sys.executable, "-m", "yiwu_credit.cli", "score", "--data", str(world_dir), "--model", str(p),
                        "--as-of", "2026-01-01", "--out", str(tmp_path / "s.csv")], capture_output=True, text=True)
    assert r.returncode == BundleError.exit_code == 5, r.stderr
    assert "probe entity" in r.stderr and "Traceback" not in r.stderr


def test_a_tampered_probe_file_is_refused_by_its_hash(tmp_path):
    p = _copy(tmp_path)
    (p / PROBES_FILE).write_text("{}", encoding="utf-8")
    with pytest.raises(BundleError, match="probes.json has been modified"):
        load_bundle(p)


def test_bundles_without_probes_load_without_the_check(tmp_path):
    p = _copy(tmp_path)
    (p / PROBES_FILE).unlink()
    m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
    del m["files"][PROBES_FILE]
    (p / "manifest.json").write_text(json.dumps(m, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                     encoding="utf-8")
    assert load_bundle(p).version
    assert load_bundle(LEGACY).version  # a 0.1 bundle: no probes either


def test_add_probes_leaves_every_other_file_byte_identical(tmp_path):
    p = _copy(tmp_path)
    (p / PROBES_FILE).unlink()
    m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
    want_manifest = dict(m, files=dict(m["files"]))
    del m["files"][PROBES_FILE]
    (p / "manifest.json").write_text(json.dumps(m, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                     encoding="utf-8")
    before = {f.name: f.read_bytes() for f in p.iterdir() if f.name != "manifest.json"}
    add_probes(p)
    assert {f.name: f.read_bytes() for f in p.iterdir() if f.name not in ("manifest.json", PROBES_FILE)} == before
    assert json.loads((p / "manifest.json").read_text(encoding="utf-8")) == want_manifest  # the shipped probes again
    with pytest.raises(BundleError, match="has probe rows already"):
        add_probes(p)


def test_probes_record_the_violation_probability_whatever_order_the_classes_sort(bundle):
    """A model fitted with a named violation class that sorts first ("bad" < "good"): the probe
    records P(violation), as scoring does, not the second column of predict_proba."""
    import numpy as np
    from sklearn.base import clone

    from yiwu_credit.data import synth
    from yiwu_credit.features.build import build_features
    from yiwu_credit.model.labels import build_labels
    from yiwu_credit.model.probes import make_probes

    ds = synth.generate(1500, seed=11).dataset
    X = build_features(ds, "2024-01-01", bundle.catalogue, bundle.policy)
    y = build_labels(ds, "2024-01-01", policy=bundle.policy)["y"].reindex(X.index)
    m = clone(bundle.model).set_params(pos_label="bad").fit(X, np.where(y == 1, "bad", "good"))
    probes = make_probes(m, bundle.catalogue, bundle.policy, n=3)
    got = probe_predictions(m, bundle.catalogue, bundle.policy, probes)
    assert [p for p, _ in got] == [p["probability"] for p in probes["probes"]]
    assert min(p for p, _ in got) < 0.5          # violation probabilities, not P(good) near 1
