"""The backend switch: selection, thread safety, host/device moves and clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import types
from pathlib import Path

import array_api_compat
import numpy as np
import pytest

import xpscratch
from xpscratch import backend as B

PACKAGE = Path(xpscratch.__file__).parent


@pytest.fixture
def fresh_global(monkeypatch):
    """Forget the process-wide backend so that XPSCRATCH_BACKEND is read again."""
    monkeypatch.setattr(B, "_global_backend", None)


def test_default_is_numpy(fresh_global, monkeypatch):
    monkeypatch.delenv("XPSCRATCH_BACKEND", raising=False)
    b = xpscratch.get_backend()
    assert b.name == "numpy" and b.device == "cpu"
    assert array_api_compat.is_numpy_namespace(b.xp)


def test_set_backend_and_nested_use_backend(fresh_global, monkeypatch):
    monkeypatch.delenv("XPSCRATCH_BACKEND", raising=False)
    xpscratch.set_backend("array_api_strict")
    assert xpscratch.get_backend().name == "array_api_strict"
    with xpscratch.use_backend("numpy"):
        assert xpscratch.get_backend().name == "numpy"
        with xpscratch.use_backend("array_api_strict", "device1") as inner:
            assert xpscratch.get_backend() is inner
            assert str(inner.device).find("device1") >= 0
        assert xpscratch.get_backend().name == "numpy"
    assert xpscratch.get_backend().name == "array_api_strict"


def test_use_backend_restores_after_an_exception():
    before = xpscratch.get_backend()
    with pytest.raises(RuntimeError), xpscratch.use_backend("array_api_strict"):
        raise RuntimeError("boom")
    assert xpscratch.get_backend() == before


def test_use_backend_is_thread_local():
    seen: dict[str, str] = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with xpscratch.use_backend("array_api_strict"):
            inside.set()
            release.wait(5)
            seen["worker"] = xpscratch.get_backend().name

    with xpscratch.use_backend("numpy"):
        t = threading.Thread(target=worker)
        t.start()
        assert inside.wait(5)
        # the worker's context must not leak into this thread, nor this one into it
        seen["main"] = xpscratch.get_backend().name
        release.set()
        t.join()
    assert seen == {"worker": "array_api_strict", "main": "numpy"}


@pytest.mark.parametrize(
    ("spec", "name", "device"),
    [
        ("array_api_strict", "array_api_strict", "CPU_DEVICE"),
        ("array_api_strict:device1", "array_api_strict", "device1"),
        ("numpy", "numpy", "cpu"),
    ],
)
def test_environment_variable(fresh_global, monkeypatch, spec, name, device):
    monkeypatch.setenv("XPSCRATCH_BACKEND", spec)
    b = xpscratch.get_backend()
    assert b.name == name and str(b.device).find(device) >= 0


def test_bad_environment_variable_names_it(fresh_global, monkeypatch):
    monkeypatch.setenv("XPSCRATCH_BACKEND", "mxnet")  # (jax is a backend now)
    with pytest.raises(xpscratch.BackendError, match="XPSCRATCH_BACKEND='mxnet'.*numpy"):
        xpscratch.get_backend()


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(xpscratch.BackendError) as err:
        xpscratch.set_backend("tensorflow")
    for name in xpscratch.BACKENDS:
        assert name in str(err.value)


def test_unknown_strict_device_lists_devices():
    with pytest.raises(xpscratch.BackendError, match="device1"):
        xpscratch.use_backend("array_api_strict", "device7").__enter__()


def test_numpy_has_no_gpu_device():
    with pytest.raises(xpscratch.BackendError, match="CPU only"):
        xpscratch.set_backend("numpy", device="cuda")


def test_cupy_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(xpscratch.BackendError, match=r"not installed.*xpscratch\[cuda12\]"):
        xpscratch.set_backend("cupy")


def test_torch_missing_says_which_build(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    cpu_index = r"--index-url https://download\.pytorch\.org/whl/cpu"
    with pytest.raises(xpscratch.BackendError, match=rf"not installed.*{cpu_index}.*CPU-only"):
        xpscratch.set_backend("torch", device="cpu")
    # for a GPU the CPU build is not enough
    with pytest.raises(xpscratch.BackendError, match=r"not installed.*a CUDA build") as info:
        xpscratch.set_backend("torch", device="cuda")
    assert "CPU build" not in str(info.value)


def test_torch_gpu_devices_this_machine_lacks_are_refused_up_front(fresh_global):
    """Issue 22 item 19: torch:mps (and xpu, a cuda index past the last GPU) was accepted
    and failed at the first allocation; now set_backend says so, with the fix."""
    torch = pytest.importorskip("torch")
    if not torch.backends.mps.is_available():
        with pytest.raises(xpscratch.BackendError, match=r"no usable Apple GPU.*device='cpu'"):
            xpscratch.set_backend("torch", device="mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is None or not xpu.is_available():
        with pytest.raises(xpscratch.BackendError, match=r"no usable Intel GPU.*device='cpu'"):
            xpscratch.set_backend("torch", device="xpu")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(xpscratch.BackendError, match=f"sees {n} CUDA GPU.*cuda:{n}"):
            xpscratch.set_backend("torch", device=f"cuda:{n}")


def test_a_torch_gpu_device_is_the_device_its_tensors_report(fresh_global, monkeypatch):
    """On the H200, ``set_backend("torch", "cuda")`` kept torch.device("cuda"), which never
    equals the ``cuda:0`` its tensors report: every device comparison failed there."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():  # stand in for one GPU; nothing is allocated
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    current = torch.cuda.current_device()
    assert xpscratch.set_backend("torch", device="cuda").device == torch.device("cuda", current)
    assert xpscratch.set_backend("torch", device="cuda:0").device == torch.device("cuda", 0)
    assert xpscratch.set_backend("torch", device="cpu").device == torch.device("cpu")


def test_set_torch_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        B.set_torch_threads(0)  # never below one thread
        assert torch.get_num_threads() == 1
        B.set_torch_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_set_torch_threads_without_torch_does_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    B.set_torch_threads(1)


def test_cupy_without_gpu_says_so(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(xpscratch.BackendError, match="no usable CUDA GPU.*nvidia-smi"):
        xpscratch.set_backend("cupy")


def test_available_backends():
    names = xpscratch.available_backends()
    assert names[0] == "numpy" and "array_api_strict" in names
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch" not in names
    else:
        assert "torch" in names


# -- moving data ---------------------------------------------------------------


def test_asarray_and_to_numpy_round_trip(backend, float_dtype):
    host = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    x = xpscratch.asarray(host, float_dtype)
    assert array_api_compat.array_namespace(x) is backend.xp
    assert array_api_compat.device(x) == backend.device
    back = xpscratch.to_numpy(x)
    assert isinstance(back, np.ndarray) and back.dtype == np.dtype(float_dtype)
    np.testing.assert_array_equal(back, host.astype(float_dtype))


def test_asarray_defaults(backend):
    x = xpscratch.asarray(np.ones(3))  # float64 host data -> the default float32
    assert x.dtype == backend.xp.float32
    labels = xpscratch.asarray(np.array([1, 2, 3], dtype=np.uint8))
    assert labels.dtype == xpscratch.backend.index_dtype(backend.xp, backend.device)
    with xpscratch.use_default_dtype("float32"):
        assert xpscratch.asarray([0.5]).dtype == backend.xp.float32
    assert xpscratch.asarray(x) is x  # already there: no copy


@pytest.mark.parametrize("value", [2**40 + 5, 2**32 + 3, -(2**31) - 1, 2**63 + 7])
def test_asarray_refuses_integers_the_device_cannot_hold(backend, value):
    """JAX's 32-bit mode gave 5 for 2**40 + 5, and the Trainer then trained label
    2**32 + 3 as class 3 (issue 22): a value that does not fit is an error."""
    xp = backend.xp
    info = xp.iinfo(xpscratch.backend.index_dtype(xp, backend.device))
    host = np.array([1, value], dtype=np.uint64 if value >= 2**63 else np.int64)
    if info.min <= value <= info.max and value < 2**63:
        assert xpscratch.to_numpy(xpscratch.asarray(host)).tolist() == [1, value]
        return
    with pytest.raises(ValueError, match=rf"integer {value} does not fit"):
        xpscratch.asarray(host)


def test_asarray_refuses_arrays_of_another_backend(backend):
    strict = pytest.importorskip("array_api_strict")
    if backend.name == "array_api_strict":
        other = pytest.importorskip("torch").ones(2)
    else:
        other = strict.asarray([1.0])
    with pytest.raises(xpscratch.BackendMismatchError, match="to_numpy"):
        xpscratch.asarray(other)


def test_asarray_like_follows_the_given_array(backend):
    ref = xpscratch.asarray(np.zeros(2), "float32")
    with xpscratch.use_backend("numpy"):  # the active backend is not consulted
        y = xpscratch.asarray(np.ones(2), like=ref)
    assert array_api_compat.array_namespace(y) is backend.xp
    assert array_api_compat.device(y) == array_api_compat.device(ref)


def test_float64_on_a_device_without_it_is_a_clear_error():
    with xpscratch.use_backend("array_api_strict", "no_float64"):
        with pytest.raises(xpscratch.BackendError, match="does not support float64.*float32"):
            xpscratch.asarray(np.ones(2), "float64")


def test_default_dtype_setting():
    assert xpscratch.get_default_dtype() == "float32"
    with xpscratch.use_default_dtype("float64"):
        assert xpscratch.get_default_dtype() == "float64"
        assert xpscratch.asarray(np.ones(1)).dtype == xpscratch.get_backend().xp.float64
    assert xpscratch.get_default_dtype() == "float32"
    with pytest.raises(ValueError, match="float32.*float64"):
        xpscratch.set_default_dtype("float16")


def test_device1_refuses_silent_host_copies():
    """The fake device proves that only to_numpy copies to the host."""
    with xpscratch.use_backend("array_api_strict", "device1"):
        x = xpscratch.asarray(np.ones(3))
        with pytest.raises(RuntimeError):
            np.asarray(x)
        np.testing.assert_array_equal(xpscratch.to_numpy(x), np.ones(3))


# -- mixing --------------------------------------------------------------------


def test_mixing_backends_is_a_clear_error():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(xpscratch.BackendMismatchError, match="different backends.*asarray"):
        B.namespace(np.ones(2), strict.asarray([1.0, 2.0]))


def test_mixing_devices_is_a_clear_error():
    strict = pytest.importorskip("array_api_strict")
    a = strict.asarray([1.0], device=strict.Device("CPU_DEVICE"))
    b = strict.asarray([1.0], device=strict.Device("device1"))
    with pytest.raises(xpscratch.BackendMismatchError, match="different devices"):
        B.namespace(a, b)


def test_mixing_numpy_and_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(xpscratch.BackendMismatchError, match="numpy.*torch|torch.*numpy"):
        B.namespace(np.ones(2), torch.ones(2))


# -- rules that keep the library portable ------------------------------------------

# host-side by design: the backend, data loading, checkpoint files, plotting, the CLI
# check/: the battery compares results copied to the host with NumPy's (its cases run the
# library's own array code on the backend); testing.py: the same for users' tests
HOST_MODULES = re.compile(
    r"(^backend\.py$|^datasets/|^checkpoint\.py$|^plot/|^cli\.py$|^experiments/|^check/"
    r"|^testing\.py$)"
)


def _library_sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        yield rel, path.read_text()


def test_only_host_side_modules_import_numpy_or_cupy():
    offenders = [
        rel
        for rel, src in _library_sources()
        if not HOST_MODULES.search(rel)
        and re.search(r"^\s*(import (numpy|cupy)|from (numpy|cupy)[ .])", src, re.M)
    ]
    assert offenders == []


NAMESPACES = {"xp", "hp", "np", "math", "strict", "torch", "cupy", "backend", "b"}
ARRAY_METHOD = re.compile(r"(\w*)([)\]]?)\.(sum|mean|max|min|reshape|astype|flatten|argmax|copy)\(")


def test_no_array_methods_outside_the_standard():
    """x.sum() and friends exist on NumPy arrays but not in the array API standard."""
    offenders = [
        f"{rel}: {m.group(0)}"
        for rel, src in _library_sources()
        if not HOST_MODULES.search(rel)
        for m in ARRAY_METHOD.finditer(src)
        if m.group(2) or m.group(1) not in NAMESPACES
    ]
    assert offenders == []


def test_import_is_light():
    """The core imports without torch, matplotlib, tqdm or array_api_strict."""
    code = (
        "import sys, xpscratch, xpscratch.networks, xpscratch.optim, xpscratch.layers;"
        "heavy = [m for m in ('torch', 'matplotlib', 'tqdm', 'array_api_strict', 'cupy')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_to_numpy_returns_a_copy_the_caller_owns(backend):
    x = xpscratch.asarray(np.zeros(3), "float32")
    saved = xpscratch.to_numpy(x)
    x += 1.0  # training goes on, in place
    np.testing.assert_array_equal(saved, np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unfused_keeps_a_product_rounded_inside_jax_jit(dtype):
    """``a * b + c`` compiled with ``unfused`` on the product rounds twice, as NumPy
    does (XLA's CPU backend otherwise fuses it into an FMA, rounded once); outside a
    trace ``unfused`` is the identity, and ``put_scalar`` passes the transfer guard."""
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(100_000).astype(dtype) for _ in range(3))
    want = a * b + c  # two roundings
    assert B.unfused(a, None) is a
    with jax.enable_x64(dtype == "float64"):
        args = [jax.device_put(v) for v in (a, b, c)]
        with jax.transfer_guard("disallow"):
            zero = B.put_scalar(0, "int32", args[0])
        kept = jax.jit(lambda a, b, c, zero: B.unfused(a * b, zero) + c)
        got = np.asarray(kept(*args, zero))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_nudging_inputs_moves_host_floats_by_one_ulp_and_nothing_else():
    """xpscratch check's noise band: inside the block host float arrays move one ulp
    (float32 and float64 alike), scalars, integers and random words do not; outside, nothing."""
    from xpscratch import random as R
    from xpscratch.backend import nudging_inputs

    host = np.linspace(0.1, 2.0, 50)
    with xpscratch.use_backend("numpy"):
        with nudging_inputs(1):
            for dtype in ("float32", "float64"):
                moved = xpscratch.asarray(host, dtype)
                exact = host.astype(dtype)
                ulps = (moved - exact) / np.spacing(exact)
                # one ulp up or down (down from a power of two is half of spacing's ulp)
                assert set(ulps.tolist()) <= {1.0, -1.0, -0.5} and (ulps > 0).any()
            assert float(xpscratch.asarray(0.5, "float32")) == 0.5
            assert xpscratch.asarray(np.arange(5)).tolist() == list(range(5))
            words = R.random_bits(0, "nudge", 0, 8)
            u = R.uniform(0, "nudge", 0, 8, "float64")
        assert np.array_equal(words, R.random_bits(0, "nudge", 0, 8))
        assert not np.array_equal(u, R.uniform(0, "nudge", 0, 8, "float64"))
        assert np.array_equal(xpscratch.asarray(host, "float64"), host)


def test_a_network_called_under_jax_jit_gets_the_way_to_compile_not_a_device_error():
    """Issue 22 item 20: ``jax.jit(lambda x: net.predict(x))`` reported "arrays on
    different devices (None, cpu:0)": the traced input has no device yet."""
    jax = pytest.importorskip("jax")
    from xpscratch.networks import MultiLayerNetExtend

    with xpscratch.use_backend("jax"):
        net = MultiLayerNetExtend(4, [3], 2, dtype="float32")
        x = xpscratch.asarray(np.ones((5, 4), dtype=np.float32))
        with pytest.raises(xpscratch.BackendMismatchError) as info:
            jax.jit(lambda x: net.predict(x))(x)
        message = str(info.value)
        assert message.startswith("a JAX array being traced (inside jax.jit")
        assert "compile_step(network, optimizer)" in message and "devices" not in message
        traced = jax.jit(lambda a, b: B.namespace(a, b).add(a, b))  # both traced: fine
        np.testing.assert_array_equal(xpscratch.to_numpy(traced(x, x)), 2 * np.ones((5, 4)))


def test_scan_steps_stacks_each_steps_output_eagerly_and_under_jit(backend, float_dtype):
    # a running sum and a count: the outputs are the partial sums 1, 3, 6, 10 (exact)
    def body(carry):
        calls.append(1)  # under jax.jit: once per trace
        total, extra = carry
        n = extra["n"] + 1
        total = total + B.namespace(total).astype(n, total.dtype)
        return (total, {"n": n}), B.namespace(total).stack([total, 2 * total])

    xp = backend.xp
    start = (xpscratch.asarray([0.0], float_dtype), {"n": xp.asarray(0, device=backend.device)})
    calls = []

    def run(total, extra):
        return B.scan_steps(4, body, (total, extra))

    expected = [[[1.0], [2.0]], [[3.0], [6.0]], [[6.0], [12.0]], [[10.0], [20.0]]]
    (total, extra), ys = run(*start)
    assert B.to_numpy(ys).tolist() == expected and int(extra["n"]) == 4
    assert len(calls) == 4
    if backend.name == "jax":  # one lax.scan: the body traced once, not unrolled
        calls.clear()
        compiled = B.compile_function(run, xp)
        (total, extra), ys = compiled(*start)
        assert B.to_numpy(ys).tolist() == expected and int(extra["n"]) == 4
        compiled(*start)
        assert calls == [1]
    with pytest.raises(ValueError, match="at least one step"):
        B.scan_steps(0, body, start)
