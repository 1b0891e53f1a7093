"""The dense mode of the tiled path (csrc/quantum/tiled_dense*.c): a batch whose
gates after a real encoding all read no data runs as one matrix U per call, and
its weight gradients come from one sweep over C = sum_b psi_b lam_b^+.

Checked against the per-circuit path (a batch of one runs the plain state
kernels) on random circuits over the gate set, with Z, X and Y read-outs and
probabilities, and with torch.autograd.gradcheck.  ``_C.qsim_path`` says which
path a batch takes, so that every test knows it exercised the one it names.
"""
import numpy as np
import pytest
import torch

import qode.quantum as qq
from qode import _C
from qode.quantum import Circuit, data, weight
from qode.quantum.observables import observables_spec

ONE_QUBIT = ["H", "X", "Y", "Z", "S", "T", "SX", "RX", "RY", "RZ", "PhaseShift", "Rot", "U3"]
N_PARAMS = {"RX": 1, "RY": 1, "RZ": 1, "PhaseShift": 1, "Rot": 3, "U3": 3}
SHARED_TWO_QUBIT = ["CNOT", "CZ", "SWAP", "CRX", "CRY", "CRZ", "IsingXX", "IsingYY", "IsingZZ"]
WITH_ANGLE = {"CRX", "CRY", "CRZ", "IsingXX", "IsingYY", "IsingZZ"}


def path(c, obs, w, batch=64):
    spec = observables_spec(obs, c.n_qubits) if obs else None
    return _C.qsim_path(c.spec(), np.asarray(w, dtype=np.float64), spec, batch)


def shared_angle(rng, n_weights):
    return weight(int(rng.integers(0, n_weights))) if rng.random() < 0.7 else float(rng.normal())


def real_encoded_circuit(rng, n, n_layers, n_data=4, n_weights=8):
    """A real encoding (RY of data, with H, X, Z and constant RY between
    them, sometimes two data angles on a wire), then only gates that read no
    data: random one-qubit gates, two-qubit gates, a Toffoli, a unitary."""
    c = Circuit(n, n_data=n_data, n_weights=n_weights)
    for w in range(n):
        c.ry(w, data(int(rng.integers(0, n_data))))
        if rng.random() < 0.4:
            c.add(["H", "X", "Z"][rng.integers(0, 3)], w)
            c.ry(w, data(int(rng.integers(0, n_data))) if rng.random() < 0.5 else 0.3)
    for _ in range(n_layers):
        for w in range(n):
            for _ in range(int(rng.integers(1, 4))):
                name = ONE_QUBIT[rng.integers(0, len(ONE_QUBIT))]
                c.add(name, w, *[shared_angle(rng, n_weights) for _ in range(N_PARAMS.get(name, 0))])
        for w in range(n - 1):
            name = SHARED_TWO_QUBIT[rng.integers(0, len(SHARED_TWO_QUBIT))]
            angles = [shared_angle(rng, n_weights)] if name in WITH_ANGLE else []
            c.add(name, (w, (w + 1 + int(rng.integers(0, n - 1))) % n), *angles)
    if n >= 3:
        c.toffoli(0, 1, 2)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))
    c.unitary(q, [n - 1, 0])
    return c


def per_circuit(c, obs, d, w, up):
    """Read-outs and gradients one circuit at a time (the untiled path)."""
    values, gd, gw = [], [], np.zeros(len(w))
    for i in range(len(d)):
        dt = torch.tensor(d[i:i + 1], requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        out = qq.expval(c, obs, dt, wt)
        (out * torch.as_tensor(up[i])).sum().backward()
        values.append(out.detach().numpy()[0])
        gd.append(dt.grad.numpy()[0])
        gw += wt.grad.numpy()
    return np.array(values), np.array(gd), gw


def batched(c, obs, d, w, up, n_threads=0):
    dt = torch.tensor(d, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    out = qq.expval(c, obs, dt, wt, n_threads=n_threads)
    (out * torch.as_tensor(up)).sum().backward()
    return out.detach().numpy(), dt.grad.numpy(), wt.grad.numpy()


def mixed_observables(n):
    obs = qq.z_all(n) + [0.5 * qq.pauli("ZZ", [0, n - 1])]
    if n >= 2:
        obs.append(qq.pauli("XY", [0, 1], coeff=-0.7) + qq.pauli("Z", n - 1))
    return obs


@pytest.mark.parametrize("seed,n,layers", [(0, 2, 1), (1, 3, 2), (2, 4, 2), (3, 4, 4),
                                           (4, 5, 4), (5, 5, 6)])
@pytest.mark.parametrize("diagonal", [True, False])
def test_random_real_encoded_circuits_match_per_circuit_path(seed, n, layers, diagonal):
    rng = np.random.default_rng(seed)
    c = real_encoded_circuit(rng, n, layers)
    obs = qq.z_all(n) + [qq.pauli("ZZ", [0, n - 1], coeff=0.5)] if diagonal else mixed_observables(n)
    d = rng.uniform(-np.pi, np.pi, size=(21, c.num_data))  # a partial tile at the end
    w = rng.uniform(-np.pi, np.pi, size=c.num_weights)
    assert path(c, obs, w) == "dense"
    up = rng.normal(size=(len(d), len(obs)))
    ref = per_circuit(c, obs, d, w, up)
    ours = batched(c, obs, d, w, up)
    for a, b, what in zip(ours, ref, ("read-outs", "data gradients", "weight gradients")):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11, err_msg=what)


def heads_circuit(kind, n=4, layers=2):
    """Seed 002's layers after one of the two kinds of encoding dense mode
    handles: every wire a single real rotation of data first ("rotations",
    here RY of a scaled column with a constant RY after it, which joins the
    layers), or heads of several data angles with gates between them
    ("general": the product-state prefix of tiled_prefix.c)."""
    c = Circuit(n, n_data=2 * n, n_weights=3 * n * layers)
    for q in range(n):
        c.ry(q, data(q))
        if kind == "general":
            c.add("H", q).ry(q, data(n + q)).add("X", q)
        else:
            c.ry(q, 0.4 * (q + 1))
    for layer in range(layers):
        for q in range(n):
            base = 3 * (n * layer + q)
            c.rx(q, weight(base)).ry(q, weight(base + 1)).rz(q, weight(base + 2))
        for q in range(n):
            c.cnot(q, (q + 1) % n)
    return c


@pytest.mark.parametrize("kind", ["rotations", "general"])
def test_both_kinds_of_encoding_match_per_circuit_path(kind):
    rng = np.random.default_rng(11)
    c, obs = heads_circuit(kind), qq.z_all(4) + [qq.pauli("XX", [0, 2])]
    d = rng.uniform(-np.pi, np.pi, size=(19, c.num_data))
    w = rng.uniform(-np.pi, np.pi, size=c.num_weights)
    assert path(c, obs, w) == "dense"
    up = rng.normal(size=(len(d), len(obs)))
    for a, b in zip(batched(c, obs, d, w, up), per_circuit(c, obs, d, w, up)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)


def test_many_data_columns_and_observables_take_the_general_loops():
    """More data columns than the per-tile sin/cos table holds (64) and more
    observables than the observable matrix takes (64): dense mode still,
    with the per-rotation sin/cos and the per-term read-out."""
    n = 4
    c = Circuit(n, n_data=70, n_weights=3 * n)
    for q in range(n):
        c.ry(q, data(17 * q + 3))
    for q in range(n):
        c.rx(q, weight(3 * q)).ry(q, weight(3 * q + 1)).rz(q, weight(3 * q + 2))
    for q in range(n):
        c.cnot(q, (q + 1) % n)
    for q in range(n):
        c.ry(q, weight(q))
    rng = np.random.default_rng(13)
    obs = [qq.pauli("Z" * len(ws), ws, coeff=float(rng.normal()))
           for ws in ([0], [1], [2], [3], [0, 1], [1, 2], [2, 3], [0, 3])] * 9
    assert len(obs) > 64
    w = rng.uniform(-np.pi, np.pi, size=c.num_weights)
    assert path(c, obs, w) == "dense"
    d = rng.uniform(-np.pi, np.pi, size=(10, c.num_data))
    up = rng.normal(size=(len(d), len(obs)))
    for a, b in zip(batched(c, obs, d, w, up), per_circuit(c, obs, d, w, up)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_probabilities_and_their_gradients_in_dense_mode():
    rng = np.random.default_rng(7)
    c = real_encoded_circuit(rng, 3, 3)
    assert path(c, None, np.zeros(c.num_weights)) == "dense"
    d = torch.tensor(rng.uniform(-3, 3, size=(13, c.num_data)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, size=c.num_weights), requires_grad=True)
    up = torch.tensor(rng.normal(size=(13, 8)))
    p = qq.probs(c, d, w)
    (p * up).sum().backward()
    for i in range(13):
        di = d.detach()[i:i + 1].clone().requires_grad_(True)
        wi = w.detach().clone().requires_grad_(True)
        pi = qq.probs(c, di, wi)
        (pi * up[i]).sum().backward()
        np.testing.assert_allclose(p.detach()[i].numpy(), pi.detach()[0].numpy(), atol=1e-12)
        np.testing.assert_allclose(d.grad[i].numpy(), di.grad[0].numpy(), atol=1e-11)


def test_seed002_vqc_runs_dense_and_passes_gradcheck():
    c, obs = qq.vqc_circuit(3, 2), qq.z_all(3)
    rng = np.random.default_rng(3)
    d = torch.tensor(rng.uniform(-3, 3, size=(9, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, size=c.num_weights), requires_grad=True)
    assert path(c, obs, w.detach().numpy(), batch=9) == "dense"
    assert torch.autograd.gradcheck(lambda a, b: qq.expval(c, obs, a, b), (d, w), atol=1e-7)


def test_dense_mode_repeats_bit_for_bit_on_threads():
    c, obs = qq.vqc_circuit(4, 3), qq.z_all(4)
    rng = np.random.default_rng(5)
    d = rng.uniform(-3, 3, size=(1001, 4))
    w = rng.uniform(-3, 3, size=c.num_weights)
    up = rng.normal(size=(1001, 4))
    first = batched(c, obs, d, w, up, n_threads=2)
    for _ in range(3):
        again = batched(c, obs, d, w, up, n_threads=2)
        for a, b in zip(first, again):
            assert np.array_equal(a, b)
    one = batched(c, obs, d, w, up, n_threads=1)
    for a, b in zip(first, one):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)


def test_what_keeps_a_batch_out_of_dense_mode():
    n = 4
    obs = qq.z_all(n)
    w = np.linspace(0.1, 1.0, 3 * n)
    reupload = qq.vqc_circuit(n, 2)
    reupload.ry(0, data(0))  # data after the encoding
    assert path(reupload, obs, np.linspace(0.1, 1.0, reupload.num_weights)) == "tiles"
    rx = Circuit(n, n_data=n, n_weights=3 * n)  # RX encoding: a complex product state
    for q in range(n):
        rx.rx(q, data(q))
    for q in range(n):
        rx.rot(q, weight(3 * q), weight(3 * q + 1), weight(3 * q + 2))
        rx.cnot(q, (q + 1) % n)
    assert path(rx, obs, w) == "tiles"
    shallow = qq.vqc_circuit(6, 1)  # U psi would cost more than the gates
    assert path(shallow, qq.z_all(6), np.zeros(shallow.num_weights)) == "tiles"
    for big in (6, 8):  # too many qubits: U and the sums of C no longer fit the caches
        assert path(qq.vqc_circuit(big, 6), qq.z_all(big), np.zeros(18 * big)) == "tiles"
    assert path(qq.vqc_circuit(n, 2), obs, np.zeros(24), batch=1) == "rows"


# ---- the forward record (qode_qsim_record_doubles): U psi kept for the adjoint ----

def record_and_gradients(c, obs, d, w, up, n_threads):
    """(read-outs, record, vjp with it, vjp without it) through _C, as the torch
    layer calls them."""
    spec, ospec = c.spec(), observables_spec(obs, c.n_qubits)
    _, ev, _, record = _C.qsim_forward(spec, d, w, 3, ospec, False, False, True, n_threads)
    with_record = _C.qsim_adjoint_vjp(spec, d, w, 3, None, record, ospec, up, None, n_threads)
    without = _C.qsim_adjoint_vjp(spec, d, w, 3, None, None, ospec, up, None, n_threads)
    return ev, record, with_record, without


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_forward_record_changes_no_bit_of_the_gradients(n, n_threads):
    rng = np.random.default_rng(n)
    for c in (qq.vqc_circuit(n, 2), heads_circuit("rotations", n)):
        obs = qq.z_all(n) + [qq.pauli("ZZ", [0, n - 1], coeff=0.5)]
        d = rng.uniform(-np.pi, np.pi, size=(37, c.num_data))  # a partial tile at the end
        w = rng.uniform(-np.pi, np.pi, size=c.num_weights)
        up = rng.normal(size=(len(d), len(obs)))
        ev, record, with_record, without = record_and_gradients(c, obs, d, w, up, n_threads)
        assert record is not None and record.shape == (5 * 3 * 8 * 2 ** n,)  # 5 tiles
        np.testing.assert_array_equal(ev, _C.qsim_forward(c.spec(), d, w, 3, observables_spec(
            obs, n), False, False, False, n_threads)[1])
        for a, b in zip(with_record, without):
            np.testing.assert_array_equal(a, b)
        ref = per_circuit(c, obs, d[:9], w, up[:9])  # and both are right
        np.testing.assert_allclose(with_record[0][:9], ref[1], rtol=0, atol=1e-11)


def test_only_the_dense_rotation_encoding_keeps_a_record():
    rng = np.random.default_rng(2)
    general = heads_circuit("general")
    obs = qq.z_all(4)
    d = rng.uniform(-3, 3, size=(16, general.num_data))
    w = rng.uniform(-3, 3, size=general.num_weights)
    assert path(general, obs, w) == "dense"
    assert record_and_gradients(general, obs, d, w, np.ones((16, 4)), 1)[1] is None
    for c in (qq.vqc_circuit(8, 2), qq.vqc_circuit(1, 2)):  # tiles, not dense
        obs = qq.z_all(c.n_qubits)
        assert path(c, obs, np.zeros(c.num_weights)) == "tiles"
        angles = rng.uniform(-3, 3, size=(16, c.n_qubits))
        record = record_and_gradients(c, obs, angles, np.zeros(c.num_weights),
                                      np.ones((16, c.n_qubits)), 1)[1]
        assert record is None
    vqc = qq.vqc_circuit(4, 2)  # probabilities read: no record either
    angles = rng.uniform(-3, 3, size=(16, 4))
    out = _C.qsim_forward(vqc.spec(), angles, np.zeros(24), 3, None, True, False, True, 1)
    assert out[2].shape == (16, 16) and out[3] is None


def test_a_forward_record_of_the_wrong_size_is_refused():
    c, obs = qq.vqc_circuit(4, 2), qq.z_all(4)
    spec, ospec = c.spec(), observables_spec(obs, 4)
    rng = np.random.default_rng(4)
    d, w, up = rng.uniform(-3, 3, size=(20, 4)), rng.uniform(-3, 3, size=24), np.ones((20, 4))
    record = _C.qsim_forward(spec, d, w, 3, ospec, False, False, True, 1)[3]
    for bad in (record[:-1], record.reshape(2, -1), np.zeros(0)):
        with pytest.raises(ValueError, match="forward record"):
            _C.qsim_adjoint_vjp(spec, d, w, 3, None, bad, ospec, up, None, 1)
    with pytest.raises(ValueError, match="forward record"):  # recorded for 20 circuits, not 8
        _C.qsim_adjoint_vjp(spec, d[:8], w, 3, None, record, ospec, up[:8], None, 1)
    with pytest.raises(ValueError, match="forward record"):  # 8 qubits keep none
        _C.qsim_adjoint_vjp(qq.vqc_circuit(8, 2).spec(), np.zeros((20, 8)), np.zeros(48), 3,
                            None, record, observables_spec(qq.z_all(8), 8), np.ones((20, 8)),
                            None, 1)


def test_a_record_is_kept_only_when_a_backward_can_follow(monkeypatch):
    from qode.quantum import execute
    asked = []
    forward_recorded = execute._Runner.forward_recorded

    def spy(self, d, w, want_record):
        asked.append(want_record)
        return forward_recorded(self, d, w, want_record)

    monkeypatch.setattr(execute._Runner, "forward_recorded", spy)
    c, obs = qq.vqc_circuit(4, 2), qq.z_all(4)
    d = torch.rand(16, 4, dtype=torch.float64)
    w = torch.rand(24, dtype=torch.float64, requires_grad=True)
    qq.expval(c, obs, d, w)
    with torch.no_grad():
        qq.expval(c, obs, d, w)
    qq.expval(c, obs, d, w.detach())
    assert asked == [True, False, False]


def test_a_second_backward_through_a_recorded_forward_gives_the_same_gradients():
    c, obs = qq.vqc_circuit(4, 2), qq.z_all(4)
    rng = np.random.default_rng(6)
    d = torch.tensor(rng.uniform(-3, 3, size=(24, 4)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, size=24), requires_grad=True)
    out = qq.expval(c, obs, d, w)
    first = torch.autograd.grad(out.sum(), (d, w), retain_graph=True)
    second = torch.autograd.grad(out.sum(), (d, w))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_a_record_past_one_gib_is_not_kept():
    """48 doubles per 4-qubit circuit: 2.9 million circuits would need 1.04 GiB."""
    c, obs = qq.vqc_circuit(4, 2), qq.z_all(4)
    d = np.linspace(-3, 3, 2_900_000 * 4).reshape(-1, 4)
    out = _C.qsim_forward(c.spec(), d, np.zeros(24), 3, observables_spec(obs, 4), False, False,
                          True, 0)
    assert out[1].shape == (2_900_000, 4) and out[3] is None
