"""Observables: weighted sums of Pauli words.

>>> pauli("XZ", [0, 2])                      # X on wire 0, Z on wire 2
>>> 0.5 * pauli("Z", 0) + 2.0 * pauli("YY", [1, 2])
>>> z_all(4)                                 # [<Z_0>, ..., <Z_3>] as 4 observables
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PauliSum:
    """sum_t coeff_t * P_t; each term is (coeff, word, wires), e.g. (0.5, "XZ", (0, 2))."""

    terms: tuple[tuple[float, str, tuple[int, ...]], ...]

    def __add__(self, other: "PauliSum") -> "PauliSum":
        if not isinstance(other, PauliSum):
            return NotImplemented
        return PauliSum(self.terms + other.terms)

    def __mul__(self, factor: float) -> "PauliSum":
        return PauliSum(tuple((c * float(factor), w, ws) for c, w, ws in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> "PauliSum":
        return self * -1.0

    def __sub__(self, other: "PauliSum") -> "PauliSum":
        if not isinstance(other, PauliSum):
            return NotImplemented
        return self + (-other)

    def max_wire(self) -> int:
        return max((max(ws) for _, _, ws in self.terms if ws), default=-1)


def pauli(word: str, wires: Sequence[int] | int, coeff: float = 1.0) -> PauliSum:
    """The Pauli word ``word`` (letters I, X, Y, Z) on ``wires``, times ``coeff``."""
    wires = (wires,) if isinstance(wires, (int, np.integer)) else tuple(int(w) for w in wires)
    word = word.upper()
    if len(word) != len(wires):
        raise ValueError(f"Pauli word {word!r} has {len(word)} letters but {len(wires)} wires")
    if any(ch not in "IXYZ" for ch in word):
        raise ValueError(f"Pauli word {word!r} may contain only I, X, Y, Z")
    if len(set(wires)) != len(wires):
        raise ValueError(f"Pauli word on repeated wires {wires}")
    if any(w < 0 for w in wires):
        raise ValueError(f"negative wire in {wires}")
    if not np.isfinite(coeff):
        raise ValueError(f"non-finite coefficient {coeff}")
    return PauliSum(((float(coeff), word, wires),))


def z_all(n_qubits: int) -> list[PauliSum]:
    """The observables Z_0, ..., Z_{n-1} (the VQC read-out)."""
    return [pauli("Z", q) for q in range(n_qubits)]


def observables_spec(observables: Sequence[PauliSum], n_qubits: int) -> tuple:
    """Packs observables as the C core reads them: term offsets, x and z bit masks
    (bit n-1-w for wire w) and coefficients.

    Cached (PauliSum is immutable), so that a layer called in a training loop
    does not repack the same observables every time."""
    for k, obs in enumerate(observables):
        if not isinstance(obs, PauliSum):
            raise TypeError(f"observable {k} must be a PauliSum (use pauli(...)), got "
                            f"{type(obs).__name__}")
    return _packed_observables(tuple(observables), int(n_qubits))


@functools.lru_cache(maxsize=64)
def _packed_observables(observables: tuple[PauliSum, ...], n_qubits: int) -> tuple:
    starts = [0]
    xs: list[int] = []
    zs: list[int] = []
    coeffs: list[float] = []
    for k, obs in enumerate(observables):
        if obs.max_wire() >= n_qubits:
            raise ValueError(f"observable {k} acts on wire {obs.max_wire()}, but the circuit "
                             f"has {n_qubits} qubits")
        for coeff, word, wires in obs.terms:
            x = z = 0
            for letter, w in zip(word, wires):
                bit = 1 << (n_qubits - 1 - w)
                if letter in "XY":
                    x |= bit
                if letter in "ZY":
                    z |= bit
            xs.append(x)
            zs.append(z)
            coeffs.append(coeff)
        starts.append(len(coeffs))
    packed = (np.array(starts, dtype=np.int64), np.array(xs, dtype=np.uint64),
              np.array(zs, dtype=np.uint64), np.array(coeffs, dtype=np.float64))
    for a in packed:  # shared through the cache: nobody may change them
        a.setflags(write=False)
    return packed
