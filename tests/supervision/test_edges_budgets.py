"""Budgets and campaign sizes at the edge: finite and positive, or a named refusal — at the command
line (argparse, exit 2) and in the library (PlanError naming the argument), never a silent default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.cli import main
from yiwu_credit.errors import PlanError
from yiwu_credit.supervision.frontier import policy_frontier
from yiwu_credit.supervision.plan import supervision_plan

BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "0", "-5", "1e400", "abc", ""]


def _scored(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"tier": rng.choice(list("ABCD"), n), "probability": rng.beta(1, 15, n)},
                        index=pd.Index([f"91330782MA{i:08d}" for i in range(n)], name="entity_id"))


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("command, option", [("plan", "--budget"), ("frontier", "--budget"),
                                             ("frontier", "--budget-rate")])
def test_budget_options_are_finite_and_positive(usage_error, tmp_path, command, option, value):
    err = usage_error(command, "--scores", tmp_path / "s.csv", "--out", tmp_path / "o.csv", f"{option}={value}")
    assert option in err


@pytest.mark.parametrize("value", ["nan", "0", "-1", "2.5", "abc"])
@pytest.mark.parametrize("command", ["plan", "frontier", "draw"])
def test_campaign_size_is_a_whole_number_of_at_least_one(usage_error, tmp_path, command, value):
    src = ["--plan", tmp_path / "p.csv", "--seed", "1"] if command == "draw" else ["--scores", tmp_path / "s.csv"]
    err = usage_error(command, *src, "--out", tmp_path / "o.csv", f"--n={value}")
    assert "--n" in err


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), float("-inf"), 0.0, -3.0, True, "abc", [5]])
def test_library_refuses_bad_budgets_naming_the_argument(budget):
    with pytest.raises(PlanError, match="budget"):
        supervision_plan(_scored(), budget=budget)
    with pytest.raises(PlanError, match="budget"):
        policy_frontier(_scored(), budget)


def test_frontier_budget_rate_zero_is_not_the_default(usage_error, tmp_path):
    """frontier --budget-rate 0 used to fall back silently to the policy's budget."""
    _scored().reset_index().to_csv(tmp_path / "s.csv", index=False)
    err = usage_error("frontier", "--scores", tmp_path / "s.csv", "--budget-rate", "0", "--out", tmp_path / "f.csv")
    assert "--budget-rate" in err and not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("n", [0, -1, 2.5, 10_000])
def test_frontier_refuses_bad_n(n):
    with pytest.raises(PlanError, match="n"):
        policy_frontier(_scored(), 20.0, n=n)


def test_inspector_options_without_a_roster_are_refused(tmp_path, capsys):
    """--previous and --qualification only act on the inspector draw: without --inspectors they
    would be silently ignored."""

    for opt in (["--previous", "p.csv"], ["--qualification", "food"]):
        with pytest.raises(SystemExit) as e:
            main(["draw", "--plan", str(tmp_path / "plan.csv"), "--seed", "1", *opt, "--out", str(tmp_path / "d.csv")])
        assert e.value.code == 2 and "--inspectors" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["365.5", "0", "99999", "nan"])
def test_a_policy_horizon_is_a_whole_number_of_days_in_range(tmp_path, value):
    from importlib import resources

    from yiwu_credit.errors import ConfigError
    from yiwu_credit.policy import load_policy

    text = (resources.files("yiwu_credit") / "resources" / "policy" / "yiwu-2022.toml").read_text("utf-8")
    assert "horizon_days = 365" in text
    p = tmp_path / "p.toml"
    p.write_text(text.replace("horizon_days = 365", f"horizon_days = {value}", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="horizon_days"):
        load_policy(p)
