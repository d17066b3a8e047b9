#!/usr/bin/env python3
"""Compare every number in two folders of experiment results (``xpscratch run --out``).

usage: python tools/compare_results.py BEFORE_DIR AFTER_DIR

Each ``*.json`` of one folder is compared with the file of the same name in the other,
value by value and bit for bit (floats with ``==`` after JSON parsing, which round-trips
every double exactly), ignoring run metadata that differs between two runs of the same
code: elapsed times and the xpscratch version.  Prints one line per difference and a
summary; exit status 1 when anything differs or a file is missing on either side.
Standard library only, so that it can compare the outputs of two different checkouts.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

# run metadata: differs between two runs of identical code
IGNORED_KEYS = frozenset({"elapsed_s", "xpscratch_version"})


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
        n, d = compare_values(b, a, name)
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
