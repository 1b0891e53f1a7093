"""The Social ODE vector field (Social ODE, Eq. 6-7) with goal/obstacle
control, computed by C kernels with hand-written vector-Jacobian products.

- :func:`social_field` is the differentiable functional form;
- :class:`SocialInteraction` holds the k-network and computes the interaction
  term alone;
- :class:`SocialODEFunc` is the whole first-order Social ODE vector field
  ``func(t, h)`` for ``torchdiffeq.odeint`` / ``odeint_adjoint`` (and
  ``qode.odeint``), steerable after training by goals, obstacles, beta1 and
  beta2.
"""
from qode.social.function import social_field
from qode.social.modules import SocialInteraction, SocialODEFunc

__all__ = ["social_field", "SocialInteraction", "SocialODEFunc"]
