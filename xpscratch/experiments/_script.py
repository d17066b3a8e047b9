"""What every script in ``examples/`` shares: its command line, its run and its files.

A script names its constants (backend, seed, dtype, dataset, output folder) and its
settings (the experiment's ``FULL``, or ``FULL.replace(...)``); :func:`run_example` builds
the parser from them (one ``--<setting>`` option per field of the settings dataclass,
with the field's comment as help), runs the experiment and writes ``<out>/<name>.png``
and ``<out>/<name>.json`` (the record ``xpscratch run`` writes).  ``--quick`` starts
from the experiment's ``QUICK`` instead of the script's settings; options given on the
command line apply on top of either.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .._atomic import atomic_write_bytes
from ..backend import BackendError, compile_cache_warnings_once, enable_compile_cache, use_backend
from ..datasets import load_mnist
from . import EXPERIMENTS, ExperimentResult, ExperimentSettings
from ._common import result_record

__all__ = ["example_parser", "run_example"]

_FIELD_COMMENT = re.compile(r"^\s+(\w+): .*#\s*(.+)$")
_COMMENT_LINE = re.compile(r"^\s+#\s*(.+)$")


def _field_help(cls: type) -> dict[str, str]:
    """Each field's comment in the class source (on its line, or the lines just above)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (a frozen app): no help, the options still work
        return {}
    helps, above = {}, []
    for line in lines:
        if m := _COMMENT_LINE.match(line):
            above.append(m.group(1))
            continue
        if m := _FIELD_COMMENT.match(line):
            helps[m.group(1)] = m.group(2)
        elif (name := re.match(r"^\s+(\w+):", line)) and above:
            helps[name.group(1)] = " ".join(above)
        above = []
    return helps


def _parse_value(hint: Any, text: str) -> Any:
    """A command-line value for a field annotated ``hint`` (checked again by the dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return [_parse_value(args[0], v) for v in text.split(",") if v]
    if hint in (int, float, str):
        return hint(text)
    if hint is bool:
        return text.lower() in ("1", "true", "yes", "on")
    if origin in (typing.Union, types.UnionType):  # int | None
        if text.lower() == "none" and type(None) in args:
            return None
        scalar = next((a for a in args if a in (int, float, str)), None)
        if scalar is not None:
            return scalar(text)
    return json.loads(text)  # dicts and the like: JSON, e.g. '{"SGD": 0.1}'


# settings that count something: 0 or less would train nothing and fail late
_COUNTS = frozenset(
    "epochs iterations steps trials samples seeds batch_size train_size validation_size "
    "node_num hidden_layer_size hidden_size_list ensemble_size rounds top_k workers bins "
    "num_scales final_window".split()
)


def _option_type(name: str, hint: Any) -> Any:
    """The option's parser: a named function, so argparse's message names the setting."""

    def parse(text: str) -> Any:
        try:
            value = _parse_value(hint, text)
        except (ValueError, json.JSONDecodeError) as exc:
            want = (
                "comma-separated numbers, e.g. 100,50" if typing.get_origin(hint) is tuple else ""
            )
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a valid value{': ' + want if want else ''} ({exc})"
            ) from None
        if name in _COUNTS:
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, int) and v < 1 for v in values):
                raise argparse.ArgumentTypeError(f"{text}: must be at least 1 (nothing would run)")
        return value

    parse.__name__ = name
    return parse


def _description(doc: str) -> str:
    """The docstring's first paragraph, whole (its first line stops mid-sentence)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return json.dumps(value) if isinstance(value, dict) else str(value)


def example_parser(
    settings: ExperimentSettings, description: str, defaults: dict[str, Any]
) -> argparse.ArgumentParser:
    """The script's parser: the run options, then one option per setting."""
    exp = EXPERIMENTS[settings.experiment]
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--backend", default=defaults["backend"], help="NAME[:DEVICE]")
    if "seed" in exp.options:
        p.add_argument("--seed", type=int, default=defaults["seed"])
    p.add_argument("--dtype", choices=("float32", "float64"), default=defaults["dtype"])
    if "dataset" in exp.options:
        p.add_argument("--dataset", default=defaults["dataset"])
    p.add_argument("--quick", action="store_true", help="start from the library's short settings")
    p.add_argument("--out", default=defaults["out"], help="folder for the figure and the JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="JAX: compile again instead of loading from the compilation cache, as "
        "XPSCRATCH_COMPILE_CACHE=0 does",
    )
    group = p.add_argument_group("settings (default: the script's)")
    helps = _field_help(type(settings))
    hints = typing.get_type_hints(type(settings))
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        group.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            default=argparse.SUPPRESS,  # only what is given overrides the settings
            type=_option_type(f.name, hints[f.name]),
            metavar=type(value).__name__.upper() if not isinstance(value, tuple) else "A,B,...",
            help=f"{helps.get(f.name, '')} (default: {_shown(value)})".lstrip(),
        )
    return p


def run_example(
    settings: ExperimentSettings,
    doc: str,
    argv: Sequence[str] | None = None,
    *,
    backend: str = "numpy",
    seed: int = 0,
    dtype: str | None = None,
    dataset: str = "mnist-small",
    out: str = "out",
) -> ExperimentResult:
    """Parse ``argv``, run the experiment of ``settings``, write its figure and JSON to
    ``--out``, print its conclusion; the result."""
    exp = EXPERIMENTS[settings.experiment]
    defaults = {"backend": backend, "seed": seed, "dtype": dtype, "dataset": dataset, "out": out}
    parser = example_parser(settings, _description(doc), defaults)
    args = vars(parser.parse_args(argv))
    names = {f.name for f in dataclasses.fields(settings)}
    changes = {k: v for k, v in args.items() if k in names}
    base = exp.quick if args["quick"] else settings
    name, _, device = args["backend"].partition(":")
    # the command line's standard: a bad backend or dataset is a message and exit 2,
    # before any work, never a traceback
    try:
        context = use_backend(name, device or None)
        context.__enter__()
    except BackendError as exc:
        parser.error(f"--backend {args['backend']}: {exc}")
    context.__exit__(None, None, None)
    if "dataset" in exp.options:
        try:
            load_mnist(dataset=args.get("dataset", dataset))  # what `xpscratch run` checks
        except (ValueError, OSError) as exc:
            parser.error(f"--dataset: {exc}")
    start = time.perf_counter()
    with use_backend(name, device or None), compile_cache_warnings_once():
        if name == "jax" and not args["no_compile_cache"]:
            enable_compile_cache()  # as `xpscratch run` does: the next run loads, not compiles
        result = exp.run(
            seed=args.get("seed", seed),
            dataset=args.get("dataset", dataset),
            dtype=args["dtype"],
            progress=not args["no_progress"],
            **{**base, **changes},
        )
    folder = Path(args["out"])
    png, js = folder / f"{exp.name}.png", folder / f"{exp.name}.json"
    exp.plot(result, png)
    record = result_record(
        exp,
        result,
        quick=args["quick"],
        elapsed_s=time.perf_counter() - start,
        version=__version__,
    )
    atomic_write_bytes(js, (json.dumps(record, indent=1) + "\n").encode())
    print(result.summary())
    print(f"wrote {png} and {js}")
    return result
