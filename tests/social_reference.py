"""A pure-PyTorch reference of the Social ODE field (qode.social), written
the direct way: k(i, j) is evaluated for every pair on the concatenated
states [h_i, h_j], with none of the C kernel's rearrangements.  Used by the
tests and by benchmarks/social_vs_torch.py."""
from __future__ import annotations

from typing import Optional

import torch


def safe_norm(diff: torch.Tensor) -> torch.Tensor:
    """||diff|| over the last axis, with gradient 0 at diff = 0 (the C
    kernel's subgradient choice)."""
    squared = (diff * diff).sum(-1)
    positive = squared > 0
    return torch.sqrt(torch.where(positive, squared, torch.ones_like(squared))) * positive


def cutoff(r: torch.Tensor, radius: Optional[float], width: float) -> torch.Tensor:
    """S(r): 1 without a radius; hard or smoothstep cutoff at the radius."""
    if radius is None:
        return torch.ones_like(r)
    inside = (r < radius).to(r.dtype)
    if width == 0.0:
        return inside
    x = ((r - (radius - width)) / width).clamp(0.0, 1.0)
    return (1.0 - x * x * (3.0 - 2.0 * x)) * inside


def reference_field(
    h: torch.Tensor, aggressiveness: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor,
    w2: torch.Tensor, b2: torch.Tensor, mask: Optional[torch.Tensor] = None,
    goals: Optional[torch.Tensor] = None, goal_strengths: Optional[torch.Tensor] = None,
    obstacles: Optional[torch.Tensor] = None, obstacle_strengths: Optional[torch.Tensor] = None,
    self_term: Optional[torch.Tensor] = None, beta1=1.0, beta2=1.0, eps: float = 1e-2,
    radius: Optional[float] = None, cutoff_width: float = 0.0,
) -> torch.Tensor:
    """F (B, N, D); goals (B, N, G, D) with strengths (B, N, G), likewise
    obstacles."""
    batch, agents, dim = h.shape
    if mask is None:
        mask = torch.ones(batch, agents, dtype=h.dtype)
    mask = mask.to(h.dtype)
    h_i = h[:, :, None, :].expand(batch, agents, agents, dim)
    h_j = h[:, None, :, :].expand(batch, agents, agents, dim)
    r = safe_norm(h_i - h_j)
    k = torch.tanh(torch.cat([h_i, h_j], dim=-1) @ w1.T + b1) @ w2.T + b2
    not_self = 1.0 - torch.eye(agents, dtype=h.dtype)
    weight = mask[:, None, :] * not_self * cutoff(r, radius, cutoff_width) / (r + eps)
    interaction = aggressiveness[..., None] * (weight[..., None] * k).sum(2)
    field = beta1 * interaction
    if self_term is not None:
        field = field + beta2 * self_term
    if goals is not None:
        field = field - (goal_strengths[..., None] * (h[:, :, None, :] - goals)).sum(2)
    if obstacles is not None:
        field = field + (obstacle_strengths[..., None] * (h[:, :, None, :] - obstacles)).sum(2)
    return mask[..., None] * field


def factored_reference_field(
    h: torch.Tensor, aggressiveness: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor,
    w2: torch.Tensor, b2: torch.Tensor, mask: Optional[torch.Tensor] = None, eps: float = 1e-2,
    **unused,
) -> torch.Tensor:
    """The interaction term alone (beta1 = 1, no control, no self term), in
    PyTorch but with the C kernel's rearrangement: the first layer split as
    u_i + v_j, and W2 applied once per agent to sum_j c_ij tanh(u_i + v_j).
    A stronger PyTorch baseline for the benchmark than reference_field."""
    batch, agents, dim = h.shape
    if mask is None:
        mask = torch.ones(batch, agents, dtype=h.dtype)
    mask = mask.to(h.dtype)
    r = safe_norm(h[:, :, None, :] - h[:, None, :, :])
    not_self = 1.0 - torch.eye(agents, dtype=h.dtype)
    weight = mask[:, None, :] * not_self / (r + eps)
    u = h @ w1[:, :dim].T + b1
    v = h @ w1[:, dim:].T
    hidden = torch.tanh(u[:, :, None, :] + v[:, None, :, :])
    hidden_sum = torch.einsum("bij,bijk->bik", weight, hidden)
    interaction = hidden_sum @ w2.T + weight.sum(2, keepdim=True) * b2
    return mask[..., None] * aggressiveness[..., None] * interaction
