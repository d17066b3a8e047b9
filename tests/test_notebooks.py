"""notebooks/*.ipynb run top to bottom in a real Jupyter kernel, and are committed clean.

Each notebook is executed headless with nbclient and an IPython kernel (ipykernel) from
the notebooks folder, as a reader would run it; any cell that raises fails the test.  The
kernel imports this checkout (PYTHONPATH), and so do the search's spawned workers.  Two
cells appended for the test then check, on the notebook's own results, the conclusions
its text states (issue 24: the notebooks taught that dropout stops learning, and showed a
narrowed search round scoring below the first).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# The conclusions each notebook's text states, checked on the notebook's own results by a
# cell appended for the test (the checks: tests/test_experiments.py; their runs on more
# seeds: test_quick_conclusions_on_more_seeds, in the slow tier).
CHECKS = """from test_experiments import (
    check_batch_norm,
    check_optimizer_mnist,
    check_quick_dropout,
    check_quick_hyperparameter,
    check_quick_regularization,
    check_quick_weight_decay,
    check_weight_init,
)"""
CONCLUSIONS = {
    "chapter6": """
check_optimizer_mnist(mnist_result)  # SGD is the slowest ...
early = mnist_result.window_mean(100, 300)
assert set(sorted(early, key=early.get)[:2]) == {"AdaGrad", "Adam"}, early  # ... these lead
check_weight_init(init_result)
check_batch_norm(bn_result)
check_quick_weight_decay(decay_result)
check_quick_dropout(dropout_result)
best = search_result.best(5)  # 20 trials of 30 epochs: the best learning rates stand out
assert all(3e-3 <= t["params"]["lr"] <= 1e-2 for t in best[:3]), best
assert best[0]["value"] > 0.4 and not search_result.at_chance()
check_quick_hyperparameter(hp_result)
""",
    "beyond": """
check_quick_regularization(reg_result)
check_quick_weight_decay(decay_result)
check_quick_dropout(dropout_result)
""",
}

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")


def test_the_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["beyond.ipynb", "chapter6.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_colab_cell_installs_from_the_repository(path):
    """xpscratch is on no package index: `%pip install "xpscratch[plot]"` cannot work."""
    nb = nbformat.read(path, as_version=4)
    pips = [line.strip() for c in nb.cells for line in c.source.splitlines()]
    pips = [line for line in pips if line.startswith("%pip install")]
    assert pips, "the first cell installs xpscratch where it is missing"
    for line in pips:
        assert "@ git+" in line, line  # a URL, never a bare name looked up on an index


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(path, as_version=4)
    imports = f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n{CHECKS}"
    nb.cells.append(nbformat.v4.new_code_cell(imports))
    nb.cells.append(nbformat.v4.new_code_cell(CONCLUSIONS[path.stem]))
    client = nbclient.NotebookClient(
        nb,
        timeout=600,  # per cell
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors

    # every cell that ends with a figure shows it inline
    def ends_with_figure(cell) -> bool:
        last = cell.source.strip().splitlines()[-1]
        return last.endswith(".plot()") or last.startswith("plot_") or last == "fig"

    figure_cells = [c for c in nb.cells if c.cell_type == "code" and ends_with_figure(c)]
    missing = [
        c.source.strip().splitlines()[-1]
        for c in figure_cells
        if not any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    assert figure_cells and not missing, missing
    first = nb.cells[1]
    assert "find_spec" in first.source and "%pip install" in first.source
    assert "xpscratch" in "".join(o.get("text", "") for o in first.outputs)  # it imported
