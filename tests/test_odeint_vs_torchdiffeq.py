"""qode.odeint against torchdiffeq 0.2.5: same steps (NFE), same results.

torchdiffeq is the reference: it takes the same step sequence, so the number
of function evaluations must agree exactly and the outputs to rounding.
"""
import math

import pytest
import torch
import torchdiffeq

import qode
from problems import PROBLEMS, Counting, max_rel_error

TORCHDIFFEQ_ADAPTIVE = ["dopri5", "bosh3", "fehlberg2", "adaptive_heun", "dopri8"]
FIXED = ["euler", "midpoint", "heun2", "heun3", "rk4"]


def run_both(problem, **kwargs):
    ours, theirs = Counting(problem.f), Counting(problem.f)
    a = qode.odeint(ours, problem.y0, problem.t, **kwargs)
    b = torchdiffeq.odeint(theirs, problem.y0, problem.t, **kwargs)
    return a, b, ours.nfe, theirs.nfe


@pytest.mark.parametrize("method", TORCHDIFFEQ_ADAPTIVE)
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.name)
def test_adaptive_matches_torchdiffeq(method, problem):
    rtol, atol = (1e-6, 1e-8) if method != "adaptive_heun" else (1e-4, 1e-6)
    a, b, nfe_a, nfe_b = run_both(problem, rtol=rtol, atol=atol, method=method)
    assert nfe_a == nfe_b
    assert a.dtype == b.dtype and a.shape == b.shape
    assert max_rel_error(a, b) < 1e-10


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.name)
def test_default_call_matches_torchdiffeq(problem):
    a, b, nfe_a, nfe_b = run_both(problem)
    assert nfe_a == nfe_b
    assert max_rel_error(a, b) < 1e-10


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("interp", ["linear", "cubic"])
def test_fixed_grid_matches_torchdiffeq(method, interp):
    problem = PROBLEMS[1]
    for options in ({"step_size": 0.07, "interp": interp},
                    {"step_size": 0.1, "interp": interp, "perturb": True}):
        a, b, nfe_a, nfe_b = run_both(problem, method=method, options=options)
        assert nfe_a == nfe_b
        assert max_rel_error(a, b) < 1e-12


@pytest.mark.parametrize("method", FIXED)
def test_fixed_grid_on_t_and_grid_constructor(method):
    problem = PROBLEMS[0]
    a, b, nfe_a, nfe_b = run_both(problem, method=method)  # steps on t itself
    assert nfe_a == nfe_b and max_rel_error(a, b) < 1e-12

    def grid(func, y0, t):
        return torch.linspace(float(t[0]), float(t[-1]), 37, dtype=torch.float64)

    a, b, nfe_a, nfe_b = run_both(problem, method=method, options={"grid_constructor": grid})
    assert nfe_a == nfe_b and max_rel_error(a, b) < 1e-12


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "rk4"])
def test_reverse_time(method):
    problem = PROBLEMS[1]
    t = torch.flip(problem.t, [0])
    options = {"step_size": 0.05} if method == "rk4" else None
    ours, theirs = Counting(problem.f), Counting(problem.f)
    a = qode.odeint(ours, problem.y0, t, method=method, options=options)
    b = torchdiffeq.odeint(theirs, problem.y0, t, method=method, options=options)
    assert ours.nfe == theirs.nfe
    assert max_rel_error(a, b) < 1e-10


def test_reverse_solve_returns_to_start():
    problem = PROBLEMS[0]
    forward = qode.odeint(problem.f, problem.y0, problem.t, rtol=1e-10, atol=1e-12)
    back = qode.odeint(problem.f, forward[-1], torch.flip(problem.t, [0]), rtol=1e-10,
                       atol=1e-12)
    assert max_rel_error(back[-1], problem.y0) < 1e-8


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if p.exact is not None],
                         ids=lambda p: p.name)
@pytest.mark.parametrize("method", TORCHDIFFEQ_ADAPTIVE + ["tsit5"])
def test_adaptive_accuracy_against_exact_solution(problem, method):
    rtol = 1e-9 if method not in ("adaptive_heun", "fehlberg2") else 1e-6
    y = qode.odeint(problem.f, problem.y0, problem.t, rtol=rtol, atol=rtol * 1e-2, method=method)
    # Global error accumulates over steps; the bound only has to catch a wrong method.
    assert max_rel_error(y, problem.exact(problem.t).reshape(y.shape)) < 2000 * rtol


def test_tsit5_converges_at_fifth_order():
    # Global error of fixed steps (first_step = max_step, huge tolerances)
    # must shrink by about 2**5 when the step halves.
    f = lambda t, y: -y + torch.sin(t)
    y0 = torch.tensor([1.0], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    exact = 1.5 * torch.exp(-t[-1]) + 0.5 * (torch.sin(t[-1]) - torch.cos(t[-1]))
    errors = []
    for h in (0.1, 0.05, 0.025):
        y = qode.odeint(f, y0, t, method="tsit5", rtol=1e3, atol=1e3,
                        options={"first_step": h, "max_step": h})
        errors.append(abs(float(y[-1, 0] - exact)))
    for coarse, fine in zip(errors, errors[1:]):
        # Pre-asymptotic ratios approach 2**5 from above (dopri5 does the same).
        assert 2 ** 4.5 < coarse / fine < 2 ** 6.1


def test_float32_state():
    problem = PROBLEMS[2]
    y0 = problem.y0.float()
    a = qode.odeint(problem.f, y0, problem.t, rtol=1e-5, atol=1e-6)
    b = torchdiffeq.odeint(problem.f, y0, problem.t, rtol=1e-5, atol=1e-6)
    assert a.dtype == torch.float32
    assert max_rel_error(a.double(), b.double()) < 1e-4


def test_float32_func_sees_float32_time():
    seen = []

    def f(t, y):
        seen.append(t.dtype)
        return -y

    qode.odeint(f, torch.ones(3), torch.tensor([0.0, 1.0]))
    assert set(seen) == {torch.float32}


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_complex_state(dtype):
    omega = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    f = lambda t, y: 1j * omega.to(y.dtype) * y
    y0 = torch.ones(3, dtype=dtype)
    t = torch.linspace(0, 3, 4, dtype=torch.float64)
    ours, theirs = Counting(f), Counting(f)
    a = qode.odeint(ours, y0, t, rtol=1e-8, atol=1e-10)
    b = torchdiffeq.odeint(theirs, y0, t, rtol=1e-8, atol=1e-10)
    assert a.dtype == dtype
    exact = torch.exp(1j * omega * t.reshape(-1, 1))
    tol = 1e-6 if dtype == torch.complex128 else 1e-4
    assert float((a - exact).abs().max()) < tol
    if dtype == torch.complex128:
        assert ours.nfe == theirs.nfe
        assert max_rel_error(a, b) < 1e-10


def test_tuple_state_matches_torchdiffeq():
    def f(t, state):
        x, v = state
        return v, -x - 0.1 * v

    y0 = (torch.tensor([1.0, 0.5], dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    t = torch.linspace(0, 4, 5, dtype=torch.float64)
    ours, theirs = Counting(f), Counting(f)
    a = qode.odeint(ours, y0, t, rtol=(1e-6, 1e-8), atol=1e-9)
    b = torchdiffeq.odeint(theirs, y0, t, rtol=(1e-6, 1e-8), atol=1e-9)
    assert isinstance(a, tuple) and len(a) == 2
    assert ours.nfe == theirs.nfe
    for x, y in zip(a, b):
        assert x.shape == y.shape and max_rel_error(x, y) < 1e-10


def test_per_element_tolerances_and_user_norm():
    problem = PROBLEMS[3]
    rtol = torch.tensor([[1e-6, 1e-7, 1e-8], [1e-5, 1e-6, 1e-7]], dtype=torch.float64)
    norm = lambda x: x.abs().max()
    for options in (None, {"norm": norm}):
        a, b, nfe_a, nfe_b = run_both(problem, rtol=rtol, atol=1e-9, options=options)
        assert nfe_a == nfe_b
        assert max_rel_error(a, b) < 1e-10


@pytest.mark.parametrize("options", [
    {"first_step": 0.01},
    {"max_step": 0.05},
    {"min_step": 0.2},
    {"safety": 0.8, "ifactor": 5.0, "dfactor": 0.3},
    {"step_t": torch.tensor([0.25, 1.7, 3.3], dtype=torch.float64)},
    {"jump_t": torch.tensor([0.5, 2.2], dtype=torch.float64)},
    {"step_t": torch.tensor([1.1]), "jump_t": torch.tensor([0.7, 2.9])},
], ids=lambda o: "+".join(o))
def test_step_options_match_torchdiffeq(options):
    problem = PROBLEMS[1]
    a, b, nfe_a, nfe_b = run_both(problem, rtol=1e-7, atol=1e-9, options=options)
    assert nfe_a == nfe_b
    assert max_rel_error(a, b) < 1e-10


def test_jump_t_handles_a_discontinuous_field():
    # f jumps at t = 1: with jump_t the solver steps onto it exactly.
    f = lambda t, y: torch.where(t < 1.0, torch.ones_like(y), -torch.ones_like(y))
    y0 = torch.zeros(1, dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    y = qode.odeint(f, y0, t, options={"jump_t": torch.tensor([1.0])})
    assert abs(float(y[-1, 0])) < 1e-9


class RecordingField:
    """A field with torchdiffeq's step callbacks, recording their arguments."""

    def __init__(self, f):
        self.f = f
        self.calls = []

    def __call__(self, t, y):
        return self.f(t, y)

    def callback_step(self, t0, y0, dt):
        self.calls.append(("step", float(t0), float(dt), y0.clone()))

    def callback_accept_step(self, t0, y0, dt):
        self.calls.append(("accept", float(t0), float(dt), y0.clone()))

    def callback_reject_step(self, t0, y0, dt):
        self.calls.append(("reject", float(t0), float(dt), y0.clone()))


@pytest.mark.parametrize("reverse", [False, True])
def test_step_callbacks_match_torchdiffeq(reverse):
    problem = PROBLEMS[2]
    t = torch.flip(problem.t, [0]) if reverse else problem.t
    ours, theirs = RecordingField(problem.f), RecordingField(problem.f)
    qode.odeint(ours, problem.y0, t, rtol=1e-6, atol=1e-8)
    torchdiffeq.odeint(theirs, problem.y0, t, rtol=1e-6, atol=1e-8)
    assert [c[0] for c in ours.calls] == [c[0] for c in theirs.calls]
    assert any(c[0] == "reject" for c in ours.calls)
    for a, b in zip(ours.calls, theirs.calls):
        assert a[1] == pytest.approx(b[1], rel=1e-12, abs=1e-12)
        assert a[2] == pytest.approx(b[2], rel=1e-9)
        assert max_rel_error(a[3], b[3]) < 1e-10


def test_callback_states_are_copies():
    problem = PROBLEMS[0]
    field = RecordingField(problem.f)
    qode.odeint(field, problem.y0, problem.t)
    states = [c[3] for c in field.calls if c[0] == "accept"]
    assert len(states) > 3
    assert not torch.equal(states[0], states[-1])


# ---- events ---------------------------------------------------------------

def ball(t, state):
    # A ball thrown up: height x, velocity v, gravity 9.81.
    x, v = state[..., 0], state[..., 1]
    return torch.stack([v, torch.full_like(v, -9.81)], dim=-1)


def ground(t, state):
    return state[..., 0]


@pytest.mark.parametrize("method", TORCHDIFFEQ_ADAPTIVE)
def test_event_matches_torchdiffeq(method):
    y0 = torch.tensor([1.0, 3.0], dtype=torch.float64)
    t = torch.tensor([0.0, 10.0], dtype=torch.float64)
    ta, ya = qode.odeint(ball, y0, t, event_fn=ground, method=method, atol=1e-9)
    tb, yb = torchdiffeq.odeint(ball, y0, t, event_fn=ground, method=method, atol=1e-9)
    exact = (3.0 + (9.0 + 2 * 9.81) ** 0.5) / 9.81
    assert float(ta) == pytest.approx(float(tb), rel=1e-10, abs=1e-12)
    if method in ("dopri5", "dopri8"):
        # The other methods' dense output (torchdiffeq's midpoint weights) is
        # too coarse to place the event this well; there qode matches
        # torchdiffeq, which is what is asserted above.
        assert float(ta) == pytest.approx(exact, abs=1e-7)
    assert ya.shape == yb.shape == (2, 2)
    assert max_rel_error(ya, yb) < 1e-9


def test_event_with_fixed_step_method():
    y0 = torch.tensor([1.0, 3.0], dtype=torch.float64)
    t = torch.tensor([0.0, 10.0], dtype=torch.float64)
    for interp in ("linear", "cubic"):
        options = {"step_size": 0.01, "interp": interp}
        ta, ya = qode.odeint(ball, y0, t, event_fn=ground, method="rk4", options=options)
        tb, yb = torchdiffeq.odeint(ball, y0, t, event_fn=ground, method="rk4", options=options)
        assert float(ta) == pytest.approx(float(tb), rel=1e-9)
        assert max_rel_error(ya, yb) < 1e-9


def test_multivariate_event_stops_at_first_crossing():
    # Two event functions; the second (x - 2 crosses first) decides.
    f = lambda t, y: torch.ones_like(y)
    event = lambda t, y: torch.stack([y[0] - 5.0, y[0] - 2.0])
    y0 = torch.zeros(1, dtype=torch.float64)
    t_event, _ = qode.odeint(f, y0, torch.tensor([0.0, 1.0], dtype=torch.float64),
                             event_fn=event)
    assert float(t_event) == pytest.approx(2.0, abs=1e-8)


@pytest.mark.parametrize("reverse_time", [False, True])
def test_odeint_event_matches_torchdiffeq(reverse_time):
    f = lambda t, y: -0.5 * y
    # y[0] = exp(-t / 2) falls through 0.3 forwards and rises through 2 backwards.
    level = 2.0 if reverse_time else 0.3
    event = lambda t, y: y[0] - level
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    t0 = torch.tensor(0.0, dtype=torch.float64)
    ta, ya = qode.odeint_event(f, y0, t0, event_fn=event, reverse_time=reverse_time,
                               atol=1e-10, rtol=1e-8)
    tb, yb = torchdiffeq.odeint_event(f, y0, t0, event_fn=event, reverse_time=reverse_time,
                                      atol=1e-10, rtol=1e-8)
    expected = -2.0 * math.log(level)
    assert float(ta) == pytest.approx(expected, rel=1e-6)
    assert float(ta) == pytest.approx(float(tb), rel=1e-10, abs=1e-12)
    assert max_rel_error(ya, yb) < 1e-9


# ---- NumPy interface --------------------------------------------------------

def test_numpy_interface_matches_torch_interface():
    import numpy as np

    a = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    f_np = lambda t, y: a @ y
    f_torch = lambda t, y: torch.from_numpy(a) @ y
    t = np.linspace(0, 5, 11)
    y_np = qode.odeint(f_np, np.array([2.0, 0.0]), t)
    y_torch = qode.odeint(f_torch, torch.tensor([2.0, 0.0], dtype=torch.float64),
                          torch.from_numpy(t))
    assert isinstance(y_np, np.ndarray) and y_np.shape == (11, 2)
    np.testing.assert_allclose(y_np, y_torch.numpy(), rtol=1e-13, atol=1e-15)
