"""Rewrite the README's experiment tables from the JSON files of one documented run.

    xpscratch run all --dtype float64 --out /tmp/fullrun --no-progress --no-plot
    python tools/readme_tables.py /tmp/fullrun            # rewrites README.md
    python tools/readme_tables.py /tmp/fullrun --check    # exit 1 if a table differs

Each table sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->``
in README.md; only those regions are rewritten.  The numbers are computed from each
result (rebuilt from ``<name>.json``) with the result's own methods; the words around
them (the book's claims, the method descriptions) are this script's.

The tables are made from a float64 run: float32 training amplifies the last bits that
a BLAS kernel or thread count changes into the third printed digit (and a ranking), so a
float32 run's tables do not reproduce; float64's agree to about 1e-12.  ``--check``
compares every table at its printed precision, character for character, except the
computing times (``times``: they are the machine's, not the numbers').
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import math
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's xpscratch, wherever it is run from

from xpscratch.experiments import EXPERIMENTS, ExperimentResult  # noqa: E402
from xpscratch.experiments.optimizer_compare_naive import sign_changes  # noqa: E402

REGION = re.compile(
    r"(<!-- BEGIN generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
    r"(<!-- END generated: (?P=name) -->)",
    re.S,
)


def load_result(path: Path, jitter: Callable[[Any], Any] | None = None) -> ExperimentResult:
    """The result object of one ``<name>.json`` written by ``xpscratch run``.

    ``jitter``, if given, is applied to the record's ``result`` (see :func:`rounding_edges`).
    """
    record = json.loads(path.read_text())
    name = record["experiment"]
    data = record.get("result", record)
    if jitter is not None:
        data = jitter(data)
    module = importlib.import_module(f"xpscratch.experiments.{name}")
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ExperimentResult) and v is not ExperimentResult
    )
    fields = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in {**record, **data}.items() if k in fields}
    if isinstance(given.get("settings"), dict):  # JSON's lists back into the frozen dataclass
        full = EXPERIMENTS[name].full
        given["settings"] = full.replace(
            **{
                k: tuple(v) if isinstance(full[k], tuple) else v
                for k, v in given["settings"].items()
            }
        )
    # schema 1 leaves out what an experiment does not use (the 2-D ones: seed, dataset)
    return cls(**{k: None for k in fields - given.keys()}, **given)


def load_run(
    run_dir: Path, jitter: Callable[[Any], Any] | None = None
) -> dict[str, ExperimentResult]:
    results = {}
    for name in EXPERIMENTS:
        path = run_dir / f"{name}.json"
        if path.exists():
            results[name] = load_result(path, jitter)
    return results


# ---------------------------------------------------------------------------
# the chapter's experiments: one row each
# ---------------------------------------------------------------------------

CLAIMS = {
    "optimizer_compare_naive": "AdaGrad gets closest in 30 steps; SGD zig-zags",
    "optimizer_compare_mnist": "SGD is the slowest",
    "weight_init_activation_histogram": (
        "std 1 saturates sigmoid, std 0.01 collapses it to 0.5; He keeps ReLU's spread"
    ),
    "weight_init_compare": "std 0.01 does not learn; He beats Xavier",
    "batch_norm_test": "with BN the net learns at most weight scales",
    "overfit_weight_decay": "lambda 0.1 keeps train below 100% and narrows the gap",
    "overfit_dropout": "dropout keeps train below 100% and narrows the gap",
    "hyperparameter_optimization": "the best learning rates are about 1e-3 to 1e-2",
}


def _ranked(d: dict[str, float], fmt: str) -> str:
    return ", ".join(f"{k} {v:{fmt}}" for k, v in sorted(d.items(), key=lambda kv: kv[1]))


def _naive(r: Any) -> str:
    sgd_y = [p[1] for p in r.trajectories["SGD"]]
    return (
        f"distance to the minimum: {_ranked(r.final_distance, '.2f')}; SGD's y changes sign "
        f"at {sign_changes(sgd_y)} of {r.settings['steps']} steps"
    )


def _mnist(r: Any) -> str:
    n = r.settings["iterations"]
    lo, hi = min(100, n // 3), min(300, n)
    return f"mean loss, iterations {lo}-{hi}: {_ranked(r.window_mean(lo, hi), '.3f')}"


def _histogram(r: Any) -> str:
    sig, relu = r.stats["sigmoid"], r.stats["relu"]
    ratio = {k: relu[k][-1]["std"] / relu[k][0]["std"] for k in ("He", "Xavier")}
    return (
        f"sigmoid std 1: {sig['std=1'][0]['saturated']:.0%} of layer 1 below 0.01 or above "
        f"0.99; std 0.01: layer 5 std {sig['std=0.01'][-1]['std']:.3f} around "
        f"{sig['std=0.01'][-1]['mean']:.3f}; ReLU layer-5/layer-1 std: He {ratio['He']:.2f}, "
        f"Xavier {ratio['Xavier']:.2f}"
    )


def _weight_init(r: Any) -> str:
    n = r.settings["iterations"]
    last = r.window_mean(max(n - 100, 0), n)
    parts = ", ".join(f"{k} {v:.3f}" for k, v in last.items())
    return f"loss over the last 100 of {n} iterations: {parts} (ln 10 = {math.log(10):.3f})"


def _batch_norm(r: Any) -> str:
    n, th = len(r.weight_scales), r.settings["learn_threshold"]
    return (
        f"train accuracy > {th:g} at {len(r.learned(True))} of {n} scales with BN, "
        f"{len(r.learned(False))} of {n} without"
    )


def _gaps(labels: list[str], train: list[list[float]], test: list[list[float]]) -> str:
    return "; ".join(
        f"{label}: train {a[-1]:.3f}, test {b[-1]:.3f} (gap {a[-1] - b[-1]:.3f})"
        for label, a, b in zip(labels, train, test, strict=True)
    )


def _weight_decay(r: Any) -> str:
    order = sorted(range(len(r.weight_decay_lambdas)), key=lambda i: r.weight_decay_lambdas[i])
    labels = [f"lambda {r.weight_decay_lambdas[i]:g}" for i in order]
    return _gaps(labels, [r.train_acc[i] for i in order], [r.test_acc[i] for i in order])


def _dropout(r: Any) -> str:
    order = sorted(range(len(r.use_dropout)), key=lambda i: bool(r.use_dropout[i]))
    ratio = r.settings["dropout_ratio"]
    labels = [f"dropout {ratio:g}" if r.use_dropout[i] else "no dropout" for i in order]
    return _gaps(labels, [r.train_acc[i] for i in order], [r.test_acc[i] for i in order])


def _search(r: Any) -> str:
    k = r.settings["top_k"]
    first, last = r.rounds[0]["trials"], r.rounds[-1]["trials"]
    lrs = [t["lr"] for t in first[:k]]
    text = (
        f"best {k} of {len(first)} trials: lr {min(lrs):.1e} to {max(lrs):.1e} (best val acc "
        f"{first[0]['val_acc'][-1]:.2f})"
    )
    if len(r.rounds) > 1:
        text += f"; the narrowed round reaches {last[0]['val_acc'][-1]:.2f}"
    return text


MEASURED: dict[str, Callable[[Any], str]] = {
    "optimizer_compare_naive": _naive,
    "optimizer_compare_mnist": _mnist,
    "weight_init_activation_histogram": _histogram,
    "weight_init_compare": _weight_init,
    "batch_norm_test": _batch_norm,
    "overfit_weight_decay": _weight_decay,
    "overfit_dropout": _dropout,
    "hyperparameter_optimization": _search,
}


def _header(results: dict[str, Any]) -> str:
    r = next(iter(results.values()))
    # the 2-D experiments have no seed (None): the seed is a seeded experiment's
    seeds = sorted({x.seed for x in results.values()} - {None})
    seed = ", ".join(str(s) for s in seeds) or "none"
    return f"{r.backend}, {r.dtype}, seed {seed}, book settings"


def chapter_table(results: dict[str, Any]) -> str:
    rows = [
        f"| experiment | the book's claim | measured ({_header(results)}) |",
        "| --- | --- | --- |",
    ]
    for name, measure in MEASURED.items():
        if name in results:
            rows.append(f"| `{name}` | {CLAIMS[name]} | {measure(results[name])} |")
    return "\n".join(rows)


def times_table(results: dict[str, Any]) -> str:
    rows = ["| experiment | time |", "| --- | ---: |"]
    for name, r in results.items():
        rows.append(f"| `{name}` | {_duration(r.elapsed_s)} |")
    total = sum(r.elapsed_s for r in results.values())
    rows.append(
        f"| all {len(results)} (computing; plotting adds a few seconds) | {_duration(total)} |"
    )
    return "\n".join(rows)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s"


# ---------------------------------------------------------------------------
# the three beyond the chapter
# ---------------------------------------------------------------------------

METHODS = {
    "none": "none",
    "weight_decay_l2": "L2 weight decay, lambda {l2_lambda:g} (the book's)",
    "weight_decay_l1": "L1 weight decay, lambda {l1_lambda:g}",
    "dropout": "dropout {dropout_ratio:g} (the book's)",
    "early_stopping": (
        "early stopping, patience {patience} (validation: images {train_size}-{val_end})"
    ),
    "label_smoothing": "label smoothing {label_smoothing:g}",
    "augmentation": (
        "augmentation: shifts up to {max_shift:g} px, rotations up to {max_degrees:g} degrees"
    ),
    "ensemble": "ensemble of {ensemble_size} (averaged probabilities)",
}


def regularization_table(r: Any) -> str:
    stats = {m: r.stats(m) for m in r.methods}
    best_test = max(r.methods, key=lambda m: stats[m]["test"]["mean"])
    least_gap = min(r.methods, key=lambda m: stats[m]["gap"]["mean"])
    rows = [
        "| method (strength in `FULL`) | train acc | test acc | gap |",
        "| --- | --- | --- | --- |",
    ]
    for method, label in zip(r.methods, r.labels, strict=True):
        try:
            val_end = r.settings["train_size"] + r.settings["validation_size"] - 1
            text = METHODS[method].format(**r.settings, val_end=val_end)
        except (KeyError, IndexError):
            text = label
        cells = []
        for key in ("train", "test", "gap"):
            s = stats[method][key]
            mean = f"{s['mean']:.3f}"
            if (key, method) in (("test", best_test), ("gap", least_gap)):
                mean = f"**{mean}**"
            cells.append(f"{mean} ({s['min']:.3f}-{s['max']:.3f})")
        rows.append(f"| {text} | " + " | ".join(cells) + " |")
    n = len(r.train_acc[r.methods[0]])
    rows.append("")
    rows.append(
        f"Mean over seeds {r.seed}-{r.seed + n - 1} (min-max), {r.backend} {r.dtype}, "
        f"{r.settings['epochs']} epochs;\nbold: the best test accuracy and the smallest gap."
    )
    return "\n".join(rows)


SCHEDULES = {
    "constant": "constant",
    "step": "step (x0.1 at 1/3 and 2/3)",
    "linear": "linear to 0",
    "linear+warmup": "linear after a 5% warm-up",
    "cosine": "cosine to 0",
    "cosine+warmup": "cosine after a 5% warm-up",
}


def lr_schedule_table(r: Any) -> str:
    optimizers = list(r.test_acc)
    final = r.final_loss()
    rows = ["| schedule | " + " | ".join(optimizers) + " |", "|" + " --- |" * (len(optimizers) + 1)]
    for kind in r.lr_factor:
        cells = [f"{final[o][kind]:.4f} / {r.test_acc[o][kind]:.4f}" for o in optimizers]
        rows.append(f"| {SCHEDULES.get(kind, kind)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


SURFACE_NAMES = {
    "bowl": "bowl x^2/20 + y^2",
    "saddle": "saddle x^2 - y^2",
    "rosenbrock": "Rosenbrock",
    "himmelblau": "Himmelblau",
}


def zoo_table(r: Any) -> str:
    methods = list(next(iter(r.steps_to_target.values())))
    methods = ["Newton", *[m for m in methods if m != "Newton"]] if "Newton" in methods else methods
    rows = [
        "| surface (start, steps) | " + " | ".join(methods) + " |",
        "|" + " --- |" * (len(methods) + 1),
    ]
    for name, reached in r.steps_to_target.items():
        start = ", ".join(f"{v:g}" for v in r.settings["start"][name])
        cells = ["-" if reached[m] is None else str(reached[m]) for m in methods]
        label = f"{SURFACE_NAMES.get(name, name)} (({start}), {r.settings['steps'][name]})"
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render(results: dict[str, Any]) -> dict[str, str]:
    """Every generated region's text, by region name (only those the run has data for)."""
    out = {}
    if any(n in results for n in MEASURED):
        out["chapter"] = chapter_table({n: results[n] for n in MEASURED if n in results})
    if "regularization_compare" in results:
        out["regularization_compare"] = regularization_table(results["regularization_compare"])
    if "lr_schedule_compare" in results:
        out["lr_schedule_compare"] = lr_schedule_table(results["lr_schedule_compare"])
    if "optimizer_zoo" in results:
        out["optimizer_zoo"] = zoo_table(results["optimizer_zoo"])
    if results:
        out["times"] = times_table(results)
    return out


def rewrite(text: str, tables: dict[str, str]) -> str:
    """``text`` with each generated region replaced; a region without a table is kept."""

    def replace(m: re.Match) -> str:
        body = tables.get(m["name"])
        return m.group(0) if body is None else f"{m.group(1)}{body}\n{m.group(4)}"

    return REGION.sub(replace, text)


UNCHECKED = frozenset({"times"})  # wall-clock times: no run reproduces them


def jittered(data: Any, rel: float, rng: random.Random | None) -> Any:
    """``data`` with every float moved by ``rel`` relative (each by a random amount of at
    most ``rel`` if ``rng`` is given), except accuracies.

    An accuracy (a key with ``acc`` in its name) is a count of right answers over a fixed
    number of images: the same float wherever the same predictions are made, so it is not
    nudged.  (A prediction another BLAS flips moves it by a whole image, and ``--check``
    sees that as a difference.)  Printed to three digits, 0.8415 sits exactly on an edge,
    and reproducibly on the same side of it.
    """
    if isinstance(data, float):
        return data * (1.0 + (rel if rng is None else rel * rng.uniform(-1.0, 1.0)))
    if isinstance(data, list):
        return [jittered(v, rel, rng) for v in data]
    if isinstance(data, dict):
        return {k: v if "acc" in k else jittered(v, rel, rng) for k, v in data.items()}
    return data


def rounding_edges(run_dir: Path, rel: float = 1e-9, draws: int = 8) -> list[str]:
    """The checked tables' lines that change when the run's results move by ``rel``.

    A float64 run reproduces to about 1e-12 relative on another BLAS or thread count, so a
    printed value that changes under a 1e-9 nudge sits on a rounding edge (or two values
    that a ranking orders are tied): such a line would not reproduce, and must be printed
    with fewer digits.  The nudges: every float up by ``rel``, every float down (each value
    across its nearest edge), then ``draws - 2`` independent random ones (ties).  Empty:
    every checked table holds at its printed precision.
    """
    base = render(load_run(run_dir))
    nudges = [(rel, None), (-rel, None)]
    nudges += [(rel, random.Random(seed)) for seed in range(draws - 2)]
    edges: list[str] = []
    for size, rng in nudges:
        nudged = render(load_run(run_dir, functools.partial(jittered, rel=size, rng=rng)))
        for name, body in base.items():
            if name in UNCHECKED:
                continue
            for line, other in zip(body.splitlines(), nudged[name].splitlines(), strict=True):
                if line != other and f"{name}: {line}" not in edges:
                    edges.append(f"{name}: {line}")
    return edges


def _first_cell(row: str) -> str:
    return row.split(" | ")[0]


def differences(text: str, tables: dict[str, str]) -> list[str]:
    """One line per checked region whose table differs from ``text``: its first changed line.

    A run of some of the chapter's experiments is compared row by row: the README's
    chapter table with the run's rows put in its rows' places (the header included).
    """
    found = {m["name"]: m["body"] for m in REGION.finditer(text)}
    out = []
    for name, body in tables.items():
        if name in UNCHECKED or name not in found:
            continue
        old = found[name].rstrip("\n").splitlines()
        new = body.splitlines()
        if name == "chapter" and len(new) < len(old):
            run_rows = {_first_cell(row): row for row in new}
            missing = run_rows.keys() - {_first_cell(row) for row in old}
            new = [run_rows.get(_first_cell(row), row) for row in old]
            new += [run_rows[key] for key in sorted(missing)]
        if old == new:
            continue
        i = 0
        while i < min(len(old), len(new)) and old[i] == new[i]:
            i += 1
        was = old[i] if i < len(old) else "(nothing)"
        now = new[i] if i < len(new) else "(nothing)"
        out.append(f"{name}, line {i + 1}:\n  README: {was}\n  run:    {now}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the --out folder of `xpscratch run all`")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only report whether a table (all but the times) differs; exit 1 if one does",
    )
    args = parser.parse_args(argv)

    results = load_run(args.run_dir)
    if not results:
        parser.error(f"no <experiment>.json in {args.run_dir}: run `xpscratch run all --out` first")
    text = args.readme.read_text()
    found = {m["name"] for m in REGION.finditer(text)}
    tables = render(results)
    new = rewrite(text, tables)
    if args.check:
        diff = differences(text, tables)
        if diff:
            print(f"{args.readme}: the generated tables differ from {args.run_dir}:")
            print("\n".join(diff))
            return 1
        checked = sorted((found & set(tables)) - UNCHECKED)
        print(f"{args.readme}: {checked} up to date with {args.run_dir} (times not compared)")
        absent = [n for n in EXPERIMENTS if n not in results]
        if absent:
            print(f"not in this run, so not compared: {', '.join(absent)}")
        edges = rounding_edges(args.run_dir)
        if edges:
            print("but these lines change when the run's numbers move by 1e-9 (a rounding edge):")
            print("\n".join(edges))
            return 1
        return 0
    args.readme.write_text(new)
    print(
        f"{args.readme}: rewrote {sorted(found & set(tables))}; "
        f"no region for {sorted(set(tables) - found) or 'nothing'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
