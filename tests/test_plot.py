"""xpscratch.plot: every result draws itself into a Figure (headless), and says what made it.

Short NumPy runs of each experiment (a few seconds in all); the figures are drawn on
matplotlib's Agg canvas and rendered to PNG bytes, never shown.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import xpscratch
from xpscratch.check._experiments import SHORT
from xpscratch.experiments import EXPERIMENTS

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

# small settings: the check battery's short runs (one table), with enough histogram
# samples to draw every panel and 2 seeds for regularization_compare's title
SMALL: dict[str, dict] = {
    **SHORT,
    "weight_init_activation_histogram": {"samples": 100},
    "regularization_compare": {**SHORT["regularization_compare"], "seeds": 2},
}
NO_SEED = {"optimizer_compare_naive", "optimizer_zoo"}  # computed: nothing random
# no images: the 2-D surfaces, and the histograms' random inputs
NO_DATASET = NO_SEED | {"weight_init_activation_histogram"}

_cache: dict[str, object] = {}


def small_run(name: str):
    if name not in _cache:
        with xpscratch.use_backend("numpy"):
            _cache[name] = EXPERIMENTS[name].run(dtype="float32", seed=0, **SMALL[name])
    return _cache[name]


def texts(fig) -> str:
    """Every title, label and text of a figure, one string."""
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
    return "\n".join(parts)


def test_every_experiment_is_listed():
    assert sorted(SMALL) == sorted(EXPERIMENTS)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_result_plot_returns_a_figure_that_names_what_made_it(name):
    fig = small_run(name).plot()
    assert isinstance(fig, Figure) and fig.axes, name
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    label = texts(fig)
    seeds = "seeds 0-1" if name == "regularization_compare" else "seed 0"
    expected = "numpy, float32]" if name in NO_SEED else f"numpy, float32, {seeds}]"
    assert expected in label, label
    assert ("mnist-small" in label) == (name not in NO_DATASET), label


def test_results_draw_into_the_callers_figure():
    parent = Figure(figsize=(16, 6), layout="constrained")
    left, right = parent.subfigures(1, 2)
    assert small_run("overfit_dropout").plot(fig=left) is left
    assert small_run("optimizer_compare_mnist").plot(fig=right) is right
    assert len(left.axes) == 2 and len(right.axes) == 1
    # one-panel figures take an axes
    from xpscratch.plot import plot_weight_init_compare

    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert plot_weight_init_compare(small_run("weight_init_compare"), ax=ax) is fig
    assert "weight initialisation" in ax.get_title()


def test_plot_refuses_a_result_without_a_figure():
    with pytest.raises(TypeError, match="no figure for a dict"):
        xpscratch.plot.figure({})


def test_experiment_plot_still_writes_the_file(tmp_path):
    path = tmp_path / "fig.svg"
    EXPERIMENTS["optimizer_compare_naive"].plot(small_run("optimizer_compare_naive"), path)
    assert b"<svg" in path.read_bytes()[:500]


def test_diverged_runs_are_marked():
    r = small_run("batch_norm_test")
    fake = type(r)(**{**vars(r), "diverged": [True] + [False] * (len(r.diverged) - 1)})
    fig = fake.plot()
    first = fig.axes[0]
    assert "without: diverged" in [t.get_text() for t in first.texts]
    assert any(line.get_marker() == "x" for line in first.lines)
    assert not any(line.get_marker() == "x" for line in fig.axes[1].lines)
    # one legend for the figure, not a tiny one in the last panel
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)


def test_the_baseline_is_the_left_panel():
    fig = small_run("overfit_dropout").plot()
    assert fig.axes[0].get_title().startswith("no dropout")
    assert fig.axes[1].get_title().startswith("dropout 0.2")
    fig = small_run("overfit_weight_decay").plot()
    assert fig.axes[0].get_title().startswith("weight decay λ=0:")
    assert fig.axes[0].get_ylim()[1] > 1.0  # the train markers at 1.0 are not clipped


def test_axes_that_do_not_start_at_zero_say_so():
    fig = small_run("lr_schedule_compare").plot()
    bars = fig.axes[-1]
    assert bars.get_ylim()[0] > 0 and "axis from" in bars.get_ylabel()
    fig = small_run("optimizer_compare_mnist").plot()
    assert fig.axes[0].get_yscale() == "log" and "log scale" in fig.axes[0].get_ylabel()


def test_histograms_have_axis_labels_and_room_for_the_sd_labels():
    r = small_run("weight_init_activation_histogram")
    fig = r.plot()
    assert "activation value" in fig._supxlabel.get_text()
    assert "count" in fig._supylabel.get_text()
    sigmoid_std1 = fig.axes[0]  # the tall edge bars
    tallest = max(r.histograms["sigmoid"]["std=1"][0])
    assert sigmoid_std1.get_ylim()[1] >= 1.3 * tallest


def test_zoo_frames_hold_every_path_of_a_surface_with_minima():
    import numpy as np

    r = small_run("optimizer_zoo")
    fig = r.plot()
    for col, name in enumerate(r.paths):
        if name == "saddle":  # escaping the frame is the point there
            continue
        ax = fig.axes[2 * col]  # created top, bottom, top, ...: the path panel
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for p in r.paths[name].values():
            p = np.asarray(p, dtype=float)
            assert x0 < p[:, 0].min() and p[:, 0].max() < x1, name
            assert y0 < p[:, 1].min() and p[:, 1].max() < y1, name


def scatter_colours(ax) -> list[tuple[float, ...]]:
    """The face colour of every dot in an axes' scatter plots, as drawn."""
    ax.figure.canvas.draw()  # colours are mapped from the values when drawn
    return [tuple(c) for coll in ax.collections for c in coll.get_facecolors()]


def test_search_dots_are_coloured_over_the_trials_own_accuracies():
    """Issue 24: a quick search's accuracies (0.07-0.23) on a fixed 0..1 colour scale all
    came out the same dark colour; the scale now spans the trials' accuracies."""
    import copy

    from matplotlib import colormaps

    r = copy.deepcopy(small_run("hyperparameter_optimization"))
    accuracies = iter([0.07, 0.23, 0.11, 0.2, 0.15, 0.09])  # a short search: near chance
    for rnd in r.rounds:
        for trial in rnd["trials"]:
            trial["val_acc"][-1] = next(accuracies)
    colours = scatter_colours(r.plot().axes[-2])  # the (lr, weight decay) plane
    viridis = colormaps["viridis"]
    assert len(colours) == 6 and len(set(colours)) == 6  # six accuracies, six colours
    expected = [viridis(p) for p in (0.0, 1.0, 0.25, 0.8125, 0.5, 0.125)]
    assert np.allclose(colours, expected, atol=0.02)  # the map has 256 steps

    from xpscratch.plot import plot_search_scatter
    from xpscratch.search import BOOK_SPACE, Objective, search

    found = search(BOOK_SPACE, 3, Objective(train_size=200, epochs=1), seed=0)
    for trial, value in zip(found.trials, (0.08, 0.12, 0.1), strict=True):
        trial["value"] = value
    colours = scatter_colours(plot_search_scatter(found).axes[-2])
    assert np.allclose(colours, [viridis(p) for p in (0.0, 1.0, 0.5)], atol=0.02)
