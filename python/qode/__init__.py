"""qode: differentiable ODE solvers, batched quantum circuits and the quantum ODE."""
from . import quantum  # noqa: F401
