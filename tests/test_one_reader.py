"""One reader: no module outside the reader modules reads a table file itself (every command input
goes through ``yiwu_credit.data.tables.read_input``, every dataset table through
``data/sources/files.py`` or ``data/sources/database.py``), so the header checks, bounded Excel
reads and the one id rule cannot be bypassed by an ad-hoc ``pd.read_csv``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "yiwu_credit"
READERS = {"read_csv", "read_excel", "read_parquet", "read_table", "read_json", "read_feather", "read_fwf",
           "CalamineWorkbook", "load_workbook", "ParquetFile", "open_workbook"}
ALLOWED = {
    "data/tables.py": "the one reader of command inputs",
    "data/sources/files.py": "the dataset's per-table file readers (CSV, xlsx, Parquet) the one reader builds on",
    "data/sources/database.py": "database tables",
    "distributed/engine.py": "its own Parquet bucket files, written and read within one run (not an input)",
    "model/bundle.py": "the model bundle's own reference.parquet, checked against the bundle manifest",
}


def _calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every use or import of a table-reading function or class (``read_table``
    only as ``pq.``/``pacsv.``/``pyarrow.``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in READERS:
            base = node.value.id if isinstance(node.value, ast.Name) else "…"
            if node.attr != "read_table" or base in ("pq", "pacsv", "pyarrow", "parquet", "csv", "pd"):
                found.append((node.lineno, f"{base}.{node.attr}"))
        elif isinstance(node, ast.Name) and node.id in READERS - {"read_table"}:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                "pandas", "pyarrow", "python_calamine", "openpyxl", "xlrd"):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name in READERS]
    return found


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_table_is_read_outside_the_reader_modules(path: Path):
    rel = str(path.relative_to(PKG))
    if rel in ALLOWED:
        return
    bad = _calls(ast.parse(path.read_text("utf-8")))
    assert not bad, (f"{rel} reads tables itself at {bad}: call yiwu_credit.data.tables.read_input (or add the "
                     "module to ALLOWED with a reason)")


def test_the_guard_catches_what_it_forbids():
    """The AST check itself finds each forbidden form (a guard that finds nothing proves nothing)."""
    forms = {"pd.read_csv('x')": "pd.read_csv", "pd.read_excel('x')": "pd.read_excel",
             "pandas.read_parquet('x')": "pandas.read_parquet", "pq.read_table('x')": "pq.read_table",
             "CalamineWorkbook.from_path('x')": "CalamineWorkbook", "openpyxl.load_workbook('x')":
             "openpyxl.load_workbook", "from pyarrow.parquet import read_table": "import read_table",
             "pacsv.read_csv('x')": "pacsv.read_csv"}
    for src, name in forms.items():
        assert name in [n for _, n in _calls(ast.parse(src))], src
    assert _calls(ast.parse("from yiwu_credit.data.tables import read_input\nread_input('x', 'plan')")) == []


def test_allowed_modules_exist():
    assert all((PKG / rel).is_file() for rel in ALLOWED)
