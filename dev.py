#!/usr/bin/env python3
"""Developer entry point, standard library only, so a fresh clone needs just Python ≥ 3.11 and pip.

    python3 dev.py demo    # create .venv, install, run the main job on built-in defaults
    python3 dev.py test    # create .venv, install with test extras, lint and run the tests
    python3 dev.py bench   # run the benchmarks (writes benchmarks/results/, appends history.csv)
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def install(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run under an older system Python
        sys.exit(f"yiwu_credit needs Python >= 3.11 (this is {sys.version.split()[0]})")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f".[{extras}]")


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    rest = argv[1:]
    try:
        if task == "demo":
            install("report")
            run(BIN / "yiwu-credit", "demo", *rest)
        elif task == "test":
            install("test")
            run(PY, "-m", "ruff", "check", "src", "tests", "benchmarks", "notebooks", "dev.py")
            run(PY, "-m", "pytest", *rest)
        elif task == "bench":  # each appends its key figures to benchmarks/results/history.csv
            install("test,dask")
            run(PY, "benchmarks/run.py", *rest)
            run(PY, "benchmarks/bench_loading.py", "--profile")
            run(PY, "benchmarks/bench_e2e.py")
        else:
            print(__doc__)
            return 0 if task in ("help", "-h", "--help") else 2
    except subprocess.CalledProcessError as e:
        return e.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
