"""One date parser: no module parses dates by itself (``to_datetime``, ``strptime``,
``fromisoformat``) — every date goes through :mod:`yiwu_credit.data.dates`, so every command and
column accepts the same whole dates. Exceptions are listed with their reason."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "yiwu_credit"
THE_PARSER = "data/dates.py"
FORBIDDEN = ("to_datetime", "strptime", "fromisoformat")
#: (module, call) → why it may parse by itself
ALLOWED: dict[tuple[str, str], str] = {
    ("pipeline/closed_loop.py", "to_datetime"): "simulated results the library generates itself "
                                                "(simulate_results' own ISO dates), not input",
}


def _calls(path: Path) -> list[tuple[str, int]]:
    """(name, line) of every call of a forbidden function, as ``x.name(...)`` or ``name(...)``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in FORBIDDEN:
                out.append((name, node.lineno))
        elif isinstance(node, ast.ImportFrom) and any(a.name in FORBIDDEN for a in node.names):
            out.append((next(a.name for a in node.names if a.name in FORBIDDEN), node.lineno))
    return out


def test_no_date_parsing_outside_data_dates():
    found = []
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC).as_posix()
        if rel == THE_PARSER:
            continue
        found += [f"{rel}:{line}: {name}(...)" for name, line in _calls(p) if (rel, name) not in ALLOWED]
    assert not found, ("parse dates with yiwu_credit.data.dates (parse_as_of, parse_text_dates, parse_dates, "
                       "to_day), not by hand:\n" + "\n".join(found))


def test_every_exception_is_still_needed():
    for (rel, name), reason in ALLOWED.items():
        assert reason and any(n == name for n, _ in _calls(SRC / rel)), f"{rel}: {name} no longer used; drop it"


@pytest.mark.parametrize("code", ["pd.to_datetime(x)", "datetime.datetime.strptime(s, f)",
                                  "datetime.date.fromisoformat(s)", "to_datetime(x)",
                                  "from pandas import to_datetime"])
def test_the_check_sees_each_form(tmp_path, code):
    p = tmp_path / "m.py"
    p.write_text(code + "\n", encoding="utf-8")
    assert _calls(p), code
