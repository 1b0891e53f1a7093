"""nn.Modules around the Social ODE field: the interaction term alone
(:class:`SocialInteraction`) and the whole first-order vector field
(:class:`SocialODEFunc`), usable as ``func(t, h)`` by ODE solvers."""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import nn

from qode.social.function import ScalarLike, social_field


class SocialInteraction(nn.Module):
    """The Social ODE interaction term with its k-network.

    ``I_i = m_i a_i sum_{j != i} m_j S(r_ij) / (r_ij + eps) * k(i, j)`` with
    ``k(i, j) = w2 @ tanh(w1 @ [h_i; h_j] + b1) + b2`` (see
    :func:`qode.social.social_field`).

    Parameters
    ----------
    dim : int
        Latent dimension D.
    hidden : int
        Hidden width H of the k-network.
    eps : float
        Distance offset, > 0.
    radius, cutoff_width : optional neighbour cutoff (see ``social_field``).
    num_threads : int
        0: automatic.
    """

    def __init__(self, dim: int, hidden: int = 32, eps: float = 1e-2,
                 radius: Optional[float] = None, cutoff_width: float = 0.0,
                 num_threads: int = 0) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError("dim and hidden must be at least 1")
        self.dim = dim
        self.hidden = hidden
        self.eps = eps
        self.radius = radius
        self.cutoff_width = cutoff_width
        self.num_threads = num_threads
        self.w1 = nn.Parameter(torch.empty(hidden, 2 * dim))
        self.b1 = nn.Parameter(torch.empty(hidden))
        self.w2 = nn.Parameter(torch.empty(dim, hidden))
        self.b2 = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The nn.Linear initialisation: uniform in +-1/sqrt(fan_in)."""
        for weight, bias in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def pair_intensity(self, h_i: torch.Tensor, h_j: torch.Tensor) -> torch.Tensor:
        """k(i, j) for explicit pairs (..., D) x (..., D) -> (..., D), in
        PyTorch; for inspection, not used by the fused kernel."""
        hidden = torch.tanh(torch.cat([h_i, h_j], dim=-1) @ self.w1.T + self.b1)
        return hidden @ self.w2.T + self.b2

    def field(self, h: torch.Tensor, aggressiveness: torch.Tensor,
              mask: Optional[torch.Tensor] = None, **control) -> torch.Tensor:
        """The full field of ``social_field`` with this module's k-network;
        ``control`` takes goals, goal_strengths, obstacles,
        obstacle_strengths, self_term, beta1, beta2."""
        return social_field(h, aggressiveness, self.w1, self.b1, self.w2, self.b2, mask=mask,
                            eps=self.eps, radius=self.radius, cutoff_width=self.cutoff_width,
                            num_threads=self.num_threads, **control)

    def forward(self, h: torch.Tensor, aggressiveness: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The interaction term I (B, N, D) of states h (B, N, D)."""
        return self.field(h, aggressiveness, mask, beta1=1.0, beta2=0.0)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, hidden={self.hidden}, eps={self.eps}, radius={self.radius}, "
                f"cutoff_width={self.cutoff_width}")


class SocialODEFunc(nn.Module):
    """The first-order Social ODE vector field with control terms::

        dh_i/dt = m_i ( beta1 I_i + beta2 f_theta(h_i)
                        - sum_g lambda_g (h_i - h_g) + sum_o lambda_o (h_i - h_o) )

    Call as ``func(t, h)`` with h of shape (B, N, D) or (N, D) (one scene).
    Per-scene data the solver does not pass (aggressiveness, mask) are set
    with :meth:`set_scene`; control after training with :meth:`set_goals`,
    :meth:`set_obstacles` and :meth:`set_weights`, no retraining needed.

    Parameters
    ----------
    dim : int
        Latent dimension D.
    hidden : int
        Hidden width of the k-network.
    self_hidden : int
        Hidden width of f_theta (a 3-layer tanh MLP D -> S -> S -> D).
    eps, radius, cutoff_width, num_threads : see ``SocialInteraction``.
    beta1, beta2 : float
        Initial interaction and self-dynamics weights (buffers, so they follow
        ``.to(dtype)`` and are saved in the state dict).
    """

    def __init__(self, dim: int, hidden: int = 32, self_hidden: int = 64, eps: float = 1e-2,
                 radius: Optional[float] = None, cutoff_width: float = 0.0,
                 beta1: float = 1.0, beta2: float = 1.0, num_threads: int = 0) -> None:
        super().__init__()
        self.interaction = SocialInteraction(dim, hidden, eps, radius, cutoff_width, num_threads)
        self.self_dynamics = nn.Sequential(
            nn.Linear(dim, self_hidden), nn.Tanh(),
            nn.Linear(self_hidden, self_hidden), nn.Tanh(),
            nn.Linear(self_hidden, dim),
        )
        self.register_buffer("beta1", torch.tensor(float(beta1)))
        self.register_buffer("beta2", torch.tensor(float(beta2)))
        self.aggressiveness: Optional[torch.Tensor] = None
        self.mask: Optional[torch.Tensor] = None
        self.goals: Optional[torch.Tensor] = None
        self.goal_strengths: Optional[torch.Tensor] = None
        self.obstacles: Optional[torch.Tensor] = None
        self.obstacle_strengths: Optional[torch.Tensor] = None
        self.nfe = 0

    # -- scene and control --------------------------------------------------
    def set_scene(self, aggressiveness: Optional[torch.Tensor] = None,
                  mask: Optional[torch.Tensor] = None) -> None:
        """Per-agent aggressiveness (B, N) and presence mask (B, N) of the
        scenes about to be solved.  None: all ones."""
        self.aggressiveness = aggressiveness
        self.mask = mask

    def set_goals(self, positions: Optional[torch.Tensor],
                  strengths: Union[ScalarLike, torch.Tensor, None] = 1.0) -> None:
        """Attractors: positions (P, D) or (B, N, P, D), strengths lambda >= 0
        (scalar, (P,) or (B, N, P)).  None removes them."""
        self.goals, self.goal_strengths = self._control_points("goal", positions, strengths)

    def set_obstacles(self, positions: Optional[torch.Tensor],
                      strengths: Union[ScalarLike, torch.Tensor, None] = 1.0) -> None:
        """Repellers, as :meth:`set_goals`.  None removes them."""
        self.obstacles, self.obstacle_strengths = self._control_points(
            "obstacle", positions, strengths)

    def set_weights(self, beta1: Optional[float] = None, beta2: Optional[float] = None) -> None:
        """Changes the interaction weight beta1 and/or the self-dynamics weight
        beta2 in place."""
        with torch.no_grad():
            if beta1 is not None:
                self.beta1.fill_(float(beta1))
            if beta2 is not None:
                self.beta2.fill_(float(beta2))

    @staticmethod
    def _control_points(kind: str, positions: Optional[torch.Tensor],
                        strengths: Union[ScalarLike, torch.Tensor, None]):
        """Checks strengths (finite, >= 0) and returns the pair unchanged;
        shapes are checked by ``social_field`` at the next evaluation."""
        if positions is None:
            return None, None
        if strengths is None:
            raise ValueError(f"{kind} strengths are required with {kind} positions")
        values = (strengths if isinstance(strengths, torch.Tensor)
                  else torch.tensor(float(strengths)))
        if not torch.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"{kind} strengths must be finite and >= 0 (a negative {kind} "
                             f"strength would swap attractor and repeller)")
        return positions, strengths

    # -- the vector field ---------------------------------------------------
    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """dh/dt at states h (B, N, D) or (N, D); t is unused (autonomous
        field).  Counts evaluations in ``self.nfe``."""
        single = h.dim() == 2
        states = h.unsqueeze(0) if single else h
        if states.dim() != 3:
            raise ValueError(f"h must have shape (B, N, D) or (N, D), got {tuple(h.shape)}")
        batch, agents, _ = states.shape

        def scene_tensor(value: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            if value is None:
                return None
            value = value.to(states.dtype)
            return value.unsqueeze(0) if single and value.dim() == 1 else value

        aggressiveness = scene_tensor(self.aggressiveness)
        if aggressiveness is None:
            aggressiveness = torch.ones(batch, agents, dtype=states.dtype)
        mask = scene_tensor(self.mask)

        def control(value):
            # Shared positions (P, D) and strengths (scalar or (P,)) fit any
            # batch; per-agent ones must be given as (B, N, P, D) / (B, N, P),
            # with B = 1 for a single scene.
            if isinstance(value, torch.Tensor):
                return value.to(states.dtype)
            return value

        out = self.interaction.field(
            states, aggressiveness, mask,
            goals=control(self.goals), goal_strengths=control(self.goal_strengths),
            obstacles=control(self.obstacles), obstacle_strengths=control(self.obstacle_strengths),
            self_term=self.self_dynamics(states), beta1=self.beta1, beta2=self.beta2)
        self.nfe += 1
        return out.squeeze(0) if single else out
