"""Finite-shot sampling: seeded, reproducible, and statistically consistent
with the exact probabilities."""
import numpy as np

import qode.quantum as qq


def circuit():
    c = qq.Circuit(3)
    c.ry(0, qq.data(0)).h(1).cnot(1, 2).rx(2, qq.data(1))
    return c


def test_sample_frequencies_within_confidence_interval():
    c = circuit()
    d = np.array([[0.7, 1.3], [2.1, -0.4]])
    shots = 20000
    bits = qq.sample(c, shots, d, seed=123)
    assert bits.shape == (2, shots, 3) and set(np.unique(bits)) <= {0, 1}
    index = (bits * (1 << np.arange(2, -1, -1))).sum(-1)
    p = qq.probs(c, d)
    for b in range(2):
        freq = np.bincount(index[b], minlength=8) / shots
        sigma = np.sqrt(p[b] * (1 - p[b]) / shots)
        # 5 sigma per outcome: a false alarm has probability ~ 1e-5 over all cells
        assert np.all(np.abs(freq - p[b]) <= 5 * sigma + 1e-12)
    # <Z_0> estimated from the samples against the exact value
    z0 = 1 - 2 * bits[..., 0].mean(-1)
    exact = qq.expval(c, [qq.pauli("Z", 0)], d)[:, 0]
    assert np.all(np.abs(z0 - exact) <= 5 * np.sqrt((1 - exact ** 2) / shots) + 1e-12)


def test_sampling_is_seeded():
    c = circuit()
    d = np.array([[0.7, 1.3]] * 3)
    a = qq.sample(c, 500, d, seed=5)
    b = qq.sample(c, 500, d, seed=5)
    other = qq.sample(c, 500, d, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other)
    # circuits of a batch draw independent samples
    assert not np.array_equal(a[0], a[1])
    # results do not depend on threading
    np.testing.assert_array_equal(a, qq.sample(c, 500, d, seed=5, n_threads=2))


def test_deterministic_outcomes():
    c = qq.Circuit(3)
    c.x(0).x(2)
    bits = qq.sample(c, 50, seed=1)
    assert bits.shape == (50, 3)
    assert np.all(bits == [1, 0, 1])
