"""``odeint_adjoint``: gradients by solving the adjoint ODE backwards in time.

torchdiffeq 0.2.5's continuous adjoint, with the same augmented system
(t-adjoint, state, state adjoint, parameter adjoints), the same default norm
and ``seminorm`` option, so that qode's solver takes the same backward steps.
Memory does not grow with the number of steps: nothing of the forward solve is
kept but the outputs.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from . import _C
from ._state import split_flat
from .odeint import _Solve, odeint

_CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.abs().pow(2).mean().sqrt()


class _AugmentedDynamics:
    """d/dt of (t-adjoint, y, a, parameter adjoints) for the backward solve:
    y' = f(t, y), a' = -a^T df/dy, and the integrands -a^T df/dt, -a^T df/dtheta."""

    def __init__(self, func: Callable, params: Sequence[torch.Tensor]):
        self.func, self.params = func, tuple(params)
        for name in _CALLBACKS:  # torchdiffeq's *_adjoint callbacks run on the backward solve
            callback = getattr(func, name + "_adjoint", None)
            if callback is not None:
                setattr(self, name, callback)

    def __call__(self, t: torch.Tensor, aug: tuple) -> tuple:
        y, adj_y = aug[1], aug[2]
        # The t-adjoint is integrated even when t needs no gradient: it enters
        # the error norm of the backward solve, and torchdiffeq integrates it
        # too, so both take the same backward steps.
        with torch.enable_grad():
            t_ = t.detach().requires_grad_(True)
            y_ = y.detach().requires_grad_(True)
            f = self.func(t_, y_)
            inputs = (t_, y_) + self.params
            grads = torch.autograd.grad(f, inputs, -adj_y, allow_unused=True, retain_graph=True) \
                if f.requires_grad else (None,) * len(inputs)
        vjp_t, vjp_y, *vjp_params = grads
        vjp_t = torch.zeros_like(aug[0]) if vjp_t is None else vjp_t.to(aug[0].dtype)
        vjp_y = torch.zeros_like(y) if vjp_y is None else vjp_y
        vjp_params = [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, vjp_params)]
        return (vjp_t, f.detach(), vjp_y, *vjp_params)


class _FlatFunc(torch.nn.Module):
    """func on a flat state, for tuple states (as torchdiffeq flattens them)."""

    def __init__(self, func: Callable, shapes: Sequence[torch.Size]):
        super().__init__()
        self.base, self.shapes = func, list(shapes)

    def unflatten(self, flat: torch.Tensor) -> tuple:
        return split_flat(flat, self.shapes)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([f.reshape(-1) for f in self.base(t, self.unflatten(y))])


class _OdeintAdjoint(torch.autograd.Function):

    @staticmethod
    def forward(ctx: Any, settings: dict, y0: torch.Tensor, t: torch.Tensor,
                *params: torch.Tensor) -> tuple:
        func, event_fn = settings["func"], settings["event_fn"]
        with torch.no_grad():
            if event_fn is None:
                y = odeint(func, y0, t, rtol=settings["rtol"], atol=settings["atol"],
                           method=settings["method"], options=settings["options"])
                ctx.save_for_backward(t, y, *params)
                ctx.settings, ctx.event_t = settings, None
                return (y,)
            event_t, y = odeint(func, y0, t, rtol=settings["rtol"], atol=settings["atol"],
                                method=settings["method"], options=settings["options"],
                                event_fn=event_fn)
            ctx.save_for_backward(t, y, *params)
            ctx.settings, ctx.event_t = settings, event_t
            return event_t, y

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple:
        settings = ctx.settings
        t, y, *params = ctx.saved_tensors
        need_t = ctx.needs_input_grad[2]
        grad_y = grads[-1]
        times = t if ctx.event_t is None else torch.cat(
            [t[:1], ctx.event_t.reshape(1).to(t.dtype)])
        func = settings["func"]
        native = _native_adjoint(settings, y, params)
        dynamics = _AugmentedDynamics(func, params)
        with torch.no_grad():
            aug = [torch.zeros((), dtype=y.dtype), y[-1], grad_y[-1]]
            aug.extend(torch.zeros_like(p) for p in params)
            time_vjps = torch.zeros(len(times), dtype=t.dtype) if need_t else None
            for i in range(len(times) - 1, 0, -1):
                if need_t:
                    # Moving the output time t[i] moves y(t[i]) by f(t[i], y[i]).
                    d_loss_d_ti = func(times[i], y[i]).reshape(-1).dot(grad_y[i].reshape(-1))
                    aug[0] = aug[0] - d_loss_d_ti
                    time_vjps[i] = d_loss_d_ti
                if native is not None:
                    aug = native.solve(aug, times[i - 1:i + 1].flip(0))
                else:
                    solution = odeint(dynamics, tuple(aug), times[i - 1:i + 1].flip(0),
                                      rtol=settings["adjoint_rtol"],
                                      atol=settings["adjoint_atol"],
                                      method=settings["adjoint_method"],
                                      options=settings["adjoint_options"])
                    aug = [s[1] for s in solution]
                aug[1] = y[i - 1]           # the forward pass's state is the better estimate
                aug[2] = aug[2] + grad_y[i - 1]
            if need_t:
                time_vjps[0] = aug[0]
                if ctx.event_t is not None:  # only t[0] is an input in event mode
                    time_vjps = torch.cat([time_vjps[:1], torch.zeros_like(t[1:])])
        return (None, aug[2], time_vjps, *aug[3:])


class _NativeAdjoint:
    """The backward solves of a native field: the augmented system runs in C.

    The augmented state holds the adjoints of all the field's parameters in
    its native order; ``solve`` packs and unpacks the tuple that the Python
    path uses, so both paths share the driver loop of ``_OdeintAdjoint``.
    """

    def __init__(self, settings: dict, y: torch.Tensor, params: Sequence[torch.Tensor],
                 seminorm: bool):
        from .fields import AdjointSystem

        field = settings["func"]
        self.settings = settings
        self.system = AdjointSystem(field, y.shape[1:])
        native = field.native_parameters()
        position = {id(p): i for i, p in enumerate(native)}
        self.order = [position[id(p)] for p in params]  # params[k] is native[order[k]]
        self.native_shapes = [p.shape for p in native]
        n = y[0].numel()
        ends = [1, 1 + n, 1 + 2 * n]
        if not seminorm:  # every parameter adjoint is a member of the error norm
            for p in native:
                ends.append(ends[-1] + p.numel())
        self.segments = np.asarray(ends, dtype=np.int64)

    def solve(self, aug: list, times: torch.Tensor) -> list:
        native_adj = [None] * len(self.native_shapes)
        for k, index in enumerate(self.order):
            native_adj[index] = aug[3 + k]
        flat = torch.cat([aug[0].reshape(1), aug[1].reshape(-1), aug[2].reshape(-1)]
                         + [a.reshape(-1) for a in native_adj])
        s = self.settings
        solve = _Solve(self.system, flat, times, s["adjoint_rtol"], s["adjoint_atol"],
                       s["adjoint_method"], s["adjoint_options"])
        solve.native_field = self.system
        kwargs = solve.c_arguments()
        kwargs["segments"] = self.segments
        if not solve.adaptive:
            kwargs["grid"] = solve._grid()
        end = torch.from_numpy(_C.solve(t=solve.times, **kwargs)["y"][-1])
        n = aug[1].numel()
        parts = [end[0].reshape(()), end[1:1 + n].view(aug[1].shape),
                 end[1 + n:1 + 2 * n].view(aug[2].shape)]
        start, native_out = 1 + 2 * n, []
        for shape in self.native_shapes:
            count = int(np.prod(shape, dtype=np.int64))
            native_out.append(end[start:start + count].view(shape))
            start += count
        return parts + [native_out[index] for index in self.order]


def _native_adjoint(settings: dict, y: torch.Tensor,
                    params: Sequence[torch.Tensor]) -> Optional[_NativeAdjoint]:
    """A native backward solver when func is a native field and nothing needs Python."""
    from .fields import NativeField

    func = settings["func"]
    if not isinstance(func, NativeField) or settings["event_fn"] is not None:
        return None
    if any(hasattr(func, name + "_adjoint") for name in _CALLBACKS):
        return None
    if settings["native_seminorm"] is None:  # a user norm: Python must evaluate it
        return None
    native = func.native_parameters()
    if {id(p) for p in params} != {id(p) for p in native} or len(params) != len(native):
        return None  # the augmented system would hold other parameter adjoints
    if any(torch.as_tensor(tol).numel() != 1
           for tol in (settings["adjoint_rtol"], settings["adjoint_atol"])):
        return None
    options = {k: v for k, v in settings["adjoint_options"].items() if k != "norm"}
    return _NativeAdjoint(dict(settings, adjoint_options=options), y, params,
                          settings["native_seminorm"])


def _adjoint_norm(options: dict, state_norm: Optional[Callable], n_params: int,
                  unflatten: Optional[Callable]) -> None:
    """Chooses the norm of the backward solve, in place, as torchdiffeq does."""
    norm = options.get("norm")
    if norm == "seminorm":
        # Leave the parameter adjoints out of the error control.
        measure = state_norm or _rms

        def seminorm(aug: tuple) -> torch.Tensor:
            return torch.stack([aug[0].abs(), measure(aug[1]), measure(aug[2])]).max()

        options["norm"] = seminorm
    elif callable(norm) and unflatten is not None:
        def user_norm(aug: tuple) -> Any:
            return norm((aug[0], *unflatten(aug[1]), *unflatten(aug[2]), *aug[3:]))

        options["norm"] = user_norm
    elif norm is None and state_norm is not None:
        def default(aug: tuple) -> torch.Tensor:
            values = [aug[0].abs(), state_norm(aug[1]), state_norm(aug[2])]
            values.extend(_rms(p) for p in aug[3:])
            return torch.stack(values).max()

        options["norm"] = default
    # norm None and no state norm: qode's default mixed norm over the tuple
    # (t, y, a, *params) is exactly torchdiffeq's default adjoint norm.


def odeint_adjoint(func: Callable, y0: Any, t: torch.Tensor, *, rtol: Any = 1e-7,
                   atol: Any = 1e-9, method: Optional[str] = None,
                   options: Optional[dict] = None, event_fn: Optional[Callable] = None,
                   adjoint_rtol: Any = None, adjoint_atol: Any = None,
                   adjoint_method: Optional[str] = None, adjoint_options: Optional[dict] = None,
                   adjoint_params: Optional[Sequence[torch.Tensor]] = None) -> Any:
    """torchdiffeq's ``odeint_adjoint``: gradients from the adjoint ODE, O(1) memory in steps.

    Parameters
    ----------
    func, y0, t, rtol, atol, method, options, event_fn
        As for :func:`qode.odeint`.
    adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options
        Settings of the backward solve; default to the forward ones (options
        without ``norm``).  ``adjoint_options={"norm": "seminorm"}`` leaves the
        parameter adjoints out of the step-size control.
    adjoint_params : sequence of Tensors, optional
        The tensors to differentiate besides ``y0`` and ``t``; default
        ``func.parameters()``.  Required when ``func`` is not an ``nn.Module``
        (pass ``()`` if there are none).

    Returns
    -------
    As :func:`qode.odeint`.
    """
    if adjoint_params is None and not isinstance(func, torch.nn.Module):
        raise ValueError("func must be an nn.Module to find the adjoint parameters; otherwise pass "
                         "them as adjoint_params (adjoint_params=() if there are none)")
    params = tuple(func.parameters()) if adjoint_params is None else tuple(adjoint_params)
    params = tuple(p for p in params if p.requires_grad)
    method = "dopri5" if method is None else method
    if adjoint_method is not None and adjoint_method != method and options is not None \
            and adjoint_options is None:
        raise ValueError("If `adjoint_method != method` then `adjoint_options` must be given "
                         "when `options` is.")
    adjoint_options = (dict(adjoint_options) if adjoint_options is not None else
                       {k: v for k, v in (options or {}).items() if k != "norm"})

    shapes = None
    flat_func, flat_y0 = func, y0
    if isinstance(y0, tuple):
        shapes = [m.shape for m in y0]
        flat_func = _FlatFunc(func, shapes)
        flat_y0 = torch.cat([m.reshape(-1) for m in y0])
        for name in _CALLBACKS:
            for suffix in ("", "_adjoint"):
                if hasattr(func, name + suffix):
                    setattr(flat_func, name + suffix, getattr(func, name + suffix))
    user_norm = (options or {}).get("norm")
    state_norm = None
    if shapes is not None:
        # The flat forward solve measures errors as a tuple solve would: with
        # the user's norm on the members, or the max of their RMS norms.
        unflatten = flat_func.unflatten
        state_norm = (lambda flat: user_norm(unflatten(flat))) if user_norm is not None else \
            (lambda flat: torch.stack([_rms(m) for m in unflatten(flat)]).max())
        options = dict(options or {})
        options["norm"] = state_norm
    elif user_norm is not None:
        state_norm = user_norm
    # The native backward solve handles the default norm and seminorm itself.
    requested_norm = adjoint_options.get("norm")
    native_seminorm = (requested_norm == "seminorm") if (
        requested_norm in (None, "seminorm") and state_norm is None) else None
    _adjoint_norm(adjoint_options, state_norm, len(params),
                  flat_func.unflatten if shapes is not None else None)

    if not torch.is_tensor(t):
        t = torch.as_tensor(t, dtype=torch.float64)
    settings = dict(func=flat_func, event_fn=None, rtol=rtol, atol=atol, method=method,
                    options=options, adjoint_rtol=rtol if adjoint_rtol is None else adjoint_rtol,
                    adjoint_atol=atol if adjoint_atol is None else adjoint_atol,
                    adjoint_method=method if adjoint_method is None else adjoint_method,
                    adjoint_options=adjoint_options, native_seminorm=native_seminorm)
    if event_fn is not None:
        settings["event_fn"] = event_fn if shapes is None else \
            (lambda s, flat: event_fn(s, flat_func.unflatten(flat)))
        event_t, solution = _OdeintAdjoint.apply(settings, flat_y0, t, *params)
        return event_t, _unflatten_solution(solution, shapes)
    (solution,) = _OdeintAdjoint.apply(settings, flat_y0, t, *params)
    return _unflatten_solution(solution, shapes)


def _unflatten_solution(solution: torch.Tensor, shapes: Optional[list]) -> Any:
    if shapes is None:
        return solution
    return split_flat(solution, shapes, (len(solution),))
