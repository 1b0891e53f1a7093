"""Social ODE field: qode's C kernels against the pure-PyTorch reference
(tests/social_reference.py), side by side in one process.

Times the forward pass and forward + VJP (backward into h, a and the
k-network) at N = 8, 32, 128 agents, D = 32, median of repeats, and prints
the speed-up (reference time / qode time) against two PyTorch versions of
the interaction term:
  torch      the direct reference: k(i, j) evaluated on every pair's [h_i, h_j]
             (what Eq. 6-7 reads like; the issue's baseline);
  factored   PyTorch with the C kernel's own rearrangement (first layer split
             as u_i + v_j, W2 applied once per agent): a stronger baseline.  A second table shows the
neighbour-radius (cell list) mode on large crowds, where the cost per agent
should stay flat as N grows.

Usage: python benchmarks/social_vs_torch.py [--batch 4] [--hidden 32]
       [--repeats 15] [--dtype float64 float32] [--threads N]

--threads N sets both torch's intra-op threads and qode's num_threads (default:
torch's default and qode's automatic choice).  On a shared machine,
--threads 1 gives the steadiest comparison.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "tests"))

from qode.social import social_field  # noqa: E402
from social_reference import factored_reference_field, reference_field  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    return interleaved_medians([fn], repeats)[0]


def make_inputs(batch: int, agents: int, dim: int, hidden: int, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(agents)
    scale_1 = 1.0 / (2 * dim) ** 0.5
    scale_2 = 1.0 / hidden ** 0.5
    return dict(
        h=torch.randn(batch, agents, dim, generator=gen).to(dtype),
        aggressiveness=torch.rand(batch, agents, generator=gen).to(dtype),
        w1=(scale_1 * torch.randn(hidden, 2 * dim, generator=gen)).to(dtype),
        b1=(0.1 * torch.randn(hidden, generator=gen)).to(dtype),
        w2=(scale_2 * torch.randn(dim, hidden, generator=gen)).to(dtype),
        b2=(0.1 * torch.randn(dim, generator=gen)).to(dtype),
    )


def runner(field, inputs, backward: bool, **options):
    """A no-argument callable running one forward (or forward + VJP into h,
    a and the k-network) of `field`."""
    grad_names = ("h", "aggressiveness", "w1", "b1", "w2", "b2")
    if not backward:
        def run():
            with torch.no_grad():
                field(**inputs, eps=1e-2, **options)
        return run
    leaves = {k: (v.clone().requires_grad_(True) if k in grad_names else v)
              for k, v in inputs.items()}
    weights = torch.randn(inputs["h"].shape, dtype=inputs["h"].dtype)

    def run():
        out = field(**leaves, eps=1e-2, **options)
        torch.autograd.grad(out, [leaves[k] for k in grad_names], weights)
    return run


def interleaved_medians(runs, repeats: int):
    """Median seconds of each callable, timed in turn within every repeat so
    that load from other processes affects all of them alike."""
    for run in runs:
        run()  # warm-up
    times = [[] for _ in runs]
    for _ in range(repeats):
        for run, bucket in zip(runs, times):
            start = time.perf_counter()
            run()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def compare(args) -> None:
    qode_threads = args.threads if args.threads > 0 else "auto"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, qode threads "
          f"{qode_threads}; "
          f"B={args.batch}, D={args.dim}, H={args.hidden}, median of {args.repeats}")
    header = (f"{'dtype':8} {'N':>5} {'pass':>8} {'torch ms':>10} {'factored ms':>12} "
              f"{'qode ms':>9} {'vs torch':>9} {'vs factored':>12}")
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        for agents in args.agents:
            inputs = make_inputs(args.batch, agents, args.dim, args.hidden, dtype)
            with torch.no_grad():
                gap = (social_field(**inputs, eps=1e-2) - reference_field(**inputs, eps=1e-2))
            assert gap.abs().max().item() < (1e-10 if dtype == torch.float64 else 1e-3)
            for backward in (False, True):
                t_ref, t_fac, t_qode = interleaved_medians(
                    [runner(reference_field, inputs, backward),
                     runner(factored_reference_field, inputs, backward),
                     runner(social_field, inputs, backward, num_threads=args.threads)],
                    args.repeats)
                label = "fwd+vjp" if backward else "forward"
                print(f"{dtype_name:8} {agents:5d} {label:>8} {1e3 * t_ref:10.3f} "
                      f"{1e3 * t_fac:12.3f} {1e3 * t_qode:9.3f} {t_ref / t_qode:8.1f}x "
                      f"{t_fac / t_qode:11.1f}x")


def crowds(args) -> None:
    print()
    print("Neighbour radius (cell list), D = 2, one scene, agents uniform in a square of "
          "side sqrt(N) (density 1), radius 1.5, float64")
    header = f"{'N':>6} {'forward ms':>11} {'fwd+vjp ms':>11} {'us/agent fwd':>13}"
    print(header)
    print("-" * len(header))
    for agents in (1000, 2000, 4000, 8000):
        inputs = make_inputs(1, agents, 2, args.hidden, torch.float64)
        inputs["h"] = torch.rand(1, agents, 2, dtype=torch.float64) * agents ** 0.5
        def forward():
            with torch.no_grad():
                social_field(**inputs, eps=1e-2, radius=1.5, num_threads=args.threads)
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        def both():
            out = social_field(**leaves, eps=1e-2, radius=1.5, num_threads=args.threads)
            torch.autograd.grad(out.sum(), [leaves["h"], leaves["w1"]])
        t_f = median_seconds(forward, 5)
        t_b = median_seconds(both, 5)
        print(f"{agents:6d} {1e3 * t_f:11.3f} {1e3 * t_b:11.3f} {1e6 * t_f / agents:13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--agents", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=0,
                        help="torch and qode threads (0: their defaults)")
    parser.add_argument("--skip-crowds", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    compare(args)
    if not args.skip_crowds:
        crowds(args)


if __name__ == "__main__":
    main()
