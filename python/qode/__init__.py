"""qode: differentiable ODE solvers, quantum circuits and multi-agent
interaction forces with a C core."""
from qode import social

__all__ = ["social"]
