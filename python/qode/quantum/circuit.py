"""Circuits as plain data, built in a few readable lines.

A :class:`Circuit` is a list of gates on ``n_qubits`` wires.  Every angle is one of

* a number (a constant),
* ``data(i)``: column ``i`` of the per-circuit data (one row per circuit in a
  batch; typically the encoded input features),
* ``weight(i)``: entry ``i`` of the trainable weight vector shared by the batch.

Wire convention (PennyLane's): wire 0 is the most significant bit of a
basis-state index, so ``probs()[..., 1]`` of a 2-qubit circuit is |01>, i.e.
wire 0 in |0> and wire 1 in |1>.

Example
-------
>>> c = Circuit(2)
>>> c.ry(0, data(0)).ry(1, data(1))
>>> c.rx(0, weight(0)).cnot(0, 1)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

# Gate kinds: must match qode_gate_kind in csrc/quantum/circuit.h.
GATE_KINDS = {
    "H": 0, "X": 1, "Y": 2, "Z": 3, "S": 4, "T": 5, "SX": 6,
    "RX": 7, "RY": 8, "RZ": 9, "PhaseShift": 10, "Rot": 11, "U3": 12,
    "CNOT": 13, "CZ": 14, "SWAP": 15, "CRX": 16, "CRY": 17, "CRZ": 18,
    "IsingXX": 19, "IsingYY": 20, "IsingZZ": 21, "Toffoli": 22,
    "Unitary1": 23, "Unitary2": 24,
}
# (number of wires, number of angles) per gate name.
GATE_SHAPES = {
    "H": (1, 0), "X": (1, 0), "Y": (1, 0), "Z": (1, 0), "S": (1, 0), "T": (1, 0),
    "SX": (1, 0), "RX": (1, 1), "RY": (1, 1), "RZ": (1, 1), "PhaseShift": (1, 1),
    "Rot": (1, 3), "U3": (1, 3), "CNOT": (2, 0), "CZ": (2, 0), "SWAP": (2, 0),
    "CRX": (2, 1), "CRY": (2, 1), "CRZ": (2, 1), "IsingXX": (2, 1), "IsingYY": (2, 1),
    "IsingZZ": (2, 1), "Toffoli": (3, 0), "Unitary1": (1, 0), "Unitary2": (2, 0),
}

# Parameter sources: must match qode_param_source.
SOURCE_DATA, SOURCE_WEIGHT, SOURCE_CONSTANT = 0, 1, 2


@dataclass(frozen=True)
class Data:
    """An angle read from column ``index`` of the per-circuit data."""

    index: int


@dataclass(frozen=True)
class Weight:
    """An angle read from entry ``index`` of the shared trainable weights."""

    index: int


def data(index: int) -> Data:
    """Angle taken from data column ``index`` (one value per circuit)."""
    return Data(int(index))


def weight(index: int) -> Weight:
    """Angle taken from trainable weight ``index`` (shared by the batch)."""
    return Weight(int(index))


Angle = Union[float, int, Data, Weight]


@dataclass
class Gate:
    """One gate: its name, wires, angles, and matrix (QubitUnitary only)."""

    name: str
    wires: tuple[int, ...]
    angles: tuple[Angle, ...] = ()
    matrix: np.ndarray | None = None


@dataclass
class Circuit:
    """A quantum circuit on ``n_qubits`` wires, started in |0...0>.

    Parameters
    ----------
    n_qubits : int
        Number of wires.
    n_data, n_weights : int, optional
        Number of data columns / trainable weights the circuit expects.  By
        default one more than the largest index used.
    """

    n_qubits: int
    n_data: int | None = None
    n_weights: int | None = None
    gates: list[Gate] = field(default_factory=list)

    def __post_init__(self) -> None:
        if int(self.n_qubits) < 1:
            raise ValueError(f"a circuit needs at least one qubit, got {self.n_qubits}")
        self.n_qubits = int(self.n_qubits)

    # -- generic -----------------------------------------------------------------
    def add(self, name: str, wires: Sequence[int] | int, *angles: Angle,
            matrix: np.ndarray | None = None) -> "Circuit":
        """Appends gate ``name`` (a key of ``GATE_KINDS``); returns ``self``."""
        if name not in GATE_KINDS:
            raise ValueError(f"unknown gate {name!r}; known gates: {sorted(GATE_KINDS)}")
        wires = (wires,) if isinstance(wires, (int, np.integer)) else tuple(wires)
        wires = tuple(int(w) for w in wires)
        n_wires, n_angles = GATE_SHAPES[name]
        if len(wires) != n_wires:
            raise ValueError(f"{name} acts on {n_wires} wire(s), got wires {wires}")
        for w in wires:
            if not 0 <= w < self.n_qubits:
                raise ValueError(f"{name}: wire {w} out of range for {self.n_qubits} qubits")
        if len(set(wires)) != len(wires):
            raise ValueError(f"{name}: repeated wires {wires}; the wires of a multi-qubit "
                             "gate must be distinct")
        if len(angles) != n_angles:
            raise ValueError(f"{name} takes {n_angles} angle(s), got {len(angles)}")
        checked = []
        for a in angles:
            if isinstance(a, (Data, Weight)):
                if a.index < 0:
                    raise ValueError(f"{name}: negative parameter index {a.index}")
                checked.append(a)
            else:
                value = float(a)
                if not np.isfinite(value):
                    raise ValueError(f"{name}: non-finite constant angle {value}")
                checked.append(value)
        self.gates.append(Gate(name, wires, tuple(checked), matrix))
        return self

    # -- fixed gates ---------------------------------------------------------------
    def h(self, wire: int) -> "Circuit": return self.add("H", wire)
    def x(self, wire: int) -> "Circuit": return self.add("X", wire)
    def y(self, wire: int) -> "Circuit": return self.add("Y", wire)
    def z(self, wire: int) -> "Circuit": return self.add("Z", wire)
    def s(self, wire: int) -> "Circuit": return self.add("S", wire)
    def t(self, wire: int) -> "Circuit": return self.add("T", wire)
    def sx(self, wire: int) -> "Circuit": return self.add("SX", wire)
    def cnot(self, control: int, target: int) -> "Circuit": return self.add("CNOT", (control, target))
    def cz(self, a: int, b: int) -> "Circuit": return self.add("CZ", (a, b))
    def swap(self, a: int, b: int) -> "Circuit": return self.add("SWAP", (a, b))

    def toffoli(self, c0: int, c1: int, target: int) -> "Circuit":
        return self.add("Toffoli", (c0, c1, target))

    # -- parametrised gates -------------------------------------------------------
    def rx(self, wire: int, angle: Angle) -> "Circuit": return self.add("RX", wire, angle)
    def ry(self, wire: int, angle: Angle) -> "Circuit": return self.add("RY", wire, angle)
    def rz(self, wire: int, angle: Angle) -> "Circuit": return self.add("RZ", wire, angle)
    def phase(self, wire: int, angle: Angle) -> "Circuit": return self.add("PhaseShift", wire, angle)

    def rot(self, wire: int, phi: Angle, theta: Angle, omega: Angle) -> "Circuit":
        """Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)."""
        return self.add("Rot", wire, phi, theta, omega)

    def u3(self, wire: int, theta: Angle, phi: Angle, delta: Angle) -> "Circuit":
        return self.add("U3", wire, theta, phi, delta)

    def crx(self, control: int, target: int, angle: Angle) -> "Circuit":
        return self.add("CRX", (control, target), angle)

    def cry(self, control: int, target: int, angle: Angle) -> "Circuit":
        return self.add("CRY", (control, target), angle)

    def crz(self, control: int, target: int, angle: Angle) -> "Circuit":
        return self.add("CRZ", (control, target), angle)

    def ising_xx(self, a: int, b: int, angle: Angle) -> "Circuit": return self.add("IsingXX", (a, b), angle)
    def ising_yy(self, a: int, b: int, angle: Angle) -> "Circuit": return self.add("IsingYY", (a, b), angle)
    def ising_zz(self, a: int, b: int, angle: Angle) -> "Circuit": return self.add("IsingZZ", (a, b), angle)

    def unitary(self, matrix: np.ndarray, wires: Sequence[int] | int) -> "Circuit":
        """Any constant one- or two-qubit unitary (rows indexed with the first
        wire as the most significant bit)."""
        m = np.asarray(matrix, dtype=np.complex128)
        wires = (wires,) if isinstance(wires, (int, np.integer)) else tuple(wires)
        size = 2 ** len(wires)
        if len(wires) not in (1, 2) or m.shape != (size, size):
            raise ValueError(f"unitary: need a 2x2 matrix on 1 wire or 4x4 on 2 wires, got "
                             f"shape {m.shape} on wires {wires}")
        if not np.all(np.isfinite(m)):
            raise ValueError("unitary: matrix has non-finite entries")
        if not np.allclose(m.conj().T @ m, np.eye(size), atol=1e-8):
            raise ValueError("unitary: matrix is not unitary (U^+ U != 1 to 1e-8)")
        return self.add("Unitary1" if len(wires) == 1 else "Unitary2", wires, matrix=m.copy())

    # -- sizes and packing ----------------------------------------------------------
    def _max_index(self, kind: type) -> int:
        return max((a.index for g in self.gates for a in g.angles if isinstance(a, kind)),
                   default=-1)

    @property
    def num_data(self) -> int:
        """Number of data columns a batch row must have."""
        used = self._max_index(Data) + 1
        if self.n_data is None:
            return used
        if self.n_data < used:
            raise ValueError(f"circuit uses data({used - 1}) but declares n_data={self.n_data}")
        return int(self.n_data)

    @property
    def num_weights(self) -> int:
        """Length of the trainable weight vector."""
        used = self._max_index(Weight) + 1
        if self.n_weights is None:
            return used
        if self.n_weights < used:
            raise ValueError(f"circuit uses weight({used - 1}) but declares "
                             f"n_weights={self.n_weights}")
        return int(self.n_weights)

    def spec(self) -> tuple:
        """The tuple the C core reads (see csrc/binding/quantum_binding.c).

        Cached while the circuit is unchanged (same gates and sizes), so that a
        layer does not repack its circuit on every call."""
        key = (self.n_qubits, len(self.gates), self.n_data, self.n_weights,
               id(self.gates[-1]) if self.gates else None)
        cached = self.__dict__.get("_spec_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        spec = self._pack()
        self.__dict__["_spec_cache"] = (key, spec)
        return spec

    def _pack(self) -> tuple:
        ops = np.zeros((len(self.gates), 6), dtype=np.int32)
        refs: list[tuple[int, int]] = []
        values: list[float] = []
        matrices: list[np.ndarray] = []
        n_entries = 0
        for k, g in enumerate(self.gates):
            ops[k, 0] = GATE_KINDS[g.name]
            ops[k, 1:1 + len(g.wires)] = g.wires
            ops[k, 4] = len(refs)
            for a in g.angles:
                if isinstance(a, Data):
                    refs.append((SOURCE_DATA, a.index)); values.append(0.0)
                elif isinstance(a, Weight):
                    refs.append((SOURCE_WEIGHT, a.index)); values.append(0.0)
                else:
                    refs.append((SOURCE_CONSTANT, 0)); values.append(float(a))
            if g.matrix is not None:
                ops[k, 5] = n_entries
                matrices.append(g.matrix.reshape(-1))
                n_entries += g.matrix.size
        refs_a = np.array(refs, dtype=np.int32).reshape(-1, 2)
        values_a = np.array(values, dtype=np.float64)
        mats = np.concatenate(matrices) if matrices else np.zeros(0, np.complex128)
        return (self.n_qubits, ops, refs_a, values_a, mats.astype(np.complex128),
                self.num_data, self.num_weights)

    def __len__(self) -> int:
        return len(self.gates)
