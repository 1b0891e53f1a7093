"""Flat views of user states for the C solver.

The C core integrates one contiguous 1-D buffer.  Users hand ``odeint`` a
torch tensor, a NumPy array, or a tuple of either.  A ``FlatState`` does the
translation both ways, once per solve:

* ``flat_y0`` is the initial state as one 1-D NumPy array;
* ``stage`` is a 1-D NumPy buffer that the solver fills with the state at which
  it wants ``func`` evaluated, and ``stage_view`` is what ``func`` receives: a
  tensor (or array, or tuple of them) that *shares memory* with ``stage``, built
  once so that an evaluation creates no new view objects;
* ``export`` checks what ``func`` returned and hands it to C without copying
  (a DLPack capsule for tensors, the array itself for NumPy);
* ``unflatten`` turns flat solver output back into the user's shapes.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

_SUPPORTED_NUMPY = (np.float32, np.float64, np.complex64, np.complex128)


def _torch():
    import torch  # imported lazily: NumPy users need not have torch installed

    return torch


def split_flat(flat: Any, shapes: Sequence[tuple], leading: tuple = ()) -> tuple:
    """Views of ``flat[..., start:end]`` shaped ``(*leading, *shape)`` for each shape."""
    parts, start = [], 0
    for shape in shapes:
        numel = int(np.prod(shape, dtype=np.int64))
        parts.append(flat[..., start:start + numel].reshape((*leading, *shape)))
        start += numel
    return tuple(parts)


class FlatState:
    """Common interface; see the module docstring."""

    is_tuple: bool
    shapes: list[tuple[int, ...]]
    numels: list[int]
    flat_y0: np.ndarray
    stage: np.ndarray
    stage_view: Any

    @property
    def n(self) -> int:
        return int(self.flat_y0.size)

    @property
    def segment_ends(self) -> np.ndarray | None:
        """Ends of the tuple members in the flat state (for the mixed norm)."""
        if not self.is_tuple:
            return None
        return np.cumsum(np.asarray(self.numels, dtype=np.int64))

    def _split(self, flat: Any, leading: tuple[int, ...]) -> Any:
        """Views of ``flat[..., start:end]`` shaped like each member."""
        if not self.is_tuple:
            return flat.reshape((*leading, *self.shapes[0]))
        return split_flat(flat, self.shapes, leading)

    def _check_output_structure(self, out: Any) -> Sequence[Any]:
        if self.is_tuple:
            if not isinstance(out, (tuple, list)) or len(out) != len(self.shapes):
                raise TypeError(
                    f"func must return a tuple of {len(self.shapes)} members, like y0; "
                    f"got {type(out).__name__}")
            return out
        return (out,)

    def _shape_error(self, got: Sequence[int], expected: Sequence[int], index: int) -> ValueError:
        where = f" (member {index} of the tuple)" if self.is_tuple else ""
        return ValueError(f"func returned shape {tuple(got)}{where}, but the state has shape "
                          f"{tuple(expected)}")


class TorchFlatState(FlatState):
    """Flat state for torch tensors (or a tuple of tensors) on the CPU."""

    def __init__(self, y0: Any):
        torch = _torch()
        self.is_tuple = isinstance(y0, tuple)
        members = y0 if self.is_tuple else (y0,)
        if self.is_tuple and len(members) == 0:
            raise ValueError("y0 is an empty tuple")
        for i, member in enumerate(members):
            if not torch.is_tensor(member):
                raise TypeError(f"y0 must be a torch.Tensor or a tuple of them, got "
                                f"{type(member).__name__}")
            if member.device.type != "cpu":
                raise ValueError(
                    f"y0 is on {member.device}; qode's solver runs on the CPU (its C core reads "
                    f"CPU memory). Move the state and func's parameters with .cpu().")
        dtype = members[0].dtype
        for member in members[1:]:
            dtype = torch.promote_types(dtype, member.dtype)
        if dtype not in (torch.float32, torch.float64, torch.complex64, torch.complex128):
            raise TypeError(f"y0 must be float32, float64, complex64 or complex128, got {dtype}")
        self.dtype = dtype
        self.real_dtype = torch.float32 if dtype in (torch.float32, torch.complex64) else torch.float64
        self.shapes = [tuple(m.shape) for m in members]
        self.numels = [m.numel() for m in members]
        flat = torch.cat([m.detach().reshape(-1).to(dtype) for m in members])
        self.flat_y0 = flat.resolve_conj().numpy().copy()
        self.stage = np.empty_like(self.flat_y0)
        self.stage_tensor = torch.from_numpy(self.stage)
        self.stage_view = self._split(self.stage_tensor, ())
        self._to_dlpack = torch.utils.dlpack.to_dlpack
        self._scalar_tensor = torch.scalar_tensor
        self._tensor_type = torch.Tensor

    def time(self, t: float) -> Any:
        """``t`` as func receives it: a 0-d tensor in the state's real precision."""
        return self._scalar_tensor(t, dtype=self.real_dtype)

    def export(self, out: Any) -> Any:
        members = self._check_output_structure(out)
        checked = []
        for i, (member, shape) in enumerate(zip(members, self.shapes)):
            if not isinstance(member, self._tensor_type):
                raise TypeError(f"func must return a torch.Tensor, got {type(member).__name__}")
            if member.shape != shape:
                raise self._shape_error(member.shape, shape, i)
            if member.dtype != self.dtype:
                raise TypeError(f"func returned dtype {member.dtype}, but the state is "
                                f"{self.dtype}; return a tensor of the state's dtype")
            if member.device.type != "cpu":
                raise ValueError(f"func returned a tensor on {member.device}; qode's solver "
                                 f"runs on the CPU")
            checked.append(member)
        if self.is_tuple:
            result = _torch().cat([m.reshape(-1) for m in checked])
        else:
            result = checked[0]
            if result.is_conj():
                result = result.resolve_conj()
            if not result.is_contiguous():
                result = result.contiguous()
        return self._to_dlpack(result)

    def copy_of_stage(self) -> Any:
        """A fresh copy of the stage in the user's structure (safe to keep)."""
        return self._split(self.stage_tensor.clone(), ())

    def unflatten(self, flat: np.ndarray, leading: tuple[int, ...]) -> Any:
        return self._split(_torch().from_numpy(flat), leading)


class NumpyFlatState(FlatState):
    """Flat state for NumPy arrays (or a tuple of arrays)."""

    def __init__(self, y0: Any):
        self.is_tuple = isinstance(y0, tuple)
        members = y0 if self.is_tuple else (y0,)
        if self.is_tuple and len(members) == 0:
            raise ValueError("y0 is an empty tuple")
        for member in members:
            if not isinstance(member, np.ndarray):
                raise TypeError(f"y0 must be a numpy.ndarray or a tuple of them, got "
                                f"{type(member).__name__}")
        dtype = np.result_type(*members)
        if dtype.type not in _SUPPORTED_NUMPY:
            raise TypeError(f"y0 must be float32, float64, complex64 or complex128, got {dtype}")
        self.dtype = dtype
        self.shapes = [m.shape for m in members]
        self.numels = [m.size for m in members]
        self.flat_y0 = np.concatenate([m.reshape(-1).astype(dtype) for m in members])
        self.stage = np.empty_like(self.flat_y0)
        self.stage_view = self._split(self.stage, ())

    def time(self, t: float) -> float:
        """``t`` as func receives it: a Python float."""
        return t

    def export(self, out: Any) -> np.ndarray:
        members = self._check_output_structure(out)
        for i, (member, shape) in enumerate(zip(members, self.shapes)):
            if not isinstance(member, np.ndarray):
                raise TypeError(f"func must return a numpy.ndarray, got {type(member).__name__}")
            if member.shape != shape:
                raise self._shape_error(member.shape, shape, i)
            if member.dtype != self.dtype:
                raise TypeError(f"func returned dtype {member.dtype}, but the state is "
                                f"{self.dtype}; return an array of the state's dtype")
        if self.is_tuple:
            return np.concatenate([m.reshape(-1) for m in members])
        return members[0]

    def copy_of_stage(self) -> Any:
        return self._split(self.stage.copy(), ())

    def unflatten(self, flat: np.ndarray, leading: tuple[int, ...]) -> Any:
        return self._split(flat, leading)


def make_flat_state(y0: Any) -> FlatState:
    """The FlatState matching the type of ``y0`` (torch or NumPy)."""
    first = y0[0] if isinstance(y0, tuple) and len(y0) > 0 else y0
    if isinstance(first, np.ndarray):
        return NumpyFlatState(y0)
    return TorchFlatState(y0)


def make_rhs(state: FlatState, func: Callable[[Any, Any], Any]) -> Callable[[float], Any]:
    """The callable the C solver calls for f(t, stage)."""
    stage_view, time, export = state.stage_view, state.time, state.export

    def rhs(t: float) -> Any:
        return export(func(time(t), stage_view))

    return rhs
