"""qode: differentiable ODE solvers, quantum circuits and multi-agent
interaction forces with a C core.

``qode.odeint`` and ``qode.odeint_event`` are drop-in replacements for the
torchdiffeq functions of the same names (NumPy arrays work too, without
torch).  The torch-only subpackages (``qode.social``, ``qode.quantum``,
``qode.fields``) are imported on first use, so that ``import qode`` does not
need torch.
"""
import importlib

from .odeint import ADAPTIVE_METHODS, FIXED_METHODS, METHODS, odeint, odeint_event

__all__ = ["odeint", "odeint_adjoint", "odeint_event", "METHODS", "ADAPTIVE_METHODS",
           "FIXED_METHODS"]
__version__ = "0.1.0"

_LAZY_SUBPACKAGES = ("social", "quantum", "fields")


def __getattr__(name: str):
    if name == "odeint_adjoint":  # needs torch
        from .adjoint import odeint_adjoint

        return odeint_adjoint
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"qode.{name}")
    raise AttributeError(f"module 'qode' has no attribute {name!r}")
