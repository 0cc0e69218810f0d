"""Hypergradient descent: SGD and Adam that adapt their own learning rate while they train.

Baydin et al., "Online Learning Rate Adaptation with Hypergradient Descent", ICLR 2018.
Before each update the rate takes one step along its own hypergradient:

    additive:        lr_t = lr_{t-1} + hypergrad_lr * <g_t, u_{t-1}>
    multiplicative:  lr_t = lr_{t-1} * (1 + hypergrad_lr * cos(g_t, u_{t-1}))

and the parameters then move by -lr_t * u_t. Here g_t is this step's gradient (with the L2 term
of `weight_decay`) and u_{t-1} the direction of the previous update, so -<g_t, u_{t-1}> is the
derivative of the loss with respect to lr_{t-1}. The inner product runs over every parameter of
a param group: each group has one rate, kept in `group["lr"]`, where LR schedulers and
checkpoints see it. The rate is clipped to the group's `lr_bounds` after each adaptation.

This module imports torch (install `hyperlaw[torch]`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch.optim import Optimizer

from hyperlaw.errors import HypergradientConfigError

__all__ = ["SGDHD", "AdamHD", "HypergradientConfigError"]

#: Default `hypergrad_lr` of the multiplicative rule: the rate changes by at most 1 % a step.
#: (hyperlaw's choice; the paper gives no default for this rule.)
MULTIPLICATIVE_HYPERGRAD_LR = 0.01


def _number(key: str, value: Any, fix: str) -> float:
    """`value` (the setting `key`) as a finite float; anything else is an error naming `fix`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise HypergradientConfigError(f"{key} must be a finite number, got {value!r}; {fix}")
    return number


def _at_least_zero(settings: dict[str, Any], key: str, fix: str) -> float:
    number = _number(key, settings[key], fix)
    if number < 0:
        raise HypergradientConfigError(f"{key} must be >= 0, got {number!r}; {fix}")
    return number


def _wide_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # no float64 on MPS


def _sum_over_devices(terms: list[torch.Tensor]) -> float:
    """Sum scalar tensors that may live on several devices, with one sync per device."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for term in terms:
        by_device.setdefault(term.device, []).append(term.to(_wide_dtype(term.device)))
    return sum(float(torch.stack(group).sum()) for group in by_device.values())


def _inner_products(pairs: list[tuple[torch.Tensor, torch.Tensor]], with_norms: bool,
                    widen: bool = False) -> list[float]:
    """[<g, u>], or [<g, u>, <g, g>, <u, u>] `with_norms`, over a group's (gradient, direction)
    pairs. In the tensors' own dtype unless `widen`: then each tensor is first cast to float64,
    where the inner products of finite float32 or float16 vectors cannot overflow."""
    if widen:
        pairs = [(g.to(_wide_dtype(g.device)), u.to(_wide_dtype(u.device))) for g, u in pairs]
    products = [(1, 0), (0, 0), (1, 1)] if with_norms else [(1, 0)]
    return [_sum_over_devices([torch.vdot(pair[a].flatten(), pair[b].flatten()).real
                               for pair in pairs])
            for a, b in products]


def _remember(state: dict[str, Any], key: str, tensor: torch.Tensor) -> None:
    """Keep a copy of `tensor` in `state[key]`, reusing the buffer already there."""
    if key in state:
        state[key].copy_(tensor)
    else:
        state[key] = tensor.detach().clone()


class _HypergradientOptimizer(Optimizer):
    """What SGDHD and AdamHD share: settings checks and the learning-rate adaptation."""

    #: Default `hypergrad_lr` of the additive rule.
    ADDITIVE_HYPERGRAD_LR: ClassVar[float]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        settings = {**self.defaults, **param_group}
        param_group.update(self._checked(settings))
        super().add_param_group(param_group)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Also runs in load_state_dict: a checkpoint of torch.optim.SGD / Adam (no hypergradient
        # options in its groups) resumes with this optimizer's defaults.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            if group["hypergrad_lr"] is None:
                group["hypergrad_lr"] = self._default_hypergrad_lr(group["multiplicative"])

    @property
    def learning_rates(self) -> list[float]:
        """The current (adapted) learning rate of each param group, i.e. each `group["lr"]`."""
        return [float(group["lr"]) for group in self.param_groups]

    @classmethod
    def _default_hypergrad_lr(cls, multiplicative: bool) -> float:
        return MULTIPLICATIVE_HYPERGRAD_LR if multiplicative else cls.ADDITIVE_HYPERGRAD_LR

    def _checked(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The group's settings, validated and normalized; raises HypergradientConfigError."""
        multiplicative = bool(settings["multiplicative"])
        if settings["hypergrad_lr"] is None:
            settings["hypergrad_lr"] = self._default_hypergrad_lr(multiplicative)
        hypergrad_lr = _at_least_zero(
            settings, "hypergrad_lr", "pass a small step for the learning rate's own update, "
            "e.g. 1e-6 for SGDHD or 1e-8 for AdamHD (0 turns the adaptation off)")
        if multiplicative and hypergrad_lr >= 1:
            raise HypergradientConfigError(
                f"hypergrad_lr must be < 1 with multiplicative=True (the rate is multiplied by "
                f"1 ± hypergrad_lr at most), got {hypergrad_lr!r}; pass e.g. 0.01")
        lr = _at_least_zero(settings, "lr", "pass the initial learning rate, e.g. 1e-3")
        if multiplicative and lr == 0:
            raise HypergradientConfigError(
                "lr must be > 0 with multiplicative=True (a zero rate stays zero); "
                "pass the initial learning rate, e.g. 1e-3")
        bounds = settings["lr_bounds"]
        if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
            raise HypergradientConfigError(
                f"lr_bounds must be a pair (min_lr, max_lr), got {bounds!r}; "
                "pass e.g. (0.0, math.inf)")
        try:
            min_lr, max_lr = float(bounds[0]), float(bounds[1])
        except (TypeError, ValueError):
            min_lr, max_lr = math.nan, math.nan
        if not (0 <= min_lr < max_lr):  # also rejects NaN
            raise HypergradientConfigError(
                f"lr_bounds must satisfy 0 <= min_lr < max_lr, got {bounds!r}; "
                "pass e.g. (0.0, math.inf) or (1e-6, 1.0)")
        if not min_lr <= lr <= max_lr:
            raise HypergradientConfigError(
                f"lr={lr!r} lies outside lr_bounds={bounds!r}; "
                "start the learning rate inside the bounds or widen them")
        weight_decay = _at_least_zero(settings, "weight_decay",
                                      "pass an L2 coefficient such as 1e-4, or 0 for none")
        return {"lr": lr, "hypergrad_lr": hypergrad_lr, "multiplicative": multiplicative,
                "lr_bounds": (min_lr, max_lr), "weight_decay": weight_decay,
                **self._checked_own(settings)}

    def _checked_own(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Checks of the settings only one optimizer has."""
        raise NotImplementedError

    @staticmethod
    def _adapted_lr(group: dict[str, Any],
                    gradients_and_directions: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """The group's rate after one hypergradient step on <g_t, u_{t-1}>."""
        lr, hypergrad_lr = float(group["lr"]), group["hypergrad_lr"]
        if hypergrad_lr == 0 or not gradients_and_directions:
            return lr
        multiplicative = group["multiplicative"]
        products = _inner_products(gradients_and_directions, multiplicative)
        if not all(map(math.isfinite, products)):
            # A diverging run: large but finite float32 gradients overflow their inner products,
            # which would freeze the rate just when it must shrink. Recompute them wide.
            products = _inner_products(gradients_and_directions, multiplicative, widen=True)
        if multiplicative:
            dot, gg, uu = products
            norms = math.sqrt(gg) * math.sqrt(uu)
            cosine = dot / norms if norms > 0 else 0.0
            new_lr = lr * (1 + hypergrad_lr * cosine)
        else:
            new_lr = lr + hypergrad_lr * products[0]
        if not math.isfinite(new_lr):  # non-finite gradients: leave the rate alone
            return lr
        min_lr, max_lr = group["lr_bounds"]
        return min(max(new_lr, min_lr), max_lr)

    @staticmethod
    def _gradients(group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The group's parameters that have a gradient, and those gradients plus the L2 term."""
        params, grads = [], []
        for param in group["params"]:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise HypergradientConfigError(
                    "hypergradient optimizers need dense gradients; build embeddings with "
                    "sparse=False")
            params.append(param)
            grad = param.grad
            if group["weight_decay"]:
                grad = grad.add(param, alpha=group["weight_decay"])
            grads.append(grad)
        return params, grads


class SGDHD(_HypergradientOptimizer):
    """SGD (optionally with momentum or Nesterov momentum) whose learning rate adapts itself.

    With `hypergrad_lr=0` it is exactly `torch.optim.SGD` (no dampening). u_{t-1} is the
    previous update direction: the gradient without momentum, the momentum buffer with it, and
    gradient + momentum * buffer with Nesterov. `hypergrad_lr=None` means 1e-6 for the additive
    rule (the reference code's default; the paper's experiments used 1e-3 with lr=1e-3) and
    0.01 for the multiplicative one.
    """

    ADDITIVE_HYPERGRAD_LR = 1e-6

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 hypergrad_lr: float | None = None, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 multiplicative: bool = False,
                 lr_bounds: tuple[float, float] = (0.0, math.inf)) -> None:
        defaults = {"lr": lr, "hypergrad_lr": hypergrad_lr, "momentum": momentum,
                    "nesterov": nesterov, "weight_decay": weight_decay,
                    "multiplicative": multiplicative, "lr_bounds": lr_bounds}
        super().__init__(params, defaults)

    def _checked_own(self, settings: dict[str, Any]) -> dict[str, Any]:
        momentum = _number("momentum", settings["momentum"],
                           "pass a value in [0, 1), e.g. 0.9, or 0")
        if not 0 <= momentum < 1:
            raise HypergradientConfigError(
                f"momentum must be in [0, 1), got {momentum!r}; pass e.g. 0.9, or 0 for none")
        nesterov = bool(settings["nesterov"])
        if nesterov and momentum == 0:
            raise HypergradientConfigError(
                "nesterov=True needs momentum > 0; pass momentum=0.9 or nesterov=False")
        return {"momentum": momentum, "nesterov": nesterov}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every param group; `closure` re-evaluates the loss (optional)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum, nesterov = group["momentum"], group["nesterov"]
            # Plain momentum moves along its buffer, which is then u_{t-1}; else keep a copy.
            previous_key = "momentum_buffer" if momentum and not nesterov else "previous_direction"
            params, grads = self._gradients(group)
            pairs = [(grad, self.state[param][previous_key])
                     for param, grad in zip(params, grads, strict=True)
                     if previous_key in self.state[param]]
            group["lr"] = lr = self._adapted_lr(group, pairs)
            for param, grad in zip(params, grads, strict=True):
                state = self.state[param]
                direction = grad
                if momentum:
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = grad.detach().clone()
                    else:
                        buffer.mul_(momentum).add_(grad)
                    direction = grad.add(buffer, alpha=momentum) if nesterov else buffer
                if previous_key == "previous_direction":
                    _remember(state, previous_key, direction)
                param.add_(direction, alpha=-lr)
        return loss


class AdamHD(_HypergradientOptimizer):
    """Adam whose learning rate adapts itself.

    With `hypergrad_lr=0` it is exactly `torch.optim.Adam` (L2 `weight_decay` added to the
    gradient, no AMSGrad). u_{t-1} = m_hat_{t-1} / (sqrt(v_hat_{t-1}) + eps), the previous
    bias-corrected Adam direction, recomputed from the moments (no extra memory).
    `hypergrad_lr=None` means 1e-8 for the additive rule (the reference code's default; the
    paper's experiments used 1e-7 to 1e-8 with lr=1e-3) and 0.01 for the multiplicative one.
    """

    ADDITIVE_HYPERGRAD_LR = 1e-8

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, hypergrad_lr: float | None = None,
                 multiplicative: bool = False,
                 lr_bounds: tuple[float, float] = (0.0, math.inf)) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "hypergrad_lr": hypergrad_lr, "multiplicative": multiplicative,
                    "lr_bounds": lr_bounds}
        super().__init__(params, defaults)

    def _checked_own(self, settings: dict[str, Any]) -> dict[str, Any]:
        betas = settings["betas"]
        fix = "pass e.g. betas=(0.9, 0.999)"
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise HypergradientConfigError(f"betas must be a pair, got {betas!r}; {fix}")
        beta1 = _number("betas[0]", betas[0], fix)
        beta2 = _number("betas[1]", betas[1], fix)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise HypergradientConfigError(f"betas must lie in [0, 1), got {betas!r}; {fix}")
        eps = _at_least_zero(settings, "eps", "pass a small positive number, e.g. 1e-8")
        return {"betas": (beta1, beta2), "eps": eps}

    @staticmethod
    def _denominator(state: dict[str, Any], beta2: float, eps: float) -> torch.Tensor:
        """sqrt(v_hat) + eps, computed as torch.optim.Adam does."""
        bias_correction2 = 1 - beta2 ** state["step"]
        return (state["exp_avg_sq"].sqrt() / math.sqrt(bias_correction2)).add_(eps)

    @classmethod
    def _direction(cls, state: dict[str, Any], betas: tuple[float, float],
                   eps: float) -> torch.Tensor:
        """The bias-corrected Adam direction m_hat / (sqrt(v_hat) + eps) of the last step."""
        bias_correction1 = 1 - betas[0] ** state["step"]
        return state["exp_avg"].div(cls._denominator(state, betas[1], eps)).div_(bias_correction1)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every param group; `closure` re-evaluates the loss (optional)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (beta1, beta2), eps = group["betas"], group["eps"]
            params, grads = self._gradients(group)
            for param in params:
                state = self.state[param]
                if state:  # a torch.optim.Adam checkpoint keeps the step as a tensor
                    state["step"] = int(state["step"])
            pairs = [(grad, self._direction(self.state[param], group["betas"], eps))
                     for param, grad in zip(params, grads, strict=True)
                     if self.state[param].get("step", 0) > 0]
            group["lr"] = lr = self._adapted_lr(group, pairs)
            for param, grad in zip(params, grads, strict=True):
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format)
                state["step"] += 1
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = lr / (1 - beta1 ** state["step"])
                param.addcdiv_(state["exp_avg"], self._denominator(state, beta2, eps),
                               value=-step_size)
        return loss
