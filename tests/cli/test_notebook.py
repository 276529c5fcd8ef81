"""The data scientists' notebook runs top to bottom (nbclient, fresh kernel)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


@pytest.mark.slow
def test_retrain_notebook_executes():
    path = Path(__file__).parents[2] / "notebooks" / "retrain.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "campaign inspections" in outputs
    assert "retrained (campaign IPW)" in outputs
    assert "bundle retrained@1.0.0" in outputs
