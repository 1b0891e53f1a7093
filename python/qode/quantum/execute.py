"""Running circuits on NumPy arrays or torch tensors.

``data`` has shape ``(..., n_data)``: every leading index is one circuit of the
batch (same gates, its own data row).  ``weights`` has shape ``(n_weights,)``
and is shared.  With torch tensors the results carry autograd: the backward
pass is one adjoint sweep per circuit in C (``qsim_adjoint_vjp``), giving
gradients for data and weights together.

Memory: when a backward can follow (grad mode on, an input that requires
grad), a circuit of at most 5 qubits whose encoding is one rotation per wire
(seed 002's VQC; the C core's dense mode) keeps its product state and final
state until the backward, 24 bytes per amplitude and circuit (384 bytes at
4 qubits), so that the adjoint sweep need not run the forward pass again;
past 1 GiB per call (2.8 million 4-qubit circuits), or when the memory is not
there, it does run it again.  Other circuits keep only their inputs.

Precision: complex128 state vectors by default; float32 inputs (or
``dtype="complex64"``) use complex64 state vectors and return float32.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _C
from .circuit import Circuit
from .observables import PauliSum, observables_spec

try:  # torch is optional for the NumPy path
    import torch
except ImportError:  # pragma: no cover - torch is a test dependency
    torch = None

_DTYPE_CODES = {"complex64": 2, "complex128": 3}


def _is_tensor(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _state_dtype(dtype: str | None, data: Any, weights: Any) -> str:
    if dtype is not None:
        if dtype not in _DTYPE_CODES:
            raise ValueError(f"dtype must be 'complex64' or 'complex128', got {dtype!r}")
        return dtype
    # (Tensor dtypes by identity: comparing a torch dtype with a NumPy one
    # costs more than the whole check should, on every call.)
    for x in (data, weights):
        if _is_tensor(x):
            if x.dtype is torch.float32:
                return "complex64"
        elif x is not None and getattr(x, "dtype", None) == np.float32:
            return "complex64"
    return "complex128"


def _as_numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        x = x.detach()
        # (is_cpu, not device.type: that builds a device object every call)
        if x.dtype is not torch.float64 or not x.is_cpu:  # one torch call when possible
            x = x.cpu().to(torch.float64)
        return x.numpy()
    return np.asarray(x, dtype=np.float64)


def _with_dtype(x: Any, dtype: Any) -> Any:
    """x as dtype (a tensor); no call when it already is (a small batch in a
    training loop pays for every torch call)."""
    return x if x.dtype == dtype else x.to(dtype)


def _tensor_of(a: np.ndarray, dtype: Any) -> Any:
    """A tensor of dtype sharing a's memory when it can."""
    return _with_dtype(torch.from_numpy(a), dtype)


def _with_batch_shape(x: Any, batch_shape: tuple[int, ...]) -> Any:
    """x of shape (batch, k) as (*batch_shape, k); x itself when that is its
    shape already (no view, and so no extra autograd node)."""
    if tuple(x.shape[:-1]) == batch_shape:
        return x
    return x.reshape(*batch_shape, x.shape[-1])


def _check_inputs(circuit: Circuit, data: Any, weights: Any) -> tuple[tuple[int, ...], Any, Any]:
    """Validates shapes; returns (batch_shape, data, weights) with data
    reshaped to (batch, n_data) (same array type as given).  Values (NaN and
    infinite angles) are checked by the C core, which reads them anyway."""
    if not isinstance(circuit, Circuit):
        raise TypeError(f"circuit must be a qode.quantum.Circuit, got {type(circuit).__name__}")
    spec = circuit.spec()  # cached: holds num_data and num_weights
    n_data, n_weights = spec[5], spec[6]
    if data is None:
        if n_data > 0:
            raise ValueError(f"the circuit reads {n_data} data column(s); pass data of shape "
                             f"(..., {n_data})")
        batch_shape: tuple[int, ...] = ()
        data = (torch.zeros((1, 0), dtype=weights.dtype) if _is_tensor(weights)
                else np.zeros((1, 0)))
    else:
        if not _is_tensor(data):
            data = np.asarray(data, dtype=np.float64)
        if data.ndim < 1 or data.shape[-1] != n_data:
            raise ValueError(f"data must have shape (..., {n_data}) for this circuit, got "
                             f"{tuple(data.shape)}")
        batch_shape = tuple(data.shape[:-1])
        if data.ndim != 2:  # (a reshape that changes nothing still costs a call)
            data = data.reshape(-1, n_data)
    if weights is None:
        if n_weights > 0:
            raise ValueError(f"the circuit has {n_weights} trainable weight(s); pass weights "
                             f"of shape ({n_weights},)")
        weights = torch.zeros(0, dtype=torch.float64) if _is_tensor(data) else np.zeros(0)
    else:
        if not _is_tensor(weights):
            weights = np.asarray(weights, dtype=np.float64)
        if tuple(weights.shape) != (n_weights,):
            raise ValueError(f"weights must have shape ({n_weights},) for this circuit, got "
                             f"{tuple(weights.shape)}")
    return batch_shape, data, weights


class _Runner:
    """What one execution needs besides the tensors: packed circuit and
    observables, what to read out, precision and threads."""

    def __init__(self, circuit: Circuit, observables: Sequence[PauliSum] | None,
                 want_probs: bool, dtype: str, n_threads: int):
        self.spec = circuit.spec()
        self.obs_spec = observables_spec(observables, circuit.n_qubits) if observables else None
        self.want_probs = want_probs
        self.dtype_code = _DTYPE_CODES[dtype]
        self.n_threads = int(n_threads)

    def forward(self, data: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The read-out asked for: probs (B, 2^n) when want_probs, else
        expvals (B, n_obs)."""
        return self.forward_recorded(data, weights, False)[0]

    def forward_recorded(self, data: np.ndarray, weights: np.ndarray,
                         want_record: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(read-out, record): the record is what the forward keeps for
        `vjp` (None when not asked for, or where the circuit keeps none: it
        spares the adjoint a second forward pass in the dense mode of small
        encoded circuits, at 24 bytes per circuit and amplitude)."""
        _, ev, pr, record = _C.qsim_forward(self.spec, data, weights, self.dtype_code,
                                            self.obs_spec, self.want_probs, False, want_record,
                                            self.n_threads)
        return (pr if self.want_probs else ev), record

    def vjp(self, data, weights, grad, record=None):
        """(grad_data, grad_weights) for the upstream gradient of that
        read-out, by one adjoint sweep (the final states are recomputed in C,
        unless `record`, from forward_recorded with the same data and
        weights, holds them)."""
        grad_ev, grad_pr = (None, grad) if self.want_probs else (grad, None)
        return _C.qsim_adjoint_vjp(self.spec, data, weights, self.dtype_code, None, record,
                                   self.obs_spec, grad_ev, grad_pr, self.n_threads)


if torch is not None:
    from torch.autograd.function import once_differentiable

    def _circuit_vjp(ctx, grad):
        """(grad_data, grad_weights, None, None) of _CircuitFunction by one adjoint sweep."""
        gd, gw = ctx.runner.vjp(ctx.d, ctx.w, _as_numpy(grad), ctx.record)
        data, weights = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        return (torch.from_numpy(gd) if data else None,
                torch.from_numpy(gw) if weights else None, None, None)

    # With create_graph=True: the same gradients, which refuse a second backward
    # (the adjoint sweep is not differentiable) instead of passing for constants.
    _circuit_vjp_first_order_only = once_differentiable(_circuit_vjp)

    class _CircuitFunction(torch.autograd.Function):
        """(data (B, n_data), weights (n_weights,)) -> the runner's read-out:
        expvals (B, n_obs), or probs (B, 2^n) for a runner that wants them;
        with want_record, the forward record is kept for the backward.

        One output, and once_differentiable only when a graph of the gradient
        is being built: each costs tens of microseconds per call, which a
        small batch in a training loop pays every step.
        """

        @staticmethod
        def forward(ctx, data, weights, runner, want_record):
            d, w = _as_numpy(data), _as_numpy(weights)
            out, ctx.record = runner.forward_recorded(d, w, want_record)
            ctx.runner, ctx.d, ctx.w = runner, d, w
            return _tensor_of(out, torch.float32 if runner.dtype_code == 2 else torch.float64)

        @staticmethod
        def backward(ctx, grad):
            if torch.is_grad_enabled():
                return _circuit_vjp_first_order_only(ctx, grad)
            return _circuit_vjp(ctx, grad)


def _execute(circuit, observables, want_probs, data, weights, dtype, n_threads):
    """(batch_shape, read-out): expvals of `observables`, or probabilities
    when want_probs (observables None)."""
    state_dtype = _state_dtype(dtype, data, weights)
    batch_shape, data, weights = _check_inputs(circuit, data, weights)
    runner = _Runner(circuit, observables, want_probs, state_dtype, n_threads)
    if _is_tensor(data) or _is_tensor(weights):
        ref = data if _is_tensor(data) else weights
        if not _is_tensor(data):
            data = torch.as_tensor(data, dtype=ref.dtype)
        if not _is_tensor(weights):
            weights = torch.as_tensor(weights, dtype=ref.dtype)
        # A forward record only when a backward can follow (it is kept until
        # then); inside forward, grad mode is always off, so it is decided here.
        want_record = torch.is_grad_enabled() and (data.requires_grad or weights.requires_grad)
        out = _with_dtype(_CircuitFunction.apply(data, weights, runner, want_record), ref.dtype)
    else:
        out = runner.forward(data, weights)
        if state_dtype == "complex64":
            out = out.astype(np.float32)
    return batch_shape, out


def expval(circuit: Circuit, observables: Sequence[PauliSum], data: Any = None,
           weights: Any = None, dtype: str | None = None, n_threads: int = 0):
    """Expectation values <O_k> for every circuit of the batch.

    Parameters
    ----------
    circuit : Circuit
    observables : sequence of PauliSum
        ``k`` observables (see :func:`pauli`, :func:`z_all`).
    data : array or tensor of shape (..., n_data), optional
    weights : array or tensor of shape (n_weights,), optional
    dtype : {"complex128", "complex64"}, optional
    n_threads : int
        0 = automatic (every CPU, when the batch is large enough), 1 =
        single-threaded.  The results are the same bits whatever the threads
        for read-outs and data gradients; weight gradients, summed over the
        batch in chunks, may differ from the single-threaded ones in the
        last bits, but repeat exactly for the same thread count.

    Returns
    -------
    array or tensor of shape (..., k)
    """
    if len(observables) == 0:
        raise ValueError("expval needs at least one observable")
    batch_shape, ev = _execute(circuit, list(observables), False, data, weights, dtype,
                               n_threads)
    return _with_batch_shape(ev, batch_shape)


def probs(circuit: Circuit, data: Any = None, weights: Any = None, dtype: str | None = None,
          n_threads: int = 0):
    """Probabilities of all 2^n basis states, shape (..., 2^n) (wire 0 most significant)."""
    batch_shape, pr = _execute(circuit, None, True, data, weights, dtype, n_threads)
    return _with_batch_shape(pr, batch_shape)


def state(circuit: Circuit, data: Any = None, weights: Any = None, dtype: str | None = None,
          n_threads: int = 0) -> np.ndarray:
    """Final state vectors, a NumPy array of shape (..., 2^n) (not differentiable)."""
    state_dtype = _state_dtype(dtype, data, weights)
    batch_shape, d, w = _check_inputs(circuit, data, weights)
    states = _C.qsim_run(circuit.spec(), _as_numpy(d), _as_numpy(w),
                         _DTYPE_CODES[state_dtype], int(n_threads))
    return states.reshape(*batch_shape, states.shape[-1])


def sample(circuit: Circuit, shots: int, data: Any = None, weights: Any = None,
           seed: int = 0, dtype: str | None = None, n_threads: int = 0) -> np.ndarray:
    """Measures every wire ``shots`` times (seeded; same seed, same samples).

    Returns
    -------
    np.ndarray of int64, shape (..., shots, n_qubits)
        Bit of wire w in column w.
    """
    shots = int(shots)
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    state_dtype = _state_dtype(dtype, data, weights)
    batch_shape, d, w = _check_inputs(circuit, data, weights)
    states = _C.qsim_run(circuit.spec(), _as_numpy(d), _as_numpy(w),
                         _DTYPE_CODES[state_dtype], int(n_threads))
    idx = _C.qsim_sample(states, shots, int(seed) % (1 << 64), int(n_threads))
    n = circuit.n_qubits
    bits = (idx[..., None] >> np.arange(n - 1, -1, -1, dtype=np.int64)) & 1
    return bits.reshape(*batch_shape, shots, n)
