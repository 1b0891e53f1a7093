"""Fit a neural ODE to a spiral with ``qode.odeint`` (torchdiffeq's ode_demo task).

The data come from the cubic spiral dy/dt = (y**3) A with
A = [[-0.1, 2.0], [-2.0, -0.1]], y(0) = (2, 0), sampled at 1000 times in
[0, 25].  A small MLP f(y**3) is trained on random 10-step windows of the
trajectory; every ``--report`` iterations the whole trajectory is re-solved
and its mean absolute error printed.  The fit is saved as a PNG.

Run: ``python -m qode.demos.spiral --iterations 600 --out outputs``.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

import qode

TRUE_A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])


class SpiralField(nn.Module):
    """dy/dt = MLP(y**3), the model of torchdiffeq's ode_demo."""

    def __init__(self, hidden: int = 50):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, mean=0.0, std=0.1)
                nn.init.zeros_(layer.bias)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y ** 3)


def make_data(n_points: int = 1000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The true trajectory: initial state, times and states."""
    y0 = torch.tensor([[2.0, 0.0]])
    t = torch.linspace(0.0, 25.0, n_points)
    with torch.no_grad():
        y = qode.odeint(lambda s, y: (y ** 3) @ TRUE_A, y0, t, method="dopri5")
    return y0, t, y


def sample_batch(t: torch.Tensor, y: torch.Tensor, batch_time: int, batch_size: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random windows of `batch_time` steps: their starts, the relative times, the targets."""
    starts = torch.randint(0, len(t) - batch_time, (batch_size,), generator=generator)
    batch_y0 = y[starts]                                   # (batch, 1, 2)
    batch_t = t[:batch_time]                               # (batch_time,)
    batch_y = torch.stack([y[starts + i] for i in range(batch_time)], dim=0)
    return batch_y0, batch_t, batch_y


def save_plot(path: str, t: torch.Tensor, y_true: torch.Tensor, y_pred: torch.Tensor,
              losses: list[tuple[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].plot(y_true[:, 0, 0], y_true[:, 0, 1], "g-", label="true")
    axes[0].plot(y_pred[:, 0, 0], y_pred[:, 0, 1], "b--", label="neural ODE (qode)")
    axes[0].set_title("Phase portrait")
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].legend()
    its, values = zip(*losses)
    axes[1].semilogy(its, values, "k.-")
    axes[1].set_title("Trajectory error while training")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("mean |y_pred - y_true|")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--batch-time", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--report", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    y0, t, y_true = make_data()
    field = SpiralField()
    optimizer = torch.optim.RMSprop(field.parameters(), lr=1e-3)
    losses: list[tuple[int, float]] = []
    started = time.perf_counter()
    print(f"fitting a neural ODE to the spiral with qode.odeint ({args.iterations} iterations)")
    for iteration in range(1, args.iterations + 1):
        batch_y0, batch_t, batch_y = sample_batch(t, y_true, args.batch_time, args.batch_size,
                                                  generator)
        optimizer.zero_grad()
        pred = qode.odeint(field, batch_y0, batch_t, method="dopri5")
        loss = (pred - batch_y).abs().mean()
        loss.backward()
        optimizer.step()
        if iteration % args.report == 0 or iteration == 1:
            with torch.no_grad():
                full = qode.odeint(field, y0, t)
                error = float((full - y_true).abs().mean())
            losses.append((iteration, error))
            print(f"iter {iteration:5d}  batch loss {loss.item():.4f}  "
                  f"trajectory error {error:.4f}  ({time.perf_counter() - started:.1f} s)")
    with torch.no_grad():
        y_pred = qode.odeint(field, y0, t)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "spiral_fit.png")
    save_plot(path, t, y_true, y_pred, losses)
    final = losses[-1][1]
    print(f"final trajectory error {final:.4f} (started at {losses[0][1]:.4f}); plot: {path}")
    return final


if __name__ == "__main__":
    main()
