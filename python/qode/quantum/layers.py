"""PyTorch layers built on the batched simulator.

:class:`QuantumLayer` is seed 002's VQC (see :mod:`qode.quantum.vqc`):
``theta = pi * tanh(Linear(x))``, RY encoding, ``n_layers`` of trainable
RX/RY/RZ plus a CNOT ring, and <Z_q> read-out; inputs (..., in_features),
outputs (..., n_qubits).

:class:`SuperpositionLayer` is seed 002's three-branch superposition: three
independent VQC branches (own encoders, own weights) whose read-out vectors
e_1, e_2, e_3 are mixed by trainable complex coefficients alpha, beta, gamma,
renormalised in every forward pass to |alpha|^2 + |beta|^2 + |gamma|^2 = 1:

    m = alpha e_1 + beta e_2 + gamma e_3    (complex, shape (..., n_qubits)).

How the complex mixture becomes a real feature vector is our choice, made
explicit by ``output``:

* ``"abs"`` (default): |m| elementwise, as seed 002 does for its complex
  combination of branches (``output = |alpha x_f + beta x_b + gamma x_g|``).
  Note |m| is not differentiable where m = 0 (measure zero in practice).
* ``"real_imag"``: the concatenation [Re m, Im m], shape (..., 2 n_qubits);
  smooth everywhere and keeps the phase information of the coefficients.

The branches are mixed at the level of read-outs, not state vectors: seed 002's
branches are separate circuits whose outputs are combined, and a read-out
mixture keeps each branch an ordinary circuit that could run on hardware.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .execute import expval
from .observables import z_all
from .vqc import vqc_circuit


class QuantumLayer(nn.Module):
    """Seed 002's VQC as a layer: (..., in_features) -> (..., n_qubits).

    Parameters
    ----------
    in_features : int
    n_qubits : int
    n_layers : int
        Number of RX/RY/RZ + CNOT-ring layers (default 2).
    dtype : {"complex128", "complex64"}, optional
        Precision of the state vectors; by default that of the input
        (float32 -> complex64, float64 -> complex128).
    n_threads : int
        Threads of the C core (0 = automatic).
    """

    def __init__(self, in_features: int, n_qubits: int, n_layers: int = 2,
                 dtype: str | None = None, n_threads: int = 0):
        super().__init__()
        self.n_qubits, self.n_layers = int(n_qubits), int(n_layers)
        self.embed = nn.Linear(in_features, self.n_qubits)
        # Uniform angles in [0, 2 pi), like PennyLane's TorchLayer default.
        self.weights = nn.Parameter(2 * math.pi * torch.rand(self.n_layers, self.n_qubits, 3))
        self.circuit = vqc_circuit(self.n_qubits, self.n_layers)
        self.observables = z_all(self.n_qubits)
        self.dtype_name, self.n_threads = dtype, n_threads

    def angles(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding angles theta = pi * tanh(W x + b), shape (..., n_qubits)."""
        return math.pi * torch.tanh(self.embed(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.angles(x)
        w = self.weights.reshape(-1).to(theta.dtype)
        return expval(self.circuit, self.observables, theta, w, dtype=self.dtype_name,
                      n_threads=self.n_threads)


class SuperpositionLayer(nn.Module):
    """Three VQC branches mixed by normalised complex coefficients (seed 002).

    Parameters
    ----------
    in_features, n_qubits, n_layers, dtype, n_threads
        As for :class:`QuantumLayer` (each branch is one).
    output : {"abs", "real_imag"}
        How the complex mixture becomes real (see the module docstring).
    """

    def __init__(self, in_features: int, n_qubits: int, n_layers: int = 2,
                 output: str = "abs", dtype: str | None = None, n_threads: int = 0):
        super().__init__()
        if output not in ("abs", "real_imag"):
            raise ValueError(f"output must be 'abs' or 'real_imag', got {output!r}")
        self.output = output
        self.branches = nn.ModuleList(
            QuantumLayer(in_features, n_qubits, n_layers, dtype, n_threads) for _ in range(3))
        # (alpha, beta, gamma) as (real, imag) pairs; equal magnitudes at start.
        self.coefficients = nn.Parameter(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))

    @property
    def out_features(self) -> int:
        n = self.branches[0].n_qubits
        return n if self.output == "abs" else 2 * n

    def normalized_coefficients(self) -> torch.Tensor:
        """(alpha, beta, gamma) as a complex tensor with sum |.|^2 = 1."""
        c = torch.view_as_complex(self.coefficients.contiguous())
        return c / torch.sqrt((c.real ** 2 + c.imag ** 2).sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coeff = self.normalized_coefficients()
        reads = [branch(x) for branch in self.branches]
        real = sum(coeff[k].real.to(reads[k].dtype) * reads[k] for k in range(3))
        imag = sum(coeff[k].imag.to(reads[k].dtype) * reads[k] for k in range(3))
        if self.output == "abs":
            return torch.sqrt(real ** 2 + imag ** 2)
        return torch.cat([real, imag], dim=-1)
