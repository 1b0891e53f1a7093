"""Gradients through qode.odeint: the discrete adjoint in C.

Checked three ways: torch.autograd.gradcheck (finite differences), agreement
with backpropagation through torchdiffeq's solver, and simple closed forms.
"""
import pytest
import torch
import torchdiffeq

import qode
from problems import max_rel_error

ADAPTIVE = ["dopri5", "bosh3", "fehlberg2", "adaptive_heun", "dopri8", "tsit5"]
FIXED = ["euler", "midpoint", "heun2", "heun3", "rk4"]

# Huge tolerances with first_step = max_step make an adaptive solve take
# fixed steps, so the solve is a smooth function that finite differences can
# check (otherwise a perturbation may change the number of steps).
STEADY = dict(rtol=1e3, atol=1e3)


def steady_options(method):
    if method in FIXED:
        return {"step_size": 0.15}
    return {"first_step": 0.15, "max_step": 0.15}


@pytest.mark.parametrize("method", ADAPTIVE + FIXED)
def test_gradcheck_y0_t_and_captured_parameter(method):
    torch.manual_seed(0)
    a = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    y0 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64, requires_grad=True)

    def solve(y0, t, a):
        f = lambda s, y: torch.tanh(a @ y) + 0.3 * torch.sin(s) * y
        return qode.odeint(f, y0, t, method=method, options=steady_options(method), **STEADY)

    assert torch.autograd.gradcheck(solve, (y0, t, a), eps=1e-6, atol=1e-7, rtol=1e-5)


# Fixed grids: the grid is t itself, or t[0] + k * step_size up to t[-1]; the
# times enter through the step sizes, the stage times of a time-dependent
# field and the interpolation.  No output time sits on a grid node here (there
# the linear interpolant has a kink that finite differences cannot check).
FIXED_GRID_CASES = [(method, interp, grid, reverse, False)
                    for method in FIXED for interp in ("linear", "cubic")
                    for grid in ("t", "step_size") for reverse in (False, True)]
FIXED_GRID_CASES += [(method, "cubic", "step_size", False, True) for method in FIXED]


@pytest.mark.parametrize("method, interp, grid, reverse, perturb", FIXED_GRID_CASES)
def test_gradcheck_fixed_grid_times(method, interp, grid, reverse, perturb):
    torch.manual_seed(5)
    a = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    y0 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    times = [0.0, 0.37, 1.0]  # 0.37 and 1 - 0.37 are off the step_size grid's nodes
    t = torch.tensor(times[::-1] if reverse else times, dtype=torch.float64, requires_grad=True)
    options = {"interp": interp, "perturb": perturb}
    if grid == "step_size":
        options["step_size"] = 0.15

    def solve(y0, t, a):
        f = lambda s, y: torch.tanh(a @ y) + torch.sin(3 * s) * y.flip(0)
        return qode.odeint(f, y0, t, method=method, options=options)

    assert torch.autograd.gradcheck(solve, (y0, t, a), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_gradcheck_reverse_time(method):
    y0 = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.7, -0.2], dtype=torch.float64, requires_grad=True)

    def solve(y0, w):
        f = lambda s, y: torch.sin(y) * w + s
        t = torch.tensor([1.0, 0.2, -0.5], dtype=torch.float64)
        return qode.odeint(f, y0, t, method=method, options=steady_options(method), **STEADY)

    assert torch.autograd.gradcheck(solve, (y0, w), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_tuple_state_and_module_parameters():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    net = net.double()

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, t, state):
            x, v = state
            return v, self.net(x) - 0.1 * v

    field = Field()
    x0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    v0 = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    params = list(field.parameters())

    def solve(x0, v0, *ps):
        x, v = qode.odeint(field, (x0, v0), t, options=steady_options("dopri5"), **STEADY)
        return x, v

    assert torch.autograd.gradcheck(solve, (x0, v0, *params), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("method", ADAPTIVE[:-1])
def test_gradients_match_torchdiffeq_backprop(method):
    # torchdiffeq also differentiates through its initial step-size heuristic
    # (a dependence of the first dt on y0 and the parameters); qode treats every
    # step size as a constant.  With first_step given, both agree to rounding.
    torch.manual_seed(2)
    a = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    f = lambda t, y: torch.tanh(a @ y) * torch.cos(t)
    y0 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.5, 1.3, 2.0], dtype=torch.float64, requires_grad=True)
    grads = []
    for library in (qode, torchdiffeq):
        out = library.odeint(f, y0, t, method=method, options={"first_step": 0.01})
        grads.append(torch.autograd.grad((out ** 2).sum(), [y0, t, a]))
    for ours, theirs in zip(*grads):
        assert max_rel_error(ours, theirs) < 1e-10


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("interp", ["linear", "cubic"])
def test_fixed_grid_gradients_match_torchdiffeq(method, interp):
    torch.manual_seed(3)
    a = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    f = lambda t, y: torch.tanh(a @ y) * torch.cos(t)
    y0 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.55, 1.3, 2.0], dtype=torch.float64)
    grads = []
    for library in (qode, torchdiffeq):
        out = library.odeint(f, y0, t, method=method,
                             options={"step_size": 0.1, "interp": interp})
        grads.append(torch.autograd.grad((out ** 2).sum(), [y0, a]))
    for ours, theirs in zip(*grads):
        assert max_rel_error(ours, theirs) < 1e-12


def _nonuniform_grid(func, y0, t):
    """A grid_constructor whose nodes depend on t[0] and t[-1] differentiably."""
    u = torch.linspace(0, 1, 8, dtype=t.dtype)[:-1] ** 1.5
    return torch.cat([t[0] + (t[-1] - t[0]) * u, t[-1:]])  # ends exactly at t[-1]


def _detached_grid(func, y0, t):
    """A grid_constructor that cuts the grid's dependence on t."""
    t = t.detach()
    return torch.linspace(float(t[0]), float(t[-1]), 9, dtype=t.dtype)


FORCED_GRIDS = {"t": {}, "step_size": {"step_size": 0.13},
                "on_nodes": {"step_size": 0.25},  # output times 0.5, 1.0 fall on nodes
                "constructor": {"grid_constructor": _nonuniform_grid},
                "detached_constructor": {"grid_constructor": _detached_grid}}


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("interp", ["linear", "cubic"])
@pytest.mark.parametrize("grid", list(FORCED_GRIDS))
@pytest.mark.parametrize("reverse", [False, True])
def test_fixed_grid_time_gradients_match_torchdiffeq(method, interp, grid, reverse):
    # y' = -y + sin(3t) + a coupling: f depends on t explicitly, so the stage
    # times carry gradient besides the step sizes and the interpolation.
    torch.manual_seed(6)
    a = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    f = lambda s, y: -y + torch.sin(3 * s) + 0.5 * torch.tanh(a @ y)
    y0 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    times = [0.0, 0.5, 0.7, 1.0] if grid == "on_nodes" else [0.0, 0.55, 1.3, 2.0]
    t = torch.tensor([-x for x in times] if reverse else times, dtype=torch.float64,
                     requires_grad=True)
    options = dict(FORCED_GRIDS[grid], interp=interp, perturb=method == "rk4")
    grads = []
    for library in (qode, torchdiffeq):
        out = library.odeint(f, y0, t, method=method, options=options)
        weights = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
        grads.append(torch.autograd.grad((weights * out ** 2).sum(), [y0, t, a]))
    for ours, theirs in zip(*grads):
        assert max_rel_error(ours, theirs) < 1e-10
    assert grads[0][1].abs().max() > 0.1


def test_fixed_grid_time_gradient_closed_form():
    # One Euler step of y' = c * y from t0 to t1: y1 = (1 + c (t1 - t0)) y0.
    c = -0.7
    y0 = torch.tensor([2.0], dtype=torch.float64)
    t = torch.tensor([0.25, 1.0], dtype=torch.float64, requires_grad=True)
    out = qode.odeint(lambda s, y: c * y, y0, t, method="euler")
    out[-1].sum().backward()
    assert torch.allclose(t.grad, torch.tensor([-c * 2.0, c * 2.0], dtype=torch.float64),
                          rtol=0, atol=1e-15)


def test_grid_constructor_is_called_again_for_time_gradients():
    calls = []

    def grid(func, y0, t):
        calls.append(t.requires_grad)
        return _nonuniform_grid(func, y0, t)

    y0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
    t = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64, requires_grad=True)

    def solve(t):
        return qode.odeint(lambda s, y: -y * torch.cos(s), y0, t, method="midpoint",
                           options={"grid_constructor": grid, "interp": "cubic"})

    assert torch.autograd.gradcheck(solve, (t,), eps=1e-6, atol=1e-7, rtol=1e-5)
    assert True in calls  # the backward pass differentiated the grid through autograd


def test_gradient_of_linear_ode_is_the_matrix_exponential():
    # y(T) = exp(A T) y0, so dL/dy0 for L = sum(y(T)) is exp(A T)^T 1.
    a = torch.tensor([[-0.5, 1.0], [-1.0, -0.5]], dtype=torch.float64)
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    y = qode.odeint(lambda s, y: a @ y, y0, t, rtol=1e-10, atol=1e-12)
    y[-1].sum().backward()
    expected = torch.linalg.matrix_exp(a * 2.0).T @ torch.ones(2, dtype=torch.float64)
    assert max_rel_error(y0.grad, expected) < 1e-8


def test_float32_gradients_are_close_to_float64():
    torch.manual_seed(4)
    w = torch.randn(4, 4, dtype=torch.float64)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        wd = w.to(dtype).requires_grad_()
        y0 = torch.ones(4, dtype=dtype, requires_grad=True)
        out = qode.odeint(lambda t, y: torch.tanh(wd @ y), y0, torch.tensor([0.0, 1.0]),
                          rtol=1e-6, atol=1e-8)
        out[-1].pow(2).sum().backward()
        grads[dtype] = (y0.grad.double(), wd.grad.double())
        assert y0.grad.dtype == dtype
    for g32, g64 in zip(grads[torch.float32], grads[torch.float64]):
        assert max_rel_error(g32, g64) < 1e-4


def test_func_independent_of_inputs_gives_zero_gradient():
    y0 = torch.ones(2, dtype=torch.float64, requires_grad=True)
    out = qode.odeint(lambda t, y: torch.ones(2, dtype=torch.float64), y0,
                      torch.tensor([0.0, 1.0], dtype=torch.float64))
    out[-1].sum().backward()
    # y(T) = y0 + T: the gradient is 1 up to the rounding of the interpolation weights.
    assert torch.allclose(y0.grad, torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-14)


def test_exception_in_backward_propagates():
    calls = {"n": 0}
    w = torch.ones(1, dtype=torch.float64, requires_grad=True)

    def f(t, y):
        if torch.is_grad_enabled() and y.requires_grad:
            calls["n"] += 1
            if calls["n"] == 3:
                raise ZeroDivisionError("during backward")
        return -w * y

    out = qode.odeint(f, torch.ones(1, dtype=torch.float64), torch.tensor([0.0, 1.0]))
    with pytest.raises(ZeroDivisionError, match="during backward"):
        out.sum().backward()


@pytest.mark.parametrize("reverse_time", [False, True])
def test_odeint_event_gradients_match_torchdiffeq(reverse_time):
    # The event time's gradient comes from the implicit function theorem and
    # the final state's from the discrete adjoint of the event solve.
    w = torch.tensor([1.3, -0.4], dtype=torch.float64, requires_grad=True)
    f = lambda t, y: -w * y + torch.sin(t)
    level = 1.5 if reverse_time else 0.4
    event = lambda t, y: y[0] - level
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    t0 = torch.tensor(0.0, dtype=torch.float64)
    grads = []
    for library in (qode, torchdiffeq):
        t_event, solution = library.odeint_event(f, y0, t0, event_fn=event,
                                                 reverse_time=reverse_time, atol=1e-10,
                                                 rtol=1e-9, options={"first_step": 0.01})
        loss = 2 * t_event + solution[-1].pow(2).sum()
        grads.append(torch.autograd.grad(loss, [y0, w]))
    for ours, theirs in zip(*grads):
        assert max_rel_error(ours, theirs) < 1e-8


def test_closure_captured_tensor_alone_gets_gradients():
    # Neither y0 nor t requires grad: the first evaluation finds the captured
    # tensor in func's graph and the solve restarts with a backward pass.
    w = torch.tensor([[0.3, -1.0], [1.0, 0.2]], dtype=torch.float64, requires_grad=True)
    derived = w * 2.0  # a captured non-leaf: gradients must flow through it to w
    y0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    grads = []
    for library in (qode, torchdiffeq):
        out = library.odeint(lambda s, y: torch.tanh(derived @ y), y0, t,
                             options={"first_step": 0.05})
        grads.append(torch.autograd.grad(out[-1].sum(), [w]))
    assert max_rel_error(grads[0][0], grads[1][0]) < 1e-10
