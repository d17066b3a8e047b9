"""Activation distributions through 5 layers (``ch06/weight_init_activation_histogram.py``).

1000 random inputs of 100 features pass through 5 layers of 100 units (no biases),
for each weight scale (std 1, 0.01, Xavier sqrt(1/100), He sqrt(2/100)) and each
activation (sigmoid, tanh, ReLU): book figures 6-10 to 6-14.  All combinations
share one input draw and one standard-normal draw per layer, scaled, so that they
differ only in the scale and the activation.

Histograms count 30 equal bins over a fixed range (numpy.histogram's convention:
half-open bins, the last one closed).  The ranges: (0, 1) for sigmoid and ReLU as in
the book (ReLU values above 1 fall outside, as in the book's figure 6-14), and
(-1, 1) for tanh, its full range (the book's (0, 1) would hide half of it).

Statistics per layer: mean, std, the fraction ``saturated`` where the activation's
slope is about zero (sigmoid: below 0.01 or above 0.99; tanh: |z| > 0.99; ReLU: z <= 0,
where the gradient is exactly 0) and ``zero`` (the fraction exactly 0).  Histograms and
statistics are computed on the device and brought to the host once per combination.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import backend as _backend
from ..functions import relu, sigmoid, tanh
from ..initializers import init_std
from ..random import RandomStream
from ._common import (
    ExperimentResult,
    ExperimentSettings,
    meta,
    progress_bar,
    resolve_settings,
    run_context,
)

NAME = "weight_init_activation_histogram"
DESCRIPTION = "activation histograms of 5 layers for 4 weight scales x 3 activations (6-10..6-14)"

ACTIVATION_FUNCTIONS = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu}


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``, also ``QUICK``: under a second already)."""

    experiment: ClassVar[str] = NAME
    samples: int = 1000  # random inputs
    node_num: int = 100  # units per layer
    hidden_layer_size: int = 5  # layers
    # name -> weight std: a number, or "xavier"/"he" (scaled by the layer's fan-in)
    weight_init: dict[str, Any] = field(
        default_factory=lambda: {"std=1": 1.0, "std=0.01": 0.01, "Xavier": "xavier", "He": "he"}
    )
    activations: tuple[str, ...] = ("sigmoid", "tanh", "relu")
    bins: int = 30
    # histogram range per activation (see above)
    ranges: dict[str, list[float]] = field(
        default_factory=lambda: {"sigmoid": [0.0, 1.0], "tanh": [-1.0, 1.0], "relu": [0.0, 1.0]}
    )

    def check(self) -> None:
        unknown = sorted(set(self.activations) - set(ACTIVATION_FUNCTIONS))
        if unknown:
            raise ValueError(
                f"unknown activation(s) {unknown}; choose from {list(ACTIVATION_FUNCTIONS)}"
            )


FULL = Settings()
QUICK = FULL  # under a second already


@dataclass
class WeightInitActivationHistogramResult(ExperimentResult):
    # activation -> init name -> per layer: 30 counts / {mean, std, saturated, zero}
    histograms: dict[str, dict[str, list[list[int]]]]
    stats: dict[str, dict[str, list[dict[str, float]]]]
    bin_edges: dict[str, list[float]]

    def spread_ratio(self, activation: str, init: str) -> float:
        """std of the last layer's activations over the first layer's."""
        layers = self.stats[activation][init]
        return layers[-1]["std"] / layers[0]["std"] if layers[0]["std"] else float("nan")

    def summary(self) -> str:
        lines = []
        sig = self.stats.get("sigmoid", {})
        if "std=1" in sig and "std=0.01" in sig:
            lines.append(
                f"sigmoid std=1: {sig['std=1'][0]['saturated']:.0%} saturated (<0.01 or >0.99) "
                f"in layer 1; std=0.01: layer-5 mean {sig['std=0.01'][-1]['mean']:.3f}, "
                f"std {sig['std=0.01'][-1]['std']:.2g} (all near 0.5)"
            )
        if "Xavier" in sig:
            lines.append(f"sigmoid Xavier: layer-5 std {sig['Xavier'][-1]['std']:.3f}")
        if "relu" in self.stats:
            ratios = ", ".join(
                f"{k} {self.spread_ratio('relu', k):.3g}" for k in self.stats["relu"]
            )
            lines.append(f"ReLU layer-5/layer-1 std: {ratios}")
        return "\n".join(lines)


def _histogram(z: Any, lo: float, hi: float, bins: int) -> Any:
    """numpy.histogram's counts of ``z`` over ``bins`` equal bins of [lo, hi], on the device.

    The array API has no histogram: count the values at or above each edge (strictly
    above for the last, closed edge) and take differences.
    """
    xp = _backend.namespace(z)
    flat = xp.reshape(z, (1, -1))
    edges = [lo + (hi - lo) * k / bins for k in range(bins + 1)]
    dev = _backend.device_of(z)
    inner = xp.reshape(xp.asarray(edges[:-1], dtype=z.dtype, device=dev), (-1, 1))
    count = _backend.index_dtype(xp, dev)  # int64, int32 where the device has no int64
    at_or_above = xp.sum(xp.astype(flat >= inner, count), axis=1, dtype=count)
    above_hi = xp.sum(xp.astype(flat > edges[-1], count), axis=1, dtype=count)  # (1,)
    cumulative = xp.concat([at_or_above, above_hi])
    return cumulative[:-1] - cumulative[1:]


def _stats(z: Any, activation: str) -> Any:
    """[mean, std, saturated, zero] as one device array."""
    xp = _backend.namespace(z)
    frac = lambda cond: xp.mean(xp.astype(cond, z.dtype))  # noqa: E731
    if activation == "sigmoid":
        saturated = frac((z < 0.01) | (z > 0.99))
    elif activation == "tanh":
        saturated = frac(xp.abs(z) > 0.99)
    else:
        saturated = frac(z <= 0.0)
    return xp.stack([xp.mean(z), xp.std(z), saturated, frac(z == 0.0)])


def activations_through_layers(x: Any, weights: list[Any], scale: float, activation: str):
    """The book's loop: z_i = activation(z_{i-1} @ (scale * W_i)); yields each z_i."""
    act = ACTIVATION_FUNCTIONS[activation]
    for W in weights:
        x = act(x @ (scale * W))
        yield x


def run_weight_init_activation_histogram(
    *,
    seed: int = 0,
    quick: bool = False,
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> WeightInitActivationHistogramResult:
    """Forward random data through 5 layers per (weight scale, activation); histograms."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        n, node_num, bins = s.samples, s.node_num, s.bins
        x = RandomStream(seed, f"{NAME}/input").normal((n, node_num), dt, xp=b.xp, device=b.device)
        weights = [
            RandomStream(seed, f"{NAME}/W{i + 1}").normal(
                (node_num, node_num), dt, xp=b.xp, device=b.device
            )
            for i in range(s.hidden_layer_size)
        ]
        histograms: dict[str, dict[str, list[list[int]]]] = {}
        stats: dict[str, dict[str, list[dict[str, float]]]] = {}
        bar = progress_bar(len(s.activations) * len(s.weight_init), NAME, progress)
        for activation in s.activations:
            lo, hi = (float(v) for v in s.ranges[activation])
            histograms[activation], stats[activation] = {}, {}
            for init, std in s.weight_init.items():
                scale = init_std(std, node_num)
                layers = list(activations_through_layers(x, weights, scale, activation))
                counts = b.xp.stack([_histogram(z, lo, hi, bins) for z in layers])
                values = b.xp.stack([_stats(z, activation) for z in layers])
                histograms[activation][init] = _backend.to_numpy(counts).tolist()
                stats[activation][init] = [
                    dict(zip(("mean", "std", "saturated", "zero"), map(float, row), strict=True))
                    for row in _backend.to_numpy(values).tolist()
                ]
                bar.update()
        bar.close()
        edges = {
            a: [lo + (hi - lo) * k / bins for k in range(bins + 1)]
            for a in s.activations
            for lo, hi in [map(float, s.ranges[a])]
        }
        return WeightInitActivationHistogramResult(
            settings=s,
            **meta(b, dt, seed, None, start),
            histograms=histograms,
            stats=stats,
            bin_edges=edges,
        )
