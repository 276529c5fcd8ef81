"""The README's library example runs as written (on a small synthetic world in its paths)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yiwu_credit.data import synth
from yiwu_credit.data.io import write_table

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.slow
def test_readme_library_example_runs(world, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S)
    code = next(b for b in blocks if "import yiwu_credit as yc" in b)
    base = tmp_path / "out" / "demo" / "world"
    world.save(base)
    write_table(synth.roster(40, seed=1, entity_ids=world.dataset.entities["entity_id"].to_numpy()),
                base / "inspectors.csv")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)   # noqa: S102 - our own README
    assert ns["d"].audit["n"] == len(ns["d"].selected) > 0
    assert bool(ns["yc"].verify(ns["d"].audit, ns["plan"], roster=ns["roster"]))
    assert set(ns["result"].scored["tier"]) <= set("ABCD")
