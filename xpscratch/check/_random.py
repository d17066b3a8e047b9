"""Group 1, random numbers: Philox known answers, and the same bits as NumPy's everywhere."""

from __future__ import annotations

import functools

from .. import random as R
from ..backend import to_numpy
from ..networks import MultiLayerNet, MultiLayerNetExtend
from ._compare import Group
from ._target import Target

# Random123's tests/kat_vectors for Philox4x32-10: counter, key -> output
KAT_10 = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
SEEDS = (0, 1, 2**40 + 7, 2**64 - 1)
PURPOSES = ("test", "dropout/1", "shuffle")
COUNTERS = (0, 3, 2**20)
# the book's networks, small enough to draw quickly: (class, args, kwargs)
NETWORKS = {
    "MultiLayerNet std=0.01": (MultiLayerNet, (784, [100, 100], 10), {"weight_init_std": 0.01}),
    "MultiLayerNet He": (MultiLayerNet, (784, [100] * 4, 10), {"weight_init_std": "relu"}),
    "MultiLayerNetExtend Xavier+BN": (
        MultiLayerNetExtend,
        (784, [100] * 5, 10),
        {"weight_init_std": "sigmoid", "use_batchnorm": True, "use_dropout": True},
    ),
    "MultiLayerNetExtend seed 42": (
        MultiLayerNetExtend,
        (20, [15, 10], 5),
        {"use_batchnorm": True, "seed": 42},
    ),
}


def check_random(t: Target, g: Group) -> None:
    with g.case("known answers"), t.active() as b:
        xp = b.xp
        have = R._integer_dtypes(xp, b.device)
        # each word path this device can run: int64 (split multiply), uint64 (one
        # multiply, where exact), uint32 (both operands split: no 64-bit integers)
        paths = [p for p in ("int64", "uint64") if p in have]
        if "uint64" in paths and not R._exact_uint64_products(xp):
            paths.remove("uint64")
            g.notes.append("no exact uint64 products: the int64 path")
        if not paths:
            paths = ["uint32"]
            g.notes.append("no 64-bit integers: the uint32 path")
        for path in paths:
            for counter, key, expected in KAT_10:
                dtype = getattr(xp, path)
                words = tuple(xp.asarray([w], dtype=dtype, device=b.device) for w in counter)
                out = R.philox4x32(words, key)
                got = [int(to_numpy(o)[0]) for o in out]
                g.require(
                    f"Philox4x32-10 {path} {counter[0]:#x}",
                    got == list(expected),
                    f"{[hex(v) for v in got]} != Random123's {[hex(v) for v in expected]}",
                )
    with g.case("dropout keep test at the threshold"), t.active() as b:
        # a word equal to round(ratio * 2**32) is kept (>=): random words almost never tie,
        # so only constructed words show a threshold one word off
        dt = R.random_bits(0, "tie", 0, 1).dtype
        for ratio in (0.2, 0.5, 0.7):
            th = round(ratio * 2**32)
            words = b.xp.asarray([th - 1, th, th + 1], dtype=dt, device=b.device)
            got = to_numpy(R._as_mask(words, (3,), ratio, b.xp)).tolist()
            g.require(
                f"keep test at the threshold, ratio {ratio}",
                got == [False, True, True],
                f"words threshold-1, threshold, threshold+1 give {got}, not [False, True, True]",
            )
    n_words = 37 if t.quick else 4099
    for seed in SEEDS:
        for purpose in PURPOSES:
            for counter in COUNTERS:
                name = f"seed {seed} {purpose!r} counter {counter}"
                with g.case(f"words {name}"):
                    _same(
                        t,
                        g,
                        f"words {name}",
                        functools.partial(R.random_bits, seed, purpose, counter, n_words),
                    )
    for seed in SEEDS[:2]:
        with g.case(f"uniform seed {seed}"):
            _same(
                t,
                g,
                f"uniform {t.dtype} seed {seed}",
                functools.partial(R.uniform, seed, "u", 2, (13, 7), t.dtype),
            )
            _same(
                t,
                g,
                f"normal {t.dtype} seed {seed}",
                functools.partial(R.normal, seed, "n", 1, (9, 11), t.dtype, scale=0.1),
            )
        for ratio in (0.2, 0.5):
            with g.case(f"mask {ratio}"):
                _same(
                    t,
                    g,
                    f"dropout mask ratio {ratio} seed {seed}",
                    functools.partial(R.keep_mask, seed, "dropout/1", 5, (20, 30), ratio),
                )
        for n in (1, 100, 1000):
            with g.case(f"permutation {n}"):
                _same(
                    t,
                    g,
                    f"permutation of {n} seed {seed}",
                    functools.partial(R.permutation, seed, "shuffle", 7, n),
                )
    for label, (cls, args, kwargs) in NETWORKS.items():
        if t.quick and "784" in str(args) and "He" in label:
            continue  # the quick battery draws three of the four networks

        def weights(cls=cls, args=args, kwargs=kwargs):
            net = cls(*args, dtype=t.dtype, **kwargs)
            return {k: to_numpy(v) for k, v in net.params.items()}

        with g.case(label):
            mine, ref = t.bits(("weights", label), weights)
            for k in ref:
                g.equal(f"initial weights {label} {k}", mine[k], ref[k])


def _same(t: Target, g: Group, case: str, draw) -> None:
    mine, ref = t.bits(("random", case), lambda: to_numpy(draw()))
    g.equal(case, mine, ref)
