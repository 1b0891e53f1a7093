"""Exact decompositions used by the OpenQASM export.

* One-qubit unitary:  U = e^{i g} U3(theta, phi, delta).
* Two-qubit unitary (KAK / Cartan decomposition, Kraus & Cirac 2001):
      U = e^{i g} (A1 x A2) exp(i (a XX + b YY + c ZZ)) (B1 x B2),
  found in the "magic basis", in which SU(2) x SU(2) is the real orthogonal
  group SO(4) and XX, YY, ZZ are diagonal.  Matrices are indexed with the first
  wire as the most significant bit (PennyLane's convention).
"""
from __future__ import annotations

import cmath
import math

import numpy as np

_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]])
_Z = np.diag([1.0 + 0j, -1.0])
# Columns: the magic basis (Bell states with phases).
_MAGIC = np.array([[1, 0, 0, 1j], [0, 1j, 1, 0], [0, 1j, -1, 0], [1, 0, 0, -1j]]) / np.sqrt(2)


def u3_angles(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(theta, phi, delta, g) with matrix = e^{i g} U3(theta, phi, delta)."""
    u = np.asarray(matrix, dtype=np.complex128)
    theta = 2 * math.atan2(abs(u[1, 0]), abs(u[0, 0]))
    if abs(u[0, 0]) > 1e-12:
        g = cmath.phase(u[0, 0])
        if abs(u[1, 0]) > 1e-12:
            phi = cmath.phase(u[1, 0]) - g
            delta = cmath.phase(-u[0, 1]) - g
        else:  # diagonal: only phi + delta matters
            phi = 0.0
            delta = cmath.phase(u[1, 1]) - g
    else:  # anti-diagonal: only phi - delta matters
        phi = 0.0
        g = cmath.phase(u[1, 0])
        delta = cmath.phase(-u[0, 1]) - g
    return theta, phi, delta, g


def _kron_factor(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A, C with k = A x C for k in SU(2) x SU(2) (up to rounding)."""
    r = k.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)  # rows (a_i a_j), cols (c_i c_j)
    u, s, vh = np.linalg.svd(r)
    a = (u[:, 0] * np.sqrt(s[0])).reshape(2, 2)
    c = (vh[0, :] * np.sqrt(s[0])).reshape(2, 2)
    # fix the split of the common phase: make det(a) = 1
    phase = np.sqrt(np.linalg.det(a))
    return a / phase, c * phase


def kak(matrix: np.ndarray, rng_seed: int = 1234):
    """Two-qubit KAK decomposition.

    Returns
    -------
    (a1, a2, b1, b2, (a, b, c), g) with
    matrix = e^{i g} kron(a1, a2) expm(i (a XX + b YY + c ZZ)) kron(b1, b2).
    """
    u = np.asarray(matrix, dtype=np.complex128)
    det = np.linalg.det(u)
    g0 = cmath.phase(det) / 4
    us = u * cmath.exp(-1j * g0)  # in SU(4)
    up = _MAGIC.conj().T @ us @ _MAGIC
    m = up.T @ up  # symmetric unitary: real and imaginary parts commute
    rng = np.random.default_rng(rng_seed)
    for _ in range(10):
        w = rng.uniform(0.5, 2.0)
        _, o = np.linalg.eigh(m.real + w * m.imag)
        d = np.diag(o.T @ m @ o)
        if np.allclose(o.T @ m @ o, np.diag(d), atol=1e-9):
            break
    else:  # pragma: no cover - does not happen for unitary input
        raise ValueError("KAK decomposition failed to diagonalise; is the matrix unitary?")
    if np.linalg.det(o) < 0:
        o[:, 0] = -o[:, 0]
    f = np.sqrt(d)
    if np.prod(f).real < 0:
        f[0] = -f[0]
    k1 = up @ o @ np.diag(1 / f)  # real orthogonal, det 1
    k2 = o.T
    left = _MAGIC @ k1 @ _MAGIC.conj().T
    right = _MAGIC @ k2 @ _MAGIC.conj().T
    # the middle: e^{i phi_k} on magic vector k; XX, YY, ZZ are +-1 there
    signs = np.array([[1.0] + [(_MAGIC.conj().T @ np.kron(p, p) @ _MAGIC)[k, k].real
                               for p in (_X, _Y, _Z)] for k in range(4)])
    gm, a, b, c = np.linalg.solve(signs, np.angle(f))
    a1, a2 = _kron_factor(left)
    b1, b2 = _kron_factor(right)
    # collect the remaining global phase numerically (it is exact up to rounding)
    rebuilt = np.kron(a1, a2) @ _interaction(a, b, c) @ np.kron(b1, b2)
    k = int(np.argmax(abs(rebuilt)))
    g = cmath.phase(u.flat[k] / rebuilt.flat[k])
    return a1, a2, b1, b2, (float(a), float(b), float(c)), g


def _interaction(a: float, b: float, c: float) -> np.ndarray:
    """expm(i (a XX + b YY + c ZZ)) (the three terms commute)."""
    out = np.eye(4, dtype=complex)
    for t, p in ((a, _X), (b, _Y), (c, _Z)):
        pp = np.kron(p, p)
        out = out @ (math.cos(t) * np.eye(4) + 1j * math.sin(t) * pp)
    return out
