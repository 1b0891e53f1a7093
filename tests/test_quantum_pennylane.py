"""qode.quantum against PennyLane default.qubit on random circuits over the
whole gate set: read-outs to 1e-10 and gradients (adjoint VJP) to 1e-8."""
import numpy as np
import pennylane as qml  # the trusted peer (test extra): a hard requirement
import pytest
import torch

import qode.quantum as qq
from quantum_helpers import apply_in_pennylane, pennylane_observable, random_circuit


def observables_for(n):
    obs = qq.z_all(n)
    if n >= 2:
        obs.append(qq.pauli("XY", [0, n - 1]))
        obs.append(0.3 * qq.pauli("Y", 1) + qq.pauli("ZX", [n - 1, 0], 0.7))
    else:
        obs.append(qq.pauli("X", 0) + 0.5 * qq.pauli("Y", 0))
    return obs


def make_qnode(circuit, obs, want_probs):
    dev = qml.device("default.qubit", wires=circuit.n_qubits)

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def run(drow, w):
        apply_in_pennylane(qml, circuit, drow, w)
        if want_probs:
            return qml.probs(wires=range(circuit.n_qubits))
        return [qml.expval(pennylane_observable(qml, o)) for o in obs]

    return run


CASES = [(1, 12, 0), (2, 30, 1), (3, 40, 2), (4, 40, 3), (5, 50, 4)]


@pytest.mark.parametrize("n_qubits,n_gates,seed", CASES)
def test_expval_and_gradients_match_pennylane(n_qubits, n_gates, seed):
    rng = np.random.default_rng(seed)
    c = random_circuit(rng, n_qubits, n_gates)
    obs = observables_for(n_qubits)
    batch = 3
    d = rng.uniform(-np.pi, np.pi, size=(batch, 3))
    w = rng.uniform(-np.pi, np.pi, size=4)
    upstream = torch.tensor(rng.normal(size=(batch, len(obs))))

    dt = torch.tensor(d, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    ours = qq.expval(c, obs, dt, wt)
    (ours * upstream).sum().backward()

    qnode = make_qnode(c, obs, want_probs=False)
    grad_w_ref = np.zeros(4)
    for b in range(batch):
        drow = torch.tensor(d[b], requires_grad=True)
        wrow = torch.tensor(w, requires_grad=True)
        ref = torch.stack(qnode(drow, wrow))
        np.testing.assert_allclose(ours[b].detach().numpy(), ref.detach().numpy(), rtol=0, atol=1e-10)
        (ref * upstream[b]).sum().backward()
        np.testing.assert_allclose(dt.grad[b].numpy(), drow.grad.numpy(), rtol=0, atol=1e-8)
        grad_w_ref += wrow.grad.numpy()
    np.testing.assert_allclose(wt.grad.numpy(), grad_w_ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("n_qubits,n_gates,seed", CASES[1:4])
def test_probabilities_and_their_gradients_match_pennylane(n_qubits, n_gates, seed):
    rng = np.random.default_rng(100 + seed)
    c = random_circuit(rng, n_qubits, n_gates)
    batch = 2
    d = rng.uniform(-np.pi, np.pi, size=(batch, 3))
    w = rng.uniform(-np.pi, np.pi, size=4)
    upstream = torch.tensor(rng.normal(size=(batch, 2 ** n_qubits)))
    dt = torch.tensor(d, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    ours = qq.probs(c, dt, wt)
    (ours * upstream).sum().backward()
    qnode = make_qnode(c, None, want_probs=True)
    grad_w_ref = np.zeros(4)
    for b in range(batch):
        drow = torch.tensor(d[b], requires_grad=True)
        wrow = torch.tensor(w, requires_grad=True)
        ref = qnode(drow, wrow)
        np.testing.assert_allclose(ours[b].detach().numpy(), ref.detach().numpy(), rtol=0, atol=1e-10)
        (ref * upstream[b]).sum().backward()
        np.testing.assert_allclose(dt.grad[b].numpy(), drow.grad.numpy(), rtol=0, atol=1e-8)
        grad_w_ref += wrow.grad.numpy()
    np.testing.assert_allclose(wt.grad.numpy(), grad_w_ref, rtol=0, atol=1e-8)


def test_state_vector_matches_pennylane_wire_order():
    rng = np.random.default_rng(7)
    c = random_circuit(rng, 3, 30)
    d = rng.normal(size=3)
    w = rng.normal(size=4)
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def run():
        apply_in_pennylane(qml, c, d, w)
        return qml.state()

    np.testing.assert_allclose(qq.state(c, d, w), run(), rtol=0, atol=1e-10)


def test_complex64_agrees_with_pennylane_to_single_precision():
    rng = np.random.default_rng(11)
    c = random_circuit(rng, 4, 40)
    obs = observables_for(4)
    d = rng.normal(size=(2, 3)).astype(np.float32)
    w = rng.normal(size=4).astype(np.float32)
    ours = qq.expval(c, obs, d, w)
    assert ours.dtype == np.float32
    qnode = make_qnode(c, obs, want_probs=False)
    for b in range(2):
        ref = torch.stack(qnode(torch.tensor(d[b], dtype=torch.float64),
                                torch.tensor(w, dtype=torch.float64))).detach().numpy()
        np.testing.assert_allclose(ours[b], ref, rtol=0, atol=2e-5)


def test_seed002_vqc_matches_pennylane():
    """The QuantumLayer circuit, with PennyLane's own CNOT ring and read-out."""
    n, layers = 4, 2
    rng = np.random.default_rng(3)
    theta = rng.uniform(-np.pi, np.pi, size=(5, n))
    w = rng.uniform(0, 2 * np.pi, size=(layers, n, 3))
    ours = qq.expval(qq.vqc_circuit(n, layers), qq.z_all(n), theta, w.reshape(-1))
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def vqc(x):
        for q in range(n):
            qml.RY(x[q], wires=q)
        for layer in range(layers):
            for q in range(n):
                qml.RX(w[layer, q, 0], wires=q)
                qml.RY(w[layer, q, 1], wires=q)
                qml.RZ(w[layer, q, 2], wires=q)
            for q in range(n - 1):
                qml.CNOT(wires=[q, q + 1])
            qml.CNOT(wires=[n - 1, 0])
        return [qml.expval(qml.PauliZ(q)) for q in range(n)]

    for b in range(5):
        np.testing.assert_allclose(ours[b], np.array(vqc(theta[b])), rtol=0, atol=1e-10)
