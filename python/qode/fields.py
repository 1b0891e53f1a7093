"""Native vector fields: ``func``s whose evaluation and VJP run in C.

A native field is an ``nn.Module`` like any other ``func``: it can be called,
trained, saved, and passed to torchdiffeq.  When it is passed to
``qode.odeint`` the solver recognises it and calls its C implementation
directly, so the forward solve and the discrete adjoint of the backward pass
run entirely in C with the GIL released; parameter gradients are accumulated
in C as well.

:class:`MLP` is the one native field so far: a multilayer perceptron applied to
every row of the state, which covers the classic neural ODE
(``MLP([2, 64, 2])``) and linear systems (``MLP.linear(A)``).  Its parameters
are ordinary ``nn.Linear`` layers, and :meth:`MLP.from_sequential` wraps an
existing ``nn.Sequential`` of ``Linear`` and activation layers without copying
its weights.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from . import _C

_ACTIVATIONS = {"identity": 0, "tanh": 1, "relu": 2, "softplus": 3, "sigmoid": 4}
_ACTIVATION_MODULES = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid",
                       nn.Identity: "identity"}
_MAX_LAYERS = 32


class NativeField(nn.Module):
    """Base class of vector fields implemented in C (see the module docstring).

    Subclasses provide :meth:`native_spec`, the description ``qode._C`` reads.
    """

    def native_spec(self, state_shape: Sequence[int], dtype: torch.dtype,
                    grads: Optional[torch.Tensor] = None) -> tuple:
        """The description ``qode._C`` reads, for a state of this shape and dtype.

        ``grads``, if given, is a flat accumulator (see :meth:`gradient_buffer`)
        that the C VJP adds the parameter gradients to.
        """
        raise NotImplementedError

    def native_parameters(self) -> list[torch.Tensor]:
        """The tensors the C code reads, in the order of the flat gradient."""
        raise NotImplementedError

    def gradient_buffer(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A zero flat accumulator and views of it shaped like :meth:`native_parameters`."""
        params = self.native_parameters()
        flat = torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype)
        views, start = [], 0
        for p in params:
            views.append(flat[start:start + p.numel()].view(p.shape))
            start += p.numel()
        return flat, views


def _numpy(x: torch.Tensor, what: str) -> np.ndarray:
    """A zero-copy NumPy view of a contiguous CPU tensor."""
    if x.device.type != "cpu":
        raise ValueError(f"{what} is on {x.device}; native fields run on the CPU")
    if not x.is_contiguous():
        raise ValueError(f"{what} must be contiguous")
    return x.detach().numpy()


class MLP(NativeField):
    """A multilayer perceptron vector field, evaluated in C.

    ``f(t, y)`` applies ``Linear -> activation -> ... -> Linear`` to the last
    dimension of ``y`` (every leading index is one row of a batch), so
    ``widths[0]`` must equal ``widths[-1]``.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first; ``[2, 64, 2]`` is one hidden layer of 64.
    activation : str
        ``'tanh'`` (default), ``'relu'``, ``'softplus'``, ``'sigmoid'`` or
        ``'identity'``, applied after every layer but the last.
    time_input : bool
        Feed ``t`` to the first layer as one more input column.
    bias : bool
        Give every layer a bias.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``; states must match.
    """

    def __init__(self, widths: Sequence[int], activation: str = "tanh", *,
                 time_input: bool = False, bias: bool = True,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or len(widths) > _MAX_LAYERS + 1 or min(widths) < 1:
            raise ValueError(f"widths must hold 2 to {_MAX_LAYERS + 1} positive sizes, "
                             f"got {widths}")
        if widths[0] != widths[-1]:
            raise ValueError(f"a vector field maps the state to itself: widths[0] = "
                             f"{widths[0]} but widths[-1] = {widths[-1]}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.widths = widths
        self.activation = activation
        self.time_input = bool(time_input)
        self.layers = nn.ModuleList(
            nn.Linear(widths[l] + int(self.time_input and l == 0), widths[l + 1], bias=bias,
                      dtype=dtype)
            for l in range(len(widths) - 1))

    @classmethod
    def from_sequential(cls, net: nn.Sequential) -> "MLP":
        """Wraps ``nn.Sequential(Linear, act, Linear, ..., Linear)``, sharing its parameters.

        All hidden activations must be the same module type (``Tanh``,
        ``ReLU``, ``Sigmoid``, ``Softplus()`` with its default beta and
        threshold, or ``Identity``).
        """
        modules = list(net)
        linears = modules[0::2]
        acts = modules[1::2]
        if (not modules or len(modules) % 2 == 0
                or not all(type(m) is nn.Linear for m in linears)):
            raise ValueError("from_sequential needs Linear, activation, Linear, ..., Linear")
        names = {_activation_name(a) for a in acts} or {"identity"}
        if len(names) != 1:
            raise ValueError(f"all activations must be the same, got {sorted(names)}")
        widths = [linears[0].in_features] + [m.out_features for m in linears]
        dtype = linears[0].weight.dtype
        field = cls(widths, names.pop(), bias=linears[0].bias is not None, dtype=dtype)
        if any((m.bias is None) != (linears[0].bias is None) or m.weight.dtype != dtype
               for m in linears):
            raise ValueError("all Linear layers must agree on bias and dtype")
        field.layers = nn.ModuleList(linears)
        return field

    @classmethod
    def linear(cls, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> "MLP":
        """The linear field ``f(t, y) = y @ weight.T (+ bias)``: ``weight @ y`` for a 1-D y.

        ``weight`` (square) and ``bias`` become the field's parameters (copied).
        """
        if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
            raise ValueError(f"weight must be a square matrix, got shape {tuple(weight.shape)}")
        field = cls([weight.shape[0], weight.shape[0]], "identity", bias=bias is not None,
                    dtype=weight.dtype)
        with torch.no_grad():
            field.layers[0].weight.copy_(weight)
            if bias is not None:
                field.layers[0].bias.copy_(bias)
        return field

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].weight.dtype

    def native_parameters(self) -> list[torch.Tensor]:
        params = [layer.weight for layer in self.layers]
        params += [layer.bias for layer in self.layers if layer.bias is not None]
        return params

    def native_spec(self, state_shape: Sequence[int], dtype: torch.dtype,
                    grads: Optional[torch.Tensor] = None) -> tuple:
        """The description of this field for ``qode._C`` (zero-copy views)."""
        width = self.widths[0]
        if dtype != self.dtype:
            raise TypeError(f"the state is {dtype} but the MLP field's parameters are "
                            f"{self.dtype}; convert one of them")
        if len(state_shape) == 0 or state_shape[-1] != width:
            raise ValueError(f"the MLP field acts on the last dimension, of size {width}; "
                             f"the state has shape {tuple(state_shape)}")
        batch = int(np.prod(state_shape[:-1], dtype=np.int64))
        weights = tuple(_numpy(layer.weight, f"layer {l}'s weight")
                        for l, layer in enumerate(self.layers))
        has_bias = self.layers[0].bias is not None
        biases = (tuple(_numpy(layer.bias, f"layer {l}'s bias")
                        for l, layer in enumerate(self.layers)) if has_bias else None)
        return ("mlp", batch, np.asarray(self.widths, dtype=np.int64),
                _ACTIVATIONS[self.activation], int(self.time_input), weights, biases,
                None if grads is None else _numpy(grads, "the gradient accumulator"))

    def forward(self, t: Any, y: torch.Tensor) -> torch.Tensor:
        """``f(t, y)``, differentiable (the backward pass is the C VJP)."""
        if not torch.is_tensor(y):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        t = t if torch.is_tensor(t) else torch.tensor(float(t), dtype=torch.float64)
        return _MLPFunction.apply(self, t, y, *self.native_parameters())

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, activation={self.activation!r}, "
                f"time_input={self.time_input}")


def _activation_name(module: nn.Module) -> str:
    if type(module) is nn.Softplus:
        if module.beta != 1 or module.threshold != 20:
            raise ValueError("only Softplus() with beta=1 and threshold=20 is native")
        return "softplus"
    name = _ACTIVATION_MODULES.get(type(module))
    if name is None:
        raise ValueError(f"activation {type(module).__name__} has no native implementation")
    return name


class _MLPFunction(torch.autograd.Function):
    """One evaluation of a native MLP field, with its C VJP as the backward."""

    @staticmethod
    def forward(ctx: Any, field: MLP, t: torch.Tensor, y: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        # Inside a solve y may be a view of the solver's stage buffer, which
        # changes: keep a copy when the backward pass will need it.
        y_c = y.detach().contiguous()
        if any(ctx.needs_input_grad):
            y_c = y_c.clone()
        spec = field.native_spec(y_c.shape, y_c.dtype)
        out = _C.field_rhs(native=spec, t=float(t), y=_numpy(y_c, "y"))
        ctx.field, ctx.t_dtype = field, t.dtype
        ctx.save_for_backward(t, y_c)
        return torch.from_numpy(out).reshape(y.shape)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        t, y = ctx.saved_tensors
        field = ctx.field
        flat, grads = field.gradient_buffer()
        spec = field.native_spec(y.shape, y.dtype, flat)
        v = grad_out.detach().to(y.dtype).contiguous()
        y_bar, t_bar = _C.field_vjp(native=spec, t=float(t), y=_numpy(y, "y"),
                                    v=_numpy(v, "the cotangent"))
        grad_t = torch.tensor(t_bar, dtype=ctx.t_dtype) if ctx.needs_input_grad[1] else None
        return (None, grad_t, torch.from_numpy(y_bar).reshape(y.shape), *grads)


class AdjointSystem:
    """The continuous-adjoint augmented system of a native field, solved in C.

    Its state is torchdiffeq's adjoint tuple flattened: (t-adjoint, y, a,
    parameter adjoints in :meth:`NativeField.native_parameters` order); see
    ``csrc/solver/adjoint_dynamics.h``.  ``qode.odeint_adjoint`` uses it for
    the backward solve when ``func`` is a native field.
    """

    def __init__(self, field: NativeField, state_shape: Sequence[int]):
        self.field, self.state_shape = field, tuple(state_shape)

    def native_spec(self, state_shape: Sequence[int], dtype: torch.dtype,
                    grads: Optional[torch.Tensor] = None) -> tuple:
        return ("adjoint", self.field.native_spec(self.state_shape, dtype))

    def __call__(self, t: Any, y: Any) -> Any:
        raise TypeError("the native adjoint system is evaluated in C only")
