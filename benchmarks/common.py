"""Shared benchmark helpers: timing with medians, CPU time, per-stage peak RSS, machine info,
cached synthetic worlds and the results history (``results/history.csv``)."""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; falls back to the lifetime peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Samples RSS every 5 ms in a thread; ``peak`` is the maximum seen inside the block."""

    def __enter__(self) -> PeakRSS:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_bytes())


def measure(fn: Callable[[], Any], repeat: int = 3) -> tuple[dict, Any]:
    """Run ``fn`` ``repeat`` times: median wall and CPU seconds, peak RSS (GiB), last result."""
    walls, cpus, peaks = [], [], []
    out = None
    for _ in range(repeat):
        out = None
        with PeakRSS() as mem:
            t, c = time.perf_counter(), time.process_time()
            out = fn()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        peaks.append(mem.peak)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "runs": repeat,
            "wall_all_s": [round(w, 4) for w in walls], "peak_rss_gib": max(peaks) / 2**30}, out


def machine() -> dict:
    import lightgbm
    import numpy
    import pandas
    import sklearn
    from threadpoolctl import threadpool_info

    import yiwu_credit

    return {
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "processor": platform.processor(),
        "versions": {"yiwu_credit": yiwu_credit.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__,
                     "scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__},
        "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "lightgbm_num_threads": 2,
                    "blas": [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]},
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, p)
    return p


#: Where generated worlds are kept between runs (``YIWU_BENCH_CACHE`` overrides); generating 3M
#: entities takes minutes, reading them back seconds.
CACHE = Path(os.environ.get("YIWU_BENCH_CACHE", "/tmp/yiwu_worlds"))
HISTORY = RESULTS / "history.csv"
HISTORY_COLUMNS = ["date", "commit", "bench", "n_entities", "metric", "value"]


def world_dir(n: int, cache: Path = CACHE, seed: int = 2022) -> Path:
    """The Parquet dataset of ``synth.generate(n, seed)``, generated once and cached on disk
    (written to a temporary folder, then renamed, so a half-written world is never reused)."""
    from yiwu_credit.data import synth

    out = cache / (f"w{n}" if seed == 2022 else f"w{n}_s{seed}")
    if (out / "entities.parquet").is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    synth.generate(n, seed=seed).dataset.save(tmp, format="parquet")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def git_commit() -> str:
    """Short commit of the working tree, with ``+dirty`` when it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!benchmarks/results"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def record_history(bench: str, figures: dict[int, dict[str, float]]) -> Path:
    """Append one row per (size, metric) to ``results/history.csv`` (date, commit, bench,
    n_entities, metric, value), so that a regression shows against earlier runs."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    commit = git_commit()
    old = HISTORY.read_text(encoding="utf-8") if HISTORY.is_file() else ""
    tmp = HISTORY.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:  # rewritten whole, then renamed: atomic
        fh.write(old)
        w = csv.writer(fh)
        if not old:
            w.writerow(HISTORY_COLUMNS)
        for n, metrics in figures.items():
            for metric, value in metrics.items():
                w.writerow([date, commit, bench, n, metric, f"{value:.6g}"])
    os.replace(tmp, HISTORY)
    return HISTORY
