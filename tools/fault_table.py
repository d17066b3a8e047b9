"""The detection table of README "Check your backend": for each injected fault of
tests/_faults.py, its group, and each dtype, the smallest size at which the group FAILs
on every backend given (``python tools/fault_table.py numpy,torch``; a second argument
keeps the rows whose name holds it: ``... numpy,torch ulp``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import _faults as F  # noqa: E402

from xpscratch import check  # noqa: E402
from xpscratch.check._target import References  # noqa: E402

REFS = References()
F32_BIAS, F64_BIAS = [1e-5, 4e-6, 2e-6, 1e-6, 5e-7], [1e-12, 1e-13, 3e-14, 1e-14, 3e-15]
ULPS = [256, 64, 16, 4]
FINE_ULPS = [16, 4, 2, 1]  # the layers group's mean-error cases
# row -> (group, fault of a size, float32 sizes, float64 sizes), each from large to small
SIZES = {
    "matmul bias (rel)": ("layers", F.matmul_biased, F32_BIAS, F64_BIAS),
    "matmul bias (rel) ": ("training", F.matmul_biased, [1e-3, 1e-4, 1e-5], [1e-8, 1e-10, 1e-12]),
    "exp (ulp)": ("layers", lambda u: F.ulps_off("exp", u), FINE_ULPS, FINE_ULPS),
    "log (ulp)": ("layers", lambda u: F.ulps_off("log", u), FINE_ULPS, FINE_ULPS),
    "tanh (ulp)": ("layers", lambda u: F.ulps_off("tanh", u), FINE_ULPS, FINE_ULPS),
    "sqrt (ulp)": ("optimizers", lambda u: F.ulps_off("sqrt", u), ULPS, ULPS),
    "sqrt (ulp) ": ("layers", lambda u: F.ulps_off("sqrt", u), FINE_ULPS, FINE_ULPS),
}


def detected(backends: list[str], dtype: str, group: str, fault) -> bool:
    with pytest.MonkeyPatch.context() as mp:
        F.inject(mp, fault)
        for b in backends:
            t = check.make_target(b, None, dtype, quick=True, references=REFS)
            g = check.run_group(group, t)
            if g.status != "FAIL" or all("raised" in f.detail for f in g.failures):
                return False
    return True


def main() -> None:
    backends = sys.argv[1].split(",") if len(sys.argv) > 1 else ["numpy", "torch"]
    only = sys.argv[2] if len(sys.argv) > 2 else ""  # rows whose name holds this text
    print(f"| fault | group | float32 | float64 |  ({', '.join(backends)})")
    for name, (group, make, *sizes) in SIZES.items():
        if only not in name:
            continue
        row = []
        for dtype, ladder in zip(("float32", "float64"), sizes, strict=True):
            smallest = None
            for size in ladder:  # large to small: stop at the first one missed
                if not detected(backends, dtype, group, make(size)):
                    break
                smallest = size
            row.append(f"{smallest:g}" if smallest is not None else f"not {ladder[0]:g}")
        print(f"| {name.strip()} | {group} | {row[0]} | {row[1]} |", flush=True)


if __name__ == "__main__":
    main()
