"""Width transfer by parametrization: μP for Adam-type optimizers in PyTorch.

Under the maximal update parametrization (Yang, Hu et al. 2022, "Tensor Programs V", arXiv
2203.03466; the reference implementation is the `mup` package) the optimal learning rate stays
put as a model grows wider, so a sweep at a small width transfers to a large one as is. For
Adam and AdamW that takes two changes to a standard model, both relative to a *base* model of
the same shape at the width the sweep ran at:

- the learning rate of each hidden matrix (both dimensions grow with width) is divided by
  its width multiplier, fan_in / base fan_in (and AdamW's weight decay multiplied by it, so
  the decay per step stays the same), as `mup.MuAdam` does; input weights, biases and norms
  (one dimension or none grows) keep the base learning rate;
- the output layer is a `MuReadout`: its logits are multiplied by base fan_in / fan_in, and
  its weights start at zero.

    model = MLP(width=256)                   # with a MuReadout as its last layer
    base = MLP(width=32)                     # the width the learning rate was tuned at
    optimizer = torch.optim.AdamW(mup_param_groups(model, base, lr=3e-3, weight_decay=0.1))

Transformers also need attention logits scaled by 1/d_head instead of 1/sqrt(d_head); that is
the model's own code and not done here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hyperlaw.errors import HyperlawError


class MuReadout(nn.Linear):
    """A linear output layer whose logits are scaled by `base_in_features / in_features`
    (times `output_mult`), zero-initialized unless `zero_init=False`."""

    def __init__(self, in_features: int, out_features: int, base_in_features: int, *,
                 bias: bool = True, output_mult: float = 1.0, zero_init: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if base_in_features <= 0:
            raise HyperlawError(f"MuReadout: base_in_features must be positive, got "
                                f"{base_in_features!r}")
        self.scale = output_mult * base_in_features / in_features
        if zero_init:
            nn.init.zeros_(self.weight)
            if self.bias is not None:
                nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled logits."""
        return super().forward(x) * self.scale


def width_multipliers(model: nn.Module, base: nn.Module) -> dict[str, float]:
    """Each hidden matrix's width multiplier (fan_in / base fan_in): the parameters of `model`
    whose two dimensions both differ from the same parameter of `base`."""
    base_shapes = {name: tuple(p.shape) for name, p in base.named_parameters()}
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    if base_shapes.keys() != shapes.keys():
        missing = sorted(base_shapes.keys() ^ shapes.keys())
        raise HyperlawError(f"mup: the model and its base model must have the same parameters; "
                            f"these are in only one of them: {missing[:5]}")
    multipliers = {}
    for name, shape in shapes.items():
        base_shape = base_shapes[name]
        if len(shape) != len(base_shape):
            raise HyperlawError(f"mup: parameter {name!r} has shape {shape} in the model and "
                                f"{base_shape} in the base model; build both from one class")
        grown = sum(a != b for a, b in zip(shape, base_shape, strict=True))
        if grown > 2:
            raise HyperlawError(f"mup: parameter {name!r} grows in {grown} dimensions; only "
                                "matrices (two) are supported")
        if grown == 2:
            multipliers[name] = shape[1] / base_shape[1]
    return multipliers


def mup_param_groups(model: nn.Module, base: nn.Module, lr: float,
                     weight_decay: float = 0.0, *,
                     no_decay: Callable[[str, nn.Parameter], bool] | None = None
                     ) -> list[dict[str, Any]]:
    """Parameter groups for `torch.optim.Adam`/`AdamW` under μP: one group per width
    multiplier of the hidden matrices (lr / multiplier, weight_decay * multiplier) and one of
    everything else (lr, weight_decay). `base` is the model at the width `lr` was tuned at
    (`base=model` gives the standard parametrization's groups). `no_decay(name, parameter)`,
    when given, picks parameters left without weight decay (norms, biases), in groups of their
    own.

    Each group also carries its `"lr_scale"` (1 / multiplier), which
    `hyperlaw.lr_schedules.torch.lr_scheduler` multiplies the schedule's rate by."""
    multipliers = width_multipliers(model, base)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        decays = no_decay is None or not no_decay(name, p)
        groups.setdefault((multipliers.get(name, 1.0), decays), []).append(p)
    return [{"params": ps, "lr": lr / m, "lr_scale": 1.0 / m,
             "weight_decay": weight_decay * m if decays else 0.0}
            for (m, decays), ps in groups.items()]


__all__ = ["MuReadout", "mup_param_groups", "width_multipliers"]
