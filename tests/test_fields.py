"""Native vector fields (qode.fields): the C MLP against torch, its C VJP, and
whole solves (forward, discrete adjoint, continuous adjoint) that run in C,
against torchdiffeq driving the equivalent torch module."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch
import torchdiffeq
from torch import nn

import qode
import qode.adjoint
from qode.fields import MLP

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus,
               "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def reference(field: MLP) -> nn.Module:
    """The same network in plain torch, sharing the field's parameters."""
    layers = []
    for i, linear in enumerate(field.layers):
        layers.append(linear)
        if i + 1 < len(field.layers):
            layers.append(ACTIVATIONS[field.activation]())
    net = nn.Sequential(*layers)

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, t, y):
            if field.time_input:
                t_column = t.to(y.dtype).expand(*y.shape[:-1], 1)
                y = torch.cat([y, t_column], dim=-1)
            return self.net(y)

    return Reference()


def make_field(widths=(3, 16, 16, 3), activation="tanh", time_input=False, bias=True,
               dtype=torch.float64, seed=0) -> MLP:
    torch.manual_seed(seed)
    return MLP(list(widths), activation, time_input=time_input, bias=bias, dtype=dtype)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("time_input", [False, True])
def test_forward_matches_torch(activation, dtype, time_input):
    field = make_field(activation=activation, time_input=time_input, dtype=dtype)
    y = 3 * torch.randn(5, 7, 3, dtype=dtype)  # large enough to reach softplus' threshold
    t = torch.tensor(0.7, dtype=dtype)
    with torch.no_grad():
        expected = reference(field)(t, y)
        got = field(t, y)
    tol = 1e-13 if dtype == torch.float64 else 2e-6
    assert got.shape == y.shape
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("time_input", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_vjp_gradcheck(activation, time_input, bias):
    field = make_field(widths=(2, 5, 4, 2), activation=activation, time_input=time_input,
                       bias=bias)
    y = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    params = list(field.parameters())

    def f(t_, y_, *ps):
        return field(t_, y_)

    assert torch.autograd.gradcheck(f, (t, y, *params), eps=1e-6, atol=1e-7)


def test_vjp_matches_torch_autograd():
    field = make_field(time_input=True)
    ref = reference(field)
    y = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(6, 3, dtype=torch.float64)
    inputs = [t, y] + list(field.parameters())
    got = torch.autograd.grad(field(t, y), inputs, v)
    expected = torch.autograd.grad(ref(t, y), inputs, v)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-13)


def test_linear_field_and_one_dimensional_state():
    A = torch.randn(4, 4, dtype=torch.float64)
    field = MLP.linear(A)
    y = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(field(0.0, y), A @ y, rtol=1e-14, atol=1e-14)
    # y' = A y solved natively against the matrix exponential
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    out = qode.odeint(field, y, t, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out[-1], torch.linalg.matrix_exp(0.5 * A) @ y, rtol=1e-8,
                               atol=1e-9)


def test_from_sequential_shares_parameters():
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    field = MLP.from_sequential(net)
    assert [p.data_ptr() for p in field.parameters()] == [p.data_ptr() for p in net.parameters()]
    y = torch.randn(4, 2)
    with torch.no_grad():
        torch.testing.assert_close(field(0.0, y), net(y), rtol=2e-6, atol=2e-6)
        net[0].weight.mul_(2.0)  # training the sequential trains the field
        torch.testing.assert_close(field(0.0, y), net(y), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("bad, message", [
    (lambda: MLP([2, 8, 3]), "maps the state to itself"),
    (lambda: MLP([2]), "widths"),
    (lambda: MLP([2, 2], "gelu"), "activation"),
    (lambda: MLP([2, 2], dtype=torch.float16), "dtype"),
    (lambda: MLP.from_sequential(nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 2))),
     "no native implementation"),
    (lambda: MLP.from_sequential(nn.Sequential(nn.Linear(2, 4), nn.Tanh())), "Linear"),
    (lambda: MLP.linear(torch.randn(2, 3)), "square"),
])
def test_construction_errors(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        bad()


def test_state_errors():
    field = make_field()
    with pytest.raises(ValueError, match="last dimension"):
        field(0.0, torch.randn(4, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32"):
        field(0.0, torch.randn(4, 3, dtype=torch.float32))
    with pytest.raises(ValueError, match="last dimension"):
        qode.odeint(field, torch.randn(4, 5, dtype=torch.float64),
                    torch.tensor([0.0, 1.0], dtype=torch.float64))


class CountingField(MLP):
    """An MLP that counts how often Python evaluates it."""
    calls = 0

    def forward(self, t, y):
        CountingField.calls += 1
        return super().forward(t, y)


def counting_field(**kwargs) -> CountingField:
    torch.manual_seed(1)
    return CountingField([3, 16, 3], "tanh", dtype=torch.float64, **kwargs)


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "rk4"])
def test_native_solve_matches_torchdiffeq(method):
    field = counting_field()
    ref = reference(field)
    y0 = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 1.5, 5, dtype=torch.float64)
    options = {"step_size": 0.05} if method == "rk4" else {"first_step": 0.05}
    CountingField.calls = 0
    got = qode.odeint(field, y0, t, method=method, options=options, rtol=1e-8, atol=1e-9)
    expected = torchdiffeq.odeint(ref, y0, t, method=method, options=options, rtol=1e-8,
                                  atol=1e-9)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-11)
    inputs = [y0] + list(field.parameters())
    g_got = torch.autograd.grad(got.square().sum(), inputs)
    assert CountingField.calls == 0, "the native solve and its backward must not call Python"
    g_expected = torch.autograd.grad(expected.square().sum(), inputs)
    for a, b in zip(g_got, g_expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_native_solve_gradcheck(method):
    field = make_field(widths=(2, 4, 2), time_input=True)
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    adaptive = method == "dopri5"
    t = torch.tensor([0.0, 0.4, 0.9], dtype=torch.float64, requires_grad=adaptive)
    options = {"first_step": 0.1} if adaptive else {"step_size": 0.1}
    params = list(field.parameters())

    def solve(y0_, t_, *ps):
        return qode.odeint(field, y0_, t_, method=method, options=options, rtol=1e-9,
                           atol=1e-10)

    assert torch.autograd.gradcheck(solve, (y0, t, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("seminorm", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_adjoint_matches_torchdiffeq(seminorm, dtype):
    torch.manual_seed(2)
    field = CountingField([3, 16, 3], "tanh", time_input=True, dtype=dtype)
    y0 = torch.randn(6, 3, dtype=dtype, requires_grad=True)
    t = torch.linspace(0, 1, 4, dtype=dtype, requires_grad=True)
    options = {"norm": "seminorm"} if seminorm else None
    inputs = [y0, t] + list(field.parameters())
    CountingField.calls = 0
    got = qode.odeint_adjoint(field, y0, t, rtol=1e-6, atol=1e-7, adjoint_options=options)
    g_got = torch.autograd.grad(got.sin().sum(), inputs)
    # the t-gradients evaluate f once per output time; nothing else reaches Python
    assert CountingField.calls == len(t) - 1
    expected = torchdiffeq.odeint_adjoint(field, y0, t, rtol=1e-6, atol=1e-7,
                                          adjoint_options=options)
    g_expected = torch.autograd.grad(expected.sin().sum(), inputs)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    for a, b in zip(g_got, g_expected):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_native_adjoint_with_partial_params_falls_back_to_python():
    field = counting_field()
    y0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    first = [field.layers[0].weight]
    out = qode.odeint_adjoint(field, y0, t, adjoint_params=first)
    CountingField.calls = 0
    (grad_w,) = torch.autograd.grad(out.sum(), first)
    assert CountingField.calls > 0  # the Python augmented system ran
    expected = torchdiffeq.odeint_adjoint(field, y0, t, adjoint_params=first)
    (grad_expected,) = torch.autograd.grad(expected.sum(), first)
    torch.testing.assert_close(grad_w, grad_expected, rtol=1e-9, atol=1e-10)


def test_concurrent_native_solves_agree():
    """The GIL is released: solves in several threads run at once and stay correct."""
    field = make_field(widths=(3, 32, 3))
    y0 = torch.randn(64, 3, dtype=torch.float64)
    t = torch.linspace(0, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        expected = qode.odeint(field, y0, t, rtol=1e-9, atol=1e-10)
    results = [None] * 4

    def work(i):
        with torch.no_grad():
            results[i] = qode.odeint(field, y0, t, rtol=1e-9, atol=1e-10)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert torch.equal(result, expected)


@pytest.mark.skipif(os.name != "posix", reason="needs SIGINT delivery")
def test_native_solve_can_be_interrupted():
    field = make_field(widths=(3, 64, 3))
    y0 = torch.randn(256, 3, dtype=torch.float64)
    t = torch.tensor([0.0, 1e6], dtype=torch.float64)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt), torch.no_grad():
            qode.odeint(field, y0, t, rtol=1e-12, atol=1e-12)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5.0
