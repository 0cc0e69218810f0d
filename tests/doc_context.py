"""The names the examples of the README and the docs use for *your* code and data.

tests/test_doc_examples.py runs this file's source before each example, in the example's
namespace (so worker processes receive these functions by value), then the example. Keep
it cheap: it runs once per example. Everything here is real and small: a 4-class linear
classifier on 128 fixed random points, trained by SGD in batches of 64 on one thread.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

import hyperlaw as hl
from hyperlaw.executors.simulated import ReplayCurve
from hyperlaw.lr_schedules import Constant, Cosine
from hyperlaw.scaling import LossCurve

torch.set_num_threads(1)
torch.manual_seed(0)
x = torch.randn(128, 8)
y = (x @ torch.randn(8, 4)).argmax(dim=1)
loader = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 128, 64)]
loss_fn = F.cross_entropy


class Net(torch.nn.Module):
    """The model: a linear classifier of 8 features into 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(inputs)


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def build(params):
    """A model and its optimizer for a trial's parameters (lr, momentum if any)."""
    net = Net()
    return net, torch.optim.SGD(net.parameters(), lr=params.get("lr", 0.1),
                                momentum=params.get("momentum", 0.0))


def train_one_epoch(net, opt):
    """One pass over `loader`; the mean training loss."""
    total = 0.0
    for inputs, targets in loader:
        loss = loss_fn(net(inputs), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    value = total / len(loader)
    return value if math.isfinite(value) else 1e3


def evaluate(net):
    """Accuracy on the training points."""
    with torch.no_grad():
        return (net(x).argmax(dim=1) == y).float().mean().item()


space = hl.Space({
    "lr": hl.Float(1e-5, 1e-1, log=True),
    "width": hl.Int(16, 512, log=True),
    "layers": hl.Int(1, 4),
    "optimizer": hl.Choice(["adamw", "sgd"]),
    "momentum": hl.Float(0.0, 0.99, when={"optimizer": "sgd"}),
})


def objective(trial):
    """Four epochs of the classifier; reads the seed a re-evaluation sets."""
    torch.manual_seed(trial.user_attrs.get("seed", 0))
    net, opt = build(trial.params)
    for epoch in range(4):
        loss = train_one_epoch(net, opt)
        trial.report(loss, epoch, checkpoint={"model": net.state_dict()})
    return loss


def _synthetic_loss(params, step):
    return abs(math.log10(params["lr"]) + 2.5) / 3 + 1 / (step + 1) + 0.01 * params["layers"]


def curve_for(params):
    """A recorded learning curve of a configuration (for the simulated executor)."""
    steps = list(range(1, 28))
    return ReplayCurve(steps, [_synthetic_loss(params, s) for s in steps], seconds_per_step=1.0)


def train(config, n_params, n_tokens):
    """A training run of a model of n_params on n_tokens: its final loss (synthetic)."""
    best_lr = 0.3 * n_params ** -0.3 * n_tokens ** 0.1
    return 2.0 + 1e3 / n_params ** 0.3 + (math.log(config["lr"] / best_lr)) ** 2 / 10


def _loss_curve(schedule, total):
    rates = np.asarray(schedule.values(total + 1), dtype=float)
    areas = np.cumsum(rates)
    steps = np.arange(10, total + 1, 10)
    return LossCurve(rates, steps, 2.0 + 3.0 * areas[steps] ** -0.5)


cosine_curve = _loss_curve(Cosine(peak_lr=3e-3, warmup_steps=100, total_steps=2_000), 2_000)
constant_curve = _loss_curve(Constant(peak_lr=3e-3, warmup_steps=100), 2_000)

# a study with some history: twelve trials told with their learning curves
study = hl.create_study("example", space=space, sampler="random", seed=0)
for _ in range(12):
    trial = study.ask()
    for step in range(1, 6):
        trial.report(_synthetic_loss(trial.params, step), step)
    study.tell(trial, _synthetic_loss(trial.params, 5))
del trial
