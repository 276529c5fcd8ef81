"""The shape of the package: light imports, one version, __all__ everywhere, no private name used
across modules, no module over 800 lines, a documented public API."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import yiwu_credit

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "yiwu_credit"
MODULES = sorted(p for p in SRC.rglob("*.py"))
HEAVY = ("lightgbm", "sklearn", "matplotlib", "dask", "scipy")


def _module_name(p: Path) -> str:
    parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _loaded_after(code: str) -> list[str]:
    """Top-level heavy packages in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + f"\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC.parent), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_light_imports():
    """The package root, the data stage and every supervision module load no ML library."""
    assert _loaded_after("import yiwu_credit") == []
    sup = [_module_name(p) for p in MODULES if p.parent.name in ("supervision", "data") and p.name != "synth.py"]
    assert _loaded_after("\n".join(f"import {m}" for m in [*sup, "yiwu_credit.policy", "yiwu_credit.config"])) == []


def test_verify_and_help_do_not_load_the_model_stack():
    code = ("from yiwu_credit.cli import main\n"
            "for argv in (['--help'], ['verify', '--help'], ['plan', '--help'], ['estimate', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass")
    assert _loaded_after(code) == []


def test_the_version_is_written_once():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "yiwu_credit._version.__version__"
    hits = [p for p in MODULES if "__version__ =" in p.read_text("utf-8")]
    assert hits == [SRC / "_version.py"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p) or "yiwu_credit")
def test_module_shape(path: Path):
    text = path.read_text("utf-8")
    tree = ast.parse(text)
    assert len(text.splitlines()) <= 800, f"{path.name}: {len(text.splitlines())} lines (the limit is 800)"
    if path.name != "__init__.py" or any(isinstance(n, ast.FunctionDef) for n in tree.body):
        has_all = any(isinstance(n, ast.Assign | ast.AnnAssign)
                      and any(getattr(t, "id", None) == "__all__" for t in getattr(n, "targets", [getattr(n, "target", None)]))
                      for n in tree.body)
        assert has_all, f"{path.name}: no __all__"
    # no private name of another module: `from .x import _y` or `mod._y` on an imported module
    aliases: set[str] = set()
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("yiwu_credit")):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append(f"line {node.lineno}: imports {a.name} from {'.' * node.level}{node.module or ''}")
                aliases.add(a.asname or a.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            bad.append(f"line {node.lineno}: uses {node.value.id}.{node.attr}")
    assert not bad, f"{path.name}: private names across modules: {bad}"


def test_public_api_names_the_whole_pipeline():
    names = set(yiwu_credit.__all__)
    for stage in ("load_dataset", "build_features", "TieredRiskModel", "train", "load_bundle", "score_entities",
                  "supervision_plan", "draw", "verify", "assign_inspectors", "violation_rates", "monitor",
                  "policy_frontier", "write_report"):
        assert stage in names, stage
    for name in sorted(names - {"__version__"}):
        obj = getattr(yiwu_credit, name)
        assert (obj.__doc__ or "").strip(), f"yiwu_credit.{name} has no docstring"
    with pytest.raises(AttributeError):
        yiwu_credit.no_such_name  # noqa: B018


@pytest.mark.parametrize("script", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_import_only_names_that_exist(script: Path):
    """Benchmarks are not run in CI (they take minutes), so at least every ``yiwu_credit`` name they
    import must exist: a module moved by a refactor must not leave a benchmark broken unseen."""
    import importlib

    tree = ast.parse(script.read_text("utf-8"))
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("yiwu_credit"):
            try:
                mod = importlib.import_module(node.module)
            except ImportError as e:
                missing.append(f"line {node.lineno}: {node.module} ({e})")
                continue
            missing += [f"line {node.lineno}: {node.module}.{a.name}" for a in node.names if not hasattr(mod, a.name)
                        and not _is_submodule(node.module, a.name)]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("yiwu_credit"):
                    try:
                        importlib.import_module(a.name)
                    except ImportError as e:
                        missing.append(f"line {node.lineno}: {a.name} ({e})")
    assert not missing, f"{script.name}: " + "; ".join(missing)


def _is_submodule(package: str, name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"{package}.{name}") is not None


def _unit(module: str) -> str:
    """The layer of a ``yiwu_credit`` module: its first component (``data``, ``policy``, ``cli``…)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layers_from_docs() -> dict[str, set[str]]:
    """The "may import" table of docs/architecture.md: unit → units it may import."""
    text = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    table = text[text.index("| package | what it holds | may import |"):].split("\n\n")[0].splitlines()[2:]
    layers: dict[str, set[str]] = {}
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        allowed = set() if cells[2] == "—" else {x.strip() for x in cells[2].split(",")}
        for name in cells[0].split(","):
            layers[name.strip().strip("`").rstrip("/")] = allowed
    return layers


def _imports_of(path: Path) -> list[tuple[int, str]]:
    """Every yiwu_credit module ``path`` imports, at module level or inside functions."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("yiwu_credit"):
                names = [f"{target}.{a.name}" for a in node.names] if target == "yiwu_credit" else [target]
                out += [(node.lineno, t) for t in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("yiwu_credit")]
    return out


def _violations(layers: dict[str, set[str]]) -> list[str]:
    bad = []
    for path in MODULES:
        unit = _unit(_module_name(path))
        if unit == "":  # the package root re-exports the public API lazily
            continue
        assert unit in layers, f"{path.relative_to(SRC)}: unit {unit!r} is missing from docs/architecture.md"
        for line, target in _imports_of(path):
            t = _unit(target)
            if t and t != unit and t not in layers[unit]:
                bad.append(f"{path.relative_to(SRC)}:{line} ({unit}) imports {target}")
    return bad


def test_layering():
    """Each unit imports only what docs/architecture.md's table lets it (lazy imports included)."""
    layers = _layers_from_docs()
    assert {"errors", "config", "data", "policy", "features", "tiering", "model", "supervision", "report",
            "pipeline", "distributed", "cli"} <= set(layers)
    bad = _violations(layers)
    assert not bad, "imports against the layering of docs/architecture.md:\n" + "\n".join(bad)


def test_layering_check_sees_lazy_and_relative_imports():
    """The checker itself: without the edges the table grants, the lazy import of the report by the
    demo and the estimator's import of tiering are reported."""
    layers = _layers_from_docs()
    bad = "\n".join(_violations({**layers, "pipeline": layers["pipeline"] - {"report"},
                                 "model": layers["model"] - {"tiering"}}))
    assert "pipeline/demo.py" in bad and "yiwu_credit.report" in bad
    assert "model/estimator.py" in bad and "yiwu_credit.tiering" in bad
