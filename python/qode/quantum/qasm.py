"""Export of a circuit to OpenQASM 3 or OpenQASM 2.0 text.

Angles are written as numbers: the data row and weights of the circuit to
export are resolved first (a trained circuit for one input).  Wire w becomes
qubit ``q[w]``.  Gates without a standard-library name are defined in the
header of the file (``qode_rxx``, ``qode_ryy``, ``qode_rzz`` for the Ising
gates), Rot becomes RZ RY RZ, and a one-qubit QubitUnitary becomes ``u3``
(its global phase as ``gphase`` in OpenQASM 3; OpenQASM 2 has no global phase,
which no measurement can see).  A two-qubit QubitUnitary is written through its
KAK decomposition (see :mod:`qode.quantum.decompose`): u3 on each wire, the
three Ising interactions, u3 on each wire.
"""
from __future__ import annotations

import math

import numpy as np

from .circuit import Circuit, Data, Weight
from .decompose import kak, u3_angles

_DEFINITIONS = """gate qode_rxx(theta) a, b {{ h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }}
gate qode_ryy(theta) a, b {{ rx({half_pi}) a; rx({half_pi}) b; cx a, b; rz(theta) b; cx a, b; rx(-{half_pi}) a; rx(-{half_pi}) b; }}
gate qode_rzz(theta) a, b {{ cx a, b; rz(theta) b; cx a, b; }}
"""

# OpenQASM 2's qelib1.inc (Cross et al. 2017) lacks these; defined from its gates.
_DEFINITIONS_2 = """gate qode_sx a {{ u3({half_pi}, -{half_pi}, {half_pi}) a; }}
gate qode_swap a, b {{ cx a, b; cx b, a; cx a, b; }}
gate qode_crz(theta) c, t {{ rz(theta/2) t; cx c, t; rz(-theta/2) t; cx c, t; }}
gate qode_cry(theta) c, t {{ ry(theta/2) t; cx c, t; ry(-theta/2) t; cx c, t; }}
gate qode_crx(theta) c, t {{ h t; qode_crz(theta) c, t; h t; }}
"""
_RENAMED_2 = {"SX": "qode_sx", "SWAP": "qode_swap", "CRX": "qode_crx", "CRY": "qode_cry",
              "CRZ": "qode_crz"}

_SIMPLE = {"H": "h", "X": "x", "Y": "y", "Z": "z", "S": "s", "T": "t", "SX": "sx",
           "RX": "rx", "RY": "ry", "RZ": "rz", "U3": "u3", "CNOT": "cx", "CZ": "cz",
           "SWAP": "swap", "CRX": "crx", "CRY": "cry", "CRZ": "crz", "Toffoli": "ccx",
           "IsingXX": "qode_rxx", "IsingYY": "qode_ryy", "IsingZZ": "qode_rzz"}


def _number(x: float) -> str:
    return repr(float(x))


def _u3_lines(matrix: np.ndarray, qubit: str, version: int) -> list[str]:
    """A one-qubit unitary as u3 (and gphase in OpenQASM 3)."""
    theta, phi, delta, gph = u3_angles(matrix)
    out = [f"gphase({_number(gph)});"] if version == 3 else []
    return out + [f"u3({_number(theta)}, {_number(phi)}, {_number(delta)}) {qubit};"]


def to_qasm(circuit: Circuit, data=None, weights=None, version: int = 3) -> str:
    """OpenQASM text of ``circuit`` with angles resolved from one data row.

    Parameters
    ----------
    circuit : Circuit
    data : array of shape (n_data,), optional
        The data row (one circuit of a batch).
    weights : array of shape (n_weights,), optional
    version : {3, 2}
    """
    if version not in (2, 3):
        raise ValueError(f"version must be 2 or 3, got {version}")
    d = np.zeros(0) if data is None else np.asarray(
        data.detach().cpu() if hasattr(data, "detach") else data, dtype=np.float64).reshape(-1)
    w = np.zeros(0) if weights is None else np.asarray(
        weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=np.float64).reshape(-1)
    if d.shape[0] != circuit.num_data:
        raise ValueError(f"data must have {circuit.num_data} entries, got {d.shape[0]}")
    if w.shape[0] != circuit.num_weights:
        raise ValueError(f"weights must have {circuit.num_weights} entries, got {w.shape[0]}")

    def value(a) -> float:
        if isinstance(a, Data):
            return float(d[a.index])
        if isinstance(a, Weight):
            return float(w[a.index])
        return float(a)

    lines = []
    if version == 3:
        lines += ["OPENQASM 3.0;", 'include "stdgates.inc";']
    else:
        lines += ["OPENQASM 2.0;", 'include "qelib1.inc";']
    if version == 2:
        lines.append(_DEFINITIONS_2.format(half_pi=_number(math.pi / 2)).rstrip("\n"))
    lines.append(_DEFINITIONS.format(half_pi=_number(math.pi / 2)).rstrip("\n"))
    names = dict(_SIMPLE, **(_RENAMED_2 if version == 2 else {}))
    lines.append(f"qubit[{circuit.n_qubits}] q;" if version == 3 else f"qreg q[{circuit.n_qubits}];")
    phase = "p" if version == 3 else "u1"
    for g in circuit.gates:
        qubits = ", ".join(f"q[{wire}]" for wire in g.wires)
        angles = [value(a) for a in g.angles]
        if g.name == "Rot":
            phi, theta, omega = angles
            lines += [f"rz({_number(phi)}) {qubits};", f"ry({_number(theta)}) {qubits};",
                      f"rz({_number(omega)}) {qubits};"]
        elif g.name == "PhaseShift":
            lines.append(f"{phase}({_number(angles[0])}) {qubits};")
        elif g.name == "Unitary1":
            lines += _u3_lines(g.matrix, qubits, version)
        elif g.name == "Unitary2":
            a1, a2, b1, b2, (a, b, c), gph = kak(g.matrix)
            q0, q1 = (f"q[{wire}]" for wire in g.wires)
            lines += _u3_lines(b1, q0, version) + _u3_lines(b2, q1, version)
            # exp(i a XX) = RXX(-2a) with RXX(t) = exp(-i t XX / 2); same for YY, ZZ
            lines += [f"qode_rxx({_number(-2 * a)}) {qubits};",
                      f"qode_ryy({_number(-2 * b)}) {qubits};",
                      f"qode_rzz({_number(-2 * c)}) {qubits};"]
            lines += _u3_lines(a1, q0, version) + _u3_lines(a2, q1, version)
            if version == 3:
                lines.append(f"gphase({_number(gph)});")
        else:
            args = f"({', '.join(_number(a) for a in angles)})" if angles else ""
            lines.append(f"{names[g.name]}{args} {qubits};")
    return "\n".join(lines) + "\n"
