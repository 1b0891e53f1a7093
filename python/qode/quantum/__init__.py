"""Batched state-vector quantum circuits with adjoint gradients (C core).

Build a :class:`Circuit`, then run it with :func:`expval`, :func:`probs`,
:func:`sample` or :func:`state` on NumPy arrays or torch tensors.  Torch inputs
are differentiable (adjoint method in C).  :class:`QuantumLayer` and
:class:`SuperpositionLayer` are the ready-made VQC layers of the qODE.
"""
from .circuit import Circuit, Data, Weight, data, weight
from .execute import expval, probs, sample, state
from .observables import PauliSum, pauli, z_all
from .paramshift import param_shift_jacobian
from .qasm import to_qasm
from .vqc import vqc_circuit

try:
    from .layers import QuantumLayer, SuperpositionLayer
except ImportError:  # pragma: no cover - torch missing
    pass

__all__ = [
    "Circuit", "Data", "Weight", "data", "weight", "expval", "probs", "sample", "state",
    "PauliSum", "pauli", "z_all", "param_shift_jacobian", "to_qasm", "vqc_circuit",
    "QuantumLayer", "SuperpositionLayer",
]
