"""``odeint`` and ``odeint_event`` with torchdiffeq 0.2.5's calls and results.

The Runge-Kutta loop, step-size control, dense output and event location run in
C (``qode._C``); Python prepares one flat state, wraps ``func`` once and is
called back only to evaluate ``func`` (and the optional norm, event function and
step callbacks).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Optional

import numpy as np

from . import _C
from ._state import FlatState, TorchFlatState, make_flat_state, make_rhs, split_flat

ADAPTIVE_METHODS: tuple[str, ...]
FIXED_METHODS: tuple[str, ...]
_adaptive, _fixed = _C.method_names()
ADAPTIVE_METHODS, FIXED_METHODS = tuple(_adaptive), tuple(_fixed)
METHODS = ADAPTIVE_METHODS + FIXED_METHODS

ADAPTIVE_OPTIONS = frozenset({"norm", "first_step", "safety", "ifactor", "dfactor",
                              "max_num_steps", "step_t", "jump_t", "min_step", "max_step",
                              "dtype"})
FIXED_OPTIONS = frozenset({"step_size", "grid_constructor", "interp", "perturb", "norm"})
_CALLBACK_NAMES = ("callback_step", "callback_accept_step", "callback_reject_step")
_TORCHDIFFEQ_ONLY = ("explicit_adams", "implicit_adams", "fixed_adams", "scipy_solver")


def _is_tensor(x: Any) -> bool:
    torch = _torch_or_none()
    return torch is not None and torch.is_tensor(x)


def _torch_or_none():
    try:
        import torch
    except ImportError:  # NumPy-only installs
        return None
    return torch


def _torch_simd_bytes() -> int:
    """Width of the SIMD vectors torch reduces with on this CPU.

    Stage sums are rounded in torch's order for this width, which makes qode's
    steps bit-identical to torchdiffeq's (see csrc/solver/vec_ops.c).
    """
    torch = _torch_or_none()
    if torch is None:
        return 32
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return 64 if "AVX512" in capability else 32


def _as_float64(x: Any, name: str) -> np.ndarray:
    """A float64 NumPy copy of a tensor, array or number."""
    if _is_tensor(x):
        if x.requires_grad:
            raise ValueError(f"{name} cannot require gradient")
        x = x.detach().cpu()
        if x.is_complex():
            raise TypeError(f"{name} must be real")
        return x.to(dtype=_torch_or_none().float64).numpy().copy()
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real")
    return arr.astype(np.float64)


def _check_times(t: Any) -> np.ndarray:
    """t as float64 NumPy, after torchdiffeq's checks (with clearer errors)."""
    if _is_tensor(t) and not (t.is_floating_point()):
        raise TypeError(f"`t` must be a floating point Tensor but is a {t.type()}")
    if _is_tensor(t) and t.device.type == "meta":  # holds no values to read
        raise ValueError("t is on the meta device, which holds no values; pass t on the CPU")
    if _is_tensor(t):
        times = t.detach().cpu().to(dtype=_torch_or_none().float64).numpy().copy()
    else:
        times = np.asarray(t, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"t must be one dimensional, got shape {tuple(times.shape)}")
    if times.size == 0:
        raise ValueError("t must hold at least one time")
    if not np.all(np.isfinite(times)):
        raise ValueError("t must be finite (no NaN or Inf)")
    steps = np.diff(times)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError("t must be strictly increasing or decreasing")
    return times


def _tolerance(tol: Any, name: str, state: FlatState) -> np.ndarray:
    """One tolerance per flat element, or a single one (size-1 array)."""
    if state.is_tuple and isinstance(tol, (tuple, list)):
        if len(tol) != len(state.shapes):
            raise ValueError(f"If using tupled {name} it must have the same length as the "
                             f"tuple y0")
        parts = []
        for member, shape, numel in zip(tol, state.shapes, state.numels):
            values = _as_float64(member, name).reshape(-1)
            if values.size not in (1, numel):
                _bad_tolerance_shape(name, member, shape)
            parts.append(np.broadcast_to(values, (numel,)))
        values = np.concatenate(parts)
    else:
        values = _as_float64(tol, name)
        if values.size != 1:
            if state.is_tuple:
                raise ValueError(f"{name} for a tuple state must be a number or a tuple with "
                                 f"one tolerance per member")
            try:
                values = np.broadcast_to(values, state.shapes[0])
            except ValueError:
                _bad_tolerance_shape(name, tol, state.shapes[0])
        values = np.ascontiguousarray(values).reshape(-1)
    if np.any(np.isnan(values)) or np.any(values < 0):
        raise ValueError(f"{name} must be non-negative (got {values.min()})")
    return values


def _bad_tolerance_shape(name: str, tol: Any, shape: tuple[int, ...]) -> np.ndarray:
    raise ValueError(f"{name} of shape {tuple(np.shape(tol))} does not broadcast to the state's "
                     f"shape {tuple(shape)}")


def _check_method(method: Optional[str]) -> str:
    method = "dopri5" if method is None else method
    if method in _TORCHDIFFEQ_ONLY:
        raise ValueError(f'qode does not implement the method "{method}"; use one of '
                         f'{", ".join(METHODS)}')
    if method not in METHODS:
        raise ValueError(f'Invalid method "{method}". Must be one of {", ".join(METHODS)}.')
    return method


def _check_options(method: str, options: Optional[dict]) -> dict:
    options = {} if options is None else dict(options)
    valid = ADAPTIVE_OPTIONS if method in ADAPTIVE_METHODS else FIXED_OPTIONS
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method '{method}'; valid options are "
                         f"{sorted(valid)}")
    dtype = options.pop("dtype", None)
    if dtype is not None and str(dtype) not in ("torch.float64", "float64"):
        raise ValueError(f"qode keeps time in float64; the option dtype={dtype} is not supported")
    return options


def _needs_grad(func: Callable, y0: Any, t: Any) -> bool:
    """Whether this call must record a backward pass."""
    torch = _torch_or_none()
    if torch is None or not torch.is_grad_enabled():
        return False
    members = y0 if isinstance(y0, tuple) else (y0,)
    if not all(torch.is_tensor(m) for m in members):
        return False
    needs = any(m.requires_grad for m in members) or (torch.is_tensor(t) and t.requires_grad)
    if isinstance(func, torch.nn.Module):
        needs = needs or any(p.requires_grad for p in func.parameters())
    return needs


class _Solve:
    """Everything one call needs, checked and converted for ``qode._C``."""

    def __init__(self, func: Callable, y0: Any, t: Any, rtol: Any, atol: Any,
                 method: Optional[str], options: Optional[dict]):
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        self.method = _check_method(method)
        self.adaptive = self.method in ADAPTIVE_METHODS
        self.options = _check_options(self.method, options)
        self.func = func
        self.state = make_flat_state(y0)
        self.user_y0 = y0
        self.t_input = t
        self.times = _check_times(t)
        self.direction = -1.0 if self.times.size > 1 and self.times[0] > self.times[1] else 1.0
        self.parameters: Optional[list] = None  # tensors func depends on (gradients)
        self.native_field: Any = None  # set by use_native_field
        self.rtol = _tolerance(rtol, "rtol", self.state)
        self.atol = _tolerance(atol, "atol", self.state)
        if not np.all(np.isfinite(self.state.flat_y0)):
            raise ValueError("y0 contains non-finite values (NaN or Inf)")

    # -- callables handed to C ------------------------------------------
    def _norm(self) -> Optional[Callable[[], float]]:
        norm = self.options.get("norm")
        if norm is None:
            return None
        if not callable(norm):
            raise TypeError("options['norm'] must be callable")
        view = self.state.stage_view
        return lambda: float(norm(view))

    def _hook(self) -> Optional[Callable[[int, float, float], None]]:
        callbacks = [getattr(self.func, name, None) for name in _CALLBACK_NAMES]
        if not self.adaptive:
            unsupported = [n for n, cb in zip(_CALLBACK_NAMES[1:], callbacks[1:]) if cb is not None]
            if unsupported:
                warnings.warn(f"Solver '{self.method}' does not support callbacks "
                              f"{set(unsupported)}")
            callbacks[1] = callbacks[2] = None
        if all(cb is None for cb in callbacks):
            return None
        state, as_time = self.state, self._time64

        def hook(kind: int, t0: float, dt: float) -> None:
            callback = callbacks[kind]
            if callback is not None:
                callback(as_time(t0), state.copy_of_stage(), as_time(dt))

        return hook

    def _time64(self, t: float) -> Any:
        """A time for callbacks and event functions: a float64 tensor for torch states."""
        if isinstance(self.state, TorchFlatState):
            return _torch_or_none().tensor(t, dtype=_torch_or_none().float64)
        return t

    def _option_times(self, name: str) -> Optional[np.ndarray]:
        value = self.options.get(name)
        return None if value is None else _as_float64(value, name).reshape(-1)

    def _grid(self) -> Optional[np.ndarray]:
        """The fixed-step grid in user time, as torchdiffeq builds it."""
        step_size = self.options.get("step_size")
        constructor = self.options.get("grid_constructor")
        if step_size is not None and constructor is not None:
            raise ValueError("step_size and grid_constructor are mutually exclusive arguments.")
        if constructor is not None:
            grid = _check_times(constructor(self.func, self.user_y0, self.t_input))
            return grid
        if step_size is None:
            return None
        step = float(step_size)
        if not (step > 0 and math.isfinite(step)):
            raise ValueError(f"step_size must be positive and finite, got {step_size}")
        internal = self.direction * self.times
        start, end = internal[0], internal[-1]
        n_points = int(math.ceil((end - start) / step + 1))
        grid = np.arange(n_points, dtype=np.float64) * step + start
        grid[-1] = end
        return self.direction * grid

    def use_native_field(self) -> None:
        """Hands the solve to func's C implementation when func is a native field.

        That needs a single torch tensor state and nothing else that calls
        Python during the solve (no ``norm`` option, no step callbacks).
        Otherwise the field is called through Python like any other func.
        """
        if not isinstance(self.state, TorchFlatState) or self.state.is_tuple:
            return
        from .fields import NativeField

        if (isinstance(self.func, NativeField) and self.options.get("norm") is None
                and self._hook() is None):
            self.native_field = self.func
            self.parameters = list(self.func.native_parameters())

    def native_spec(self, grads: Any = None) -> tuple:
        """The native field's description for this state (flat gradient accumulator optional)."""
        return self.native_field.native_spec(self.state.shapes[0], self.state.dtype, grads)

    def c_arguments(self) -> dict:
        """Keyword arguments for ``_C.solve`` / ``_C.solve_event``."""
        state = self.state
        kwargs = dict(
            method=self.method, y0=state.flat_y0, y_stage=state.stage,
            rtol=self.rtol, atol=self.atol,
            direction=self.direction, norm=self._norm(), hook=self._hook(),
            segments=state.segment_ends, simd_bytes=_torch_simd_bytes(),
        )
        if self.native_field is not None:
            kwargs["native"] = self.native_spec()
        else:
            kwargs["rhs"] = make_rhs(state, self.func)
        if self.adaptive:
            for name in ("first_step", "safety", "ifactor", "dfactor", "min_step", "max_step"):
                if self.options.get(name) is not None:
                    kwargs[name] = float(self.options[name])
            if self.options.get("max_num_steps") is not None:
                kwargs["max_num_steps"] = int(self.options["max_num_steps"])
            kwargs["step_t"] = self._option_times("step_t")
            kwargs["jump_t"] = self._option_times("jump_t")
        else:
            kwargs["interp"] = self.options.get("interp", "linear")
            kwargs["perturb"] = bool(self.options.get("perturb", False))
        return kwargs


def _no_grad():
    torch = _torch_or_none()
    return torch.no_grad() if torch is not None else _NullContext()


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def odeint(func: Callable, y0: Any, t: Any, *, rtol: Any = 1e-7, atol: Any = 1e-9,
           method: Optional[str] = None, options: Optional[dict] = None,
           event_fn: Optional[Callable] = None) -> Any:
    """Integrate ``dy/dt = func(t, y)`` from ``y(t[0]) = y0``; torchdiffeq's ``odeint``.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` returning dy/dt with the shape and dtype of ``y``.  With
        torch states, ``t`` is a 0-d tensor in the state's real precision and
        ``y`` a tensor (or tuple of tensors); with NumPy states, ``t`` is a float
        and ``y`` an array.  ``y`` is a view of the solver's stage buffer: it is
        valid during the call only (clone it to keep it) and must not be
        modified in place.
    y0 : Tensor, ndarray or tuple of them
        The initial state, float32, float64, complex64 or complex128, on the CPU.
    t : 1-D Tensor or array
        Output times, strictly increasing or decreasing; ``t[0]`` is the start.
    rtol, atol : float, Tensor or array
        Relative and absolute tolerances, scalars or one per element (or, for
        a tuple state, a tuple with one tolerance per member).
    method : str, optional
        ``dopri5`` (default), ``tsit5``, ``bosh3``, ``fehlberg2``,
        ``adaptive_heun``, ``dopri8`` (adaptive); ``euler``, ``midpoint``,
        ``heun2``, ``heun3``, ``rk4`` (fixed grid).
    options : dict, optional
        Adaptive: ``first_step``, ``safety``, ``ifactor``, ``dfactor``,
        ``min_step``, ``max_step``, ``max_num_steps``, ``step_t``, ``jump_t``,
        ``norm``.  Fixed grid: ``step_size`` or ``grid_constructor``,
        ``interp`` (``'linear'`` or ``'cubic'``), ``perturb``.
    event_fn : callable, optional
        ``event_fn(t, y)``; when given, the solve stops where it changes sign and
        ``(event_t, solution)`` is returned; ``t`` must then hold two times, the
        start and any later (or, for reverse time, earlier) time.

    Returns
    -------
    Tensor, ndarray or tuple
        ``y`` at every time in ``t`` (leading dimension ``len(t)``), or, with
        ``event_fn``, ``(event_t, solution)`` with ``solution`` holding ``y0`` and
        the state at the event.

    Raises
    ------
    ValueError, TypeError
        Bad arguments: shapes, dtypes, times, tolerances, methods, options.
    FloatingPointError
        ``y0``, ``func`` or the state became NaN or Inf (the message gives the time).
    AssertionError
        ``underflow in dt`` or ``max_num_steps exceeded``, as torchdiffeq raises.
    """
    solve = _Solve(func, y0, t, rtol, atol, method, options)
    if event_fn is not None:
        return _solve_until_event(solve, event_fn)
    solve.use_native_field()
    if _needs_grad(func, y0, t):
        return _odeint_with_grad(solve)
    kwargs = solve.c_arguments()
    if not solve.adaptive:
        kwargs["grid"] = solve._grid()
    probing = _watch_for_captured_grad(solve, kwargs)
    try:
        with _no_grad():
            result = _C.solve(t=solve.times, **kwargs)
    except Exception as error:
        if probing is not None and isinstance(error, probing):
            return _odeint_with_grad(solve)
        raise
    return solve.state.unflatten(result["y"], (solve.times.size,))


def _watch_for_captured_grad(solve: "_Solve", kwargs: dict) -> Optional[type]:
    """Makes the solve's first evaluation of func look for captured tensors.

    A func may close over tensors that require grad (a closure over a weight
    matrix, say).  Then the solve must be differentiable.  The first
    evaluation runs with autograd on and inspects the graph of its output; if
    it finds such tensors it raises NeedsGrad and odeint restarts through the
    backward-capable path.  Returns the exception type to catch, or None when
    no watching is needed (NumPy states, grad mode off).
    """
    torch = _torch_or_none()
    if (not isinstance(solve.state, TorchFlatState) or not torch.is_grad_enabled()
            or "rhs" not in kwargs):  # a native field captures nothing
        return None
    from ._autograd import NeedsGrad, grad_leaves

    fast_rhs = kwargs["rhs"]
    state, func = solve.state, solve.func
    first = [True]

    def rhs(t: float) -> Any:
        if not first[0]:
            return fast_rhs(t)
        first[0] = False
        with torch.enable_grad():
            out = func(state.time(t), state.stage_view)
        leaves = grad_leaves(out)
        if leaves:
            solve.parameters = None  # rediscovered, with module parameters, on restart
            raise NeedsGrad()
        return state.export(out)  # nothing in its graph requires grad

    kwargs["rhs"] = rhs
    return NeedsGrad


def _event_captures_grad(solve: "_Solve") -> bool:
    """Event solves probe for captured tensors with one extra evaluation."""
    if not isinstance(solve.state, TorchFlatState) or not _torch_or_none().is_grad_enabled():
        return False
    from ._autograd import discover_parameters

    solve.parameters = discover_parameters(solve.func, solve.state, float(solve.times[0]))
    return len(solve.parameters) > 0


def _differentiable_inputs(solve: "_Solve") -> Any:
    """The flat y0 (keeping its autograd history) and, once found, func's parameters."""
    import torch

    from ._autograd import discover_parameters

    if solve.parameters is None:
        solve.parameters = discover_parameters(solve.func, solve.state, float(solve.times[0]))
    members = solve.user_y0 if solve.state.is_tuple else (solve.user_y0,)
    return torch.cat([m.reshape(-1).to(solve.state.dtype) for m in members])


def _odeint_with_grad(solve: "_Solve") -> Any:
    """odeint through OdeintBackprop, so that y(t) carries gradients."""
    import torch

    from ._autograd import OdeintBackprop

    y0_flat = _differentiable_inputs(solve)
    t = solve.t_input if torch.is_tensor(solve.t_input) else torch.from_numpy(solve.times)
    flat = OdeintBackprop.apply(solve, y0_flat, t, *solve.parameters)
    return solve.state._split(flat, (solve.times.size,))


def _solve_until_event(solve: _Solve, event_fn: Callable) -> tuple[Any, Any]:
    if solve.times.size != 2:
        raise ValueError(f"We require len(t) == 2 when in event handling mode, but got "
                         f"len(t)={solve.times.size}.")
    state = solve.state
    kwargs = solve.c_arguments()
    with _no_grad():
        t0 = solve._time64(float(solve.times[0]))
        initial = event_fn(t0, state.unflatten(state.flat_y0.copy(), ()))
        signs = _sign(initial)
    view, as_time, combine = state.stage_view, solve._time64, _min_of

    def event(t: float) -> float:
        with _no_grad():
            return float(combine(event_fn(as_time(t), view) * signs))

    if not solve.adaptive:
        if solve.options.get("step_size") is None:
            raise ValueError("Event handling for fixed step solvers currently requires "
                             "`step_size` to be provided in options.")
        kwargs["step_size"] = float(solve.options["step_size"])
    torch = _torch_or_none()
    if _needs_grad(solve.func, solve.user_y0, None) or _event_captures_grad(solve):
        if not solve.adaptive:
            raise RuntimeError("gradients through event solves are available for adaptive "
                               "methods; use one (dopri5, tsit5, ...) or torch.no_grad()")
        from ._autograd import OdeintEventBackprop

        y0_flat = _differentiable_inputs(solve)
        t_event, y_event = OdeintEventBackprop.apply(solve, event, y0_flat, *solve.parameters)
        solution = torch.stack([y0_flat, y_event])
        event_t = t_event.to(solve.t_input.dtype) if torch.is_tensor(solve.t_input) else t_event
        return event_t, state._split(solution, (2,))
    with _no_grad():
        result = _C.solve_event(t0=float(solve.times[0]), event=event,
                                event_tol=float(np.min(solve.atol)), **kwargs)
    solution = np.stack([state.flat_y0, result["y"]])
    event_t = result["t_event"]
    if torch is not None and torch.is_tensor(solve.t_input):
        event_t = torch.tensor(event_t, dtype=solve.t_input.dtype)
    return event_t, state.unflatten(solution, (2,))


def _sign(x: Any) -> Any:
    torch = _torch_or_none()
    if torch is not None and torch.is_tensor(x):
        return torch.sign(x)
    return np.sign(x)


def _min_of(x: Any) -> Any:
    torch = _torch_or_none()
    if torch is not None and torch.is_tensor(x):
        return torch.min(x)
    return np.min(x)


def odeint_event(func: Callable, y0: Any, t0: Any, *, event_fn: Callable,
                 reverse_time: bool = False, odeint_interface: Callable = odeint,
                 **kwargs: Any) -> tuple[Any, Any]:
    """Solve from ``t0`` until ``event_fn(t, y)`` crosses zero; torchdiffeq's ``odeint_event``.

    Parameters
    ----------
    func, y0 : as for :func:`odeint`.
    t0 : 0-d or 1-element Tensor (or float / array)
        The start time.
    event_fn : callable
        ``event_fn(t, y)``; the solve stops at its first sign change.
    reverse_time : bool
        Integrate towards decreasing t.
    odeint_interface : callable
        The ``odeint`` to call (``qode.odeint`` by default).
    **kwargs
        Passed on to ``odeint_interface`` (``rtol``, ``atol``, ``method``, ``options``).

    Returns
    -------
    (event_t, solution)
        The event time and the states at ``t0`` and at the event.
    """
    sign = -1.0 if reverse_time else 1.0
    if not _is_tensor(t0) and not _is_tensor(y0 if not isinstance(y0, tuple) else y0[0]):
        start = np.asarray(t0, dtype=np.float64).reshape(-1)
        t = np.concatenate([start, start + sign])
        return odeint_interface(func, y0, t, event_fn=event_fn, **kwargs)
    import torch

    from ._autograd import EventTimeGradient

    start = torch.as_tensor(t0, dtype=torch.float64).reshape(-1)
    t = torch.cat([start, start.detach() + sign])
    event_t, solution = odeint_interface(func, y0, t, event_fn=event_fn, **kwargs)
    if not torch.is_grad_enabled():
        return event_t, solution
    # Gradients through the event time (implicit function theorem), as in
    # torchdiffeq.  The flat state is what func and event_fn see in a tuple solve.
    is_tuple = isinstance(y0, tuple)
    shapes = [m.shape for m in y0] if is_tuple else None
    final = torch.cat([s[-1].reshape(-1) for s in solution]) if is_tuple else solution[-1]

    def unflat(flat):
        return split_flat(flat, shapes) if is_tuple else flat

    flat_func = (lambda s, y: torch.cat([m.reshape(-1) for m in func(s, unflat(y))])) \
        if is_tuple else func
    flat_event = (lambda s, y: event_fn(s, unflat(y))) if is_tuple else event_fn
    time = -event_t if reverse_time else event_t
    if reverse_time:
        direction_func = lambda s, y: -flat_func(-s, y)
        direction_event = lambda s, y: flat_event(-s, y)
    else:
        direction_func, direction_event = flat_func, flat_event
    time, final = EventTimeGradient.apply(direction_func, direction_event, time, final)
    event_t = -time if reverse_time else time
    if is_tuple:
        parts = unflat(final)
        solution = tuple(torch.cat([s[:-1], p[None]], dim=0) for s, p in zip(solution, parts))
    else:
        solution = torch.cat([solution[:-1], final[None]], dim=0)
    return event_t, solution
