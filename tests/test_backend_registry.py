"""Any array-API library: register_backend, set_backend(<namespace>), the requirement
checks, to_numpy for foreign arrays, and the torch device checks (issue 23)."""

from __future__ import annotations

import types

import array_api_strict
import numpy as np
import pytest

import xpscratch
from xpscratch import backend as B
from xpscratch.cli import main


def _namespace_like(xp, drop=(), **replace):
    """A copy of namespace ``xp`` without the attributes ``drop`` and with ``replace``."""
    ns = types.SimpleNamespace(
        **{k: getattr(xp, k) for k in dir(xp) if not k.startswith("__") or k.startswith("__array")}
    )
    ns.__name__ = "fakelib"
    for name in drop:
        delattr(ns, name)
    for name, value in replace.items():
        setattr(ns, name, value)
    return ns


@pytest.fixture
def registry(monkeypatch):
    """register_backend's table and the check cache, restored after the test."""
    monkeypatch.setattr(B, "_REGISTERED", {})
    monkeypatch.setattr(B, "_CHECKED", {})
    monkeypatch.setattr(B, "_NAME_OF_NAMESPACE", {})
    return B


def test_a_registered_namespace_trains_and_is_named(registry):
    registry.register_backend("mystrict", lambda device: array_api_strict)
    assert "mystrict" in xpscratch.available_backends()
    with xpscratch.use_backend("mystrict") as b:
        assert b.name == "mystrict" and b.xp is array_api_strict
        from xpscratch.networks import MultiLayerNetExtend

        net = MultiLayerNetExtend(4, [5], 3, seed=0)
        loss = net.loss(xpscratch.asarray(np.ones((2, 4))), xpscratch.asarray([0, 1]))
        assert type(loss).__module__.startswith("array_api_strict")
    with xpscratch.use_backend("numpy"):
        ref = MultiLayerNetExtend(4, [5], 3, seed=0)
        want = ref.loss(xpscratch.asarray(np.ones((2, 4))), xpscratch.asarray([0, 1]))
    np.testing.assert_allclose(xpscratch.to_numpy(loss), xpscratch.to_numpy(want), rtol=1e-6)


def test_set_backend_takes_a_namespace(registry):
    with xpscratch.use_backend(array_api_strict) as b:
        assert b.name == "array_api_strict" and b.xp is array_api_strict
    with xpscratch.use_backend(np) as b:  # a built-in library keeps its own backend
        assert b.name == "numpy"


def test_registering_checks_its_arguments(registry):
    with pytest.raises(ValueError, match="built-in"):
        registry.register_backend("numpy", lambda d: np)
    with pytest.raises(TypeError, match="callable"):
        registry.register_backend("x", array_api_strict)
    with pytest.raises(B.BackendError, match="register_backend"):
        xpscratch.set_backend("not-registered")


@pytest.mark.parametrize(
    "namespace, message",
    [
        (dict(drop=("argsort", "take")), "lacks the standard functions argsort, take"),
        (dict(drop=("__array_namespace_info__",)), "no __array_namespace_info__"),
        (dict(__array_api_version__="2022.12"), "standard 2022.12; xpscratch needs 2023.12"),
    ],
)
def test_a_namespace_that_falls_short_is_refused_naming_what_it_lacks(registry, namespace, message):
    fake = _namespace_like(array_api_strict, **namespace)
    with pytest.raises(B.BackendError, match=message):
        B.check_namespace(fake, array_api_strict.Device("CPU_DEVICE"))


def test_a_namespace_without_the_random_words_integers_is_refused(registry):
    class Info:
        def dtypes(self, device=None, kind=None):
            return {"float32": array_api_strict.float32, "int32": array_api_strict.int32}

    fake = _namespace_like(array_api_strict, __array_namespace_info__=Info)
    with pytest.raises(B.BackendError, match="neither uint32 nor int64"):
        B.check_namespace(fake)


def test_the_dtypes_kind_quirk_is_worked_around(registry):
    """ndonnx 0.23's info().dtypes() requires kind=: the kinds are asked one by one."""

    class Info:
        def dtypes(self, *, device=None, kind):
            return array_api_strict.__array_namespace_info__().dtypes(kind=kind)

    fake = _namespace_like(array_api_strict, __array_namespace_info__=Info)
    got = B.device_dtypes(fake)
    assert {"float32", "float64", "int64", "uint32", "bool"} <= set(got)
    assert B.index_dtype(fake) == array_api_strict.int64


def test_the_namespace_is_checked_once(registry, monkeypatch):
    calls = []
    real = B.device_dtypes
    monkeypatch.setattr(B, "device_dtypes", lambda *a: calls.append(a) or real(*a))
    registry.register_backend("mystrict", lambda device: array_api_strict)
    for _ in range(3):
        with xpscratch.use_backend("mystrict"):
            pass
    assert len(calls) == 1


class _DLPackOnly:
    """An array of an unknown library that exports its data through DLPack only."""

    def __init__(self, data):
        self._data = np.asarray(data)

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()


class _ArrayOnly:
    def __init__(self, data):
        self._data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self._data


def test_to_numpy_takes_any_array_through_dlpack_or_array():
    data = np.arange(6.0).reshape(2, 3)
    for wrapped in (_DLPackOnly(data), _ArrayOnly(data)):
        got = xpscratch.to_numpy(wrapped)
        np.testing.assert_array_equal(got, data)
        assert got is not data and not np.shares_memory(got, data)  # a copy the caller owns


def test_to_numpy_names_what_an_unreadable_array_lacks():
    with pytest.raises(TypeError, match="neither DLPack .* nor __array__"):
        xpscratch.to_numpy(object())


def test_check_command_runs_on_a_registered_backend(registry, capsys):
    registry.register_backend("mystrict", lambda device: array_api_strict)
    status = main(["check", "--backend", "mystrict", "--quick", "--group", "layers"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "mystrict" in out and "PASS" in out


@pytest.mark.parametrize("device", ["mps", "xpu"])
def test_a_missing_torch_device_is_refused_with_the_fix(device):
    torch = pytest.importorskip("torch")
    available = {
        "mps": lambda: torch.backends.mps.is_available(),
        "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available(),
    }[device]
    if available():
        pytest.skip(f"this machine has {device}")
    with pytest.raises(B.BackendError, match=rf"\({device}\).*use device='cpu'"):
        xpscratch.set_backend("torch", device)


@pytest.mark.parametrize("backend", ["torch-float32"], indirect=True)
def test_the_float32_only_backend_refuses_what_mps_refuses(backend):
    """The torch-float32 test backend (mps emulated on the CPU) refuses float64 and uint64
    at every torch call, and its dtypes do not list them: the mps path is proven here."""
    xp = backend.xp
    with pytest.raises(TypeError, match="float32-only"):
        xp.zeros(3, dtype=xp.float64)
    with pytest.raises(TypeError, match="float32-only"):
        xp.astype(xp.zeros(3, dtype=xp.float32), xp.uint64)
    assert "float64" not in B.device_dtypes(xp, backend.device)
    with pytest.raises(B.BackendError, match="does not support float64"):
        B.float_dtype(xp, "float64", backend.device)
