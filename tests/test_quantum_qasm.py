"""OpenQASM export: the text is parsed back by real parsers from PyPI (qiskit's
OpenQASM 2 and 3 loaders, and the reference openqasm3 parser) and the loaded
circuit is simulated by qiskit and compared with our state vector."""
import numpy as np
import openqasm3  # reference OpenQASM 3 parser (test extra)
import pytest
from qiskit import qasm2, qasm3  # qasm3.loads needs qiskit-qasm3-import (test extra)
from qiskit.quantum_info import Statevector

import qode.quantum as qq
from quantum_helpers import ALL_GATES, random_circuit

EXPORTABLE = ALL_GATES  # every gate, QubitUnitary on two wires included


def qiskit_state_in_our_order(qc, n):
    """qiskit orders qubit 0 as the least significant bit; we order wire 0 most significant."""
    sv = np.asarray(Statevector(qc).data)
    return sv.reshape([2] * n).transpose(list(range(n))[::-1]).reshape(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_openqasm2_round_trip_through_qiskit(seed):
    rng = np.random.default_rng(seed)
    n = 4
    c = random_circuit(rng, n, 40, gates=EXPORTABLE)
    d, w = rng.normal(size=3), rng.normal(size=4)
    text = qq.to_qasm(c, d, w, version=2)
    assert text.startswith("OPENQASM 2.0;")
    qc = qasm2.loads(text)
    ref = qiskit_state_in_our_order(qc, n)
    ours = qq.state(c, d, w)
    # OpenQASM 2 has no global phase: compare up to one.
    overlap = np.vdot(ref, ours)
    assert abs(abs(overlap) - 1) < 1e-10
    np.testing.assert_allclose(ours, ref * overlap / abs(overlap), rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [3, 4])
def test_openqasm3_round_trip_through_qiskit_and_reference_parser(seed):
    rng = np.random.default_rng(seed)
    n = 3
    c = random_circuit(rng, n, 40, gates=EXPORTABLE)
    d, w = rng.normal(size=3), rng.normal(size=4)
    text = qq.to_qasm(c, d, w, version=3)
    program = openqasm3.parse(text)  # the reference grammar accepts it
    assert program.version == "3.0"
    qc = qasm3.loads(text)
    # OpenQASM 3 keeps global phases (gphase): the states agree exactly.
    np.testing.assert_allclose(qq.state(c, d, w), qiskit_state_in_our_order(qc, n),
                               rtol=0, atol=1e-10)


def test_trained_quantum_layer_exports():
    import torch
    torch.manual_seed(0)
    layer = qq.QuantumLayer(in_features=2, n_qubits=3, n_layers=2).double()
    x = torch.randn(2, dtype=torch.float64)
    theta = layer.angles(x).detach()
    text = qq.to_qasm(layer.circuit, theta, layer.weights.detach().reshape(-1), version=2)
    qc = qasm2.loads(text)
    sv = qiskit_state_in_our_order(qc, 3)
    z = [np.sum(np.abs(sv.reshape(2, 2, 2)) ** 2 * s) for s in
         (np.array([1, -1])[:, None, None], np.array([1, -1])[None, :, None],
          np.array([1, -1])[None, None, :])]
    np.testing.assert_allclose(layer(x).detach().numpy(), z, rtol=0, atol=1e-10)


def test_two_qubit_unitary_decomposition_is_exact():
    from qode.quantum.decompose import _interaction, kak
    from quantum_helpers import random_unitary
    rng = np.random.default_rng(3)
    cnot = np.eye(4)[[0, 1, 3, 2]].astype(complex)
    swap = np.eye(4)[[0, 2, 1, 3]].astype(complex)
    local = np.kron(random_unitary(rng, 2), random_unitary(rng, 2))
    for u in [random_unitary(rng, 4) for _ in range(30)] + [cnot, swap, np.eye(4), local]:
        a1, a2, b1, b2, (a, b, c), g = kak(u)
        rebuilt = np.exp(1j * g) * np.kron(a1, a2) @ _interaction(a, b, c) @ np.kron(b1, b2)
        np.testing.assert_allclose(rebuilt, u, rtol=0, atol=1e-12)


def test_export_errors():
    c = qq.Circuit(2).rx(0, qq.data(0))
    with pytest.raises(ValueError, match="data must have 1"):
        qq.to_qasm(c)
    with pytest.raises(ValueError, match="version"):
        qq.to_qasm(c, [0.1], version=4)
