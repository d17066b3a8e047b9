"""The check's "compiled" group (xpscratch/check/_compiled.py), proven by a fault it catches."""

from __future__ import annotations

import pytest

import xpscratch.check as check
from xpscratch.check._compare import FAIL, PASS, SKIP
from xpscratch.training import compiled


def _run():
    report = check.run(["jax"], dtype="float32", quick=True, groups=["compiled"])
    return report.groups


def test_the_compiled_group_passes_on_jax_and_skips_elsewhere():
    pytest.importorskip("jax")
    (group,) = _run()
    assert group.status == PASS, group.failures
    report = check.run(["numpy"], dtype="float32", quick=True, groups=["compiled"])
    (skipped,) = report.groups
    assert skipped.status == SKIP and "JAX only" in skipped.skipped


def test_the_compiled_group_catches_a_frozen_counter(monkeypatch):
    """A step whose dropout counter stops advancing (the silent freeze) fails the group."""
    pytest.importorskip("jax")
    store = compiled.CompiledStep.store

    def frozen(self, pending):
        counters = {n: la.stream.counter for n, la in self._dropouts().items()}
        store(self, pending)
        for name, value in counters.items():
            self.network.layers[name].stream.counter = value

    monkeypatch.setattr(compiled.CompiledStep, "store", frozen)
    (group,) = _run()
    assert group.status == FAIL
    # the step re-sends the frozen host counter: the transfer guard (or, without it, the
    # counters' comparison) fails the group
    detail = " ".join(f.case + f.detail for f in group.failures)
    assert "host-to-device" in detail or "counters" in detail, detail
