"""tools/readme_tables.py: the README's tables from the JSON that ``xpscratch run`` writes.

Three instant experiments are run through the CLI (so the JSON is the real format); the
script must rebuild their results exactly, put their numbers into the marked regions and
leave every other line of the file alone.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import xpscratch
from xpscratch.cli import main as cli_main
from xpscratch.experiments import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["optimizer_compare_naive", "weight_init_activation_histogram", "optimizer_zoo"]

pytest.importorskip("matplotlib")  # the CLI draws the figures too


def _load_tool():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "tools/readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load_tool()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    with xpscratch.use_backend("numpy"):
        for name in NAMES:
            assert cli_main(["run", name, "--out", str(out), "--no-progress"]) == 0
    return out


def test_results_are_rebuilt_from_the_json(run_dir):
    with xpscratch.use_backend("numpy"):
        direct = EXPERIMENTS["optimizer_compare_naive"].run()
    rebuilt = tables.load_result(run_dir / "optimizer_compare_naive.json")
    assert type(rebuilt) is type(direct)
    a, b = rebuilt.to_dict(), direct.to_dict()
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b
    assert rebuilt.summary() == direct.summary()


def test_regions_are_rewritten_and_nothing_else(run_dir, tmp_path):
    readme = tmp_path / "README.md"
    before = (
        "# title\n\nkept text\n\n"
        "<!-- BEGIN generated: chapter -->\nstale table\n<!-- END generated: chapter -->\n"
        "middle\n"
        "<!-- BEGIN generated: optimizer_zoo -->\nold\n<!-- END generated: optimizer_zoo -->\n"
        "<!-- BEGIN generated: lr_schedule_compare -->\nno data for me\n"
        "<!-- END generated: lr_schedule_compare -->\nthe end\n"
    )
    readme.write_text(before)
    assert tables.main([str(run_dir), "--readme", str(readme), "--check"]) == 1
    assert tables.main([str(run_dir), "--readme", str(readme)]) == 0
    after = readme.read_text()
    assert tables.main([str(run_dir), "--readme", str(readme), "--check"]) == 0

    outside = re.sub(r"-->\n.*?<!-- END", "-->\n<!-- END", after, flags=re.S)
    assert outside == re.sub(r"-->\n.*?<!-- END", "-->\n<!-- END", before, flags=re.S)
    assert "stale table" not in after and "old\n" not in after
    assert "no data for me" in after  # a region the run has no data for is kept

    naive = tables.load_result(run_dir / "optimizer_compare_naive.json")
    d = naive.final_distance
    assert f"AdaGrad {d['AdaGrad']:.2f}" in after and f"SGD {d['SGD']:.2f}" in after
    assert "| `optimizer_compare_naive` | AdaGrad gets closest" in after
    assert "| `batch_norm_test`" not in after  # not in this run
    zoo = tables.load_result(run_dir / "optimizer_zoo.json")
    newton = zoo.steps_to_target["bowl"]["Newton"]
    assert re.search(rf"\| bowl x\^2/20 \+ y\^2 \(\(-7, 2\), 30\) \| {newton} \|", after)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        tables.main([str(tmp_path), "--readme", str(tmp_path / "README.md")])


def test_the_readme_has_every_region_the_script_writes():
    text = (ROOT / "README.md").read_text()
    found = {m["name"] for m in tables.REGION.finditer(text)}
    assert found == {
        "chapter",
        "regularization_compare",
        "lr_schedule_compare",
        "optimizer_zoo",
        "times",
    }


def test_the_header_takes_the_seed_from_a_seeded_experiment(run_dir):
    """Issue 24 item 3: the first result (a 2-D one, no seed) gave 'seed None'."""
    results = tables.load_run(run_dir)
    assert results["optimizer_compare_naive"].seed is None  # the first result has no seed
    seeds = {r.seed for r in results.values()} - {None}
    assert seeds == {0}
    header = tables.chapter_table(results).splitlines()[0]
    assert "seed None" not in header
    assert "numpy, float32, seed 0, book settings" in header
