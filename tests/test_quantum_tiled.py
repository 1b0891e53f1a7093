"""The tiled batch path's shortcuts (csrc/quantum/tiled*.c) against the
per-circuit path (a batch of one runs the plain state kernels, an independent
implementation):

- the product-state prefix: first blocks on each wire, with data, weights and
  constants in every one-qubit gate kind, some wires without such a block;
- trailing CNOT / SWAP / CZ folded into Z-type observables (and not folded
  when an observable has X or Y, or probabilities are read);
- runs of CNOT / Toffoli / SWAP merged into one permutation of the amplitudes;
- the adjoint's stored forward states, and the un-applying sweep used when
  they would not fit (a deep 10-qubit circuit);
- the last layer of shared blocks, differentiated from the final state.
"""
import numpy as np
import pytest
import torch

import qode.quantum as qq
from qode.quantum import Circuit, data, weight

ONE_QUBIT = ["H", "X", "Y", "Z", "S", "T", "SX", "RX", "RY", "RZ", "PhaseShift", "Rot", "U3"]
N_PARAMS = {"RX": 1, "RY": 1, "RZ": 1, "PhaseShift": 1, "Rot": 3, "U3": 3}


def random_angle(rng, n_data, n_weights):
    kind = rng.integers(0, 3)
    if kind == 0:
        return data(int(rng.integers(0, n_data)))
    if kind == 1:
        return weight(int(rng.integers(0, n_weights)))
    return float(rng.uniform(-np.pi, np.pi))


def layered_circuit(rng, n, n_layers, trailing, n_data=4, n_weights=6, skip_wire=None):
    """Random one-qubit gates on every wire (but skip_wire), then entangling
    layers, then `trailing` CNOT/SWAP/CZ gates at the very end."""
    c = Circuit(n, n_data=n_data, n_weights=n_weights)

    def one_qubit_block(w):
        for _ in range(int(rng.integers(1, 4))):
            name = ONE_QUBIT[rng.integers(0, len(ONE_QUBIT))]
            angles = [random_angle(rng, n_data, n_weights) for _ in range(N_PARAMS.get(name, 0))]
            c.add(name, w, *angles)

    for w in range(n):
        if w != skip_wire:
            one_qubit_block(w)
    for _ in range(n_layers):
        for w in range(n - 1):
            name = ["CNOT", "CZ", "CRY", "IsingXX"][rng.integers(0, 4)]
            angles = [random_angle(rng, n_data, n_weights)] if name in ("CRY", "IsingXX") else []
            c.add(name, (w, w + 1), *angles)
        for w in range(n):
            one_qubit_block(w)
    for _ in range(trailing):
        a, b = (int(x) for x in rng.choice(n, 2, replace=False))
        c.add(["CNOT", "SWAP", "CZ"][rng.integers(0, 3)], (a, b))
    return c


def per_circuit(c, obs, d, w):
    """Read-outs and gradients one circuit at a time (the untiled path)."""
    values, gd, gw = [], [], np.zeros(len(w))
    for i in range(len(d)):
        dt = torch.tensor(d[i:i + 1], requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        out = qq.expval(c, obs, dt, wt)
        (out * torch.arange(1, len(obs) + 1, dtype=torch.float64)).sum().backward()
        values.append(out.detach().numpy()[0])
        gd.append(dt.grad.numpy()[0])
        gw += wt.grad.numpy()
    return np.array(values), np.array(gd), gw


def batched(c, obs, d, w):
    dt = torch.tensor(d, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    out = qq.expval(c, obs, dt, wt)
    (out * torch.arange(1, len(obs) + 1, dtype=torch.float64)).sum().backward()
    return out.detach().numpy(), dt.grad.numpy(), wt.grad.numpy()


def z_observables(n):
    obs = qq.z_all(n) + [0.5 * qq.pauli("ZZ", [0, n - 1]) - 1.5 * qq.pauli("Z", 1)]
    if n >= 3:
        obs.append(qq.pauli("ZZZ", [0, 1, 2], coeff=2.0))
    return obs


def assert_same(c, obs, rng, batch=11):
    d = rng.uniform(-np.pi, np.pi, size=(batch, c.num_data))
    w = rng.uniform(-np.pi, np.pi, size=c.num_weights)
    ref = per_circuit(c, obs, d, w)
    ours = batched(c, obs, d, w)
    for a, b, what in zip(ours, ref, ("read-outs", "data gradients", "weight gradients")):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11, err_msg=what)


@pytest.mark.parametrize("seed,n,layers,trailing", [(0, 1, 0, 0), (1, 2, 1, 2), (2, 3, 2, 3),
                                                    (3, 4, 1, 5), (4, 5, 2, 4), (5, 4, 0, 3)])
def test_prefix_and_folded_z_observables_match_per_circuit_path(seed, n, layers, trailing):
    rng = np.random.default_rng(seed)
    c = layered_circuit(rng, n, layers, trailing if n > 1 else 0)
    assert_same(c, z_observables(n) if n > 1 else qq.z_all(1), rng)


@pytest.mark.parametrize("seed,n", [(10, 7), (11, 8), (12, 10)])
def test_z_read_outs_of_many_qubits_match_per_circuit_path(seed, n):
    """Z words on 7 to 10 qubits, single and multi-wire terms in one
    observable: up to 8 qubits through the observable matrix (M |psi|^2 and
    (M^T g) psi), past that through a signed pass per term."""
    rng = np.random.default_rng(seed)
    c = layered_circuit(rng, n, 1, 2)
    obs = z_observables(n) + [qq.pauli("Z", n - 1) - qq.pauli("ZZ", [n - 7, n - 1], coeff=0.3)]
    assert_same(c, obs, rng, batch=9)
    words_only = [qq.pauli("ZZ", [0, n - 1]), qq.pauli("ZZZ", [1, n - 2, n - 1], coeff=-0.5)]
    assert_same(c, words_only, rng, batch=9)


def test_wire_without_prefix_block_and_x_observable_not_folded():
    rng = np.random.default_rng(7)
    c = layered_circuit(rng, 4, 2, 3, skip_wire=2)
    assert_same(c, z_observables(4), rng)
    # an X or Y term: the trailing gates cannot be folded into it
    assert_same(c, z_observables(4) + [qq.pauli("XY", [3, 1])], rng)


def test_probabilities_with_trailing_gates_are_not_folded():
    rng = np.random.default_rng(8)
    assert_same_probabilities(layered_circuit(rng, 3, 1, 4), rng)


def test_last_layer_of_shared_blocks_matches_per_circuit_path():
    """The last layer (shared one-qubit blocks on distinct wires at the end,
    all differentiated from the final state): with a wire whose only gate
    comes last (a prefix block among the layer's steps), a weight used in
    the layer and before it, constants, and Z words, an X term and
    probabilities read out."""
    rng = np.random.default_rng(30)
    c = Circuit(4, n_data=3, n_weights=4)
    c.ry(0, data(0)).ry(1, data(1)).rx(3, data(2))
    c.cnot(0, 1).add("CRY", (1, 3), weight(0))
    c.rx(0, weight(1)).rz(0, 0.3).ry(1, weight(0)).add("Rot", 3, weight(2), 0.7, weight(3))
    c.ry(2, weight(1))
    assert_same(c, z_observables(4), rng)
    assert_same(c, z_observables(4) + [qq.pauli("XY", [3, 1])], rng)
    assert_same_probabilities(c, rng)


def assert_same_probabilities(c, rng):
    """Probabilities and their gradients, batched and one circuit at a time."""
    d = rng.uniform(-np.pi, np.pi, size=(9, c.num_data))
    w = rng.uniform(-np.pi, np.pi, size=c.num_weights)
    batch = qq.probs(c, d, w)
    one = np.concatenate([qq.probs(c, d[i:i + 1], w) for i in range(9)])
    np.testing.assert_allclose(batch, one, rtol=0, atol=1e-12)
    dt = torch.tensor(d, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    weights = torch.linspace(-1, 1, 2 ** c.n_qubits, dtype=torch.float64)
    (qq.probs(c, dt, wt) * weights).sum().backward()
    gw = np.zeros_like(w)
    for i in range(9):
        di = torch.tensor(d[i:i + 1], requires_grad=True)
        wi = torch.tensor(w, requires_grad=True)
        (qq.probs(c, di, wi) * weights).sum().backward()
        np.testing.assert_allclose(dt.grad.numpy()[i], di.grad.numpy()[0], rtol=0, atol=1e-11)
        gw += wi.grad.numpy()
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=0, atol=1e-11)


def permutation_run(c, rng, length):
    n = c.n_qubits
    for _ in range(length):
        name = ["CNOT", "SWAP", "Toffoli"][rng.integers(0, 3 if n >= 3 else 2)]
        wires = [int(x) for x in rng.choice(n, 3 if name == "Toffoli" else 2, replace=False)]
        c.add(name, wires)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_permutation_runs_between_layers_match_per_circuit_path(n):
    rng = np.random.default_rng(20 + n)
    c = Circuit(n, n_data=3, n_weights=5)
    for layer in range(3):
        for w in range(n):
            c.ry(w, data(int(rng.integers(0, 3)))).rz(w, weight(int(rng.integers(0, 5))))
        permutation_run(c, rng, 4 + layer)
        c.add("CRX", (0, n - 1), weight(4))  # a differentiable multi-qubit op between runs
        permutation_run(c, rng, 2)
    c.rx(0, data(0))
    assert_same(c, z_observables(n) if n > 2 else qq.z_all(n), rng)
    assert_same(c, qq.z_all(n) + [qq.pauli("X", n - 1)], rng)  # not folded
    d = rng.uniform(-np.pi, np.pi, size=(9, 3))
    w = rng.uniform(-np.pi, np.pi, size=5)
    permutation_run(c, rng, 3)  # a run at the very end, read as probabilities
    np.testing.assert_allclose(qq.probs(c, d, w),
                               np.concatenate([qq.probs(c, d[i:i + 1], w) for i in range(9)]),
                               rtol=0, atol=1e-12)


def test_deep_ten_qubit_circuit_without_checkpoints():
    """80 blocks after the prefix at 10 qubits, 70 before the last layer
    (which needs no stored states): more stored states than the adjoint
    keeps, so it un-applies gates instead, and moves the final state back
    through the last layer for the steps before it."""
    c = qq.vqc_circuit(10, 9)
    assert_same(c, qq.z_all(10), np.random.default_rng(9), batch=9)


def test_seed002_vqc_batch_against_per_circuit_path():
    for n in (2, 4, 8):
        assert_same(qq.vqc_circuit(n, 2), qq.z_all(n), np.random.default_rng(n), batch=17)


def test_threads_and_concurrent_calls_repeat_bit_for_bit():
    """The worker pool: results with threads equal the single-threaded ones
    (trainable gradients to rounding, since chunks are summed in another
    grouping), repeat bit for bit, and calls made at the same time from
    several Python threads (one of them gets the workers, the others run
    alone) all return those same bits."""
    import threading

    rng = np.random.default_rng(5)
    c, obs = qq.vqc_circuit(4, 2), qq.z_all(4)
    d = rng.uniform(-np.pi, np.pi, size=(3000, 4))
    w = rng.uniform(-np.pi, np.pi, size=c.num_weights)

    def run(n_threads):
        dt = torch.tensor(d, requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        out = qq.expval(c, obs, dt, wt, n_threads=n_threads)
        (out * torch.arange(1, 5, dtype=torch.float64)).sum().backward()
        return out.detach().numpy(), dt.grad.numpy(), wt.grad.numpy()

    one = run(1)
    first = run(3)
    for a, b in zip(first, one):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    results = [None] * 6

    def worker(k):
        results[k] = [run(3) for _ in range(5)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for runs in results:
        for got in runs:
            for a, b in zip(got, first):
                assert np.array_equal(a, b)
