"""Optimizers against NumPy float64 references written here from the book's formulas."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import xpscratch
from xpscratch.backend import compile_function, device_of, index_dtype, namespace, writable
from xpscratch.layers import Affine
from xpscratch.optim import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    Optimizer,
    RMSprop,
    _bias_corrections,
    functional_update,
    make_optimizer,
)

SHAPES = {"W1": (3, 4), "b1": (4,), "W2": (4, 2), "b2": (2,)}
STEPS = 20


# -- NumPy float64 references, one per optimizer, from the docstrings / the book's code --------


def ref_sgd(params, grads_seq, lr):
    for grads in grads_seq:
        for k in params:
            params[k] = params[k] - lr * grads[k]
    return params


def ref_momentum(params, grads_seq, lr, momentum):
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in grads_seq:
        for k in params:
            v[k] = momentum * v[k] - lr * grads[k]
            params[k] = params[k] + v[k]
    return params


def ref_nesterov(params, grads_seq, lr, momentum):
    mu = momentum
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in grads_seq:
        for k in params:
            params[k] = params[k] + mu * mu * v[k] - (1 + mu) * lr * grads[k]
            v[k] = mu * v[k] - lr * grads[k]
    return params


def ref_adagrad(params, grads_seq, lr):
    h = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in grads_seq:
        for k in params:
            h[k] = h[k] + grads[k] * grads[k]
            params[k] = params[k] - lr * grads[k] / (np.sqrt(h[k]) + 1e-7)
    return params


def ref_rmsprop(params, grads_seq, lr, decay_rate):
    h = {k: np.zeros_like(p) for k, p in params.items()}
    for grads in grads_seq:
        for k in params:
            h[k] = h[k] * decay_rate + (1 - decay_rate) * grads[k] * grads[k]
            params[k] = params[k] - lr * grads[k] / (np.sqrt(h[k]) + 1e-7)
    return params


def ref_adam_book(params, grads_seq, lr, beta1, beta2):
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, grads in enumerate(grads_seq, start=1):
        lr_t = lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        for k in params:
            m[k] = m[k] + (1 - beta1) * (grads[k] - m[k])
            v[k] = v[k] + (1 - beta2) * (grads[k] ** 2 - v[k])
            params[k] = params[k] - lr_t * m[k] / (np.sqrt(v[k]) + 1e-7)
    return params


def ref_adam_paper(params, grads_seq, lr, beta1, beta2, eps, weight_decay=0.0):
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, grads in enumerate(grads_seq, start=1):
        for k in params:
            g = grads[k]
            if k.startswith("W"):  # AdamW: decoupled decay of the weights only
                params[k] = params[k] * (1 - lr * weight_decay)
            m[k] = beta1 * m[k] + (1 - beta1) * g
            v[k] = beta2 * v[k] + (1 - beta2) * g * g
            m_hat = m[k] / (1 - beta1**t)
            v_hat = v[k] / (1 - beta2**t)
            params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


CASES = {
    "SGD": (lambda: SGD(lr=0.1), lambda p, gs: ref_sgd(p, gs, 0.1)),
    "Momentum": (
        lambda: Momentum(lr=0.05, momentum=0.9),
        lambda p, gs: ref_momentum(p, gs, 0.05, 0.9),
    ),
    "Nesterov": (
        lambda: Nesterov(lr=0.05, momentum=0.8),
        lambda p, gs: ref_nesterov(p, gs, 0.05, 0.8),
    ),
    "AdaGrad": (lambda: AdaGrad(lr=0.1), lambda p, gs: ref_adagrad(p, gs, 0.1)),
    "RMSprop": (
        lambda: RMSprop(lr=0.01, decay_rate=0.9),
        lambda p, gs: ref_rmsprop(p, gs, 0.01, 0.9),
    ),
    "Adam": (
        lambda: Adam(lr=0.01, beta1=0.8, beta2=0.99),
        lambda p, gs: ref_adam_book(p, gs, 0.01, 0.8, 0.99),
    ),
    "Adam-paper": (
        lambda: Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-8, eps_after_bias_correction=True),
        lambda p, gs: ref_adam_paper(p, gs, 0.01, 0.8, 0.99, 1e-8),
    ),
    "AdamW": (
        lambda: AdamW(lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.5),
        lambda p, gs: ref_adam_paper(p, gs, 0.01, 0.8, 0.99, 1e-8, weight_decay=0.5),
    ),
}


# -- helpers --------------------------------------------------------------------------------------


def tolerances(float_dtype: str) -> dict[str, float]:
    return (
        {"rtol": 1e-12, "atol": 1e-13} if float_dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6}
    )


def host_problem(float_dtype: str, steps: int = STEPS, seed: int = 0):
    """Parameters and a sequence of changing gradients on the host, exact in ``float_dtype``."""
    rng = np.random.default_rng(seed)
    cast = (lambda a: a) if float_dtype == "float64" else (lambda a: a.astype(np.float32))
    params = {k: cast(rng.standard_normal(s)) for k, s in SHAPES.items()}
    grads_seq = [
        {k: cast(rng.standard_normal(s) * 2.0**-i) for i, (k, s) in enumerate(SHAPES.items())}
        for _ in range(steps)
    ]
    return params, grads_seq


def to_device(host: dict, dtype: str) -> dict:
    # a copy first: on numpy, asarray may hand back the host array itself
    return {k: xpscratch.asarray(np.array(v, copy=True), dtype) for k, v in host.items()}


def to_host(arrays: dict) -> dict:
    # a copy: on numpy, to_numpy may return the live array, which updates would change
    return {k: np.array(xpscratch.to_numpy(v), copy=True) for k, v in arrays.items()}


def run(opt: Optimizer, params: dict, grads_seq: list[dict], dtype: str) -> None:
    for grads in grads_seq:
        opt.update(params, to_device(grads, dtype))


def reference(name: str, host_params: dict, grads_seq: list[dict]) -> dict:
    p64 = {k: v.astype(np.float64) for k, v in host_params.items()}
    gs64 = [{k: v.astype(np.float64) for k, v in g.items()} for g in grads_seq]
    return CASES[name][1](p64, gs64)


def other_backend_array(backend, shape):
    """A zero array of a backend other than the active one."""
    if backend.name == "numpy":
        import array_api_strict as strict

        return strict.zeros(shape, dtype=strict.float32)
    return np.zeros(shape, dtype=np.float32)


# -- against the references -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy_reference(backend, float_dtype, name):
    host_params, grads_seq = host_problem(float_dtype)
    params = to_device(host_params, float_dtype)
    opt = CASES[name][0]()
    run(opt, params, grads_seq, float_dtype)
    expected = reference(name, host_params, grads_seq)
    assert opt.step == STEPS
    for k in SHAPES:
        assert params[k].dtype == getattr(backend.xp, float_dtype)
        np.testing.assert_allclose(
            xpscratch.to_numpy(params[k]), expected[k], **tolerances(float_dtype), err_msg=k
        )


def test_adamw_decays_only_weights(backend, float_dtype):
    """With zero gradients Adam does not move; AdamW shrinks W by lr*wd per step, not b."""
    params = to_device({"W": np.full((2, 2), 2.0), "b": np.full((2,), 2.0)}, float_dtype)
    zero = to_device({"W": np.zeros((2, 2)), "b": np.zeros((2,))}, float_dtype)
    opt = AdamW(lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.update(params, zero)
    np.testing.assert_allclose(xpscratch.to_numpy(params["W"]), 2.0 * 0.95**3, rtol=1e-6)
    np.testing.assert_array_equal(xpscratch.to_numpy(params["b"]), 2.0)


def test_adamw_decay_mask_is_explicit_weights_by_default():
    """The default mask: W, W1, W2, ... (not gamma, beta, b, nor a name merely starting
    with W); decay= chooses the parameters by name, and survives get_config."""
    from xpscratch.optim import optimizer_from_config, weight_matrices

    names = ["W", "W1", "W12", "b1", "gamma1", "beta1", "Wx", "xy"]
    assert [n for n in names if weight_matrices(n, None)] == ["W", "W1", "W12"]
    host = {n: np.full((2,), 2.0) for n in ("W1", "gamma1", "b1")}
    zero = {n: np.zeros((2,)) for n in host}
    for decay, decayed in ((None, {"W1"}), (["gamma1", "b1"], {"gamma1", "b1"}), ([], set())):
        opt = AdamW(lr=0.1, weight_decay=0.5, decay=decay)
        opt = optimizer_from_config("AdamW", opt.get_config())  # the mask is saved too
        params = {k: xpscratch.asarray(v.copy(), "float64") for k, v in host.items()}
        opt.update(params, {k: xpscratch.asarray(v, "float64") for k, v in zero.items()})
        for k in host:
            expected = 2.0 * 0.95 if k in decayed else 2.0
            np.testing.assert_allclose(xpscratch.to_numpy(params[k]), expected, err_msg=k)


# -- first steps by hand ------------------------------------------------------------------------

G = [2.0, -3.0, 0.5, 0.0]  # includes a zero gradient: no move for the adaptive methods


def one_param(values, dtype):
    return {"W": xpscratch.asarray(np.array(values, dtype=np.float64), dtype)}


def first_step(opt, dtype, w0=1.0, g=G, steps=1):
    params = one_param([w0] * len(g), dtype)
    grads = one_param(g, dtype)
    for _ in range(steps):
        opt.update(params, grads)
    return xpscratch.to_numpy(params["W"])


def test_sgd_first_step_by_hand(backend, float_dtype):
    # the brief's example: lr=0.1, W=1, g=2 -> 0.8
    np.testing.assert_allclose(first_step(SGD(lr=0.1), float_dtype, g=[2.0]), [0.8], rtol=1e-7)


def test_momentum_two_steps_by_hand(backend, float_dtype):
    # v = -0.2, W = 0.8; then v = 0.9*(-0.2) - 0.2 = -0.38, W = 0.42
    opt = Momentum(lr=0.1, momentum=0.9)
    np.testing.assert_allclose(first_step(opt, float_dtype, g=[2.0], steps=2), [0.42], rtol=1e-6)


def test_nesterov_two_steps_by_hand(backend, float_dtype):
    # step 1 (v=0): W = 1 - 1.9*0.1*2 = 0.62, v = -0.2
    # step 2: W = 0.62 + 0.81*(-0.2) - 0.38 = 0.078
    opt = Nesterov(lr=0.1, momentum=0.9)
    np.testing.assert_allclose(first_step(opt, float_dtype, g=[2.0]), [0.62], rtol=1e-6)
    opt = Nesterov(lr=0.1, momentum=0.9)
    np.testing.assert_allclose(first_step(opt, float_dtype, g=[2.0], steps=2), [0.078], rtol=1e-5)


@pytest.mark.parametrize(
    "make, step",
    [
        (lambda: AdaGrad(lr=0.1), 0.1),  # h = g^2: lr*g/|g|
        (lambda: RMSprop(lr=0.01, decay_rate=0.99), 0.1),  # h = 0.01 g^2: 10*lr*sign(g)
        (lambda: Adam(lr=0.1), 0.1),  # lr_t*m/sqrt(v) = lr*sign(g)
        (lambda: Adam(lr=0.1, eps=1e-8, eps_after_bias_correction=True), 0.1),
    ],
    ids=["AdaGrad", "RMSprop", "Adam", "Adam-paper"],
)
def test_adaptive_first_step_is_sign_of_gradient(backend, float_dtype, make, step):
    w = first_step(make(), float_dtype)
    np.testing.assert_allclose(w, 1.0 - step * np.sign(G), rtol=0, atol=2e-5)


def test_adamw_first_step_by_hand(backend, float_dtype):
    # W = 1*(1 - 0.1*0.5) - 0.1*sign(g)
    w = first_step(AdamW(lr=0.1, weight_decay=0.5), float_dtype)
    np.testing.assert_allclose(w, 0.95 - 0.1 * np.sign(G), rtol=0, atol=2e-6)


# -- in place, state creation -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_updates_in_place_and_state_on_params_device(backend, float_dtype, name):
    host_params, grads_seq = host_problem(float_dtype, steps=2)
    params = to_device(host_params, float_dtype)
    layer = Affine(params["W1"], params["b1"])
    before = dict(params)
    opt = CASES[name][0]()
    opt.init(params)
    for slot in opt.slots:
        for k, p in params.items():
            s = opt.state[slot][k]
            assert array_api_compat.array_namespace(s) is backend.xp
            assert device_of(s) == device_of(p)
            assert s.dtype == p.dtype and tuple(s.shape) == tuple(p.shape)
            np.testing.assert_array_equal(xpscratch.to_numpy(s), 0.0)
    run(opt, params, grads_seq, float_dtype)
    expected = reference(name, host_params, grads_seq)
    if writable(before["W1"]):  # NumPy, CuPy, torch, strict: the same arrays, changed
        for k in SHAPES:
            assert params[k] is before[k], f"{k} was replaced, not updated in place"
        assert layer.W is params["W1"]
    else:  # immutable (JAX): new arrays written back; a network rebinds its layers
        for k in SHAPES:
            assert params[k] is not before[k], f"{k} was not written back"
        layer.W, layer.b = params["W1"], params["b1"]
    np.testing.assert_allclose(
        xpscratch.to_numpy(layer.W), expected["W1"], **tolerances(float_dtype)
    )
    assert not np.allclose(xpscratch.to_numpy(layer.b), host_params["b1"])


@pytest.mark.parametrize(
    "name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
)
def test_an_update_is_never_a_silent_no_op(backend, float_dtype, name):
    # JAX arrays have no __isub__: ``p -= lr * g`` only rebound a local name, and every
    # update (and every slot's) was lost without an error
    params = {"W": xpscratch.asarray(np.ones(3), float_dtype)}
    grads = {"W": xpscratch.asarray(np.ones(3), float_dtype)}
    opt = make_optimizer(name)
    seen = []
    for _ in range(2):
        opt.update(params, grads)
        seen.append(xpscratch.to_numpy(params["W"]))
        for slot in opt.slots:
            assert np.all(xpscratch.to_numpy(opt.state[slot]["W"]) != 0.0), slot
    assert np.all(seen[0] < 1.0) and np.all(seen[1] < seen[0])


def test_sgd_updates_jax_arrays():
    jnp = pytest.importorskip("jax.numpy")  # the report: W stayed [1, 1, 1]
    params = {"W": jnp.ones(3)}
    SGD(lr=0.1).update(params, {"W": jnp.ones(3)})
    np.testing.assert_allclose(xpscratch.to_numpy(params["W"]), [0.9, 0.9, 0.9], rtol=1e-6)


def test_state_created_lazily_by_first_update(backend, float_dtype):
    opt = Momentum(lr=0.1)
    assert opt.state is None and opt.step == 0
    params = one_param([1.0], float_dtype)
    opt.update(params, one_param([2.0], float_dtype))
    assert opt.step == 1
    assert array_api_compat.array_namespace(opt.state["v"]["W"]) is backend.xp
    np.testing.assert_allclose(xpscratch.to_numpy(opt.state["v"]["W"]), [-0.2], rtol=1e-6)


# -- state_dict / load_state_dict ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip(backend, float_dtype, name):
    k_steps, n_steps = 4, 5
    host_params, grads_seq = host_problem(float_dtype, steps=k_steps + n_steps)
    params = to_device(host_params, float_dtype)
    opt = CASES[name][0]()
    run(opt, params, grads_seq[:k_steps], float_dtype)

    # save as a checkpoint would: everything on the host
    saved_params = to_host(params)
    state = opt.state_dict()
    # plain to_numpy (no extra copy): state_dict() itself must be a snapshot
    saved_state = {
        key: (
            {k: xpscratch.to_numpy(a) for k, a in value.items()}
            if isinstance(value, dict)
            else value
        )
        for key, value in state.items()
    }
    assert saved_state["step"] == k_steps and type(saved_state["step"]) is int
    assert set(saved_state) == {"step", *opt.slots}

    run(opt, params, grads_seq[k_steps:], float_dtype)
    continued = to_host(params)

    fresh_params = to_device(saved_params, float_dtype)
    fresh = CASES[name][0]()
    fresh.load_state_dict(saved_state, fresh_params)
    assert fresh.step == k_steps
    for slot in fresh.slots:
        for key, p in fresh_params.items():
            s = fresh.state[slot][key]
            assert array_api_compat.array_namespace(s) is backend.xp
            assert device_of(s) == device_of(p) and s.dtype == p.dtype
    run(fresh, fresh_params, grads_seq[k_steps:], float_dtype)
    assert fresh.step == opt.step
    for key in SHAPES:
        got = xpscratch.to_numpy(fresh_params[key])
        if backend.name == "numpy":
            np.testing.assert_array_equal(got, continued[key], err_msg=key)
        else:
            np.testing.assert_allclose(got, continued[key], **tolerances(float_dtype), err_msg=key)
    # and both agree with the uninterrupted reference
    expected = reference(name, host_params, grads_seq)
    for key in SHAPES:
        np.testing.assert_allclose(continued[key], expected[key], **tolerances(float_dtype))


def test_state_dict_is_a_snapshot(backend, float_dtype):
    """Later updates must not change a saved state, nor a loaded one change the saved one."""
    host_params, grads_seq = host_problem(float_dtype, steps=6)
    params = to_device(host_params, float_dtype)
    opt = Adam(lr=0.01)
    run(opt, params, grads_seq[:3], float_dtype)
    state = opt.state_dict()
    m_then = to_host(state["m"])
    run(opt, params, grads_seq[3:], float_dtype)
    for k in SHAPES:
        np.testing.assert_array_equal(xpscratch.to_numpy(state["m"][k]), m_then[k])

    # two optimizers loaded from one native (not host) state must not share arrays
    p_a, p_b = to_device(host_params, float_dtype), to_device(host_params, float_dtype)
    a, b = Adam(lr=0.01), Adam(lr=0.01)
    a.load_state_dict(state, p_a)
    b.load_state_dict(state, p_b)
    run(a, p_a, grads_seq[3:], float_dtype)
    run(b, p_b, grads_seq[3:], float_dtype)
    for k in SHAPES:
        np.testing.assert_array_equal(xpscratch.to_numpy(state["m"][k]), m_then[k])
        np.testing.assert_array_equal(
            xpscratch.to_numpy(p_a[k]), xpscratch.to_numpy(p_b[k]), err_msg=k
        )


@pytest.mark.parametrize("name", ["Momentum", "Adam", "AdamW"])
def test_numpy_saved_state_restores_onto_any_backend(backend, float_dtype, name):
    k_steps, n_steps = 3, 4
    host_params, grads_seq = host_problem(float_dtype, steps=k_steps + n_steps)
    with xpscratch.use_backend("numpy"):
        np_params = to_device(host_params, float_dtype)
        np_opt = CASES[name][0]()
        run(np_opt, np_params, grads_seq[:k_steps], float_dtype)
        state = np_opt.state_dict()
        assert all(isinstance(a, np.ndarray) for s in np_opt.slots for a in state[s].values())
        saved_params = to_host(np_params)
    params = to_device(saved_params, float_dtype)
    opt = CASES[name][0]()
    opt.load_state_dict(state, params)
    run(opt, params, grads_seq[k_steps:], float_dtype)
    expected = reference(name, host_params, grads_seq)
    for k in SHAPES:
        np.testing.assert_allclose(
            xpscratch.to_numpy(params[k]), expected[k], **tolerances(float_dtype), err_msg=k
        )


def test_load_state_dict_refuses_wrong_keys_and_shapes(backend, float_dtype):
    host_params, grads_seq = host_problem(float_dtype, steps=2)
    params = to_device(host_params, float_dtype)
    opt = Adam(lr=0.01)
    run(opt, params, grads_seq[:1], float_dtype)
    good = {k: (to_host(v) if isinstance(v, dict) else v) for k, v in opt.state_dict().items()}
    m_before = to_host(opt.state_dict()["m"])

    renamed = {**good, "m": {("Wx" if k == "W1" else k): v for k, v in good["m"].items()}}
    with pytest.raises(ValueError, match="Wx"):
        opt.load_state_dict(renamed, params)
    missing = {**good, "v": {k: v for k, v in good["v"].items() if k != "b2"}}
    with pytest.raises(ValueError, match=r"'v'"):
        opt.load_state_dict(missing, params)
    no_slot = {"step": 1, "m": good["m"]}
    with pytest.raises(ValueError, match=r"'v'"):
        opt.load_state_dict(no_slot, params)
    reshaped = {**good, "v": {**good["v"], "W2": np.zeros((2, 4))}}
    with pytest.raises(ValueError, match=r"W2.*\(2, 4\)"):
        opt.load_state_dict(reshaped, params)

    # a refused state leaves the optimizer as it was
    assert opt.step == 1
    for k in SHAPES:
        np.testing.assert_array_equal(xpscratch.to_numpy(opt.state["m"][k]), m_before[k])


# -- bad input ----------------------------------------------------------------------------------


def test_gradient_from_another_backend_is_refused(backend, float_dtype):
    params = one_param([1.0, 2.0], float_dtype)
    opt = SGD(lr=0.1)
    with pytest.raises(xpscratch.BackendMismatchError):
        opt.update(params, {"W": other_backend_array(backend, (2,))})
    assert opt.step == 0
    np.testing.assert_array_equal(xpscratch.to_numpy(params["W"]), [1.0, 2.0])


def test_gradient_on_another_device_is_refused():
    import array_api_strict as strict

    cpu, dev1 = strict.Device("CPU_DEVICE"), strict.Device("device1")
    params = {"W": strict.ones((2,), dtype=strict.float32, device=dev1)}
    grads = {"W": strict.ones((2,), dtype=strict.float32, device=cpu)}
    with pytest.raises(xpscratch.BackendMismatchError, match="device"):
        Momentum(lr=0.1).update(params, grads)


def test_missing_or_misshapen_gradient(backend, float_dtype):
    host_params, grads_seq = host_problem(float_dtype, steps=1)
    params = to_device(host_params, float_dtype)
    grads = to_device(grads_seq[0], float_dtype)
    opt = Adam(lr=0.1)
    del grads["b2"]
    with pytest.raises(KeyError, match="b2"):
        opt.update(params, grads)
    grads["b2"] = xpscratch.asarray(np.zeros((3,)), float_dtype)
    with pytest.raises(ValueError, match=r"b2.*\(3,\).*\(2,\)"):
        opt.update(params, grads)
    # nothing was changed by the refused updates, not even the parameters checked first
    assert opt.step == 0
    for k in SHAPES:
        np.testing.assert_array_equal(xpscratch.to_numpy(params[k]), host_params[k])


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("failing", [1, 3, 4])  # the first, a middle, the last parameter
def test_an_update_that_fails_part_way_changes_nothing(backend, float_dtype, name, failing):
    # an error (or a Ctrl-C) while the k-th parameter's rule runs: the parameters before
    # it must not stay updated, nor the state or the step count (Adam's t, a schedule)
    host_params, grads_seq = host_problem(float_dtype, steps=3)
    params = to_device(host_params, float_dtype)
    opt = CASES[name][0]()
    run(opt, params, grads_seq[:2], float_dtype)  # a state to keep
    kept = {k: xpscratch.to_numpy(p).copy() for k, p in params.items()}
    kept_state = {s: {k: xpscratch.to_numpy(a).copy() for k, a in opt.state[s].items()}
                  for s in opt.slots}  # fmt: skip
    rule, calls = type(opt)._apply, []

    def rule_interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == failing:
            raise KeyboardInterrupt
        return rule(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(type(opt), "_apply", rule_interrupted)
        opt.update(params, to_device(grads_seq[2], float_dtype))
    assert opt.step == 2
    for k, p in params.items():
        np.testing.assert_array_equal(xpscratch.to_numpy(p), kept[k], err_msg=k)
    for s in opt.slots:
        for k, a in opt.state[s].items():
            np.testing.assert_array_equal(xpscratch.to_numpy(a), kept_state[s][k], err_msg=k)
    # and the update then done is the one an uninterrupted run does
    opt.update(params, to_device(grads_seq[2], float_dtype))
    np.testing.assert_allclose(
        xpscratch.to_numpy(params["W1"]),
        reference(name, host_params, grads_seq)["W1"],
        **tolerances(float_dtype),
    )


def test_compute_update_changes_nothing_and_apply_update_stores_it(backend, float_dtype):
    host_params, grads_seq = host_problem(float_dtype, steps=1)
    params = to_device(host_params, float_dtype)
    opt = CASES["AdamW"][0]()  # two operations on each weight matrix: decay, then Adam's
    update = opt.compute_update(params, to_device(grads_seq[0], float_dtype))
    assert opt.step == 0 and opt.state is None and update.step == 1
    for k in SHAPES:
        np.testing.assert_array_equal(xpscratch.to_numpy(params[k]), host_params[k])
    before = dict(params)
    opt.apply_update(params, update)
    assert opt.step == 1 and opt.state is update.state
    expected = reference("AdamW", host_params, grads_seq)
    for k in SHAPES:
        assert (params[k] is before[k]) == writable(before[k])  # in place where writable
        np.testing.assert_allclose(
            xpscratch.to_numpy(params[k]), expected[k], **tolerances(float_dtype)
        )


def test_make_optimizer():
    with pytest.raises(ValueError, match="nope") as info:
        make_optimizer("nope")
    for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"):
        assert name in str(info.value)
    opt = make_optimizer("SGD", lr=0.5)
    assert type(opt) is SGD and opt.lr == 0.5 and type(opt.lr) is float
    assert type(make_optimizer("AdaGrad", lr=1.5)) is AdaGrad
    assert type(make_optimizer("rmsprop")) is RMSprop
    adam = make_optimizer("ADAM", lr=0.3)
    assert type(adam) is Adam and adam.lr == 0.3 and adam.beta1 == 0.9
    assert type(make_optimizer("AdamW", weight_decay=0.1)) is AdamW
    assert type(make_optimizer("Nesterov")) is Nesterov
    assert type(make_optimizer("Momentum", lr=0.1, momentum=0.8)) is Momentum


def test_hyperparameters_are_python_floats():
    opt = Adam(lr=1, beta1=np.float32(0.9), beta2=0.999)
    assert all(type(x) is float for x in (opt.lr, opt.beta1, opt.beta2, opt.eps))
    assert type(opt.current_lr()) is float
    assert type(Momentum(lr=1, momentum=0).momentum) is float  # an int in [0, 1)


# -- the book's optimizer_compare_naive.py as behaviour --------------------------------------------


def test_book_naive_comparison(backend, float_dtype):
    """f(x, y) = x^2/20 + y^2 from (-7, 2), 30 steps (Saito, fig. 6-8)."""
    optimizers = {
        "SGD": SGD(lr=0.95),
        "Momentum": Momentum(lr=0.1),
        "AdaGrad": AdaGrad(lr=1.5),
        "Adam": Adam(lr=0.3),
    }
    start = np.hypot(-7.0, 2.0)
    final = {}
    sgd_y = []
    for name, opt in optimizers.items():
        params = {
            "x": xpscratch.asarray(np.array([-7.0]), float_dtype),
            "y": xpscratch.asarray(np.array([2.0]), float_dtype),
        }
        for _ in range(30):
            grads = {"x": params["x"] / 10.0, "y": 2.0 * params["y"]}
            opt.update(params, grads)
            if name == "SGD":
                sgd_y.append(float(xpscratch.to_numpy(params["y"])[0]))
        x, y = (float(xpscratch.to_numpy(params[k])[0]) for k in "xy")
        final[name] = np.hypot(x, y)
    assert all(d < start for d in final.values()), final
    assert min(final, key=final.get) == "AdaGrad", final
    # SGD overshoots in the steep y direction: y = -0.9 y each step, a zig-zag
    assert all(a * b < 0 for a, b in zip(sgd_y[:-1], sgd_y[1:], strict=True)), sgd_y
    np.testing.assert_allclose(sgd_y[-1], 2.0 * (-0.9) ** 30, rtol=1e-5)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SGD(lr=NAN), "lr must be a finite number >= 0, got nan"),
        (lambda: SGD(lr=INF), "lr must be a finite number >= 0, got inf"),
        (lambda: SGD(lr=-0.1), "lr must be a finite number >= 0, got -0.1"),
        (lambda: SGD(lr="0.1"), "lr must be a finite number"),
        (lambda: Momentum(momentum=1.0), r"momentum must be a number in \[0, 1\), got 1.0"),
        (lambda: Momentum(momentum=-0.5), r"momentum must be a number in \[0, 1\)"),
        (lambda: Nesterov(momentum=NAN), r"momentum must be a number in \[0, 1\), got nan"),
        (lambda: AdaGrad(eps=-1e-7), "eps must be a finite number >= 0"),
        (lambda: RMSprop(decay_rate=1.5), r"decay_rate must be a number in \[0, 1\)"),
        (lambda: Adam(beta1=1.0), r"beta1 must be a number in \[0, 1\)"),
        (lambda: Adam(beta2=INF), r"beta2 must be a number in \[0, 1\)"),
        (lambda: AdamW(weight_decay=-0.01), "weight_decay must be a finite number >= 0"),
        (lambda: make_optimizer("momentum", lr=-1), "lr must be"),
    ],
)
def test_bad_hyperparameters_are_refused_naming_the_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_valid_edge_hyperparameters_are_accepted():
    assert SGD(lr=0).lr == 0.0  # a frozen step, as PyTorch allows
    assert Momentum(momentum=0.0).momentum == 0.0
    assert Adam(beta1=0.0, eps=0.0).eps == 0.0
    assert callable(SGD(lr=lambda step: 0.1).lr)  # a schedule is checked by the schedule


@pytest.mark.parametrize("after", [False, True])
def test_adam_takes_an_array_step_count(backend, xp, float_dtype, after):
    """A compiled step's count is a 0-d array: the bias correction is then array math,
    and the update matches the Python-int count's (to rounding)."""
    rng = np.random.default_rng(3)
    p = xpscratch.asarray(rng.standard_normal((4, 3)), dtype=float_dtype)
    g = xpscratch.asarray(rng.standard_normal((4, 3)), dtype=float_dtype)
    results = []
    for as_array in (False, True):
        opt = Adam(lr=0.01, eps_after_bias_correction=after)
        opt.init({"W": p})
        if as_array:
            opt.step = xp.asarray(6, dtype=index_dtype(xp, device_of(p)), device=device_of(p))
        else:
            opt.step = 6
        update = opt.compute_update({"W": p}, {"W": g})
        params = {"W": xp.asarray(p, copy=True)}
        opt.apply_update(params, update)
        results.append(xpscratch.to_numpy(params["W"]))
        assert int(update.step) == 7
    if float_dtype == "float64" and backend.name == "jax":  # XLA's pow is CPython's
        np.testing.assert_array_equal(results[1], results[0])
    tol = 1e-14 if float_dtype == "float64" else 1e-6
    np.testing.assert_allclose(results[1], results[0], rtol=tol, atol=tol)


def test_adam_array_count_in_float64_gives_the_eager_bias_correction(backend, float_dtype):
    """1 - beta^t as array math: on JAX (also under jax.jit: a compiled step's count)
    CPython's very bits, where -expm1(t log beta)'s 1e-13 difference at small t took a
    compiled 2-D Adam path out of ``xpscratch check``'s float64 band; elsewhere within
    the ulp of beta^t that a vectorised pow may differ by (1e-13 of 1 - 0.999^1)."""
    if float_dtype != "float64":
        pytest.skip("float64's formula (float32 keeps expm1)")
    like = xpscratch.asarray([0.0], float_dtype)
    xp = namespace(like)
    host_counts = [1, 2, 3, 7, 10, 77, 500, 1049, 2000, 5000]
    counts = xp.asarray(host_counts, dtype=index_dtype(xp, device_of(like)), device=device_of(like))
    for beta1, beta2 in [(0.9, 0.999), (0.8, 0.99)]:

        def corrections(t, beta1=beta1, beta2=beta2):
            return xp.stack(_bias_corrections(beta1, beta2, t, like)[:2])

        if backend.name == "jax":
            corrections = compile_function(corrections, xp)
        got = xpscratch.to_numpy(corrections(counts))
        want = np.asarray([[1.0 - b**t for t in host_counts] for b in (beta1, beta2)])
        if backend.name == "jax":
            np.testing.assert_array_equal(got, want)  # eager's
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=2.3e-16)  # one ulp of beta^t


@pytest.mark.parametrize("name", list(CASES))
def test_functional_update_is_update_without_changing_anything(backend, float_dtype, name):
    """The pure form compiled loops use: the same arrays as ``update`` (bit for bit), and
    neither the optimizer nor the arrays passed in change."""
    host_params, grads_seq = host_problem(float_dtype, steps=3)
    params = to_device(host_params, float_dtype)
    stateful, pure = CASES[name][0](), CASES[name][0]()
    pure.init(params)
    initial = pure.state
    state, step, before = initial, pure.step, to_device(host_params, float_dtype)  # its own
    for grads in (to_device(g, float_dtype) for g in grads_seq):
        stateful.update(params, grads)
        snapshot = {k: xpscratch.to_numpy(p) for k, p in before.items()}
        new, state, step = functional_update(pure, before, grads, state, step)
        assert pure.step == 0 and pure.state is initial  # the optimizer as it was
        for k in SHAPES:
            np.testing.assert_array_equal(xpscratch.to_numpy(before[k]), snapshot[k])
            np.testing.assert_array_equal(xpscratch.to_numpy(new[k]), xpscratch.to_numpy(params[k]))
        before = new
    assert step == stateful.step == 3
    for slot in stateful.slots:
        for k in SHAPES:
            np.testing.assert_array_equal(
                xpscratch.to_numpy(state[slot][k]), xpscratch.to_numpy(stateful.state[slot][k])
            )
