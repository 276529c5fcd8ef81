"""Simulation and demo commands: simulate-loop, demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from .boundary import (
    add_command,
    count_arg,
    io_plan,
    positive_float,
    say,
)

__all__ = ["register"]


def cmd_simulate_loop(a: argparse.Namespace) -> int:
    from ..data.io import write_table
    from ..pipeline.closed_loop import simulate_loop

    res = simulate_loop(n_entities=a.entities, cycles=a.cycles, budget_rate=a.budget_rate, seed=a.seed)
    say(res.summary())
    out = Path(a.out)
    write_table(res.cycles, out / "cycles.csv")
    write_table(res.burden, out / "burden.csv")
    res.plot(out / "closed-loop.png")
    say(f"per-cycle figures, burden by group and the plot → {out}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from ..pipeline.demo import run_demo

    run_demo(Path(a.out), n_entities=a.entities, seed=a.seed, printer=say)
    return 0


def _io_out_dir(a: argparse.Namespace):
    return io_plan(a, out_dirs=[("--out", a.out)])


def register(sp) -> None:
    """Add this group's commands to the subparsers ``sp``."""
    p = add_command(sp, "simulate-loop", cmd_simulate_loop, "The closed loop on a synthetic world: yearly score → plan → "
             "draw → observe → retrain, against uniform draws, the true-propensity ceiling, no IPW and no floor.",
             "yiwu-credit simulate-loop --entities 20000 --cycles 4 --out out/loop", io=_io_out_dir)
    p.add_argument("--entities", type=count_arg(1), default=20_000)
    p.add_argument("--cycles", type=count_arg(1), default=4)
    p.add_argument("--budget-rate", type=positive_float, default=0.04, help="inspections per year as a share of the pool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/loop")

    p = add_command(sp, "demo", cmd_demo, "Run the whole pipeline on a synthetic world with the shipped model.",
             "yiwu-credit demo --out out/demo", io=_io_out_dir)
    p.add_argument("--out", default="out/demo")
    p.add_argument("--entities", type=count_arg(1), default=20_000)
    p.add_argument("--seed", type=int, default=2022)
