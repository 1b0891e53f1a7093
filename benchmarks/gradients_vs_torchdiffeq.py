"""Forward + backward through a solve: qode against torchdiffeq, in one process.

Two problems, each in both gradient modes (backprop through ``odeint``, and
``odeint_adjoint``), loss = sum of squares of the outputs, gradients with
respect to y0 and the field's parameters:

  MLP     the neural ODE of solver_vs_torchdiffeq.py (b): a 2-64-2 tanh MLP on a
          batch of 128 float32 states, dopri5, rtol 1e-5, atol 1e-6, t = 0..1 at
          10 outputs;
  linear  y' = A y with the 4x4 matrix of case (a) (as a trainable parameter),
          float64, dopri5, rtol = atol = 1e-8, t = 0..10 at 5 outputs.

Three contenders per row:
  torchdiffeq     the field as a plain nn.Module (torchdiffeq's own use);
  qode (Python)   the same nn.Module given to qode: the solver and adjoint
                  sweeps are C, every evaluation and VJP of f is torch;
  qode (native)   the same network as ``qode.fields.MLP`` (sharing the very
                  same parameter tensors): forward solve and backward run in C
                  with the GIL released.

Times are medians (time.perf_counter) after one warm-up; the contenders
alternate within every repeat.  Ratios are torchdiffeq time / qode time.  The
gradients of all three are compared (max relative difference) so that a fast
wrong answer cannot pass unnoticed.

Run:  PYTHONPATH=python python benchmarks/gradients_vs_torchdiffeq.py [--quick] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torchdiffeq

import qode
from qode.fields import MLP
from solver_vs_torchdiffeq import linear_system


class SequentialField(torch.nn.Module):
    """f(t, y) = net(y), the usual way to write a neural ODE."""

    def __init__(self, net: torch.nn.Sequential):
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


def problems() -> list[tuple[str, torch.nn.Sequential, torch.Tensor, torch.Tensor, dict]]:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))
    y_mlp = torch.randn(128, 2)
    t_mlp = torch.linspace(0.0, 1.0, 10)
    linear = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False, dtype=torch.float64))
    with torch.no_grad():
        linear[0].weight.copy_(linear_system())
    y_lin = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64)
    t_lin = torch.linspace(0.0, 10.0, 5, dtype=torch.float64)
    return [
        ("MLP 2-64-2 x128 f32", mlp, y_mlp, t_mlp, dict(rtol=1e-5, atol=1e-6)),
        ("linear 4x4 f64", linear, y_lin, t_lin, dict(rtol=1e-8, atol=1e-8)),
    ]


def forward_backward(odeint: Callable, func: torch.nn.Module, y0: torch.Tensor,
                     t: torch.Tensor, kwargs: dict) -> list[torch.Tensor]:
    y0 = y0.clone().requires_grad_(True)
    params = list(func.parameters())
    loss = odeint(func, y0, t, method="dopri5", **kwargs).square().sum()
    return list(torch.autograd.grad(loss, [y0] + params))


def relative_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max() / y.abs().max()) for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat instead of 7")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own default)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 7
    print(f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, "
          f"torch threads {torch.get_num_threads()}, median of {repeats}")
    header = (f"{'problem':22s} {'mode':9s} {'torchdiffeq':>12s} {'qode (Python)':>14s} "
              f"{'qode (native)':>14s} {'ratio Py':>9s} {'ratio native':>13s} {'max rel diff':>13s}")
    print(header)
    targets_met = True
    for name, net, y0, t, kwargs in problems():
        python_field = SequentialField(net)
        native_field = MLP.from_sequential(net)  # shares net's parameter tensors
        for mode, q_odeint, tdq_odeint in (("backprop", qode.odeint, torchdiffeq.odeint),
                                           ("adjoint", qode.odeint_adjoint,
                                            torchdiffeq.odeint_adjoint)):
            runs = {
                "tdq": lambda: forward_backward(tdq_odeint, python_field, y0, t, kwargs),
                "py": lambda: forward_backward(q_odeint, python_field, y0, t, kwargs),
                "native": lambda: forward_backward(q_odeint, native_field, y0, t, kwargs),
            }
            grads = {key: run() for key, run in runs.items()}  # warm-up, and the answers
            times: dict[str, list[float]] = {key: [] for key in runs}
            for _ in range(repeats):
                for key, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[key].append(time.perf_counter() - start)
            median = {key: statistics.median(values) for key, values in times.items()}
            ratio_py, ratio_native = (median["tdq"] / median["py"],
                                      median["tdq"] / median["native"])
            diff = max(relative_difference(grads["py"], grads["tdq"]),
                       relative_difference(grads["native"], grads["tdq"]))
            targets_met &= ratio_native >= 5.0
            print(f"{name:22s} {mode:9s} {median['tdq'] * 1e3:9.2f} ms {median['py'] * 1e3:11.2f} ms "
                  f"{median['native'] * 1e3:11.2f} ms {ratio_py:8.2f}x {ratio_native:12.2f}x "
                  f"{diff:13.1e}")
    print("target (>= 5x, native fields):", "met" if targets_met else "NOT met")


if __name__ == "__main__":
    main()
