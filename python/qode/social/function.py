"""The differentiable Social ODE field: argument checks and the
``torch.autograd.Function`` around the C kernels ``qode._C.social_forward`` /
``social_backward``.

The equations (see also ``csrc/social/social.h``)::

    F_i = m_i * ( beta1 * I_i + beta2 * f_i
                  - sum_g lambda_ig (h_i - g_ig) + sum_o lambda_io (h_i - o_io) )
    I_i = a_i * sum_{j != i, m_j = 1} S(r_ij) / (r_ij + eps) * k(i, j)
    k(i, j) = W2 tanh(W1 [h_i; h_j] + b1) + b2,   r_ij = ||h_i - h_j||

The gradient of r_ij at r_ij = 0 is taken as 0 (the minimum-norm
subgradient of the norm), so coincident agents give finite values and
gradients.  With ``radius`` R, S(r) = 0 for r >= R; ``cutoff_width`` w > 0
makes S fall smoothly (C^1 smoothstep) from 1 at R - w to 0 at R, w = 0 is a
hard cutoff (the field jumps when a pair crosses R).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch

from qode import _C

Number = Union[float, int]
ScalarLike = Union[Number, torch.Tensor]


def _check_tensor(name: str, value: torch.Tensor, shape: Sequence[int], dtype: torch.dtype) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.device.type != "cpu":
        raise ValueError(f"{name} is on {value.device}; qode.social works on CPU tensors")
    if value.dtype != dtype:
        raise TypeError(f"{name} has dtype {value.dtype}, expected {dtype} (the dtype of h)")
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")


def _as_scalar(name: str, value: ScalarLike, dtype: torch.dtype) -> Union[float, torch.Tensor]:
    """A 0-dim tensor (which may carry a gradient) or a plain float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(value.shape)}")
        if not value.dtype.is_floating_point:
            value = value.to(dtype)
        if not math.isfinite(float(value.detach())):
            raise ValueError(f"{name} must be finite, got {float(value)!r}")
        return value.reshape(())
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _expand_points(
    name: str, points: Optional[torch.Tensor], weights: Optional[ScalarLike], batch: int,
    agents: int, dim: int, dtype: torch.dtype,
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], int]:
    """Broadcasts goal or obstacle positions (P, D) or (B, N, P, D) and
    strengths (scalar, (P,) or (B, N, P)) to (B, N, P, D) and (B, N, P)."""
    if points is None:
        if weights is not None:
            raise ValueError(f"{name} strengths were given without {name} positions")
        return None, None, 0
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor")
    if points.dtype != dtype:
        raise TypeError(f"{name} has dtype {points.dtype}, expected {dtype} (the dtype of h)")
    if points.dim() == 2 and points.shape[1] == dim:
        count = points.shape[0]
        points = points.expand(batch, agents, count, dim)
    elif (points.dim() == 4 and tuple(points.shape[:2]) == (batch, agents)
          and points.shape[3] == dim):
        count = points.shape[2]
    else:
        raise ValueError(
            f"{name} must have shape (P, {dim}) or ({batch}, {agents}, P, {dim}), "
            f"got {tuple(points.shape)}")
    if weights is None:
        raise ValueError(f"{name} positions were given without strengths")
    if not isinstance(weights, torch.Tensor):
        weights = torch.tensor(_as_scalar(f"{name} strength", weights, dtype), dtype=dtype)
    if weights.dtype != dtype:
        raise TypeError(f"{name} strengths have dtype {weights.dtype}, expected {dtype}")
    if weights.dim() == 0:
        weights = weights.expand(batch, agents, count)
    elif weights.dim() == 1 and weights.shape[0] == count:
        weights = weights.expand(batch, agents, count)
    elif tuple(weights.shape) != (batch, agents, count):
        raise ValueError(
            f"{name} strengths must be a scalar, shape ({count},) or ({batch}, {agents}, {count}), "
            f"got {tuple(weights.shape)}")
    return points.contiguous(), weights.contiguous(), count


def _float(value: Union[float, torch.Tensor]) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _numpy(value: Optional[torch.Tensor]):
    # Zero-copy view; the binding copies non-contiguous arrays itself.
    return None if value is None else value.detach().numpy()


class _SocialFieldFunction(torch.autograd.Function):
    """Forward and VJP in C; the backward builds no autograd graph."""

    @staticmethod
    def forward(ctx, h, mask, aggressiveness, w1, b1, w2, b2, goals, goal_weights, obstacles,
                obstacle_weights, self_term, beta1, beta2, options):
        sizes, eps, radius, cutoff_width, num_threads = options
        inputs = (h, mask, aggressiveness, w1, b1, w2, b2, goals, goal_weights, obstacles,
                  obstacle_weights, self_term)
        b1_value, b2_value = _float(beta1), _float(beta2)
        out = _C.social_forward(*[_numpy(x) for x in inputs], sizes, eps, radius,
                                cutoff_width, b1_value, b2_value, num_threads)
        # Saved (not just kept as arrays) so that autograd detects in-place
        # changes of the inputs before backward.
        ctx.save_for_backward(*inputs)
        ctx.call = (sizes, eps, radius, cutoff_width, b1_value, b2_value, num_threads)
        ctx.beta_dtypes = tuple(b.dtype if isinstance(b, torch.Tensor) else None
                                for b in (beta1, beta2))
        return torch.from_numpy(out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        arrays = [_numpy(x) for x in ctx.saved_tensors]
        grads = _C.social_backward(*arrays, *ctx.call, grad_out.contiguous().numpy())
        needs = ctx.needs_input_grad
        tensors = [None if g is None else torch.from_numpy(g) for g in grads[:11]]
        dh, da, dw1, db1, dw2, db2, dgoals, dgw, dobst, dow, dself = tensors
        dbeta1 = torch.tensor(grads[11], dtype=ctx.beta_dtypes[0]) if needs[12] else None
        dbeta2 = torch.tensor(grads[12], dtype=ctx.beta_dtypes[1]) if needs[13] else None
        result = [dh, None, da, dw1, db1, dw2, db2, dgoals, dgw, dobst, dow, dself]
        result = [g if (g is not None and needs[k]) else None for k, g in enumerate(result)]
        return (*result, dbeta1, dbeta2, None)


def social_field(
    h: torch.Tensor,
    aggressiveness: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    goals: Optional[torch.Tensor] = None,
    goal_strengths: Optional[ScalarLike] = None,
    obstacles: Optional[torch.Tensor] = None,
    obstacle_strengths: Optional[ScalarLike] = None,
    self_term: Optional[torch.Tensor] = None,
    beta1: ScalarLike = 1.0,
    beta2: ScalarLike = 1.0,
    eps: float = 1e-2,
    radius: Optional[float] = None,
    cutoff_width: float = 0.0,
    num_threads: int = 0,
) -> torch.Tensor:
    """The Social ODE vector field F(h), differentiable in every tensor input.

    Parameters
    ----------
    h : Tensor (B, N, D)
        Latent states of N agents in each of B scenes (float32 or float64,
        CPU).  Every other tensor must have the same dtype.
    aggressiveness : Tensor (B, N)
        Per-agent aggressiveness a_i.
    w1, b1, w2, b2 : Tensor (H, 2D), (H,), (D, H), (D,)
        The k-network ``k(i,j) = w2 @ tanh(w1 @ [h_i; h_j] + b1) + b2``.
    mask : Tensor (B, N), optional
        1 (or True) for present agents, 0 for absent ones (padding).  Absent
        agents get F_i = 0 and do not act on others.  Default: all present.
    goals, obstacles : Tensor (P, D) or (B, N, P, D), optional
        Attractor / repeller positions, shared or per agent.
    goal_strengths, obstacle_strengths : number or Tensor (), (P,) or (B, N, P)
        lambda of each attractor / repeller.
    self_term : Tensor (B, N, D), optional
        The self-dynamics f_theta(h), weighted by beta2.
    beta1, beta2 : number or 0-dim Tensor
        Weights of the interaction and of the self-dynamics.
    eps : float
        > 0; the distance offset in 1 / (r + eps).
    radius : float, optional
        Neighbour radius R (pairs at distance >= R do not interact; found
        with a cell list).  None: all pairs interact.
    cutoff_width : float
        0: hard cutoff at R; in (0, R]: smooth C^1 cutoff over [R - w, R].
    num_threads : int
        0: automatic (threads only above a size threshold); else the count.

    Returns
    -------
    Tensor (B, N, D)
    """
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h must be a torch.Tensor, got {type(h).__name__}")
    if h.dim() != 3:
        raise ValueError(f"h must have shape (B, N, D), got {tuple(h.shape)}")
    dtype = h.dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"h has dtype {dtype}; qode.social supports float32 and float64")
    batch, agents, dim = h.shape
    if agents == 0 or dim == 0:
        raise ValueError(f"h must have at least one agent and one dimension, got {tuple(h.shape)}")
    if w1.dim() != 2:
        raise ValueError(f"w1 must have shape (H, {2 * dim}), got {tuple(w1.shape)}")
    hidden = w1.shape[0]
    _check_tensor("h", h, (batch, agents, dim), dtype)
    _check_tensor("aggressiveness", aggressiveness, (batch, agents), dtype)
    _check_tensor("w1", w1, (hidden, 2 * dim), dtype)
    _check_tensor("b1", b1, (hidden,), dtype)
    _check_tensor("w2", w2, (dim, hidden), dtype)
    _check_tensor("b2", b2, (dim,), dtype)
    if mask is not None:   # None: every agent present (handled in C)
        if not isinstance(mask, torch.Tensor):
            raise TypeError("mask must be a torch.Tensor")
        if tuple(mask.shape) != (batch, agents):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {(batch, agents)}")
        mask = mask.detach().to(dtype)
    if self_term is not None:
        _check_tensor("self_term", self_term, (batch, agents, dim), dtype)
    goals, goal_strengths, n_goals = _expand_points(
        "goals", goals, goal_strengths, batch, agents, dim, dtype)
    obstacles, obstacle_strengths, n_obstacles = _expand_points(
        "obstacles", obstacles, obstacle_strengths, batch, agents, dim, dtype)
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if radius is None:
        radius_value = 0.0
        if cutoff_width != 0.0:
            raise ValueError("cutoff_width needs a radius")
    else:
        if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
            raise ValueError(f"radius must be a finite number > 0 or None, got {radius!r}")
        if not (0.0 <= cutoff_width <= radius):
            raise ValueError(f"cutoff_width must be in [0, radius], got {cutoff_width!r}")
        radius_value = float(radius)
    beta1_t = _as_scalar("beta1", beta1, dtype)
    beta2_t = _as_scalar("beta2", beta2, dtype)
    sizes = (batch, agents, dim, hidden, n_goals, n_obstacles)
    options = (sizes, float(eps), radius_value, float(cutoff_width), int(num_threads))
    tensors = (h, mask, aggressiveness, w1, b1, w2, b2, goals, goal_strengths, obstacles,
               obstacle_strengths, self_term)
    differentiable = [x for x in tensors + (beta1_t, beta2_t)
                      if isinstance(x, torch.Tensor) and x.requires_grad]
    if not (torch.is_grad_enabled() and differentiable):
        # Nothing to differentiate: call the kernel without an autograd node.
        out = _C.social_forward(*[_numpy(x) for x in tensors], sizes, float(eps), radius_value,
                                float(cutoff_width), _float(beta1_t), _float(beta2_t),
                                int(num_threads))
        return torch.from_numpy(out)
    return _SocialFieldFunction.apply(*tensors, beta1_t, beta2_t, options)
