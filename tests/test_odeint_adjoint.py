"""qode.odeint_adjoint against torchdiffeq.odeint_adjoint and qode's own backprop."""
import pytest
import torch
import torchdiffeq

import qode
from problems import max_rel_error


class Field(torch.nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(),
                                       torch.nn.Linear(16, 2)).double()

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


def gradients(library, field, y0, t, **kwargs):
    out = library.odeint_adjoint(field, y0, t, **kwargs)
    return torch.autograd.grad((out ** 2).sum(), [y0, t] + list(field.parameters()))


@pytest.mark.parametrize("kwargs", [
    {},
    {"adjoint_options": {"norm": "seminorm"}},
    {"method": "bosh3", "rtol": 1e-5, "atol": 1e-7},
    {"method": "rk4", "options": {"step_size": 0.05}},
    {"adjoint_rtol": 1e-9, "adjoint_atol": 1e-11},
], ids=["default", "seminorm", "bosh3", "rk4", "adjoint_tolerances"])
def test_matches_torchdiffeq_odeint_adjoint(kwargs):
    field = Field()
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64,
                     requires_grad=kwargs.get("method") != "rk4")
    if not t.requires_grad:
        ours = gradients(qode, field, y0, t.detach().requires_grad_(), **kwargs)
        theirs = gradients(torchdiffeq, field, y0, t.detach().requires_grad_(), **kwargs)
    else:
        ours = gradients(qode, field, y0, t, **kwargs)
        theirs = gradients(torchdiffeq, field, y0, t, **kwargs)
    for a, b in zip(ours, theirs):
        assert max_rel_error(a, b) < 1e-9


def test_adjoint_agrees_with_backprop_at_tight_tolerances():
    field = Field(1)
    y0 = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.7, 1.5], dtype=torch.float64)
    grads = []
    for solve in (qode.odeint, qode.odeint_adjoint):
        out = solve(field, y0, t, rtol=1e-11, atol=1e-12)
        grads.append(torch.autograd.grad(out[-1].pow(2).sum(), [y0] + list(field.parameters())))
    for a, b in zip(*grads):
        assert max_rel_error(a, b) < 1e-7


def test_tuple_state_and_explicit_params():
    w = torch.tensor([0.8, -0.3], dtype=torch.float64, requires_grad=True)

    def f(t, state):
        x, v = state
        return v, -w * x

    x0 = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    v0 = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    grads = []
    for library in (qode, torchdiffeq):
        x, v = library.odeint_adjoint(f, (x0, v0), t, adjoint_params=(w,))
        grads.append(torch.autograd.grad(x.sum() + v.pow(2).sum(), [x0, v0, w]))
    for a, b in zip(*grads):
        assert max_rel_error(a, b) < 1e-9


def test_event_mode_matches_torchdiffeq():
    field = Field(2)
    y0 = torch.tensor([0.5, 0.2], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 5.0], dtype=torch.float64)
    grads = []
    for library in (qode, torchdiffeq):
        t_event, solution = library.odeint_adjoint(field, y0, t, event_fn=lambda s, y: s - 0.37)
        grads.append(torch.autograd.grad(solution[-1].sum(), [y0] + list(field.parameters())))
        assert float(t_event.detach()) == pytest.approx(0.37, abs=1e-8)
    for a, b in zip(*grads):
        assert max_rel_error(a, b) < 1e-8


def test_plain_function_needs_adjoint_params():
    with pytest.raises(ValueError, match="adjoint_params"):
        qode.odeint_adjoint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]))


def test_adjoint_callbacks_run_on_the_backward_solve():
    field = Field(3)
    calls = []
    field.callback_step_adjoint = lambda t0, y0, dt: calls.append(float(t0))
    y0 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    out = qode.odeint_adjoint(field, y0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert calls == []
    out.sum().backward()
    assert len(calls) > 0 and max(calls) <= 1.0


ADAPTIVE = ["dopri5", "tsit5", "bosh3", "fehlberg2", "adaptive_heun", "dopri8"]
FIXED_ORDER = {"euler": 1, "midpoint": 2, "heun2": 2, "heun3": 3, "rk4": 4}


LOW_ORDER_ADAPTIVE = ("adaptive_heun", "fehlberg2")  # order 2: tight tolerances cost minutes


def method_kwargs(method):
    if method in LOW_ORDER_ADAPTIVE:
        return {"method": method, "rtol": 1e-8, "atol": 1e-10}
    if method in ADAPTIVE:
        return {"method": method, "rtol": 1e-10, "atol": 1e-12}
    return {"method": method, "options": {"step_size": 0.01}}


@pytest.mark.parametrize("method", ADAPTIVE + sorted(FIXED_ORDER))
def test_every_method_matches_torchdiffeq(method):
    field = Field(2)
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.3, 0.6], dtype=torch.float64, requires_grad=True)
    kwargs = method_kwargs(method)
    ours = gradients(qode, field, y0, t, **kwargs)
    if method == "tsit5":  # not in torchdiffeq 0.2.5: against qode's own backprop instead
        out = qode.odeint(field, y0, t, **kwargs)
        theirs = torch.autograd.grad((out ** 2).sum(), [y0, t] + list(field.parameters()))
        tol = 1e-7
    else:
        theirs = gradients(torchdiffeq, field, y0, t, **kwargs)
        tol = 1e-9
    for a, b in zip(ours, theirs):
        assert max_rel_error(a, b) < tol


@pytest.mark.parametrize("method", ADAPTIVE + sorted(FIXED_ORDER))
def test_every_method_gradcheck(method):
    """The continuous adjoint approximates the derivative of the discrete solve:
    to the tolerance for adaptive methods, to O(h^order) on a fixed grid."""
    torch.manual_seed(3)
    linear = torch.nn.Linear(2, 2).double()

    class Small(torch.nn.Module):  # few parameters: gradcheck stays cheap
        def __init__(self):
            super().__init__()
            self.linear = linear

        def forward(self, t, y):
            return torch.tanh(self.linear(y)) * torch.cos(t)

    field = Small()
    y0 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    # On a fixed grid, moving t[0] moves every grid point off the output times,
    # so the discrete solve's t-derivative includes interpolation terms that
    # the continuous adjoint (torchdiffeq's too) does not have: t is checked
    # for the adaptive methods only.
    t = torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64,
                     requires_grad=method in ADAPTIVE)
    params = list(field.parameters())
    kwargs = method_kwargs(method)
    if method in FIXED_ORDER:
        # grid points on the output times: no interpolation error in the outputs
        kwargs["options"] = {"step_size": 0.025 if FIXED_ORDER[method] > 1 else 0.001}
    else:  # outputs on steps: the coarse dense output of bosh3/dopri8 stays out of it
        kwargs["options"] = {"step_t": t.detach()}
    # Adaptive: the step sizes of the perturbed solves change with the input,
    # so the finite differences themselves are only good to ~the tolerance.
    if method in ADAPTIVE:
        atol = 1e-4 if method in LOW_ORDER_ADAPTIVE else 1e-6
    else:
        atol = 2e-3 if FIXED_ORDER[method] == 1 else max(10.0 * 0.025 ** FIXED_ORDER[method], 1e-5)

    def solve(y0_, t_, *ps):
        return qode.odeint_adjoint(field, y0_, t_, **kwargs)

    assert torch.autograd.gradcheck(solve, (y0, t, *params), eps=1e-6, atol=atol, rtol=1e-4)


def test_float32_matches_torchdiffeq():
    field = Field(4).float()
    y0 = torch.randn(5, 2, requires_grad=True)
    t = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    ours = gradients(qode, field, y0, t, rtol=1e-5, atol=1e-6)
    theirs = gradients(torchdiffeq, field, y0, t, rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, theirs):
        assert a.dtype == torch.float32
        assert max_rel_error(a, b) < 1e-3
