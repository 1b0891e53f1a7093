"""qode.social.social_field (C kernels) against the pure-PyTorch reference:
values, gradients, masks, degenerate geometry, cutoffs, threads and bad
input."""
import math

import pytest
import torch

from qode.social import social_field
from social_reference import factored_reference_field, reference_field

F64 = torch.float64


def make_problem(batch=2, agents=5, dim=3, hidden=4, goals=2, obstacles=1, dtype=F64, seed=0,
                 absent=True, self_term=True):
    """A random problem as a dict of keyword arguments for social_field."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=F64)).to(dtype)

    mask = torch.ones(batch, agents, dtype=dtype)
    if absent and agents > 2:
        mask[0, 1] = 0
        mask[-1, -1] = 0
    problem = dict(
        h=rand(batch, agents, dim),
        aggressiveness=torch.rand(batch, agents, generator=gen, dtype=F64).to(dtype),
        w1=rand(hidden, 2 * dim, scale=0.7), b1=rand(hidden, scale=0.3),
        w2=rand(dim, hidden, scale=0.7), b2=rand(dim, scale=0.3),
        mask=mask,
        beta1=torch.tensor(0.8, dtype=dtype), beta2=torch.tensor(1.3, dtype=dtype),
    )
    if goals:
        problem["goals"] = rand(batch, agents, goals, dim)
        problem["goal_strengths"] = torch.rand(batch, agents, goals, generator=gen,
                                               dtype=F64).to(dtype)
    if obstacles:
        problem["obstacles"] = rand(batch, agents, obstacles, dim)
        problem["obstacle_strengths"] = torch.rand(batch, agents, obstacles, generator=gen,
                                                   dtype=F64).to(dtype)
    if self_term:
        problem["self_term"] = rand(batch, agents, dim)
    return problem


DIFFERENTIABLE = ["h", "aggressiveness", "w1", "b1", "w2", "b2", "goals", "goal_strengths",
                  "obstacles", "obstacle_strengths", "self_term", "beta1", "beta2"]


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (1, 1, 2, 3), (3, 7, 4, 5), (1, 9, 1, 2)])
def test_forward_matches_reference_float64(shape):
    batch, agents, dim, hidden = shape
    problem = make_problem(batch, agents, dim, hidden, seed=sum(shape))
    ours = social_field(**problem, eps=1e-2)
    ref = reference_field(**problem, eps=1e-2)
    assert ours.shape == (batch, agents, dim)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12), (ours - ref).abs().max()


def test_factored_reference_equals_direct_reference():
    # The rearrangement the C kernel (and the benchmark's second baseline) uses.
    problem = make_problem(2, 6, 3, 4, goals=0, obstacles=0, self_term=False, seed=2)
    problem.update(beta1=1.0)
    assert torch.allclose(factored_reference_field(**problem), reference_field(**problem),
                          rtol=0, atol=1e-12)


def test_forward_float32_close_to_float64_reference():
    problem32 = make_problem(2, 6, 4, 5, dtype=torch.float32, seed=3)
    problem64 = {k: v.double() for k, v in problem32.items()}
    ours = social_field(**problem32, eps=0.05)
    assert ours.dtype == torch.float32
    ref = reference_field(**problem64, eps=0.05)
    gap = (ours.double() - ref).abs().max()
    assert torch.allclose(ours.double(), ref, rtol=1e-5, atol=1e-5), gap


def test_non_contiguous_inputs():
    problem = make_problem(2, 5, 3, 4, seed=6)
    strided = dict(problem)
    strided["h"] = problem["h"].transpose(0, 1).contiguous().transpose(0, 1)
    strided["w1"] = problem["w1"].T.contiguous().T
    strided["goals"] = problem["goals"].transpose(2, 3).contiguous().transpose(2, 3)
    assert not strided["h"].is_contiguous() and not strided["w1"].is_contiguous()
    expected = social_field(**problem)
    assert torch.equal(social_field(**strided), expected)
    h = strided["h"].clone().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_(True)
    w1 = strided["w1"].detach().clone().T.contiguous().T.requires_grad_(True)
    social_field(**{**strided, "h": h, "w1": w1}).sum().backward()
    h_ref = problem["h"].clone().requires_grad_(True)
    w1_ref = problem["w1"].clone().requires_grad_(True)
    social_field(**{**problem, "h": h_ref, "w1": w1_ref}).sum().backward()
    assert torch.equal(h.grad, h_ref.grad) and torch.equal(w1.grad, w1_ref.grad)


@pytest.mark.parametrize("radius", [None, 1.5])
def test_float32_gradients_close_to_float64(radius):
    problem32 = make_problem(2, 6, 4, 5, dtype=torch.float32, seed=31)
    names = [n for n in DIFFERENTIABLE if n in problem32]
    weights = torch.randn(2, 6, 4, dtype=F64)
    grads = {}
    for dtype in (torch.float32, F64):
        leaves = {n: problem32[n].to(dtype).clone().requires_grad_(True) for n in names}
        kwargs = {**{k: v.to(dtype) for k, v in problem32.items()}, **leaves}
        cutoff = {} if radius is None else dict(radius=radius, cutoff_width=0.5)
        (social_field(**kwargs, eps=0.05, **cutoff) * weights.to(dtype)).sum().backward()
        grads[dtype] = {n: leaves[n].grad for n in names}
    for n in names:
        assert grads[torch.float32][n].dtype == torch.float32
        assert torch.allclose(grads[torch.float32][n].double(), grads[F64][n], rtol=1e-4,
                              atol=1e-4), n


def test_forward_without_optional_terms():
    problem = make_problem(2, 4, 3, 3, goals=0, obstacles=0, self_term=False, seed=5)
    ours = social_field(**problem)
    ref = reference_field(**problem)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12)


def _gradcheck(problem, fd_step=1e-6, atol=1e-7, **options):
    names = [n for n in DIFFERENTIABLE if n in problem]
    inputs = tuple(problem[n].clone().requires_grad_(True) for n in names)

    def fn(*values):
        kwargs = dict(problem)
        kwargs.update(zip(names, values))
        return social_field(**kwargs, **options)

    assert torch.autograd.gradcheck(fn, inputs, eps=fd_step, atol=atol, rtol=1e-6)


def test_gradcheck_every_input():
    _gradcheck(make_problem(2, 5, 3, 4, seed=11), eps=0.1)


def test_gradcheck_smooth_cutoff():
    problem = make_problem(1, 8, 2, 3, seed=12, goals=1, obstacles=0)
    problem["h"] = problem["h"] * 0.6
    _gradcheck(problem, eps=0.1, radius=1.0, cutoff_width=0.6)


def test_gradients_match_reference_autograd():
    problem = make_problem(2, 6, 3, 4, seed=13)
    names = [n for n in DIFFERENTIABLE if n in problem]
    ours_in = {n: problem[n].clone().requires_grad_(True) for n in names}
    ref_in = {n: problem[n].clone().requires_grad_(True) for n in names}
    weights = torch.randn(2, 6, 3, dtype=F64)
    (social_field(**{**problem, **ours_in}, eps=0.03) * weights).sum().backward()
    (reference_field(**{**problem, **ref_in}, eps=0.03) * weights).sum().backward()
    for n in names:
        assert torch.allclose(ours_in[n].grad, ref_in[n].grad, rtol=1e-10, atol=1e-11), n


def test_all_agents_at_the_same_point_finite():
    problem = make_problem(2, 5, 3, 4, seed=14)
    problem["h"] = torch.full((2, 5, 3), 0.7, dtype=F64)
    h = problem["h"].clone().requires_grad_(True)
    out = social_field(**{**problem, "h": h}, eps=1e-3)
    ref = reference_field(**problem, eps=1e-3)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, ref, rtol=1e-13, atol=1e-10)
    out.sum().backward()
    assert torch.isfinite(h.grad).all()
    # The gradient's pair-distance part uses the zero subgradient; central
    # differences of ||x|| at 0 are 0 as well, so gradcheck agrees, up to an
    # O(step) error since the field is not differentiable there.
    _gradcheck(problem, eps=0.5, fd_step=1e-8, atol=1e-6)


def test_one_agent_alone_has_no_interaction():
    problem = make_problem(1, 1, 3, 4, seed=15)
    full = social_field(**problem)
    no_interaction = social_field(**{**problem, "beta1": 0.0})
    assert torch.equal(full, no_interaction)
    problem_wo_control = make_problem(1, 1, 3, 4, seed=15, goals=0, obstacles=0, self_term=False)
    assert torch.count_nonzero(social_field(**problem_wo_control)) == 0


def test_masked_agents_are_inert_and_invisible():
    problem = make_problem(1, 6, 3, 4, seed=16, absent=False)
    mask = torch.ones(1, 6, dtype=F64)
    mask[0, 2] = 0
    out = social_field(**{**problem, "mask": mask})
    assert torch.count_nonzero(out[0, 2]) == 0
    # Moving the absent agent changes nothing.
    moved = problem["h"].clone()
    moved[0, 2] += 10.0
    out_moved = social_field(**{**problem, "mask": mask, "h": moved})
    assert torch.equal(out, out_moved)
    # Equivalent to deleting the agent.
    keep = [0, 1, 3, 4, 5]
    per_agent = lambda v: isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[:2] == (1, 6)
    smaller = {k: (v[:, keep] if per_agent(v) else v) for k, v in problem.items()}
    del smaller["mask"]
    assert torch.allclose(out[:, keep], social_field(**smaller), rtol=0, atol=1e-13)
    # Boolean masks are accepted.
    assert torch.equal(out, social_field(**{**problem, "mask": mask.bool()}))


def test_eps_to_zero_converges_for_separated_agents():
    problem = make_problem(1, 5, 3, 4, seed=17, goals=0, obstacles=0, self_term=False)
    limit = reference_field(**problem, eps=1e-15)
    errors = [(social_field(**problem, eps=e) - limit).abs().max().item()
              for e in (1e-2, 1e-4, 1e-6, 1e-8)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-5
    # Coincident agents: finite at every eps > 0, growing like 1 / eps.
    problem["h"][0, 3] = problem["h"][0, 2]
    values = [social_field(**problem, eps=e)[0, 2].abs().max().item() for e in (1e-3, 1e-6)]
    assert all(math.isfinite(v) for v in values)
    assert values[1] > 100 * values[0]


def test_hard_cutoff_matches_reference_and_cell_list_misses_nothing():
    gen = torch.Generator().manual_seed(18)
    for dim in (1, 2, 5):
        problem = make_problem(2, 60, dim, 3, seed=18 + dim, goals=0, obstacles=0)
        problem["h"] = torch.rand(2, 60, dim, generator=gen, dtype=F64) * 3.0
        ours = social_field(**problem, radius=0.7)
        ref = reference_field(**problem, radius=0.7)
        assert torch.allclose(ours, ref, rtol=0, atol=1e-12), dim
        # A radius beyond every distance equals no radius.
        assert torch.allclose(social_field(**problem, radius=1e6), social_field(**problem),
                              rtol=0, atol=1e-12)


def test_cell_list_with_outliers_and_many_agents():
    # An outlier stretches the bounding box: the grid widens its cells to keep
    # O(N) cells and must still find every pair within the radius.
    gen = torch.Generator().manual_seed(27)
    problem = make_problem(1, 400, 2, 3, seed=27, goals=0, obstacles=0, absent=False)
    h = torch.rand(1, 400, 2, generator=gen, dtype=F64) * 20.0
    h[0, 0] = torch.tensor([1e7, -1e7], dtype=F64)
    h[0, 1] = h[0, 2]                                   # a coincident pair
    problem["h"] = h
    ours = social_field(**problem, radius=1.3, cutoff_width=0.3)
    ref = reference_field(**problem, radius=1.3, cutoff_width=0.3)
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12)


def test_smooth_cutoff_matches_reference():
    problem = make_problem(2, 30, 2, 3, seed=19)
    problem["h"] = problem["h"] * 1.5
    ours = social_field(**problem, radius=1.0, cutoff_width=0.4)
    ref = reference_field(**problem, radius=1.0, cutoff_width=0.4)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("radius", [None, 1.0])
def test_threads_give_the_same_result(radius):
    problem = make_problem(3, 40, 4, 6, seed=20)
    names = [n for n in DIFFERENTIABLE if n in problem]
    results = []
    for threads in (1, 2, 3):
        inputs = {n: problem[n].clone().requires_grad_(True) for n in names}
        out = social_field(**{**problem, **inputs}, radius=radius, num_threads=threads)
        (out * torch.linspace(-1, 1, out.numel(), dtype=F64).reshape(out.shape)).sum().backward()
        results.append((out.detach(), [inputs[n].grad for n in names]))
    for out, grads in results[1:]:
        assert torch.allclose(out, results[0][0], rtol=0, atol=1e-12)
        for g, g0 in zip(grads, results[0][1]):
            assert torch.allclose(g, g0, rtol=1e-12, atol=1e-12)


def test_empty_batch():
    problem = make_problem(1, 4, 3, 2, seed=28, goals=0, obstacles=0)
    empty = {k: (v[:0] if isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[:2] == (1, 4)
                 else v) for k, v in problem.items()}
    w1 = empty["w1"].clone().requires_grad_(True)
    out = social_field(**{**empty, "w1": w1})
    assert out.shape == (0, 4, 3)
    out.sum().backward()
    assert torch.count_nonzero(w1.grad) == 0


def test_concurrent_calls_from_threads():
    # The C core is reentrant and releases the GIL: calls from several Python
    # threads at once give the same results as one after the other.
    import threading
    problems = [make_problem(2, 30, 4, 5, seed=40 + k) for k in range(4)]
    expected = [social_field(**p) for p in problems]
    results = [None] * 4

    def work(k):
        for _ in range(5):
            results[k] = social_field(**problems[k], num_threads=2)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


def test_shared_goal_broadcasting():
    problem = make_problem(2, 4, 3, 4, seed=21, goals=0, obstacles=0)
    goal = torch.randn(2, 3, dtype=F64)
    strengths = torch.tensor([0.5, 2.0], dtype=F64)
    ours = social_field(**problem, goals=goal, goal_strengths=strengths)
    ref = reference_field(**problem, goals=goal.expand(2, 4, 2, 3),
                          goal_strengths=strengths.expand(2, 4, 2))
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12)
    scalar = social_field(**problem, obstacles=goal, obstacle_strengths=0.5)
    ref = reference_field(**problem, obstacles=goal.expand(2, 4, 2, 3),
                          obstacle_strengths=torch.full((2, 4, 2), 0.5, dtype=F64))
    assert torch.allclose(scalar, ref, rtol=0, atol=1e-12)


# -- bad input --------------------------------------------------------------

def test_wrong_shapes_are_rejected():
    problem = make_problem(2, 5, 3, 4, seed=22)
    with pytest.raises(ValueError, match="h must have shape"):
        social_field(**{**problem, "h": problem["h"][0]})
    with pytest.raises(ValueError, match="aggressiveness has shape"):
        social_field(**{**problem, "aggressiveness": problem["aggressiveness"][:, :3]})
    with pytest.raises(ValueError, match="w2 has shape"):
        social_field(**{**problem, "w2": problem["w2"].T})
    with pytest.raises(ValueError, match="mask has shape"):
        social_field(**{**problem, "mask": problem["mask"][:1]})
    with pytest.raises(ValueError, match="goals must have shape"):
        social_field(**{**problem, "goals": torch.zeros(2, 5, 2, dtype=F64)})
    with pytest.raises(ValueError, match="strengths"):
        social_field(**{**problem, "goal_strengths": torch.zeros(3, dtype=F64)})
    with pytest.raises(ValueError, match="self_term has shape"):
        social_field(**{**problem, "self_term": torch.zeros(2, 5, 2, dtype=F64)})


def test_wrong_dtypes_are_rejected():
    problem = make_problem(2, 5, 3, 4, seed=23)
    with pytest.raises(TypeError, match="float32 and float64"):
        social_field(**{k: (v.to(torch.float16) if isinstance(v, torch.Tensor) else v)
                        for k, v in problem.items()})
    with pytest.raises(TypeError, match="w1 has dtype"):
        social_field(**{**problem, "w1": problem["w1"].float()})
    with pytest.raises(TypeError, match="dtype"):
        social_field(**{**problem, "h": problem["h"].long()})


def test_non_finite_inputs_are_rejected():
    problem = make_problem(2, 5, 3, 4, seed=24)
    for name in ("h", "aggressiveness", "w1", "b2", "goals", "obstacle_strengths", "self_term"):
        bad = problem[name].clone()
        bad.view(-1)[0] = float("nan")
        with pytest.raises(ValueError, match="NaN or Inf"):
            social_field(**{**problem, name: bad})
    bad = problem["h"].clone()
    bad[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="h contains NaN or Inf"):
        social_field(**{**problem, "h": bad})
    # The backward pass checks its incoming gradient as well.
    h = problem["h"].clone().requires_grad_(True)
    out = social_field(**{**problem, "h": h})
    with pytest.raises(ValueError, match="grad_out contains NaN"):
        out.backward(torch.full_like(out, float("nan")))


def test_bad_options_are_rejected():
    problem = make_problem(2, 5, 3, 4, seed=25)
    with pytest.raises(ValueError, match="mask values must be 0 or 1"):
        social_field(**{**problem, "mask": problem["mask"] * 0.5})
    for eps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            social_field(**problem, eps=eps)
    with pytest.raises(ValueError, match="radius"):
        social_field(**problem, radius=-1.0)
    with pytest.raises(ValueError, match="cutoff_width"):
        social_field(**problem, radius=1.0, cutoff_width=2.0)
    with pytest.raises(ValueError, match="cutoff_width needs a radius"):
        social_field(**problem, cutoff_width=0.5)
    with pytest.raises(ValueError, match="beta1"):
        social_field(**{**problem, "beta1": float("inf")})
    with pytest.raises(ValueError, match="at least one agent"):
        social_field(**{**problem, "h": torch.zeros(2, 0, 3, dtype=F64),
                        "aggressiveness": torch.zeros(2, 0, dtype=F64), "mask": None,
                        "goals": None, "goal_strengths": None, "obstacles": None,
                        "obstacle_strengths": None, "self_term": None})


def test_double_backward_is_refused_clearly():
    problem = make_problem(1, 3, 2, 2, seed=26)
    h = problem["h"].clone().requires_grad_(True)
    out = social_field(**{**problem, "h": h})
    weights = torch.ones_like(out, requires_grad=True)
    (grad,) = torch.autograd.grad(out, h, grad_outputs=weights, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()
