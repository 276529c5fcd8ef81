"""Configuration files (policy, catalogue, profile) go through one loader: every number finite,
UTF-8 text only, refused with exit 4 naming the file and the key."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from yiwu_credit.cli import main
from yiwu_credit.config import config_sha256, read_config
from yiwu_credit.data.sources.profile import load_profile
from yiwu_credit.errors import ConfigError
from yiwu_credit.features.catalogue import load_catalogue
from yiwu_credit.policy import load_policy, policy_from_raw

RES = resources.files("yiwu_credit") / "resources"
POLICY = (RES / "policy" / "yiwu-2022.toml").read_text("utf-8")
CATALOGUE = (RES / "features" / "catalogue.toml").read_text("utf-8")
PROFILE = (RES / "profiles" / "zh.toml").read_text("utf-8")

# (text, pattern to replace, replacement, key that must be named)
POLICY_CASES = [
    ("shares = { A = 0.40,", "shares = { A = nan,", "tiers.shares.A"),
    ("shares = { A = 0.40,", "shares = { A = inf,", "tiers.shares.A"),
    ("[sampling.tiers.A]\nweight = 0.1", "[sampling.tiers.A]\nweight = nan", "sampling.tiers.A.weight"),
    ("severe_penalties_min_count = 6", "severe_penalties_min_count = nan", "overrides.severe_penalties_min_count"),
    ("severe_penalties_min_fines_cny = 500000", "severe_penalties_min_fines_cny = -inf",
     "overrides.severe_penalties_min_fines_cny"),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("old,new,key", POLICY_CASES, ids=[c[2] + "=" + c[1].split("=")[-1].strip(" ,")
                                                          for c in POLICY_CASES])
def test_non_finite_policy_numbers_are_refused_naming_file_and_key(tmp_path, old, new, key):
    assert old in POLICY
    p = _write(tmp_path, "bad-policy.toml", POLICY.replace(old, new, 1))
    with pytest.raises(ConfigError, match=re.escape(key)) as e:
        load_policy(p)
    assert str(p) in str(e.value) and "finite" in str(e.value)


def test_policy_from_raw_refuses_non_finite_numbers():
    raw = load_policy().raw
    raw = {**raw, "tiers": {**raw["tiers"], "shares": {**raw["tiers"]["shares"], "A": float("nan")}}}
    with pytest.raises(ConfigError, match=r"tiers\.shares\.A"):
        policy_from_raw(raw, "modified")


def test_non_finite_catalogue_and_profile_numbers_are_refused(tmp_path):
    cat = _write(tmp_path, "cat.toml", CATALOGUE.replace("date_from_year = { month = 6, day = 30 }",
                                                         "date_from_year = { month = nan, day = 30 }", 1))
    with pytest.raises(ConfigError, match=r"sources\.annual_reports\.date_from_year\.month"):
        load_catalogue(cat)
    prof = _write(tmp_path, "p.toml", PROFILE + "\n[extra]\nx = inf\n")
    with pytest.raises(ConfigError, match=r"extra\.x"):
        load_profile(prof)


@pytest.mark.parametrize("loader", [load_policy, load_catalogue, load_profile], ids=["policy", "catalogue", "profile"])
@pytest.mark.parametrize("content", ["gb18030", "binary", "not-toml"])
def test_unreadable_configuration_files_are_named_errors(tmp_path, loader, content):
    p = tmp_path / "c.toml"
    if content == "gb18030":
        p.write_bytes('[meta]\nname = "义乌"\n'.encode("gb18030"))
    elif content == "binary":
        p.write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    else:
        p.write_text("[meta\nname=", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(str(p))):
        loader(p)


def test_the_hash_form_ignores_comments_and_key_order(tmp_path):
    a = _write(tmp_path, "a.toml", "# comment\n[x]\nb = 1\na = 2\n")
    b = tmp_path / "b.toml"
    b.write_bytes(b"\xef\xbb\xbf[x]\na = 2\nb = 1\n")        # a BOM, other order, no comment
    ra, rb = read_config(a, "profile", "profiles"), read_config(b, "profile", "profiles")
    assert ra.sha256 == rb.sha256 == config_sha256({"x": {"a": 2, "b": 1}})
    assert load_policy().sha256 == config_sha256(load_policy().raw)


def test_cli_exits_4_naming_the_file_and_key(tmp_path, capsys):
    p = _write(tmp_path, "bad.toml", POLICY.replace("shares = { A = 0.40,", "shares = { A = nan,", 1))
    code = main(["plan", "--scores", str(tmp_path / "none.csv"), "--policy", str(p), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code in (3, 4)  # the missing scores file or the policy: whichever is read first, never 0 or 1
    code = main(["frontier", "--scores", str(tmp_path / "none.csv"), "--policy", str(p), "--budget-rate", "0.04",
                 "--out", str(tmp_path / "f.csv")])
    assert code in (3, 4)
    # the policy alone (no data needed): synth + score with it
    from yiwu_credit.data import synth

    w = synth.generate(300, seed=3)
    d, _ = w.save(tmp_path / "w")
    code = main(["score", "--data", str(d), "--as-of", "2025-01-01", "--policy", str(p), "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 4 and "tiers.shares.A" in err and str(p) in err
    assert not (tmp_path / "s.csv").exists()


def test_shipped_name_or_path_is_one_rule_for_every_kind(tmp_path, monkeypatch):
    """Policies, catalogues, profiles and bundles find a shipped name or a path the same way."""
    from yiwu_credit.config import locate
    from yiwu_credit.errors import BundleError
    from yiwu_credit.model.bundle import resolve_bundle_path

    assert locate("yiwu-2022", "policy", "policy", ".toml")[1] == "policy yiwu-2022"
    assert locate("zh", "profile", "profiles", ".toml")[1] == "profile zh"
    assert resolve_bundle_path(None).name == "default"
    # a path: has a separator, ends in the suffix, or exists
    assert locate("x/y", "policy", "policy", ".toml") == (Path("x/y"), "x/y")
    assert locate("mine.toml", "policy", "policy", ".toml")[0] == Path("mine.toml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yiwu-2022").write_text("not a toml file name", encoding="utf-8")
    assert locate("yiwu-2022", "policy", "policy", ".toml")[0] == Path("yiwu-2022")   # an existing file wins
    (tmp_path / "zh").mkdir()                       # a data folder named like a profile is not the profile
    assert locate("zh", "profile", "profiles", ".toml")[1] == "profile zh"
    for ref, kind, folder, suffix in (("nosuch", "policy", "policy", ".toml"), ("nosuch", "profile", "profiles", ".toml"),
                                      ("nosuch", "catalogue", "features", ".toml")):
        with pytest.raises(ConfigError, match=r"unknown .*'nosuch'; shipped"):
            locate(ref, kind, folder, suffix)
    with pytest.raises(BundleError, match=r"unknown bundle 'nosuch'; shipped bundles: \['default'\]"):
        resolve_bundle_path("nosuch")
