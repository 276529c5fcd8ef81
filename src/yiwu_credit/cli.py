"""The ``yiwu-credit`` command line. Thin: parse, call the library, print.

Exit codes: 0 success · 1 unexpected internal error · 2 usage error · 3 bad data ·
4 bad configuration (catalogue, policy, roster) · 5 model bundle missing/tampered/incompatible ·
6 impossible supervision request. User errors never print a traceback (``--debug`` does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from . import __version__
from .errors import YiwuCreditError

EXIT_INTERNAL = 1


def _out(msg: str = "") -> None:
    print(msg, flush=True)


def _progress(total: int, desc: str):
    """A progress bar on a terminal; silent otherwise (tqdm, disabled when not a TTY)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None, leave=False, file=sys.stderr)


# ----------------------------------------------------------------------------- commands

def cmd_validate(a: argparse.Namespace) -> int:
    from .dataset import load_dataset, validation_report
    from .errors import DataValidationError

    try:
        ds = load_dataset(a.data, as_of=a.as_of, strict=not a.lenient)
    except DataValidationError as e:
        _out(f"dataset {a.data}: INVALID")
        _out(str(e))
        return e.exit_code
    _out(validation_report(ds))
    if a.rejects and len(ds.rejects):
        from .io import write_table

        write_table(ds.rejects, a.rejects)
        _out(f"rejected rows written to {a.rejects}")
    return 0 if not len(ds.rejects) else 3


def cmd_synth(a: argparse.Namespace) -> int:
    from . import synth

    t = time.perf_counter()
    world = synth.generate(a.entities, seed=a.seed, start=a.start, end=a.end)
    data_dir, truth = world.save(a.out, format=a.format)
    n_events = sum(v[0] for k, v in world.dataset.counts.items() if k != "entities")
    _out(f"synthetic world: {a.entities:,} entities, {n_events:,} event rows, seed {a.seed} "
         f"({time.perf_counter() - t:.1f} s)")
    _out(f"  dataset      {data_dir}")
    _out(f"  ground truth {truth}   (never part of the dataset)")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .bundle import save_bundle
    from .training import train

    if a.synthetic:
        from . import synth

        world = synth.generate(a.synthetic, seed=a.seed)
        ds, truth = world.dataset, world.truth
    else:
        if not a.data:
            raise SystemExit("yiwu-credit train: give --data DIR or --synthetic N")
        from .dataset import load_dataset

        ds, truth = load_dataset(a.data), None
    params = {"learner": a.learner, "random_state": a.seed}
    res = train(ds, a.as_of, horizon=a.horizon, test_as_of=a.test_as_of, policy=a.policy,
                catalogue=a.catalogue, label_source=a.labels, truth=truth, **params)
    name = a.name or Path(a.out).name
    save_bundle(res.model, a.out, name=name, version=a.version, catalogue=res.model.catalogue,
                policy=res.model.policy, training=res.training, metrics=res.metrics)
    m = res.metrics["test_out_of_time"]
    _out(f"trained {a.learner} on {res.training['n_train']:,} entities at {res.training['as_of']}; "
         f"out-of-time at {res.training['test_as_of']}: AUC {m['auc']:.3f}, KS {m['ks']:.3f}, "
         f"Brier {m['brier']:.4f}, tiers monotone: {m['tiers_monotone']}")
    _out(res.test_tiers.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if "truth" in res.metrics:
        _out("ground truth: " + json.dumps({k: round(v, 3) for k, v in res.metrics["truth"].items()}))
    _out(f"bundle written to {a.out}")
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from .bundle import load_bundle
    from .dataset import load_dataset
    from .io import write_table
    from .scoring import score_entities

    with _progress(4, "score") as bar:
        bar.set_postfix_str("loading")
        ds = load_dataset(a.data, strict=a.strict)
        bar.update()
        bar.set_postfix_str("model")
        bundle = load_bundle(a.model)
        bar.update()
        bar.set_postfix_str("features, tiers, reasons")
        res = score_entities(ds, a.as_of, bundle, reasons=a.reasons)
        bar.update()
        out = Path(a.out)
        if a.excel and out.suffix == ".parquet":
            raise SystemExit("yiwu-credit score: --excel writes CSV; give an --out ending in .csv")
        write_table(res.scored.reset_index(), out, excel=a.excel)
        rejects = _rejects_frame(ds, res.excluded)
        rej_path = Path(a.rejects) if a.rejects else out.with_name(out.stem + ".rejects.csv")
        write_table(rejects, rej_path, excel=a.excel)
        bar.update()
    n_in = ds.counts["entities"][0]
    n_rej = ds.counts["entities"][2]
    _out(f"scored {len(res.scored):,} entities at {a.as_of} with {bundle.version} → {out}")
    _out(f"entities in {n_in:,} = scored {len(res.scored):,} + out of pool {len(res.excluded):,} "
         f"+ rejected {n_rej:,}; rejects and exclusions with reasons → {rej_path}")
    assert n_in == len(res.scored) + len(res.excluded) + n_rej, "entity counts do not reconcile"
    shares = res.scored["tier"].value_counts().reindex(list("ABCD"), fill_value=0)
    _out("tiers: " + "  ".join(f"{t} {n:,}" for t, n in shares.items()))
    return 0


def _rejects_frame(ds, excluded: pd.DataFrame) -> pd.DataFrame:
    rej = ds.rejects.copy()
    ex = excluded.assign(table="entities", row=pd.NA, column="", kind="out_of_pool")
    rej["kind"] = "rejected"
    cols = ["kind", "table", "row", "entity_id", "column", "reason"]
    return pd.concat([rej.reindex(columns=cols), ex.reindex(columns=cols)], ignore_index=True)


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(a.out), n_entities=a.entities, seed=a.seed, printer=_out)
    return 0


# ----------------------------------------------------------------------------- parser

def _sub(sp, name: str, func: Callable, help: str, example: str) -> argparse.ArgumentParser:
    p = sp.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="yiwu-credit", description="Credit-based risk supervision of market entities (义乌信用分级分类监管).",
        epilog="exit codes: 0 ok, 1 internal error, 2 usage, 3 bad data, 4 bad config, 5 bad model bundle, "
               "6 impossible plan",
    )
    ap.add_argument("--version", action="version", version=f"yiwu-credit {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sp = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sp, "validate", cmd_validate, "Check a dataset against the data contract.",
             "yiwu-credit validate out/demo/world/dataset")
    p.add_argument("data", help="dataset directory (one CSV or Parquet file per table)")
    p.add_argument("--as-of", help="also reject events dated after this ISO date")
    p.add_argument("--lenient", action="store_true", help="quarantine bad rows instead of failing on them")
    p.add_argument("--rejects", help="with --lenient: write rejected rows to this file")

    p = _sub(sp, "synth", cmd_synth, "Generate a synthetic Yiwu market-entity world.",
             "yiwu-credit synth --entities 20000 --seed 7 --out out/world")
    p.add_argument("--entities", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--start", default="2016-01-01")
    p.add_argument("--end", default="2025-12-31")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", required=True, help="output directory (dataset/ and truth.parquet)")

    p = _sub(sp, "train", cmd_train, "Train a model bundle (features, labels, fit, out-of-time evaluation).",
             "yiwu-credit train --data out/world/dataset --as-of 2024-01-01 --out models/mine")
    p.add_argument("--data", help="dataset directory")
    p.add_argument("--synthetic", type=int, metavar="N", help="train on a synthetic world of N entities instead")
    p.add_argument("--as-of", required=True)
    p.add_argument("--horizon", default="365D")
    p.add_argument("--test-as-of", help="out-of-time test date (default as-of + horizon)")
    p.add_argument("--labels", choices=["all", "campaigns"], default="all",
                   help="'campaigns': random-campaign outcomes with inverse-probability weights")
    p.add_argument("--learner", choices=["lightgbm", "scorecard"], default="lightgbm")
    p.add_argument("--policy", help="policy name or TOML path (default yiwu-2022)")
    p.add_argument("--catalogue", help="feature catalogue TOML (default: the shipped one)")
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--name", help="bundle name (default: the output folder name)")
    p.add_argument("--version", default="1.0.0", help="bundle version")
    p.add_argument("--out", required=True, help="bundle directory to write")

    p = _sub(sp, "score", cmd_score, "Score every entity: probability, credit score, tier, reasons.",
             "yiwu-credit score --data out/world/dataset --as-of 2026-01-01 --out out/scores.csv --excel")
    p.add_argument("--data", required=True)
    p.add_argument("--model", help="bundle directory or shipped name (default: models/default)")
    p.add_argument("--as-of", required=True)
    p.add_argument("--out", required=True, help=".parquet or .csv")
    p.add_argument("--rejects", help="rejects file (default: <out>.rejects.csv)")
    p.add_argument("--excel", action="store_true", help="CSV with a UTF-8 BOM so Excel shows Chinese correctly")
    p.add_argument("--reasons", choices=["CD", "all", "none"], default="CD",
                   help="reason codes for tiers C/D and overrides (default), everyone, or no one")
    p.add_argument("--strict", action="store_true", help="fail on any bad row instead of quarantining it")

    p = _sub(sp, "demo", cmd_demo, "Run the whole pipeline on a synthetic world with the shipped model.",
             "yiwu-credit demo --out out/demo")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--entities", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=2022)

    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        return int(a.func(a) or 0)
    except YiwuCreditError as e:
        if a.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        if a.debug:
            raise
        print(f"error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so, without a traceback unless asked
        if a.debug:
            raise
        print(f"internal error: {type(e).__name__}: {e}\n(run with --debug for the traceback; please report it)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
