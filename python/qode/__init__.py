"""qode: fast differentiable ODE solvers with a C core.

``qode.odeint`` and ``qode.odeint_event`` are drop-in replacements for the
torchdiffeq functions of the same names.
"""
from .odeint import ADAPTIVE_METHODS, FIXED_METHODS, METHODS, odeint, odeint_event

__all__ = ["odeint", "odeint_event", "METHODS", "ADAPTIVE_METHODS", "FIXED_METHODS"]
__version__ = "0.1.0"
