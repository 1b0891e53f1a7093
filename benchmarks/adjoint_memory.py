"""Peak memory of a forward+backward solve against the number of steps.

Each measurement runs in a fresh Python process (peak RSS cannot be reset),
solving y' = -w * tanh(y) with rk4 at a fixed step (so the step count is
exact) on a state of 2000 float64 elements, and differentiating the final
state.  qode.odeint's discrete adjoint keeps every step's state (memory grows
with the steps); qode.odeint_adjoint solves the adjoint ODE backwards and keeps
nothing per step (memory flat).  The native columns solve y' = MLP(y) with a
qode.fields.MLP (2-16-2 tanh, the same 2000 elements as 1000 rows), whose
solve and backward run in C.

Run: ``PYTHONPATH=python python benchmarks/adjoint_memory.py [--steps 100 1000 10000]``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import resource, sys, torch, qode
mode, steps = sys.argv[1], int(sys.argv[2])
w = torch.full((2000,), 0.5, dtype=torch.float64, requires_grad=True)
y0 = torch.linspace(-1, 1, 2000, dtype=torch.float64)
t = torch.tensor([0.0, 1.0], dtype=torch.float64)
f = lambda s, y: -w * torch.tanh(y)
if mode.startswith("native"):
    from qode.fields import MLP
    torch.manual_seed(0)
    f = MLP([2, 16, 2], dtype=torch.float64)
    y0 = y0.reshape(1000, 2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
options = {"step_size": 1.0 / steps}
if mode == "odeint":
    out = qode.odeint(f, y0, t, method="rk4", options=options)
elif mode == "adjoint":
    out = qode.odeint_adjoint(f, y0, t, method="rk4", options=options, adjoint_params=(w,))
elif mode == "native_odeint":
    out = qode.odeint(f, y0.requires_grad_(), t, method="rk4", options=options)
else:
    out = qode.odeint_adjoint(f, y0.requires_grad_(), t, method="rk4", options=options)
out[-1].sum().backward()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024.0)
"""


def peak_mib(mode: str, steps: int) -> float:
    result = subprocess.run([sys.executable, "-c", CHILD, mode, str(steps)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 10000])
    args = parser.parse_args()
    print("extra peak RSS (MiB) of forward+backward, state of 2000 float64, rk4")
    print(f"{'steps':>8s} {'odeint (discrete adjoint)':>28s} {'odeint_adjoint':>16s} "
          f"{'native odeint':>14s} {'native odeint_adjoint':>22s}")
    for steps in args.steps:
        print(f"{steps:8d} {peak_mib('odeint', steps):28.1f} {peak_mib('adjoint', steps):16.1f} "
              f"{peak_mib('native_odeint', steps):14.1f} "
              f"{peak_mib('native_adjoint', steps):22.1f}")


if __name__ == "__main__":
    main()
