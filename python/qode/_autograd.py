"""Gradients through ``odeint``: a torch.autograd.Function over the C solver.

The forward pass records the accepted steps; the backward pass is the
discrete adjoint in C (``qode._C.backward``), which walks those steps in
reverse and asks Python for one vector-Jacobian product of ``func`` per stage.
The gradients equal those of backpropagating through torchdiffeq's solver.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from . import _C
from ._state import TorchFlatState


def discover_parameters(func: Callable, state: TorchFlatState, t0: float) -> list[torch.Tensor]:
    """Tensors requiring grad that ``func``'s output depends on, besides ``y`` and ``t``.

    nn.Module parameters are found directly; tensors captured in closures are
    found as the leaves of the autograd graph of one probe evaluation.  A
    captured non-leaf tensor (say ``A = W @ W.T`` computed outside ``func``)
    shows up as its leaves (``W``), and gradients flow through its graph.
    """
    found: dict[int, torch.Tensor] = {}
    if isinstance(func, torch.nn.Module):
        for p in func.parameters():
            if p.requires_grad:
                found[id(p)] = p
    with torch.enable_grad():
        probe_y = state._split(torch.from_numpy(state.flat_y0.copy()), ())
        out = func(state.time(t0), probe_y)
    for leaf in grad_leaves(out):
        found.setdefault(id(leaf), leaf)
    return list(found.values())


def grad_leaves(out: Any) -> list[torch.Tensor]:
    """The leaf tensors requiring grad in the autograd graph behind ``out``."""
    found: dict[int, torch.Tensor] = {}
    members = out if isinstance(out, (tuple, list)) else (out,)
    pending = [m.grad_fn for m in members if torch.is_tensor(m) and m.grad_fn is not None]
    seen = set()
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if variable is not None and variable.requires_grad:
            found.setdefault(id(variable), variable)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return list(found.values())


def make_vjp(state: TorchFlatState, func: Callable, params: Sequence[torch.Tensor],
             accumulators: list[Optional[torch.Tensor]], need_t: bool,
             v_stage: np.ndarray) -> Callable[[float], tuple[Any, float]]:
    """The callable ``_C.backward`` calls: (df/dy)^T v and v . df/dt at stage y.

    Parameter gradients are summed into ``accumulators`` (one per parameter,
    initially None).  One stays None while no evaluation of ``func`` used its
    parameter, so that an unused parameter gets no gradient (``None``), as
    backpropagating through torchdiffeq's solver gives.
    """
    stage = state.stage_tensor
    cotangent = torch.from_numpy(v_stage)
    to_dlpack = torch.utils.dlpack.to_dlpack
    zeros = torch.zeros_like(stage)
    known = {id(p) for p in params}

    def check_leaves(out: Any, y: torch.Tensor, time: torch.Tensor) -> None:
        # Captured tensors are found from func's first evaluation; one that
        # func only uses later would silently get no gradient.  Refuse that.
        for leaf in grad_leaves(out):
            if id(leaf) not in known and leaf is not y and leaf is not time:
                raise RuntimeError(
                    "func used a tensor that requires grad but was not used by its first "
                    f"evaluation (shape {tuple(leaf.shape)}); qode cannot route its gradient. "
                    "Make it an nn.Parameter of func (an nn.Module) or use it from the start.")

    def vjp(t: float) -> tuple[Any, float]:
        with torch.enable_grad():
            y = stage.detach().requires_grad_()
            time = state.time(t)
            if need_t:
                time.requires_grad_()
            out = func(time, state._split(y, ()))
            members = out if isinstance(out, (tuple, list)) else (out,)
            flat = torch.cat([m.reshape(-1) for m in members]) if state.is_tuple else out.reshape(-1)
            if flat.shape != stage.shape:
                raise ValueError(f"func returned {flat.numel()} elements during the backward "
                                 f"pass, expected {stage.numel()}")
            if not flat.requires_grad:  # f depends on neither y, t nor parameters
                return to_dlpack(zeros), 0.0
            check_leaves(flat, y, time)
            inputs = [y] + ([time] if need_t else []) + list(params)
            grads = torch.autograd.grad(flat, inputs, grad_outputs=cotangent.to(flat.dtype),
                                        allow_unused=True, retain_graph=True)
        y_bar = grads[0] if grads[0] is not None else zeros
        t_bar = 0.0
        if need_t and grads[1] is not None:
            t_bar = float(grads[1].real if grads[1].is_complex() else grads[1])
        for index, g in enumerate(grads[1 + int(need_t):]):
            if g is None:
                continue
            if accumulators[index] is None:
                # A copy: g may share memory with the cotangent, which C reuses.
                accumulators[index] = g.detach().clone()
            else:
                accumulators[index].add_(g)
        return to_dlpack(y_bar.detach().contiguous()), t_bar

    return vjp


class OdeintBackprop(torch.autograd.Function):
    """y(t) = odeint(...) with the discrete adjoint as its backward."""

    @staticmethod
    def forward(ctx: Any, solve: Any, y0_flat: torch.Tensor, t: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        kwargs = solve.c_arguments()
        grid = None if solve.adaptive else solve._grid()
        kwargs["grid"] = grid
        result = _C.solve(t=solve.times, record=solve.adaptive, **kwargs)
        ctx.solve, ctx.grid, ctx.record = solve, grid, result["trajectory"]
        ctx.params = params
        return torch.from_numpy(result["y"])

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[Any, ...]:
        solve = ctx.solve
        need_t = ctx.needs_input_grad[2]
        state = solve.state
        kwargs = solve.c_arguments()
        accumulators: list[Optional[torch.Tensor]]
        if solve.native_field is not None:  # the VJP and its parameter gradients are in C
            flat_grads, accumulators = solve.native_field.gradient_buffer()
            kwargs["native"] = solve.native_spec(flat_grads)
        else:
            accumulators = [None] * len(ctx.params)  # None: no evaluation used the parameter
            v_stage = np.empty_like(state.stage)
            kwargs.update(vjp=make_vjp(state, solve.func, ctx.params, accumulators, need_t,
                                       v_stage), v_stage=v_stage)
        kwargs.update(grid=ctx.grid, record=ctx.record,
                      grad_out=grad_y.detach().to(state.dtype).contiguous().resolve_conj().numpy())
        grad_grid = np.zeros(len(ctx.grid)) if need_t and ctx.grid is not None else None
        grad_y0, grad_t = _C.backward(t=solve.times, grad_grid=grad_grid, **kwargs)
        grad_t_tensor = None
        if need_t:
            grad_t_tensor = torch.from_numpy(grad_t)
            if grad_grid is not None:
                grad_t_tensor += grid_gradient_to_t(solve, grad_grid)
            grad_t_tensor = grad_t_tensor.to(solve.t_input.device)
        return (None, torch.from_numpy(grad_y0), grad_t_tensor, *accumulators)


def grid_gradient_to_t(solve: Any, grad_grid: np.ndarray) -> torch.Tensor:
    """dL/dt from dL/d(grid node) for a fixed-grid solve on an explicit grid.

    With ``step_size`` the grid is torchdiffeq's ``t[0] + k * step_size`` with
    its last node replaced by ``t[-1]`` (in either time direction), so the
    last node's gradient goes to ``t[-1]`` and every other node's to ``t[0]``.
    A ``grid_constructor`` is called again with a copy of ``t`` that requires
    grad, and the node gradients are backpropagated through the grid it
    returns (none reach ``t`` if that grid is not differentiable in ``t``, as
    in torchdiffeq).
    """
    t_input = solve.t_input
    grad_t = torch.zeros(solve.times.size, dtype=torch.float64)
    constructor = solve.options.get("grid_constructor")
    if constructor is None:
        grad_t[0] += float(np.sum(grad_grid[:-1]))
        grad_t[-1] += float(grad_grid[-1])
        return grad_t
    with torch.enable_grad():
        t_leaf = t_input.detach().requires_grad_()
        grid = constructor(solve.func, solve.user_y0, t_leaf)
        if not (torch.is_tensor(grid) and grid.requires_grad):
            return grad_t
        if grid.numel() != grad_grid.size:
            raise RuntimeError(f"grid_constructor returned {grid.numel()} points during the "
                               f"backward pass, but {grad_grid.size} during the forward pass")
        cotangent = torch.from_numpy(grad_grid).to(grid.dtype).reshape(grid.shape)
        (found,) = torch.autograd.grad(grid, t_leaf, grad_outputs=cotangent, allow_unused=True)
    if found is not None:
        grad_t += found.to(torch.float64)
    return grad_t


class OdeintEventBackprop(torch.autograd.Function):
    """The state at the event of an adaptive event solve, with its discrete adjoint.

    As in torchdiffeq's ``odeint(..., event_fn=...)``, the event time itself
    is treated as a constant here; ``odeint_event`` adds its gradient through
    the implicit function theorem (:class:`EventTimeGradient`).
    """

    @staticmethod
    def forward(ctx: Any, solve: Any, event: Callable, y0_flat: torch.Tensor,
                *params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kwargs = solve.c_arguments()
        result = _C.solve_event(t0=float(solve.times[0]), event=event,
                                event_tol=float(np.min(solve.atol)), record=True, **kwargs)
        ctx.solve, ctx.record, ctx.params = solve, result["trajectory"], params
        ctx.times = np.array([solve.times[0], result["t_event"]])
        return torch.tensor(result["t_event"], dtype=torch.float64), torch.from_numpy(result["y"])

    @staticmethod
    def backward(ctx: Any, grad_t_event: torch.Tensor, grad_y: torch.Tensor) -> tuple[Any, ...]:
        solve = ctx.solve
        state = solve.state
        accumulators: list[Optional[torch.Tensor]] = [None] * len(ctx.params)
        v_stage = np.empty_like(state.stage)
        grad_out = np.zeros((2, state.n), dtype=state.flat_y0.dtype)
        grad_out[1] = grad_y.detach().to(state.dtype).contiguous().resolve_conj().numpy()
        kwargs = solve.c_arguments()
        kwargs.update(vjp=make_vjp(state, solve.func, ctx.params, accumulators, False, v_stage),
                      v_stage=v_stage, record=ctx.record, grad_out=grad_out)
        grad_y0, _ = _C.backward(t=ctx.times, **kwargs)
        return (None, None, torch.from_numpy(grad_y0), *accumulators)


class EventTimeGradient(torch.autograd.Function):
    """Routes gradients through the event time t* defined by g(t*, y(t*)) = 0.

    By the implicit function theorem dt*/dy(t*) = -(dg/dy) / (dg/dt + dg/dy . f),
    so a gradient on t* (and the t*-dependence of the final state, y' = f)
    reaches the final state, from where the solve's own backward carries it on.
    """

    @staticmethod
    def forward(ctx: Any, func: Callable, event_fn: Callable, event_t: torch.Tensor,
                state_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.func, ctx.event_fn = func, event_fn
        ctx.save_for_backward(event_t, state_t)
        return event_t.detach(), state_t.detach()

    @staticmethod
    def backward(ctx: Any, grad_t: torch.Tensor, grad_state: torch.Tensor) -> tuple[Any, ...]:
        event_t, state_t = ctx.saved_tensors
        event_t = event_t.detach().clone().requires_grad_(True)
        state_t = state_t.detach().clone().requires_grad_(True)
        with torch.no_grad():
            f_val = ctx.func(event_t, state_t)
        with torch.enable_grad():
            value = ctx.event_fn(event_t, state_t)
            dg_dt, dg_dy = torch.autograd.grad(value, (event_t, state_t), allow_unused=True)
        dg_dt = torch.zeros_like(event_t) if dg_dt is None else dg_dt
        dg_dy = torch.zeros_like(state_t) if dg_dy is None else dg_dy
        total = dg_dt + torch.sum(dg_dy * f_val)
        grad_t = grad_t + torch.sum(grad_state * f_val)
        grad_state = grad_state + dg_dy * (-grad_t / (total + 1e-12))
        return None, None, None, grad_state


class NeedsGrad(Exception):
    """Raised from the first evaluation when func turns out to depend on
    tensors that require grad, so that odeint restarts with a backward pass."""
