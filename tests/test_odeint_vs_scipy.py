"""qode against SciPy's solve_ivp where the methods coincide.

SciPy's RK45 and DOP853 are the same Dormand-Prince pairs as qode's dopri5
and dopri8 (with different step-size control), so at tight tolerances both
must land on the same solution.  dopri8 outputs come from torchdiffeq's
quartic dense output, which is far less accurate than the method (1e-7 here
at rtol 1e-12); stepping onto the output times with ``step_t`` takes it out
of the comparison.
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import qode


def lotka_volterra(t, y):
    return np.array([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]])


@pytest.mark.parametrize("ours, theirs", [("dopri5", "RK45"), ("dopri8", "DOP853")])
def test_same_solution_as_solve_ivp(ours, theirs):
    t = np.linspace(0.0, 10.0, 21)
    y0 = np.array([10.0, 5.0])
    reference = solve_ivp(lotka_volterra, (0.0, 10.0), y0, method=theirs, t_eval=t,
                          rtol=1e-12, atol=1e-12)
    assert reference.success
    options = {"step_t": t} if ours == "dopri8" else None
    y = qode.odeint(lotka_volterra, y0, t, rtol=1e-12, atol=1e-12, method=ours, options=options)
    np.testing.assert_allclose(y, reference.y.T, rtol=1e-9, atol=1e-9)


def test_reverse_time_matches_solve_ivp():
    t = np.linspace(2.0, 0.0, 5)
    y0 = np.array([1.0, 2.0])
    reference = solve_ivp(lotka_volterra, (2.0, 0.0), y0, method="DOP853", t_eval=t,
                          rtol=1e-12, atol=1e-12)
    y = qode.odeint(lotka_volterra, y0, t, rtol=1e-12, atol=1e-12, method="dopri8",
                    options={"step_t": t})
    np.testing.assert_allclose(y, reference.y.T, rtol=1e-9, atol=1e-9)


def test_event_time_matches_solve_ivp():
    def predators_peak(t, y):
        return -3.0 * y[1] + y[0] * y[1]  # dy1/dt = 0

    y0 = np.array([10.0, 5.0])
    reference = solve_ivp(lotka_volterra, (0.0, 10.0), y0, method="DOP853",
                          events=predators_peak, rtol=1e-12, atol=1e-12)
    t_event, _ = qode.odeint(lotka_volterra, y0, np.array([0.0, 10.0]), method="dopri5",
                             event_fn=predators_peak, rtol=1e-12, atol=1e-12)
    assert t_event == pytest.approx(reference.t_events[0][0], abs=1e-9)
