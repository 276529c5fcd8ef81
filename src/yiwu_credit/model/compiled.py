"""Compiled trees: the LightGBM model as native code (optional extra ``fast``: lleaves).

``pip install 'yiwu-credit[fast]'`` installs lleaves, which compiles the booster's trees with
LLVM into a function that predicts the raw margin several times faster than
``Booster.predict`` (same sums, up to floating-point rounding: |Δmargin| ~1e-15; the tests hold
it to 1e-9 on probabilities). Used when asked (``score_entities(compiled=True)`` or
``YIWU_CREDIT_COMPILED=1``); the default path never needs it.

The compiled object code is cached on disk, one file per model and machine: its name is the
SHA-256 of the booster's model text together with the lleaves and llvmlite versions and the
host CPU name and features, so another model, library or CPU never reads a stale file. It is
written atomically (a temporary file in the same folder, then a rename), and checked against
``Booster.predict`` on probe rows each time it is loaded. No network is involved. The folder is
``$YIWU_CREDIT_CACHE/trees`` (default ``$XDG_CACHE_HOME/yiwu_credit`` or ``~/.cache/yiwu_credit``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_ENV", "ENABLE_ENV", "CompiledTrees", "available", "cache_dir", "wanted"]

CACHE_ENV = "YIWU_CREDIT_CACHE"
ENABLE_ENV = "YIWU_CREDIT_COMPILED"
_PROBE_ROWS = 512
_TOLERANCE = 1e-9


def available() -> bool:
    """Whether the ``fast`` extra (lleaves) is installed."""
    return importlib.util.find_spec("lleaves") is not None


def wanted(compiled: bool | None) -> bool:
    """``compiled``, or when None the environment's :data:`ENABLE_ENV` ("1", "true", "yes")."""
    if compiled is None:
        return os.environ.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes")
    return bool(compiled)


def cache_dir() -> Path:
    """Where compiled trees are kept (see the module docstring)."""
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yiwu_credit"
    return Path(root) / "trees"


def _machine_key() -> str:
    """lleaves and llvmlite versions and the host CPU the object code is compiled for."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    llvm.initialize()
    llvm.initialize_native_target()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot always detect them
        features = ""
    return f"lleaves {version('lleaves')}; llvmlite {version('llvmlite')}; {llvm.get_host_cpu_name()}; {features}"


class CompiledTrees:
    """A LightGBM booster compiled to native code, predicting its raw margin.

    ``booster``: a fitted ``lightgbm.Booster``; ``cache``: folder of the compiled files
    (default :func:`cache_dir`). Raises ImportError without the ``fast`` extra, and
    RuntimeError if the compiled code disagrees with the booster on the probe rows.
    """

    def __init__(self, booster: Any, cache: str | os.PathLike | None = None):
        if not available():
            raise ImportError("compiled trees need the 'fast' extra: pip install 'yiwu-credit[fast]' (lleaves)")
        import lleaves

        text = booster.model_to_string(num_iteration=-1)
        digest = hashlib.sha256(text.encode("utf-8"))
        digest.update(_machine_key().encode("utf-8"))
        folder = Path(cache) if cache is not None else cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{digest.hexdigest()}.o"
        with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
            model_file = Path(tmp) / "model.txt"
            model_file.write_text(text, encoding="utf-8")
            self._model = lleaves.Model(model_file=str(model_file))
            if not self.path.exists():  # compile into the temporary folder, then rename: atomic
                built = Path(tmp) / "trees.o"
                lleaves.Model(model_file=str(model_file)).compile(cache=str(built), raw_score=True)
                os.replace(built, self.path)
            self._model.compile(cache=str(self.path), raw_score=True)
        self.n_features = booster.num_feature()
        self._check(booster)

    def margin(self, X: np.ndarray, n_jobs: int = 1) -> np.ndarray:
        """Raw margin of each row of the float64 matrix ``X`` (n, n_features), shape (n,)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if len(X) == 0:
            return np.zeros(0)
        return self._model.predict(X, n_jobs=n_jobs)

    def _check(self, booster: Any) -> None:
        """The compiled code against ``Booster.predict`` on probe rows: values around every
        split threshold of the model, missing values and category codes."""
        rng = np.random.default_rng(0)
        dump = booster.dump_model()
        cuts: list[list[float]] = [[] for _ in range(self.n_features)]
        stack = [t["tree_structure"] for t in dump["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                th = node["threshold"]
                vals = [float(v) for v in str(th).split("||")] if isinstance(th, str) else [float(th)]
                cuts[node["split_feature"]].extend(vals)
                stack += [node["left_child"], node["right_child"]]
        P = np.empty((_PROBE_ROWS, self.n_features))
        for j, c in enumerate(cuts):
            pool = np.array(c + [v + d for v in c for d in (-1.0, -1e-6, 1e-6, 1.0)] + [0.0, 1.0, -1.0, np.nan])
            P[:, j] = rng.choice(pool, size=_PROBE_ROWS)
        want = booster.predict(P, raw_score=True, num_threads=1)
        got = self.margin(P)
        worst = float(np.max(np.abs(got - want)))
        if not worst <= _TOLERANCE:
            raise RuntimeError(f"compiled trees {self.path.name} differ from the booster by {worst:.3g} "
                               "on probe rows; delete the file to recompile")
