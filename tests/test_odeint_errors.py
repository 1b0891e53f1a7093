"""Bad input and failing solves give clear Python exceptions, never a crash."""
import _thread
import threading
import time

import numpy as np
import pytest
import torch

import qode

Y0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
T = torch.tensor([0.0, 1.0], dtype=torch.float64)


def decay(t, y):
    return -y


@pytest.mark.parametrize("t, match", [
    (torch.tensor([[0.0, 1.0]], dtype=torch.float64), "one dimensional"),
    (torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64), "strictly increasing or decreasing"),
    (torch.tensor([0.0, 0.0], dtype=torch.float64), "strictly increasing or decreasing"),
    (torch.tensor([0.0, float("nan")], dtype=torch.float64), "finite"),
    (torch.tensor([], dtype=torch.float64), "at least one"),
])
def test_bad_times(t, match):
    with pytest.raises(ValueError, match=match):
        qode.odeint(decay, Y0, t)


def test_integer_times_are_rejected():
    with pytest.raises(TypeError, match="floating point"):
        qode.odeint(decay, Y0, torch.tensor([0, 1]))


def test_unknown_method_and_options():
    with pytest.raises(ValueError, match="Invalid method"):
        qode.odeint(decay, Y0, T, method="rk45")
    with pytest.raises(ValueError, match="does not implement"):
        qode.odeint(decay, Y0, T, method="explicit_adams")
    with pytest.raises(ValueError, match="unknown option"):
        qode.odeint(decay, Y0, T, options={"step_size": 0.1})  # a fixed-grid option
    with pytest.raises(ValueError, match="unknown option"):
        qode.odeint(decay, Y0, T, method="rk4", options={"first_step": 0.1})
    with pytest.raises(ValueError, match="Unknown interpolation"):
        qode.odeint(decay, Y0, T, method="rk4", options={"interp": "spline"})
    with pytest.raises(ValueError, match="mutually exclusive"):
        qode.odeint(decay, Y0, T, method="rk4",
                    options={"step_size": 0.1, "grid_constructor": lambda f, y, t: t})


@pytest.mark.parametrize("name, value", [("rtol", -1e-6), ("atol", -1.0),
                                         ("rtol", float("nan"))])
def test_negative_tolerances(name, value):
    with pytest.raises(ValueError, match=name):
        qode.odeint(decay, Y0, T, **{name: value})


def test_tolerance_of_wrong_shape():
    with pytest.raises(ValueError, match="broadcast"):
        qode.odeint(decay, Y0, T, rtol=torch.full((3,), 1e-6))


@pytest.mark.parametrize("option, value", [("min_step", -1.0), ("max_step", 0.0),
                                           ("first_step", -0.1), ("dfactor", 2.0),
                                           ("max_num_steps", 0)])
def test_bad_step_options(option, value):
    with pytest.raises(ValueError, match=option.split("_")[0]):
        qode.odeint(decay, Y0, T, options={option: value})


def test_func_returning_wrong_shape():
    with pytest.raises(ValueError, match=r"func returned shape \(3,\)"):
        qode.odeint(lambda t, y: torch.zeros(3, dtype=torch.float64), Y0, T)


def test_func_returning_wrong_dtype():
    with pytest.raises(TypeError, match="dtype torch.float32"):
        qode.odeint(lambda t, y: (-y).float(), Y0, T)


def test_func_returning_non_tensor():
    with pytest.raises(TypeError, match="torch.Tensor"):
        qode.odeint(lambda t, y: [0.0, 0.0], Y0, T)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        qode.odeint(lambda t, y: (-y).tolist(), np.ones(2), np.array([0.0, 1.0]))


def test_tuple_func_returning_wrong_structure():
    y0 = (torch.ones(2, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="tuple of 2"):
        qode.odeint(lambda t, y: y[0], y0, T)


def test_unsupported_state_dtypes():
    with pytest.raises(TypeError, match="float32, float64"):
        qode.odeint(decay, torch.ones(2, dtype=torch.float16), T)
    with pytest.raises(TypeError, match="y0 must be"):
        qode.odeint(decay, [1.0, 2.0], T)


def test_state_on_another_device():
    y0 = torch.ones(2, device="meta")
    with pytest.raises(ValueError, match="CPU"):
        qode.odeint(decay, y0, T)


def test_nan_in_y0():
    with pytest.raises(ValueError, match="non-finite"):
        qode.odeint(decay, torch.tensor([1.0, float("nan")], dtype=torch.float64), T)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_func_producing_nan_names_the_time(method):
    def f(t, y):
        return -y if float(t) < 0.5 else y * float("nan")

    options = {"step_size": 0.1} if method == "rk4" else None
    with pytest.raises(FloatingPointError, match=r"non-finite values.*t=0\.[45]"):
        qode.odeint(f, Y0, T, method=method, options=options)


def test_blow_up_gives_underflow_in_dt():
    # y' = y^2 from y(0) = 1 blows up at t = 1: the step size collapses.
    with pytest.raises((AssertionError, FloatingPointError), match="underflow in dt|non-finite"):
        qode.odeint(lambda t, y: y * y, torch.ones(1, dtype=torch.float64),
                    torch.tensor([0.0, 2.0], dtype=torch.float64))


def test_underflow_in_dt_from_min_step_free_stiffness():
    # An error that never falls below the tolerance forces dt to underflow,
    # exactly the case torchdiffeq reports as "underflow in dt".
    def f(t, y):
        return torch.where(t > 0.5, torch.sign(torch.sin(1e9 * t)) * 1e20, -y).expand_as(y)

    with pytest.raises(AssertionError, match="underflow in dt"):
        qode.odeint(f, torch.ones(1, dtype=torch.float64), T, rtol=1e-12, atol=1e-12)


def test_max_num_steps_exceeded():
    with pytest.raises(AssertionError, match="max_num_steps exceeded"):
        qode.odeint(decay, Y0, torch.tensor([0.0, 100.0], dtype=torch.float64),
                    options={"max_num_steps": 5})


class Boom(Exception):
    pass


def test_exception_from_func_propagates_unchanged():
    calls = []

    def f(t, y):
        calls.append(1)
        if len(calls) == 7:
            raise Boom("raised by the user's func")
        return -y

    with pytest.raises(Boom, match="raised by the user's func"):
        qode.odeint(f, Y0, T)


def test_exception_from_event_fn_and_norm_propagates():
    with pytest.raises(Boom):
        qode.odeint(decay, Y0, T, event_fn=lambda t, y: _raise(Boom("event")) if t > 0 else y[0])
    with pytest.raises(Boom):
        qode.odeint(decay, Y0, T, options={"norm": lambda x: _raise(Boom("norm"))})


def _raise(exc):
    raise exc


def test_event_mode_needs_two_times():
    with pytest.raises(ValueError, match="len"):
        qode.odeint(decay, Y0, torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64),
                    event_fn=lambda t, y: y[0] - 0.5)


def test_fixed_grid_event_needs_step_size():
    with pytest.raises(ValueError, match="step_size"):
        qode.odeint(decay, Y0, T, method="rk4", event_fn=lambda t, y: y[0] - 0.5)


def test_grid_constructor_that_misses_the_end():
    with pytest.raises(ValueError, match="grid"):
        qode.odeint(decay, Y0, T, method="euler",
                    options={"grid_constructor": lambda f, y0, t: torch.tensor([0.0, 0.5])})


def test_ctrl_c_interrupts_a_long_solve():
    # A solve that would take minutes; a timer delivers KeyboardInterrupt.
    def slow_but_steady(t, y):
        return torch.cos(1e3 * t) * torch.ones_like(y)

    timer = threading.Timer(0.3, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        qode.odeint(slow_but_steady, Y0, torch.tensor([0.0, 1e6], dtype=torch.float64),
                    rtol=1e-12, atol=1e-12)
    timer.cancel()
    assert time.perf_counter() - started < 5.0


def test_repeated_failures_do_not_leak_python_objects():
    import gc
    import sys

    def fail(t, y):
        raise Boom()

    for _ in range(50):
        with pytest.raises(Boom):
            qode.odeint(fail, Y0, T)
    gc.collect()
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    objects_before = len(gc.get_objects())
    for _ in range(200):
        with pytest.raises(Boom):
            qode.odeint(fail, Y0, T)
    gc.collect()
    assert len(gc.get_objects()) - objects_before < 100
    del before


# -- Bad input around gradients: clear errors, or the gradients torch gives --

GRAD_METHODS = [("dopri5", {"first_step": 0.1}), ("rk4", {"step_size": 0.1})]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("method, options", GRAD_METHODS)
def test_complex_state_gradients_match_torchdiffeq(dtype, method, options):
    # Complex y0, parameter and output; t real.  torchdiffeq supports these
    # through plain backpropagation, so its gradients are the reference.
    torchdiffeq = pytest.importorskip("torchdiffeq")
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    grads = []
    for library in (qode, torchdiffeq):
        w = torch.tensor([0.3 + 0.2j, -0.1 + 0.5j], dtype=dtype, requires_grad=True)
        y0 = torch.tensor([1 + 1j, 0.5 - 0.2j], dtype=dtype, requires_grad=True)
        t = torch.tensor([0.0, 0.45, 1.0], dtype=real, requires_grad=True)
        out = library.odeint(lambda s, y: -w * y + 1j * torch.sin(s) * y, y0, t,
                             method=method, options=options)
        loss = (out.abs() ** 2).sum() + out.real.sum()
        grads.append(torch.autograd.grad(loss, [y0, t, w]))
    tol = 1e-9 if dtype == torch.complex128 else 1e-4
    for ours, theirs in zip(*grads):
        assert ours.dtype == theirs.dtype
        assert float((ours - theirs).abs().max() / theirs.abs().max()) < tol


def test_integer_times_with_a_state_requiring_grad():
    # torch forbids integer tensors requiring grad; an integer t is rejected
    # before any solve, as in torchdiffeq, also when y0 requires grad.
    y0 = Y0.clone().requires_grad_()
    with pytest.raises(TypeError, match="floating point"):
        qode.odeint(decay, y0, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="float32, float64"):
        qode.odeint(decay, torch.tensor([1, 2]), T)


@pytest.mark.parametrize("method, options", GRAD_METHODS)
def test_parameters_on_another_device(method, options):
    # No GPU here: the meta device stands in for "not the CPU".  func itself
    # fails in torch with a device error, which reaches the caller unchanged.
    y0 = Y0.clone().requires_grad_()
    layer = torch.nn.Linear(2, 2).double().to("meta")
    with pytest.raises(RuntimeError, match="device"):
        qode.odeint(lambda s, y: layer(y), y0, T, method=method, options=options)
    weight = torch.ones(2, dtype=torch.float64, device="meta", requires_grad=True)
    with pytest.raises(RuntimeError, match="device"):
        qode.odeint(lambda s, y: weight * y, Y0, T, method=method, options=options)
    with pytest.raises(ValueError, match="CPU"):  # output moved to the parameters' device
        qode.odeint(lambda s, y: layer(y.to("meta")), y0, T, method=method, options=options)
    with pytest.raises(ValueError, match="meta"):
        qode.odeint(decay, y0, T.to("meta"), method=method, options=options)


@pytest.mark.parametrize("method, options", GRAD_METHODS)
def test_unused_parameter_on_another_device_gets_no_gradient(method, options):
    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rate = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
            self.spare = torch.nn.Linear(2, 2).to("meta")  # never called

        def forward(self, t, y):
            return -self.rate * y

    field = Field()
    qode.odeint(field, Y0, T, method=method, options=options).sum().backward()
    assert field.rate.grad is not None and field.spare.weight.grad is None


@pytest.mark.parametrize("method, options", GRAD_METHODS)
def test_func_independent_of_an_input_matches_torchdiffeq(method, options):
    # Unused module parameter: no gradient (None), as torch gives for a tensor
    # outside the graph.  Output independent of y, of t, of everything.
    torchdiffeq = pytest.importorskip("torchdiffeq")

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used = torch.nn.Parameter(torch.tensor([0.3, 0.4], dtype=torch.float64))
            self.unused = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, t, y):
            return self.used * 2.0  # depends on neither y nor t

    fields = {
        "parameter only": Field(),
        "t only": lambda s, y: torch.cos(s) * torch.ones_like(y),
        "y only": lambda s, y: -y,
        "nothing": lambda s, y: torch.ones(2, dtype=torch.float64),
    }
    for name, field in fields.items():
        grads = []
        for library in (qode, torchdiffeq):
            y0 = Y0.clone().requires_grad_()
            t = torch.tensor([0.0, 0.45, 1.0], dtype=torch.float64, requires_grad=True)
            inputs = [y0, t] + (list(field.parameters()) if name == "parameter only" else [])
            out = library.odeint(field, y0, t, method=method, options=options)
            grads.append(torch.autograd.grad((out ** 2).sum(), inputs, allow_unused=True))
            if isinstance(field, torch.nn.Module):
                field.zero_grad()
        for ours, theirs in zip(*grads):
            assert (ours is None) == (theirs is None), name
            if theirs is not None:
                assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12), name
        if name == "parameter only":
            assert grads[0][-1] is None  # `unused`
            out = qode.odeint(field, Y0, T, method=method, options=options)
            with pytest.raises(RuntimeError, match="not have been used"):
                torch.autograd.grad(out.sum(), [field.unused])


@pytest.mark.parametrize("method, options", GRAD_METHODS)
@pytest.mark.parametrize("how", ["closure", "module"])
def test_parameter_gradients_when_y0_needs_none(method, options, how):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    w = torch.tensor([0.3, 0.4], dtype=torch.float64, requires_grad=True)
    if how == "module":
        field = torch.nn.Linear(2, 2).double()
        params = list(field.parameters())
        func = lambda s, y: field(y) + torch.sin(s)
    else:
        params = [w]
        func = lambda s, y: -w * y + torch.sin(s)
    t = torch.tensor([0.0, 0.45, 1.0], dtype=torch.float64)
    grads = []
    for library in (qode, torchdiffeq):
        out = library.odeint(func if how == "closure" else _as_module(func, field), Y0, t,
                             method=method, options=options)
        assert out.requires_grad
        grads.append(torch.autograd.grad(out.sum(), params))
        with pytest.raises(RuntimeError, match="does not require grad"):
            torch.autograd.grad(library.odeint(func, Y0, t, method=method,
                                               options=options).sum(), [Y0])
    for ours, theirs in zip(*grads):
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def _as_module(func, inner):
    """func as an nn.Module owning `inner` (its parameters found directly)."""
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, t, y):
            return func(t, y)

    return Wrapped()


def test_captured_parameter_used_only_after_the_first_evaluation():
    """Captured tensors are found from func's first evaluation; one that func
    starts using later cannot get its gradient, so the backward pass says so
    instead of silently leaving it out."""
    w = torch.tensor([0.3, 0.4], dtype=torch.float64, requires_grad=True)
    func = lambda s, y: -y if s < 0.3 else -w * y
    y0 = Y0.clone().requires_grad_()
    out = qode.odeint(func, y0, T, method="rk4", options={"step_size": 0.1})
    with pytest.raises(RuntimeError, match="not used by its first evaluation"):
        torch.autograd.grad(out.sum(), [y0])
