"""Policy files: typed views of every section, every setting read or refused, horizon from the policy."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources

import pytest

from yiwu_credit.errors import ConfigError
from yiwu_credit.policy import (
    LabelPolicy,
    MonitoringPolicy,
    OverridePolicy,
    RepairPolicy,
    SamplingPolicy,
    TierPolicy,
    load_policy,
)

SHIPPED = ("yiwu-2022", "yiwu-2022-1.1")


def _raw(name: str = "yiwu-2022") -> dict:
    return tomllib.loads((resources.files("yiwu_credit") / "resources" / "policy" / f"{name}.toml").read_text("utf-8"))


def _write(tmp_path, raw: dict):
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines: list[str] = []

    def table(prefix: str, d: dict) -> None:
        lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict))
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}", v)

    for section, d in raw.items():
        table(section, d)
    p = tmp_path / "p.toml"
    p.write_text("\n".join(lines), encoding="utf-8")
    return p


@pytest.mark.parametrize("name", SHIPPED)
def test_views_are_typed_and_carry_every_setting(name):
    pol, raw = load_policy(name), _raw(name)
    views = {"tiers": (pol.tiers, TierPolicy), "repair": (pol.repair, RepairPolicy),
             "overrides": (pol.overrides, OverridePolicy), "labels": (pol.labels, LabelPolicy),
             "sampling": (pol.sampling, SamplingPolicy), "monitoring": (pol.monitoring, MonitoringPolicy)}
    for section, (view, cls) in views.items():
        assert isinstance(view, cls)
        for key, value in raw[section].items():
            got = getattr(view, key)
            if isinstance(value, list):
                assert list(got) == value, (section, key)
            elif not isinstance(value, dict):
                assert got == value, (section, key)
    assert pol.sampling.tiers["D"].annual_rate == raw["sampling"]["tiers"]["D"]["annual_rate"]
    assert pol.sampling.inspectors.per_entity == raw["sampling"]["inspectors"]["per_entity"]
    assert pol.tier_label("D", "en") == raw["tiers"]["labels"]["D"]["en"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        pol.sampling.alpha = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        pol.tiers.shares["A"] = 0.9  # type: ignore[index]


@pytest.mark.parametrize("where", ["", "tiers", "labels", "sampling", "sampling.tiers.B", "sampling.inspectors",
                                   "monitoring"])
def test_a_setting_nobody_reads_is_refused(tmp_path, where):
    raw = _raw()
    d = raw
    for part in filter(None, where.split(".")):
        d = d[part]
    d["horizon_dayz"] = 1 if where else {"x": 1}
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['horizon_dayz'\]"):
        load_policy(_write(tmp_path, raw))


def test_label_settings_are_validated(tmp_path):
    raw = _raw()
    raw["labels"]["abnormal_operation_exclude_reasons"] = ["annual_reprot"]
    with pytest.raises(ConfigError, match="abnormal_operation_exclude_reasons"):
        load_policy(_write(tmp_path, raw))
    raw = _raw()
    raw["labels"]["serious_dishonest"] = "yes"
    with pytest.raises(ConfigError, match="serious_dishonest: expected true or false"):
        load_policy(_write(tmp_path, raw))


def test_label_horizon_comes_from_the_policy(tmp_path, world):
    from yiwu_credit.model.labels import build_labels, horizon_days

    raw = _raw()
    raw["labels"]["horizon_days"] = 90
    short = load_policy(_write(tmp_path, raw))
    assert horizon_days(None, short) == 90 and horizon_days(None) == 365
    assert horizon_days("365D") == horizon_days("365") == horizon_days(365) == 365
    ds, as_of = world.dataset, "2024-01-01"
    y90 = build_labels(ds, as_of, policy=short)["y"]
    assert (y90 == build_labels(ds, as_of, 90)["y"]).all()
    y365 = build_labels(ds, as_of)["y"]
    assert (y90 <= y365).all() and y90.sum() < y365.sum()   # a shorter horizon sees fewer violations
