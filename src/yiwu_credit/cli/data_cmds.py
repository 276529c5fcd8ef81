"""Data commands: validate, synth."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .boundary import (
    add_command,
    add_source_args,
    count_arg,
    date_arg,
    io_plan,
    print_reconcile,
    say,
)

__all__ = ["register", "synth_leftovers"]


def cmd_validate(a: argparse.Namespace) -> int:
    from ..data.dataset import load_dataset, validation_report
    from ..data.sources.dburl import redact
    from ..errors import DataValidationError

    try:
        ds = load_dataset(a.data, as_of=a.as_of, strict=not a.lenient, profile=a.profile, encoding=a.encoding)
    except DataValidationError as e:
        say(f"dataset {redact(a.data)}: INVALID")
        say(str(e))
        return e.exit_code
    say(validation_report(ds))
    print_reconcile(ds, notes=False)   # the report above lists the notes
    if a.rejects and len(ds.rejects):
        from ..data.io import write_table

        write_table(ds.rejects, a.rejects)
        say(f"rejected rows written to {a.rejects}")
    if len(ds.rejects):
        from ..errors import Problem

        raise DataValidationError([Problem("dataset", None, f"{len(ds.rejects):,} row(s) quarantined (listed above"
                                           + (f", written to {a.rejects})" if a.rejects else "; --rejects FILE writes them)"))])
    return 0


def cmd_synth(a: argparse.Namespace) -> int:
    from ..data import synth

    t = time.perf_counter()
    world = synth.generate(a.entities, seed=a.seed, start=a.start, end=a.end)
    data_dir, truth = world.save(a.out, format=a.format)
    from ..data.io import write_table

    ros = write_table(synth.roster(max(20, a.entities // 200), seed=a.seed,
                                   entity_ids=world.dataset.entities["entity_id"].to_numpy()), Path(a.out) / "inspectors.csv")
    n_events = sum(v[0] for k, v in world.dataset.counts.items() if k != "entities")
    say(f"synthetic world: {a.entities:,} entities, {n_events:,} event rows, seed {a.seed} "
         f"({time.perf_counter() - t:.1f} s)")
    say(f"  dataset      {data_dir}")
    say(f"  ground truth {truth}   (never part of the dataset)")
    say(f"  inspectors   {ros}")
    return 0


def _check_synth(a: argparse.Namespace) -> str | None:
    if a.start >= a.end:
        return f"--start {a.start} must be before --end {a.end}"
    stale = synth_leftovers(Path(a.out) / "dataset", a.format)
    if stale:
        return (f"--out {a.out}: {Path(a.out) / 'dataset'} already holds table files of another format "
                f"({', '.join(stale)}); a {a.format} world written beside them would not load (two files for "
                "one table): remove them or choose another --out")
    return None


def synth_leftovers(directory: Path, format: str) -> list[str]:
    """Table files in ``directory`` that a synthetic world of ``format`` would not overwrite."""
    from ..data.contract import TABLES
    from ..data.paths import dataset_table_files

    if not directory.is_dir():
        return []
    names = set(dataset_table_files(tuple(TABLES)))
    return sorted(f.name for f in directory.iterdir() if f.name in names and f.name.split(".", 1)[1] != format)


def _io_synth(a: argparse.Namespace):
    return io_plan(a, out_dirs=[("--out", a.out)])


def _io_validate(a: argparse.Namespace):
    return io_plan(a, data=a.data, inputs=[("--profile", a.profile)], outputs=[("--rejects", a.rejects)])


def register(sp) -> None:
    """Add this group's commands to the subparsers ``sp``."""
    p = add_command(sp, "validate", cmd_validate, "Check a dataset against the data contract.",
             "yiwu-credit validate out/demo/world/dataset", io=_io_validate)
    p.add_argument("data", help="dataset directory (one CSV, Excel or Parquet file per table)")
    add_source_args(p)
    p.add_argument("--as-of", type=date_arg, help="also reject events dated after this ISO date")
    p.add_argument("--lenient", action="store_true", help="quarantine bad rows instead of failing on them")
    p.add_argument("--rejects", help="with --lenient: write rejected rows to this file")

    p = add_command(sp, "synth", cmd_synth, "Generate a synthetic Yiwu market-entity world.",
             "yiwu-credit synth --entities 20000 --seed 7 --out out/world", check=_check_synth,
             io=_io_synth)
    p.add_argument("--entities", type=count_arg(1), default=20_000)
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--start", type=date_arg, default="2016-01-01")
    p.add_argument("--end", type=date_arg, default="2025-12-31")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", required=True, help="output directory (dataset/ and truth.parquet)")
