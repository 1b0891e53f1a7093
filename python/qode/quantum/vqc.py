"""Seed 002's variational quantum circuit (VQC) as a :class:`Circuit`.

Structure, for n qubits and L layers:

1. angle encoding: RY(data(q)) on every qubit q (the caller supplies
   theta = pi * tanh(W x + b) as the data row, see :class:`QuantumLayer`);
2. L layers, each: RX, RY, RZ with trainable angles on every qubit, then a
   CNOT ring CNOT(0,1), CNOT(1,2), ..., CNOT(n-2,n-1), CNOT(n-1,0);
3. read-out <Z_q> on every qubit.

Weight ``(l, q, r)`` (layer, qubit, rotation RX/RY/RZ) is ``weight(3 n l + 3 q + r)``,
i.e. a weight tensor of shape (L, n, 3) flattened row-major.
"""
from __future__ import annotations

from .circuit import Circuit, data, weight


def vqc_circuit(n_qubits: int, n_layers: int) -> Circuit:
    """The seed-002 VQC with n_qubits data columns and 3 * n_layers * n_qubits weights."""
    if n_layers < 0:
        raise ValueError(f"n_layers must be >= 0, got {n_layers}")
    c = Circuit(n_qubits, n_data=n_qubits, n_weights=3 * n_layers * n_qubits)
    for q in range(n_qubits):
        c.ry(q, data(q))
    for layer in range(n_layers):
        for q in range(n_qubits):
            base = 3 * (n_qubits * layer + q)
            c.rx(q, weight(base)).ry(q, weight(base + 1)).rz(q, weight(base + 2))
        if n_qubits > 1:
            for q in range(n_qubits - 1):
                c.cnot(q, q + 1)
            c.cnot(n_qubits - 1, 0)  # the seed closes the ring even for n = 2
    return c
