"""Shared helpers of the quantum tests: random circuits over the whole gate set,
the same circuits in PennyLane, and a small dense NumPy reference simulator."""
from __future__ import annotations

import numpy as np

from qode.quantum import Circuit, data, weight
from qode.quantum.circuit import GATE_SHAPES, Data, Weight

ALL_GATES = sorted(GATE_SHAPES)


def random_unitary(rng: np.random.Generator, size: int) -> np.ndarray:
    z = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / abs(np.diag(r)))


def random_circuit(rng: np.random.Generator, n_qubits: int, n_gates: int, n_data: int = 3,
                   n_weights: int = 4, gates: list[str] | None = None) -> Circuit:
    """A circuit that uses every gate of `gates` (default all) at least once when
    n_gates allows, with angles drawn from data, weights and constants."""
    names = list(gates or ALL_GATES)
    if n_qubits < 3:
        names = [g for g in names if GATE_SHAPES[g][0] <= n_qubits]
    order = names + [names[i] for i in rng.integers(0, len(names), max(0, n_gates - len(names)))]
    rng.shuffle(order)
    c = Circuit(n_qubits, n_data=n_data, n_weights=n_weights)
    for name in order[:n_gates]:
        n_wires, n_angles = GATE_SHAPES[name]
        wires = tuple(int(w) for w in rng.choice(n_qubits, n_wires, replace=False))
        angles = []
        for _ in range(n_angles):
            kind = rng.integers(0, 3)
            if kind == 0:
                angles.append(data(rng.integers(0, n_data)))
            elif kind == 1:
                angles.append(weight(rng.integers(0, n_weights)))
            else:
                angles.append(float(rng.uniform(-np.pi, np.pi)))
        if name.startswith("Unitary"):
            c.unitary(random_unitary(rng, 2 ** n_wires), wires)
        else:
            c.add(name, wires, *angles)
    return c


PENNYLANE_NAMES = {
    "H": "Hadamard", "X": "PauliX", "Y": "PauliY", "Z": "PauliZ", "S": "S", "T": "T",
    "SX": "SX", "RX": "RX", "RY": "RY", "RZ": "RZ", "PhaseShift": "PhaseShift", "Rot": "Rot",
    "U3": "U3", "CNOT": "CNOT", "CZ": "CZ", "SWAP": "SWAP", "CRX": "CRX", "CRY": "CRY",
    "CRZ": "CRZ", "IsingXX": "IsingXX", "IsingYY": "IsingYY", "IsingZZ": "IsingZZ",
    "Toffoli": "Toffoli",
}


def apply_in_pennylane(qml, circuit: Circuit, data_row, weights) -> None:
    """Queues the gates of `circuit` as PennyLane operations (inside a QNode)."""
    for g in circuit.gates:
        if g.name.startswith("Unitary"):
            qml.QubitUnitary(g.matrix, wires=list(g.wires))
            continue
        angles = []
        for a in g.angles:
            if isinstance(a, Data):
                angles.append(data_row[a.index])
            elif isinstance(a, Weight):
                angles.append(weights[a.index])
            else:
                angles.append(a)
        if hasattr(data_row, "detach"):  # keep PennyLane's torch interface on one type
            import torch
            angles = [x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64)
                      for x in angles]
        getattr(qml, PENNYLANE_NAMES[g.name])(*angles, wires=list(g.wires))


def pennylane_observable(qml, obs):
    """A qode PauliSum as a PennyLane observable."""
    ops, coeffs = [], []
    letters = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ, "I": qml.Identity}
    for coeff, word, wires in obs.terms:
        factors = [letters[ch](w) for ch, w in zip(word, wires)]
        op = factors[0]
        for f in factors[1:]:
            op = op @ f
        ops.append(op)
        coeffs.append(coeff)
    return qml.Hamiltonian(coeffs, ops) if len(ops) > 1 or coeffs[0] != 1.0 else ops[0]
