"""The C kernels against a small dense NumPy reference: every gate as a full
2^n x 2^n matrix built with Kronecker products (wire 0 most significant)."""
import numpy as np
import pytest

import qode.quantum as qq
from qode.quantum.circuit import Data, Weight
from quantum_helpers import random_circuit

I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
P0, P1 = np.diag([1.0, 0]), np.diag([0, 1.0])


def rx(t): return np.cos(t / 2) * I2 - 1j * np.sin(t / 2) * X
def ry(t): return np.cos(t / 2) * I2 - 1j * np.sin(t / 2) * Y
def rz(t): return np.cos(t / 2) * I2 - 1j * np.sin(t / 2) * Z


def one_qubit(name, a):
    return {
        "H": np.array([[1, 1], [1, -1]]) / np.sqrt(2), "X": X, "Y": Y, "Z": Z,
        "S": np.diag([1, 1j]), "T": np.diag([1, np.exp(1j * np.pi / 4)]),
        "SX": 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]),
    }.get(name) if not a else {
        "RX": lambda: rx(a[0]), "RY": lambda: ry(a[0]), "RZ": lambda: rz(a[0]),
        "PhaseShift": lambda: np.diag([1, np.exp(1j * a[0])]),
        "Rot": lambda: rz(a[2]) @ ry(a[1]) @ rz(a[0]),
        "U3": lambda: np.array([[np.cos(a[0] / 2), -np.exp(1j * a[2]) * np.sin(a[0] / 2)],
                                [np.exp(1j * a[1]) * np.sin(a[0] / 2),
                                 np.exp(1j * (a[1] + a[2])) * np.cos(a[0] / 2)]]),
    }[name]()


def embed(ops_by_wire, n):
    """Kronecker product with ops_by_wire[w] on wire w (identity elsewhere)."""
    out = np.eye(1)
    for w in range(n):
        out = np.kron(out, ops_by_wire.get(w, I2))
    return out


def full_matrix(gate, angles, n):
    w = gate.wires
    if gate.name == "Unitary1":
        return embed({w[0]: gate.matrix}, n)
    if len(w) == 1:
        return embed({w[0]: one_qubit(gate.name, angles)}, n)
    if gate.name in ("CNOT", "CZ", "CRX", "CRY", "CRZ"):
        target = {"CNOT": X, "CZ": Z}.get(gate.name)
        if target is None:
            target = {"CRX": rx, "CRY": ry, "CRZ": rz}[gate.name](angles[0])
        return embed({w[0]: P0}, n) + embed({w[0]: P1, w[1]: target}, n)
    if gate.name == "Toffoli":
        return (np.eye(2 ** n) - embed({w[0]: P1, w[1]: P1}, n)
                + embed({w[0]: P1, w[1]: P1, w[2]: X}, n))
    if gate.name == "SWAP":
        return sum(embed({w[0]: p, w[1]: p}, n) for p in (X, Y, Z)) / 2 + np.eye(2 ** n) / 2
    if gate.name.startswith("Ising"):
        p = {"IsingXX": X, "IsingYY": Y, "IsingZZ": Z}[gate.name]
        t = angles[0]
        return np.cos(t / 2) * np.eye(2 ** n) - 1j * np.sin(t / 2) * embed({w[0]: p, w[1]: p}, n)
    if gate.name == "Unitary2":
        # sum_{r,c} u[r, c] |r><c| with r = 2 r0 + r1 (r0 on wire w0, r1 on w1)
        unit = lambda i, j: np.outer(np.eye(2)[i], np.eye(2)[j])
        return sum(gate.matrix[r, c] * embed({w[0]: unit(r >> 1, c >> 1), w[1]: unit(r & 1, c & 1)}, n)
                   for r in range(4) for c in range(4))
    raise AssertionError(gate.name)


def apply_local(psi, u, wires, n):
    """Applies the 2^k x 2^k matrix u (first wire most significant) to `wires`."""
    k = len(wires)
    t = np.moveaxis(psi.reshape([2] * n), list(wires), list(range(k)))
    t = (u @ t.reshape(2 ** k, -1)).reshape([2] * n)
    return np.moveaxis(t, list(range(k)), list(wires)).reshape(-1)


def reference_state(circuit, d, w):
    """Each gate as its small matrix (built by full_matrix on its own k wires)."""
    from qode.quantum.circuit import Gate
    n = circuit.n_qubits
    psi = np.zeros(2 ** n, complex)
    psi[0] = 1
    for g in circuit.gates:
        angles = [d[a.index] if isinstance(a, Data) else w[a.index] if isinstance(a, Weight)
                  else a for a in g.angles]
        local = Gate(g.name, tuple(range(len(g.wires))), g.angles, g.matrix)
        psi = apply_local(psi, full_matrix(local, angles, len(g.wires)), g.wires, n)
    return psi


def test_small_matrices_embed_like_full_ones():
    """apply_local agrees with the full Kronecker-built matrix (checks the reference)."""
    rng = np.random.default_rng(21)
    c = random_circuit(rng, 4, 30)
    d, w = rng.normal(size=3), rng.normal(size=4)
    psi = np.zeros(16, complex)
    psi[0] = 1
    for g in c.gates:
        angles = [d[a.index] if isinstance(a, Data) else w[a.index] if isinstance(a, Weight)
                  else a for a in g.angles]
        psi = full_matrix(g, angles, 4) @ psi
    np.testing.assert_allclose(reference_state(c, d, w), psi, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed,n_qubits", [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6)])
def test_states_match_dense_reference(seed, n_qubits):
    rng = np.random.default_rng(seed)
    c = random_circuit(rng, n_qubits, 40)
    d = rng.normal(size=(3, 3))
    w = rng.normal(size=4)
    ours = qq.state(c, d, w)  # a batch: the tiled path (8 circuits at a time)
    for b in range(3):
        ref = reference_state(c, d[b], w)
        np.testing.assert_allclose(ours[b], ref, rtol=0, atol=1e-12)
        # one circuit: the one-state-at-a-time kernels, in both precisions
        np.testing.assert_allclose(qq.state(c, d[b], w), ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(qq.state(c, d[b], w, dtype="complex64"), ref, rtol=0, atol=1e-5)
    ours64 = qq.state(c, d, w, dtype="complex64")
    assert ours64.dtype == np.complex64
    np.testing.assert_allclose(ours64, ours, rtol=0, atol=1e-5)


def test_pauli_expectations_match_dense_reference():
    rng = np.random.default_rng(8)
    c = random_circuit(rng, 4, 30)
    d, w = rng.normal(size=(2, 3)), rng.normal(size=4)
    obs = [qq.pauli("XYZI", [0, 1, 2, 3]), qq.pauli("YY", [3, 1], 0.5) + qq.pauli("Z", 2, -2.0)]
    mats = [embed({0: X, 1: Y, 2: Z}, 4),
            0.5 * embed({3: Y, 1: Y}, 4) - 2.0 * embed({2: Z}, 4)]
    ours = qq.expval(c, obs, d, w)
    for b in range(2):
        psi = reference_state(c, d[b], w)
        ref = [np.vdot(psi, m @ psi).real for m in mats]
        np.testing.assert_allclose(ours[b], ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(qq.probs(c, d, w)[1], abs(reference_state(c, d[1], w)) ** 2,
                               rtol=0, atol=1e-12)


def test_large_register_uses_per_state_path_and_matches_reference():
    """11 qubits (beyond the tiled path's limit), every gate, batch of two."""
    rng = np.random.default_rng(12)
    c = random_circuit(rng, 11, 60)
    d, w = rng.normal(size=(2, 3)), rng.normal(size=4)
    ours = qq.state(c, d, w)
    for b in range(2):
        np.testing.assert_allclose(ours[b], reference_state(c, d[b], w), rtol=0, atol=1e-11)
