"""Parameter-shift gradients: the hardware-compatible alternative to the adjoint
method, and an independent cross-check of it.

Every angle occurrence is shifted on its own (an angle used by several gates
gets the sum of their contributions):

* gates exp(-i t G/2) with G^2 = 1 (RX, RY, RZ, Rot, U3, PhaseShift up to a
  global phase, the Ising gates) obey the two-term rule
  df/dt = [f(t + pi/2) - f(t - pi/2)] / 2;
* controlled rotations (CRX, CRY, CRZ) have generator eigenvalues {0, +-1/2}
  and need the four-term rule
  df/dt = c+ [f(t + pi/2) - f(t - pi/2)] - c- [f(t + 3pi/2) - f(t - 3pi/2)],
  c+- = (sqrt(2) +- 1) / (4 sqrt(2))  (Anselmetti et al. 2021).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .circuit import Circuit, Data, Gate, Weight, data as data_ref
from .execute import expval
from .observables import PauliSum

_FOUR_TERM = {"CRX", "CRY", "CRZ"}


def _unrolled(circuit: Circuit, d: np.ndarray, w: np.ndarray):
    """A copy of the circuit in which every non-constant angle occurrence reads
    its own data column, the matching data matrix, and for each column where
    it came from: (source "data"/"weight", index, gate name)."""
    c = Circuit(circuit.n_qubits)
    columns: list[np.ndarray] = []
    origin: list[tuple[str, int, str]] = []
    for g in circuit.gates:
        angles = []
        for a in g.angles:
            if isinstance(a, (Data, Weight)):
                if isinstance(a, Data):
                    columns.append(d[:, a.index]); origin.append(("data", a.index, g.name))
                else:
                    columns.append(np.full(d.shape[0], w[a.index])); origin.append(("weight", a.index, g.name))
                angles.append(data_ref(len(columns) - 1))
            else:
                angles.append(a)
        c.gates.append(Gate(g.name, g.wires, tuple(angles), g.matrix))
    dd = np.stack(columns, axis=1) if columns else np.zeros((d.shape[0], 0))
    return c, dd, origin


def param_shift_jacobian(circuit: Circuit, observables: Sequence[PauliSum], data=None,
                         weights=None, dtype: str = "complex128"):
    """Jacobians of expval(circuit, observables, data, weights) by parameter shifts.

    Returns
    -------
    jac_data : np.ndarray, shape (batch, n_obs, n_data)
    jac_weights : np.ndarray, shape (batch, n_obs, n_weights)
        Per-circuit derivatives (sum over the batch for the weight gradient).
    """
    n_data, n_weights = circuit.num_data, circuit.num_weights
    d = np.zeros((1, 0)) if data is None else np.asarray(data, np.float64).reshape(-1, n_data)
    w = np.zeros(0) if weights is None else np.asarray(weights, np.float64)
    c, dd, origin = _unrolled(circuit, d, w)
    batch, n_obs = d.shape[0], len(observables)
    jac_d = np.zeros((batch, n_obs, n_data))
    jac_w = np.zeros((batch, n_obs, n_weights))

    def f(column: int, shift: float) -> np.ndarray:
        shifted = dd.copy()
        shifted[:, column] += shift
        return expval(c, observables, shifted, None, dtype=dtype)

    cp = (np.sqrt(2) + 1) / (4 * np.sqrt(2))
    cm = (np.sqrt(2) - 1) / (4 * np.sqrt(2))
    for col, (source, index, gate) in enumerate(origin):
        if gate in _FOUR_TERM:
            deriv = (cp * (f(col, np.pi / 2) - f(col, -np.pi / 2))
                     - cm * (f(col, 3 * np.pi / 2) - f(col, -3 * np.pi / 2)))
        else:
            deriv = 0.5 * (f(col, np.pi / 2) - f(col, -np.pi / 2))
        if source == "data":
            jac_d[:, :, index] += deriv
        else:
            jac_w[:, :, index] += deriv
    return jac_d, jac_w
