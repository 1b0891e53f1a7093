"""Small ODE problems shared by the solver tests.

Each problem gives a vector field ``f(t, y)`` written with torch ops (so that
torchdiffeq and qode see the very same function), an initial state and output
times, and, where one exists, the exact solution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass
class Problem:
    name: str
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    y0: torch.Tensor
    t: torch.Tensor
    exact: Optional[Callable[[torch.Tensor], torch.Tensor]] = None


def _rotation_decay() -> Problem:
    # y' = A y with A = [[-0.1, 2], [-2, -0.1]]: a decaying rotation.
    a = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)

    def exact(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.linalg.matrix_exp(a * ti) @ y0 for ti in t])

    return Problem("rotation_decay", lambda t, y: a @ y, y0,
                   torch.linspace(0.0, 5.0, 11, dtype=torch.float64), exact)


def _forced_decay() -> Problem:
    # y' = -y + sin(t), y(0) = 1: depends on t, so stage times matter.
    def exact(t: torch.Tensor) -> torch.Tensor:
        return (1.5 * torch.exp(-t) + 0.5 * (torch.sin(t) - torch.cos(t))).unsqueeze(-1)

    return Problem("forced_decay", lambda t, y: -y + torch.sin(t),
                   torch.tensor([1.0], dtype=torch.float64),
                   torch.tensor([0.0, 0.3, 1.0, 2.5, 4.0], dtype=torch.float64), exact)


def _van_der_pol() -> Problem:
    # Nonlinear, a batch of three oscillators with mu = 1.
    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, (1 - x ** 2) * v - x], dim=-1)

    y0 = torch.tensor([[2.0, 0.0], [0.5, 0.5], [-1.0, 1.0]], dtype=torch.float64)
    return Problem("van_der_pol", f, y0, torch.linspace(0.0, 6.0, 7, dtype=torch.float64))


def _logistic() -> Problem:
    # Element-wise logistic growth on a (2, 3) state; exact solution known.
    r = torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.7, 3.0]], dtype=torch.float64)
    y0 = torch.full((2, 3), 0.1, dtype=torch.float64)

    def exact(t: torch.Tensor) -> torch.Tensor:
        e = torch.exp(r * t.reshape(-1, 1, 1))
        return y0 * e / (1 - y0 + y0 * e)

    return Problem("logistic", lambda t, y: r * y * (1 - y), y0,
                   torch.tensor([0.0, 0.5, 2.0, 3.0], dtype=torch.float64), exact)


PROBLEMS = [_rotation_decay(), _forced_decay(), _van_der_pol(), _logistic()]


class Counting:
    """Wraps a vector field and counts its evaluations."""

    def __init__(self, f: Callable):
        self.f = f
        self.nfe = 0

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.f(t, y)


def max_rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def exp_decay_exact(t: float) -> float:
    return math.exp(-t)
