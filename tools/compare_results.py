#!/usr/bin/env python3
"""Compare every number in two folders of experiment results (``xpscratch run --out``).

usage: python tools/compare_results.py BEFORE_DIR AFTER_DIR

Each ``*.json`` of one folder is compared with the file of the same name in the other,
value by value and bit for bit (floats with ``==`` after JSON parsing, which round-trips
every double exactly), ignoring run metadata that differs between two runs of the same
code: elapsed times and the xpscratch version.  Prints one line per difference and a
summary; exit status 1 when anything differs or a file is missing on either side.
Standard library only, so that it can compare the outputs of two different checkouts.

A record written before the ``schema`` field existed (schema 0) is compared with a
schema-1 record after these documented layout changes, and no others, are applied to it
(:func:`upgrade`); every number is still compared:

* ``schema: 1`` is added;
* ``result`` no longer repeats the metadata (settings, backend, device, dtype, seed,
  dataset, elapsed_s): the copies are dropped once they are checked equal to the
  top-level ones (elapsed_s excepted, which was a second, different time);
* the experiments without data (``NO_DATASET``) record no dataset, those without
  randomness (``NO_SEED``) no seed;
* ``optimizer_compare_mnist`` records the learning rate each optimizer ran with in
  ``settings.learning_rates``, where schema 0 wrote ``{}``, meaning each optimizer's
  default: ``{}`` is read as those defaults (``DEFAULT_RATES``) and compared.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

# run metadata: differs between two runs of identical code
IGNORED_KEYS = frozenset({"elapsed_s", "xpscratch_version"})


SCHEMA_0_META = ("settings", "backend", "device", "dtype", "seed", "dataset", "elapsed_s")
NO_DATASET = frozenset(
    {"optimizer_compare_naive", "optimizer_zoo", "weight_init_activation_histogram"}
)
NO_SEED = frozenset({"optimizer_compare_naive", "optimizer_zoo"})
# what schema 0's empty learning_rates meant: each optimizer's default (the book's rates)
DEFAULT_RATES = {"SGD": 0.01, "Momentum": 0.01, "AdaGrad": 0.01, "Adam": 0.001}
DEFAULT_RATES |= {"Nesterov": 0.01, "RMSprop": 0.01}


def upgrade(before: Any, after: Any) -> tuple[Any, list[str]]:
    """``before`` in ``after``'s layout if it is schema 0 and ``after`` schema 1 (see above).

    Returns the record to compare and the differences found while upgrading (a repeated
    metadata value that was not equal to the top-level one).
    """
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return before, []
    if "schema" in before or after.get("schema") != 1:
        return before, []
    record = json.loads(json.dumps(before))  # a deep copy
    name = record.get("experiment")
    diffs = []
    result = record.get("result", {})
    for key in SCHEMA_0_META:
        if key in result:
            value = result.pop(key)
            if key != "elapsed_s" and record.get(key) != value:
                diffs.append(f".result.{key}: {value!r} differs from the top-level {key}")
    for key, names in (("dataset", NO_DATASET), ("seed", NO_SEED)):
        if name in names:
            record.pop(key, None)
    rates = record.get("settings", {}).get("learning_rates")
    if name == "optimizer_compare_mnist" and rates == {}:
        used = {k: DEFAULT_RATES.get(k) for k in record["settings"].get("optimizers", [])}
        record["settings"]["learning_rates"] = used  # compared with after's like any number
    record["schema"] = 1
    return record, diffs


def compare_values(before: Any, after: Any, where: str = "") -> tuple[int, list[str]]:
    """(numbers compared, differences) between two parsed JSON values."""
    if isinstance(before, dict) and isinstance(after, dict):
        count, diffs = 0, []
        for key in sorted(set(before) | set(after)):
            if key in IGNORED_KEYS:
                continue
            if key not in before or key not in after:
                side = "before" if key not in before else "after"
                diffs.append(f"{where}.{key}: missing {side}")
                continue
            n, d = compare_values(before[key], after[key], f"{where}.{key}")
            count, diffs = count + n, diffs + d
        return count, diffs
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return 0, [f"{where}: length {len(before)} vs {len(after)}"]
        count, diffs = 0, []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            n, d = compare_values(b, a, f"{where}[{i}]")
            count, diffs = count + n, diffs + d
        return count, diffs
    is_number = isinstance(before, int | float) and not isinstance(before, bool)
    same = type(before) is type(after) and (
        before == after or (isinstance(before, float) and math.isnan(before) and math.isnan(after))
    )
    return int(is_number), ([] if same else [f"{where}: {before!r} vs {after!r}"])


def compare_dirs(before: Path, after: Path) -> tuple[int, int, list[str]]:
    """(files compared, numbers compared, differences) between two result folders."""
    names_b = {p.name for p in before.glob("*.json")}
    names_a = {p.name for p in after.glob("*.json")}
    diffs = [f"{n}: only in {before}" for n in sorted(names_b - names_a)]
    diffs += [f"{n}: only in {after}" for n in sorted(names_a - names_b)]
    numbers = 0
    for name in sorted(names_b & names_a):
        b = json.loads((before / name).read_text())
        a = json.loads((after / name).read_text())
        b, upgrade_diffs = upgrade(b, a)
        n, d = compare_values(b, a, name)
        d = [f"{name}{line}" for line in upgrade_diffs] + d
        numbers += n
        diffs += d
    return len(names_b & names_a), numbers, diffs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    before, after = Path(argv[0]), Path(argv[1])
    for folder in (before, after):
        if not folder.is_dir():
            print(f"not a folder: {folder}", file=sys.stderr)
            return 2
    files, numbers, diffs = compare_dirs(before, after)
    for line in diffs:
        print(line)
    print(f"{files} files, {numbers} numbers compared, {len(diffs)} differences")
    return 1 if diffs or files == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
