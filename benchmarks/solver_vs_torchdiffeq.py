"""qode against torchdiffeq, side by side in one process.

Four cases, each solved by both libraries with the same vector field, method
and tolerances:

  (a) overhead-bound: 4x4 linear y' = A y (float64, dopri5, rtol = atol = 1e-8,
      t = 0..10 at 5 outputs); also microseconds per function evaluation and
      for the bare function call, which is the floor both libraries pay;
  (b) neural ODE: a 2-64-2 tanh MLP on a batch of 128 float32 states (dopri5,
      rtol = 1e-5, atol = 1e-6, t = 0..1 at 10 outputs, under torch.no_grad());
  (c) function-bound: y' = -y cos t + sin y on 10^6 float64 elements (dopri5,
      rtol = 1e-6, atol = 1e-8, t = 0..1 at 2 outputs);
  (d) fixed grid: rk4 with step_size 0.01 on the system of (a).

Times are medians over the repeats (time.perf_counter), after one warm-up
solve per library; the two libraries alternate within each repeat so that
drift in the machine affects both alike.  The ratio is torchdiffeq time / qode
time; NFE is counted in a separate, untimed solve.

Run:  PYTHONPATH=python python benchmarks/solver_vs_torchdiffeq.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torchdiffeq

import qode


@dataclass
class Case:
    label: str
    func: Callable
    y0: torch.Tensor
    t: torch.Tensor
    kwargs: dict
    target: Optional[float]  # minimum speed-up asked for, if any


@dataclass
class Result:
    case: Case
    qode_s: float
    tdq_s: float
    qode_nfe: int
    tdq_nfe: int
    max_diff: float

    @property
    def ratio(self) -> float:
        return self.tdq_s / self.qode_s


def linear_system(seed: int = 0) -> torch.Tensor:
    """A fixed random 4x4 matrix S - P, S skew and P symmetric positive definite,
    so that every eigenvalue has negative real part (Re x*Ax = -x*Px < 0)."""
    gen = torch.Generator().manual_seed(seed)
    b = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    c = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    a = (b - b.T) - (c @ c.T / 4 + 0.1 * torch.eye(4, dtype=torch.float64))
    assert torch.all(torch.linalg.eigvals(a).real < 0)
    return a


def make_cases() -> list[Case]:
    a = linear_system()

    def linear(t, y):
        return a @ y

    y_lin = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64)
    t_lin = torch.linspace(0.0, 10.0, 5, dtype=torch.float64)

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))

    def neural(t, y):
        return net(y)

    y_net = torch.randn(128, 2, dtype=torch.float32)
    t_net = torch.linspace(0.0, 1.0, 10, dtype=torch.float32)

    def elementwise(t, y):
        return -y * torch.cos(t) + torch.sin(y)

    y_big = torch.linspace(-1.0, 1.0, 1_000_000, dtype=torch.float64)
    t_big = torch.tensor([0.0, 1.0], dtype=torch.float64)

    dopri5 = {"method": "dopri5"}
    return [
        Case("(a) linear 4x4, f64, rtol=atol=1e-8", linear, y_lin, t_lin,
             dict(dopri5, rtol=1e-8, atol=1e-8), 10.0),
        Case("(b) MLP 2-64-2 x128, f32, rtol=1e-5 atol=1e-6", neural, y_net, t_net,
             dict(dopri5, rtol=1e-5, atol=1e-6), 3.0),
        Case("(c) 1e6 elementwise, f64, rtol=1e-6 atol=1e-8", elementwise, y_big, t_big,
             dict(dopri5, rtol=1e-6, atol=1e-8), 1.0),
        Case("(d) rk4 step 0.01, linear 4x4, f64", linear, y_lin, t_lin,
             dict(method="rk4", options={"step_size": 0.01}), None),
    ]


def count_nfe(odeint: Callable, case: Case) -> int:
    calls = 0

    def counted(t, y):
        nonlocal calls
        calls += 1
        return case.func(t, y)

    odeint(counted, case.y0, case.t, **case.kwargs)
    return calls


def run_case(case: Case, repeats: int) -> Result:
    def solve_qode():
        return qode.odeint(case.func, case.y0, case.t, **case.kwargs)

    def solve_tdq():
        return torchdiffeq.odeint(case.func, case.y0, case.t, **case.kwargs)

    y_qode, y_tdq = solve_qode(), solve_tdq()  # warm-up (and the results to compare)
    qode_times, tdq_times = [], []
    for _ in range(repeats):
        for solve, times in ((solve_qode, qode_times), (solve_tdq, tdq_times)):
            start = time.perf_counter()
            solve()
            times.append(time.perf_counter() - start)
    return Result(case, statistics.median(qode_times), statistics.median(tdq_times),
                  count_nfe(qode.odeint, case), count_nfe(torchdiffeq.odeint, case),
                  float((y_qode - y_tdq).abs().max()))


def bare_call_us(case: Case, calls: int = 20000) -> float:
    """Median per-call time of the vector field alone, in microseconds."""
    t0 = case.t[0]
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            case.func(t0, case.y0)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def format_time(seconds: float) -> str:
    return f"{seconds * 1e3:9.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat per case instead of 5")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5

    torch.set_grad_enabled(False)  # (b) is asked for under torch.no_grad()
    print(f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, "
          f"qode {qode.__version__}; {torch.get_num_threads()} torch threads; "
          f"median of {repeats} repeat(s) after 1 warm-up")
    print()
    header = (f"{'case':<48} {'qode':>12} {'torchdiffeq':>12} {'ratio':>8} {'target':>8} "
              f"{'met':>4} {'NFE qode':>9} {'NFE tdq':>8} {'max |diff|':>11}")
    print(header)
    print("-" * len(header))
    results = []
    for case in make_cases():
        r = run_case(case, repeats)
        results.append(r)
        target = f">={case.target:g}x" if case.target is not None else "-"
        met = ("yes" if r.ratio >= case.target else "NO") if case.target is not None else "-"
        print(f"{case.label:<48} {format_time(r.qode_s)} {format_time(r.tdq_s)} "
              f"{r.ratio:7.2f}x {target:>8} {met:>4} {r.qode_nfe:>9} {r.tdq_nfe:>8} "
              f"{r.max_diff:11.2e}", flush=True)

    linear = results[0]
    bare = bare_call_us(linear.case)
    print()
    print("(a) per function evaluation (solve time / NFE), in microseconds:")
    print(f"    qode        {linear.qode_s / linear.qode_nfe * 1e6:8.2f} us")
    print(f"    torchdiffeq {linear.tdq_s / linear.tdq_nfe * 1e6:8.2f} us")
    print(f"    bare f(t,y) {bare:8.2f} us   (the floor: the Python call of A @ y itself)")


if __name__ == "__main__":
    main()
