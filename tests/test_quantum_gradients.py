"""Adjoint-method gradients: against the parameter-shift rule, against finite
differences (torch.autograd.gradcheck) through the layers, in both precisions."""
import numpy as np
import pytest
import torch

import qode.quantum as qq
from quantum_helpers import random_circuit


@pytest.mark.parametrize("seed,n_qubits", [(0, 2), (1, 3), (2, 4)])
def test_adjoint_matches_parameter_shift(seed, n_qubits):
    rng = np.random.default_rng(seed)
    c = random_circuit(rng, n_qubits, 35)
    obs = qq.z_all(n_qubits) + [qq.pauli("XY", [0, 1]) * 0.5 + qq.pauli("Z", 1)]
    d = rng.uniform(-np.pi, np.pi, size=(4, 3))
    w = rng.uniform(-np.pi, np.pi, size=4)
    jac_d, jac_w = qq.param_shift_jacobian(c, obs, d, w)
    # The VJP with the k-th unit upstream vector is row k of the Jacobian.
    for k in range(len(obs)):
        dt = torch.tensor(d, requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        qq.expval(c, obs, dt, wt)[:, k].sum().backward()
        np.testing.assert_allclose(dt.grad.numpy(), jac_d[:, k, :], rtol=0, atol=1e-10)
        np.testing.assert_allclose(wt.grad.numpy(), jac_w[:, k, :].sum(0), rtol=0, atol=1e-10)


def test_gradcheck_expval_and_probs_over_whole_gate_set():
    rng = np.random.default_rng(5)
    c = random_circuit(rng, 3, 30)
    obs = qq.z_all(3) + [qq.pauli("YX", [2, 0])]
    d = torch.tensor(rng.uniform(-3, 3, size=(2, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(-3, 3, size=4), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: qq.expval(c, obs, a, b), (d, w))
    assert torch.autograd.gradcheck(lambda a, b: qq.probs(c, a, b), (d, w))


def test_gradcheck_through_quantum_layer():
    torch.manual_seed(0)
    layer = qq.QuantumLayer(in_features=5, n_qubits=3, n_layers=2).double()
    x = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert layer(x).shape == (2, 4, 3)
    params = (x, layer.embed.weight, layer.embed.bias, layer.weights)

    def f(x, W, b, weights):
        theta = torch.pi * torch.tanh(x @ W.T + b)
        return qq.expval(layer.circuit, layer.observables, theta, weights.reshape(-1))

    assert torch.autograd.gradcheck(f, params)
    # and through the module itself
    assert torch.autograd.gradcheck(lambda x: layer(x), (x,))


@pytest.mark.parametrize("output", ["abs", "real_imag"])
def test_gradcheck_through_superposition_layer(output):
    torch.manual_seed(1)
    layer = qq.SuperpositionLayer(in_features=3, n_qubits=2, n_layers=1, output=output).double()
    with torch.no_grad():
        layer.coefficients.copy_(torch.tensor([[0.7, 0.2], [-0.3, 0.5], [0.1, -0.4]]))
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert layer(x).shape == (3, layer.out_features)
    coeff = layer.normalized_coefficients()
    assert abs(float((coeff.detach().abs() ** 2).sum()) - 1.0) < 1e-12
    assert torch.autograd.gradcheck(lambda x: layer(x), (x,))
    # gradient reaches the complex coefficients and every branch's weights
    layer(x).sum().backward()
    assert layer.coefficients.grad.abs().sum() > 0
    for branch in layer.branches:
        assert branch.weights.grad.abs().sum() > 0


def test_superposition_matches_its_definition():
    torch.manual_seed(2)
    layer = qq.SuperpositionLayer(in_features=2, n_qubits=3, n_layers=2, output="real_imag").double()
    x = torch.randn(4, 2, dtype=torch.float64)
    a = layer.normalized_coefficients()
    mix = sum(a[k] * layer.branches[k](x).to(torch.complex128) for k in range(3))
    out = layer(x)
    torch.testing.assert_close(out, torch.cat([mix.real, mix.imag], -1))
    layer.output = "abs"
    torch.testing.assert_close(layer(x), mix.abs())


def test_complex64_gradients_close_to_complex128():
    rng = np.random.default_rng(9)
    c = random_circuit(rng, 4, 40)
    obs = qq.z_all(4)
    d = rng.normal(size=(3, 3))
    w = rng.normal(size=4)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        dt = torch.tensor(d, dtype=dtype, requires_grad=True)
        wt = torch.tensor(w, dtype=dtype, requires_grad=True)
        out = qq.expval(c, obs, dt, wt)
        assert out.dtype == dtype
        out.sum().backward()
        grads[dtype] = (dt.grad.double(), wt.grad.double())
    torch.testing.assert_close(grads[torch.float32][0], grads[torch.float64][0], atol=1e-4, rtol=0)
    torch.testing.assert_close(grads[torch.float32][1], grads[torch.float64][1], atol=1e-4, rtol=0)


def test_batch_shape_and_threads_do_not_change_results():
    rng = np.random.default_rng(4)
    c = qq.vqc_circuit(6, 2)
    theta = rng.normal(size=(7, 50, 6))
    w = rng.normal(size=36)
    one = qq.expval(c, qq.z_all(6), theta, w, n_threads=1)
    many = qq.expval(c, qq.z_all(6), theta.reshape(-1, 6), w, n_threads=2)
    assert one.shape == (7, 50, 6)
    np.testing.assert_array_equal(one.reshape(-1, 6), many)
    td = torch.tensor(theta, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    qq.expval(c, qq.z_all(6), td, tw, n_threads=1).sum().backward()
    g1 = (td.grad.clone(), tw.grad.clone())
    td.grad = None
    tw.grad = None
    qq.expval(c, qq.z_all(6), td, tw, n_threads=2).sum().backward()
    torch.testing.assert_close(td.grad, g1[0], rtol=0, atol=0)
    torch.testing.assert_close(tw.grad, g1[1], rtol=1e-13, atol=1e-12)


def test_edge_cases_empty_batch_no_gates_weights_only():
    c = qq.vqc_circuit(3, 1)
    assert qq.expval(c, qq.z_all(3), np.zeros((0, 3)), np.zeros(9)).shape == (0, 3)
    x = torch.zeros((0, 3), dtype=torch.float64, requires_grad=True)
    w = torch.zeros(9, dtype=torch.float64, requires_grad=True)
    qq.expval(c, qq.z_all(3), x, w).sum().backward()
    assert x.grad.shape == (0, 3) and torch.all(w.grad == 0)
    empty = qq.Circuit(2)
    np.testing.assert_array_equal(qq.probs(empty), [1, 0, 0, 0])
    np.testing.assert_array_equal(qq.expval(empty, [qq.pauli("Z", 1), qq.pauli("II", [0, 1])]), [1, 1])
    one = qq.Circuit(1).rx(0, qq.weight(0))
    w = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    out = qq.expval(one, [qq.pauli("Z", 0)], None, w)
    assert out.shape == (1,) and out.dtype == torch.float64
    out.sum().backward()
    assert abs(float(w.grad[0]) + np.sin(0.3)) < 1e-12


@pytest.mark.parametrize("read_out", ["expval", "probs"])
def test_create_graph_gives_first_order_gradients_and_refuses_a_second(read_out):
    # the adjoint sweep is not differentiable: with create_graph=True the
    # gradients are the usual ones, and differentiating them again is an error
    # (not a silent zero)
    c = qq.vqc_circuit(3, 1)
    data = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(9, dtype=torch.float64, requires_grad=True)

    def loss():
        if read_out == "expval":
            return qq.expval(c, qq.z_all(3), data, weights).pow(2).sum()
        return qq.probs(c, data, weights)[:, 1:3].pow(2).sum()

    plain = torch.autograd.grad(loss(), (data, weights))
    graphed = torch.autograd.grad(loss(), (data, weights), create_graph=True)
    for a, b in zip(plain, graphed):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        graphed[1].sum().backward()
