"""Hypergradient optimizers (SGDHD, AdamHD) on real tiny training runs, on CPU."""

from __future__ import annotations

import io
import itertools
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache

import pytest
import torch
from torch.nn.functional import cross_entropy, mse_loss

from hyperlaw.errors import HyperlawError
from hyperlaw.integrations.hypergradient import SGDHD, AdamHD, HypergradientConfigError

BATCH = 128


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny matrices: extra threads only contend for the shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@cache
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's digits, standardized: 1797 images of 64 pixels and their labels."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images = (images - images.mean(0)) / (images.std(0) + 1e-8)
    return torch.tensor(images, dtype=torch.float32), torch.tensor(labels)


def make_model(hidden: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    if not hidden:
        return torch.nn.Linear(64, 10)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(),
                               torch.nn.Linear(hidden, 10))


def batches(steps: int, seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 1797, (BATCH,), generator=generator) for _ in range(steps)]


def classification_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        batch: torch.Tensor) -> None:
    images, labels = digits()
    loss = cross_entropy(model(images[batch]), labels[batch])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def full_loss(model: torch.nn.Module) -> float:
    images, labels = digits()
    with torch.no_grad():
        return cross_entropy(model(images), labels).item()


def train(make_optimizer: Callable[..., torch.optim.Optimizer], steps: int = 300,
          hidden: int = 0) -> tuple[float, torch.optim.Optimizer]:
    """Train on digits; the final full-data loss and the optimizer."""
    model = make_model(hidden)
    optimizer = make_optimizer(model.parameters())
    for batch in batches(steps):
        classification_step(model, optimizer, batch)
    return full_loss(model), optimizer


def two_groups(model: torch.nn.Module, lr: float) -> list[dict]:
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    return [{"params": weights}, {"params": biases, "lr": lr / 2}]


# (a) With hypergrad_lr=0 they are torch.optim.SGD and torch.optim.Adam, step by step.

@pytest.mark.parametrize("settings", [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
])
def test_sgdhd_without_adaptation_is_torch_sgd(settings: dict) -> None:
    ours_model, reference_model = make_model(16), make_model(16)
    ours = SGDHD(two_groups(ours_model, 0.1), lr=0.1, hypergrad_lr=0, **settings)
    reference = torch.optim.SGD(two_groups(reference_model, 0.1), lr=0.1, **settings)
    assert_lockstep(ours_model, ours, reference_model, reference)


@pytest.mark.parametrize("settings", [{}, {"betas": (0.8, 0.99), "weight_decay": 1e-3}])
def test_adamhd_without_adaptation_is_torch_adam(settings: dict) -> None:
    ours_model, reference_model = make_model(16), make_model(16)
    ours = AdamHD(two_groups(ours_model, 0.01), lr=0.01, hypergrad_lr=0, **settings)
    reference = torch.optim.Adam(two_groups(reference_model, 0.01), lr=0.01, **settings)
    assert_lockstep(ours_model, ours, reference_model, reference)


def assert_lockstep(ours_model: torch.nn.Module, ours: torch.optim.Optimizer,
                    reference_model: torch.nn.Module,
                    reference: torch.optim.Optimizer, steps: int = 100) -> None:
    for batch in batches(steps):
        classification_step(ours_model, ours, batch)
        classification_step(reference_model, reference, batch)
        for mine, theirs in zip(ours_model.parameters(), reference_model.parameters(),
                                strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
    assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in reference.param_groups]


# (b) The rate finds its way from a bad start.

def test_sgdhd_grows_a_too_small_rate_and_beats_sgd_at_it() -> None:
    sgd_loss, _ = train(lambda params: torch.optim.SGD(params, lr=1e-5))
    hd_loss, optimizer = train(lambda params: SGDHD(params, lr=1e-5, hypergrad_lr=1e-3))
    assert optimizer.learning_rates[0] > 1e-3  # grew more than a hundredfold
    assert sgd_loss > 2.0  # plain SGD at 1e-5 has barely moved from log(10) = 2.3
    assert hd_loss < 0.5 * sgd_loss


def test_multiplicative_sgdhd_grows_a_too_small_rate() -> None:
    sgd_loss, _ = train(lambda params: torch.optim.SGD(params, lr=1e-5))
    hd_loss, optimizer = train(
        lambda params: SGDHD(params, lr=1e-5, hypergrad_lr=0.02, multiplicative=True))
    # Each step multiplies the rate by at most 1.02: 300 steps allow up to 1.02**300 ≈ 380x.
    assert 10 * 1e-5 < optimizer.learning_rates[0] < 1.02**300 * 1e-5
    assert hd_loss < sgd_loss


def test_adamhd_grows_a_too_small_rate_and_beats_adam_at_it() -> None:
    adam_loss, _ = train(lambda params: torch.optim.Adam(params, lr=1e-5))
    hd_loss, optimizer = train(lambda params: AdamHD(params, lr=1e-5, hypergrad_lr=1e-5))
    assert optimizer.learning_rates[0] > 1e-3
    assert adam_loss > 2.0
    assert hd_loss < 0.5 * adam_loss


def test_sgdhd_shrinks_a_divergent_rate_below_the_stability_limit() -> None:
    """Least squares on digits at a rate above 2 / (largest Hessian eigenvalue)."""
    images, labels = digits()
    targets = (labels - labels.float().mean()) / labels.float().std()
    hessian = 2 * images.T @ images / len(images)
    stability_limit = 2 / torch.linalg.eigvalsh(hessian).max().item()
    lr = 1.1 * stability_limit

    def final_loss(optimizer_class: type, **settings: float) -> tuple[float, float]:
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 1)
        optimizer = optimizer_class(model.parameters(), lr=lr, **settings)
        for batch in batches(300):
            loss = mse_loss(model(images[batch]).squeeze(1), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            loss = mse_loss(model(images).squeeze(1), targets).item()
        return loss, optimizer.param_groups[0]["lr"]

    sgd_loss, _ = final_loss(torch.optim.SGD)
    hd_loss, hd_lr = final_loss(SGDHD, hypergrad_lr=1e-3)
    assert not sgd_loss < 1e3  # plain SGD blows up (inf or nan)
    assert hd_lr < stability_limit
    assert hd_loss < 0.5  # a linear fit of the digit's value explains more than half its variance


# (c) Checkpoints resume exactly.

@pytest.mark.parametrize("make_optimizer", [
    lambda params: SGDHD(params, lr=1e-3, hypergrad_lr=1e-3, momentum=0.9),
    lambda params: SGDHD(params, lr=1e-3, hypergrad_lr=1e-3, momentum=0.9, nesterov=True),
    lambda params: SGDHD(params, lr=1e-3, hypergrad_lr=0.02, multiplicative=True),
    lambda params: AdamHD(params, lr=1e-4, hypergrad_lr=1e-5),
], ids=["momentum", "nesterov", "multiplicative", "adam"])
def test_state_dict_round_trip_resumes_identically(
        make_optimizer: Callable[..., torch.optim.Optimizer]) -> None:
    first_half, second_half = batches(100)[:50], batches(100)[50:]
    model = make_model(16)
    optimizer = make_optimizer(model.parameters())
    for batch in first_half:
        classification_step(model, optimizer, batch)
    checkpoint = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, checkpoint)
    for batch in second_half:
        classification_step(model, optimizer, batch)

    checkpoint.seek(0)
    saved = torch.load(checkpoint)
    resumed_model = make_model(16)
    resumed_model.load_state_dict(saved["model"])
    resumed = make_optimizer(resumed_model.parameters())
    resumed.load_state_dict(saved["optimizer"])
    assert resumed.learning_rates == [g["lr"] for g in saved["optimizer"]["param_groups"]]
    assert resumed.learning_rates != [1e-3]  # the adapted rate came back, not the initial one
    for batch in second_half:
        classification_step(resumed_model, resumed, batch)

    assert resumed.learning_rates == optimizer.learning_rates
    for mine, theirs in zip(resumed_model.parameters(), model.parameters(), strict=True):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize(("torch_class", "our_class", "settings"), [
    (torch.optim.Adam, AdamHD, {}),
    (torch.optim.SGD, SGDHD, {"momentum": 0.9}),
])
def test_a_torch_checkpoint_resumes_in_the_hypergradient_optimizer(
        torch_class: type, our_class: type, settings: dict) -> None:
    model, reference_model = make_model(16), make_model(16)
    original = torch_class(model.parameters(), lr=0.01, **settings)
    reference = torch_class(reference_model.parameters(), lr=0.01, **settings)
    steps = batches(60)
    for batch in steps[:30]:
        classification_step(model, original, batch)
        classification_step(reference_model, reference, batch)
    switched = our_class(model.parameters(), lr=0.5, hypergrad_lr=0, **settings)
    switched.load_state_dict(original.state_dict())
    assert switched.learning_rates == [0.01]
    for batch in steps[30:]:
        classification_step(model, switched, batch)
        classification_step(reference_model, reference, batch)
    for mine, theirs in zip(model.parameters(), reference_model.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)


# (d) One step of the formula, by hand, on a 2-parameter quadratic.

CURVATURES = (2.0, 0.5)


def quadratic_gradient(w: tuple[float, float]) -> tuple[float, float]:
    return CURVATURES[0] * w[0], CURVATURES[1] * w[1]


def run_on_quadratic(optimizer_class: type, steps: int, start: tuple[float, float] = (1.0, -2.0),
                     dtype: torch.dtype = torch.float64, **settings: float | bool
                     ) -> tuple[list[float], list[float]]:
    """Minimize 0.5 * (2 w0² + 0.5 w1²) from `start`; the rate after each step, and the last w.

    Plain gradient descent on it is stable for rates below 2 / max(CURVATURES) = 1.
    """
    w = torch.tensor(start, dtype=dtype, requires_grad=True)
    optimizer = optimizer_class([w], **settings)
    curvatures = torch.tensor(CURVATURES, dtype=dtype)
    rates = []
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * (curvatures * w**2).sum()).backward()
        optimizer.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates, w.detach().tolist()


def dot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def minus(w: tuple[float, ...], lr: float, u: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(wi - lr * ui for wi, ui in zip(w, u, strict=True))


def test_sgdhd_step_matches_the_formula() -> None:
    lr0, beta = 0.1, 0.01
    w0 = (1.0, -2.0)
    g1 = quadratic_gradient(w0)
    w1 = minus(w0, lr0, g1)  # no previous direction: the first step keeps lr0
    g2 = quadratic_gradient(w1)
    lr1 = lr0 + beta * dot(g2, g1)
    w2 = minus(w1, lr1, g2)
    rates, w = run_on_quadratic(SGDHD, 2, lr=lr0, hypergrad_lr=beta)
    assert rates == pytest.approx([lr0, lr1], rel=1e-12)
    assert lr1 > lr0  # g2·g1 > 0: lr0 undershoots, so the rate grows
    assert w == pytest.approx(list(w2), rel=1e-12)

    # The multiplicative rule scales it by 1 + beta' cos(g2, g1).
    cosine = dot(g2, g1) / math.sqrt(dot(g1, g1) * dot(g2, g2))
    rates, _ = run_on_quadratic(SGDHD, 2, lr=lr0, hypergrad_lr=0.1, multiplicative=True)
    assert rates[1] == pytest.approx(lr0 * (1 + 0.1 * cosine), rel=1e-12)


def test_multiplicative_sgdhd_shrinks_a_too_large_rate() -> None:
    """From 3x the stability limit, where plain gradient descent blows up, the multiplicative
    rule shrinks the rate below the limit (the iterate flips sign: cos(g_t, u_{t-1}) ≈ -1) and
    the run converges. float64 on a 2-parameter quadratic: no library kernel's rounding matters.
    """
    _, sgd_w = run_on_quadratic(SGDHD, 200, lr=3.0, hypergrad_lr=0)
    rates, w = run_on_quadratic(SGDHD, 200, lr=3.0, hypergrad_lr=0.05, multiplicative=True)
    assert max(map(abs, sgd_w)) > 1e100  # |1 - 3 * 2| = 5: w0 grows fivefold a step
    assert rates[-1] < 1.0 and min(rates) < 3.0 / 4  # shrunk by a clear factor, not a tweak
    assert all(later <= earlier for earlier, later in itertools.pairwise(rates[:20]))
    assert max(map(abs, w)) < 1e-30  # converged to the minimum at 0


@pytest.mark.parametrize("multiplicative", [False, True])
def test_the_rate_adapts_when_float32_inner_products_overflow(multiplicative: bool) -> None:
    """Gradients near 1e20 are finite in float32 but their inner products are not: the rate
    still takes its step (computed wide) instead of freezing in a diverging run."""
    start, lr0 = (1e20, -2e20), 0.9
    beta = 0.1 if multiplicative else 1e-42
    w1 = minus(start, lr0, quadratic_gradient(start))
    g1, g2 = quadratic_gradient(start), quadratic_gradient(w1)
    step = (beta * dot(g2, g1) / math.sqrt(dot(g1, g1) * dot(g2, g2)) * lr0 if multiplicative
            else beta * dot(g2, g1))
    rates, _ = run_on_quadratic(SGDHD, 2, start=start, dtype=torch.float32, lr=lr0,
                                hypergrad_lr=beta, multiplicative=multiplicative)
    assert step < 0  # lr0 overshoots along w0: the rate must shrink
    assert rates[1] == pytest.approx(lr0 + step, rel=1e-5)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdhd_with_momentum_uses_the_previous_update_direction(nesterov: bool) -> None:
    lr, beta, mu = 0.05, 0.01, 0.9
    w, buffer, direction, expected_rates = (1.0, -2.0), None, None, []
    for _ in range(3):
        g = quadratic_gradient(w)
        if direction is not None:
            lr += beta * dot(g, direction)
        expected_rates.append(lr)
        buffer = g if buffer is None else tuple(mu * b + gi for b, gi in zip(buffer, g,
                                                                               strict=True))
        direction = tuple(gi + mu * b for gi, b in zip(g, buffer, strict=True)) if nesterov \
            else buffer
        w = minus(w, lr, direction)
    rates, final_w = run_on_quadratic(SGDHD, 3, lr=0.05, hypergrad_lr=beta, momentum=mu,
                                      nesterov=nesterov)
    assert rates == pytest.approx(expected_rates, rel=1e-12)
    assert final_w == pytest.approx(list(w), rel=1e-12)


def test_adamhd_step_matches_the_formula() -> None:
    lr0, beta, (b1, b2), eps = 0.1, 0.01, (0.9, 0.999), 1e-8
    w0 = (1.0, -2.0)
    g1 = quadratic_gradient(w0)
    m = tuple((1 - b1) * g for g in g1)
    v = tuple((1 - b2) * g * g for g in g1)

    def adam_direction(m: tuple[float, ...], v: tuple[float, ...], t: int) -> tuple[float, ...]:
        return tuple((mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps)
                     for mi, vi in zip(m, v, strict=True))

    u1 = adam_direction(m, v, 1)  # ≈ sign(g1)
    w1 = minus(w0, lr0, u1)
    g2 = quadratic_gradient(w1)
    lr1 = lr0 + beta * dot(g2, u1)
    m = tuple(b1 * mi + (1 - b1) * g for mi, g in zip(m, g2, strict=True))
    v = tuple(b2 * vi + (1 - b2) * g * g for vi, g in zip(v, g2, strict=True))
    w2 = minus(w1, lr1, adam_direction(m, v, 2))
    rates, w = run_on_quadratic(AdamHD, 2, lr=lr0, hypergrad_lr=beta)
    assert rates == pytest.approx([lr0, lr1], rel=1e-12)
    assert w == pytest.approx(list(w2), rel=1e-12)


def test_the_rate_is_clipped_to_its_bounds() -> None:
    rates, _ = run_on_quadratic(SGDHD, 3, lr=0.9, hypergrad_lr=10.0)  # g2·g1 < 0, huge step
    assert min(rates) == 0.0
    rates, _ = run_on_quadratic(SGDHD, 3, lr=0.9, hypergrad_lr=10.0, lr_bounds=(0.2, 1.0))
    assert all(0.2 <= r <= 1.0 for r in rates) and 0.2 in rates


# (e) Bad settings are refused with a message that says what to pass.

def parameter() -> list[torch.Tensor]:
    return [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize(("make", "match"), [
    (lambda: SGDHD(parameter(), lr=-0.1), "lr must be >= 0"),
    (lambda: SGDHD(parameter(), lr=math.nan), "lr must be a finite number"),
    (lambda: SGDHD(parameter(), lr="fast"), "lr must be a finite number"),
    (lambda: SGDHD(parameter(), hypergrad_lr=-1e-3), "hypergrad_lr must be >= 0"),
    (lambda: SGDHD(parameter(), hypergrad_lr=1.5, multiplicative=True), "must be < 1"),
    (lambda: SGDHD(parameter(), lr=0.0, multiplicative=True), "lr must be > 0"),
    (lambda: SGDHD(parameter(), momentum=1.0), "momentum must be in"),
    (lambda: SGDHD(parameter(), nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: SGDHD(parameter(), weight_decay=-1), "weight_decay must be >= 0"),
    (lambda: SGDHD(parameter(), lr_bounds=(1.0, 0.1)), "0 <= min_lr < max_lr"),
    (lambda: SGDHD(parameter(), lr_bounds=0.1), "pair"),
    (lambda: SGDHD(parameter(), lr=2.0, lr_bounds=(0.0, 1.0)), "outside lr_bounds"),
    (lambda: SGDHD([{"params": parameter(), "momentum": -0.5}]), "momentum must be in"),
    (lambda: AdamHD(parameter(), betas=(0.9, 1.0)), "betas must lie in"),
    (lambda: AdamHD(parameter(), betas=0.9), "betas must be a pair"),
    (lambda: AdamHD(parameter(), eps=-1e-8), "eps must be >= 0"),
    (lambda: AdamHD(parameter(), hypergrad_lr=math.inf), "hypergrad_lr must be a finite"),
])
def test_bad_settings_raise(make: Callable[[], object], match: str) -> None:
    with pytest.raises(HypergradientConfigError, match=match) as caught:
        make()
    assert isinstance(caught.value, HyperlawError) and isinstance(caught.value, ValueError)
    assert "pass" in str(caught.value) or "widen" in str(caught.value)  # it names the fix


def test_a_bad_added_param_group_is_refused_and_not_kept() -> None:
    optimizer = SGDHD(parameter(), lr=0.1)
    with pytest.raises(HypergradientConfigError, match="lr must be >= 0"):
        optimizer.add_param_group({"params": parameter(), "lr": -1.0})
    assert len(optimizer.param_groups) == 1


def test_default_meta_steps_follow_the_rule() -> None:
    assert SGDHD(parameter()).param_groups[0]["hypergrad_lr"] == 1e-6
    assert AdamHD(parameter()).param_groups[0]["hypergrad_lr"] == 1e-8
    assert SGDHD(parameter(), multiplicative=True).param_groups[0]["hypergrad_lr"] == 0.01


def test_importing_hyperlaw_integrations_does_not_import_torch() -> None:
    code = "import sys, hyperlaw, hyperlaw.integrations; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
