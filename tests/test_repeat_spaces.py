"""Nested spaces and `Repeat`: spelled out as flat conditional parameters, read back as
nested dicts and lists, given nested to `enqueue`, and searched by every sampler while real
networks with a variable number of layers train."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

import hyperlaw as hl
from hyperlaw.errors import SpaceError

LAYER = hl.Space({"width": hl.Int(4, 64, log=True), "act": hl.Choice(["relu", "tanh"])})
SPACE = hl.Space({"lr": hl.Float(1e-3, 0.3, log=True),
                  "layers": hl.Repeat(LAYER, min=1, max=3),
                  "head": hl.Space({"dropout": hl.Float(0.0, 0.5)})})


def test_a_repeat_is_spelled_out_as_conditional_parameters() -> None:
    assert list(SPACE) == ["lr", "layers.count", "layers.0.width", "layers.0.act",
                           "layers.1.width", "layers.1.act", "layers.2.width", "layers.2.act",
                           "head.dropout"]
    assert SPACE["layers.count"] == hl.Int(1, 3)
    assert SPACE["layers.0.width"].when is None  # min=1: the first layer always exists
    assert dict(SPACE["layers.1.act"].when or {}) == {"layers.count": (2, 3)}
    assert dict(SPACE["layers.2.width"].when or {}) == {"layers.count": (3,)}
    assert SPACE.active_names({"lr": 0.1, "layers.count": 2}) == (
        "lr", "layers.count", "layers.0.width", "layers.0.act", "layers.1.width",
        "layers.1.act", "head.dropout")
    assert hl.Space.from_json(SPACE.to_json()) == SPACE
    assert pickle.loads(pickle.dumps(SPACE)) == SPACE


def test_conditions_inside_a_copy_and_repeats_of_repeats_follow_their_copy() -> None:
    layer = hl.Space({"act": hl.Choice(["relu", "leaky"]),
                      "slope": hl.Float(0.01, 0.3, when={"act": "leaky"})})
    block = hl.Space({"layers": hl.Repeat(layer, min=1, max=2), "skip": hl.Choice([0, 1])})
    space = hl.Space({"blocks": hl.Repeat(block, min=0, max=2)})
    assert dict(space["blocks.1.layers.1.slope"].when or {}) == {
        "blocks.1.layers.1.act": ("leaky",), "blocks.1.layers.count": (2,),
        "blocks.count": (2,)}
    assert space["blocks.count"] == hl.Int(0, 2)
    config = {"blocks.count": 1, "blocks.0.layers.count": 2, "blocks.0.layers.0.act": "relu",
              "blocks.0.layers.1.act": "leaky", "blocks.0.layers.1.slope": 0.1,
              "blocks.0.skip": 1}
    assert space.validate_params(config) == config
    assert hl.nest(config) == {"blocks": [{"layers": [{"act": "relu"},
                                                      {"act": "leaky", "slope": 0.1}],
                                           "skip": 1}]}
    assert hl.nest({"blocks.count": 0}) == {"blocks": []}


def test_params_read_groups_by_name_and_keep_their_flat_names() -> None:
    params = hl.Params({"lr": 0.1, "layers.count": 2, "layers.0.width": 8, "layers.0.act": "relu",
                        "layers.1.width": 4, "layers.1.act": "tanh", "head.dropout": 0.2})
    assert params["layers"] == [{"width": 8, "act": "relu"}, {"width": 4, "act": "tanh"}]
    assert params["head"] == {"dropout": 0.2} and params.get("head") == {"dropout": 0.2}
    assert params["layers.1.width"] == 4 and params["lr"] == 0.1
    assert params.get("missing", 7) == 7
    with pytest.raises(KeyError):
        params["missing"]
    assert "layers" not in params and len(params) == 7  # stored flat, as samplers see it


def test_a_configuration_is_enqueued_nested_and_bad_ones_are_named() -> None:
    study = hl.create_study(space=SPACE, seed=0)
    study.enqueue({"lr": 0.01, "layers": [{"width": 32, "act": "relu"},
                                          {"width": 8, "act": "tanh"}],
                   "head": {"dropout": 0.1}})
    trial = study.ask()
    assert trial.params["layers"] == [{"width": 32, "act": "relu"}, {"width": 8, "act": "tanh"}]
    assert trial.params["layers.count"] == 2 and "layers.2.width" not in trial.params
    with pytest.raises(SpaceError, match=r"'layers' has 4 copies; the space allows an int in "
                                         r"\[1, 3\]"):
        study.enqueue({"layers": [{"width": 8, "act": "relu"}] * 4})
    with pytest.raises(SpaceError, match=r"layers\[0\] must be a dict"):
        study.enqueue({"layers": [8]})
    with pytest.raises(SpaceError, match="min <= max"):
        hl.Repeat(LAYER, min=3, max=2)
    with pytest.raises(SpaceError, match="empty Space"):
        hl.Repeat(hl.Space({}))


X, Y = load_digits(return_X_y=True)
X_T, Y_T = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(Y)


def build(config: hl.Params) -> torch.nn.Sequential:
    modules: list[torch.nn.Module] = []
    width = 64
    for layer in config["layers"]:
        modules += [torch.nn.Linear(width, layer["width"]),
                    torch.nn.ReLU() if layer["act"] == "relu" else torch.nn.Tanh()]
        width = layer["width"]
    modules += [torch.nn.Dropout(config["head"]["dropout"]), torch.nn.Linear(width, 10)]
    return torch.nn.Sequential(*modules)


def objective(trial: hl.Trial) -> float:
    torch.manual_seed(trial.number)
    model = build(trial.params)
    trial.set_user_attr("n_linear", sum(isinstance(m, torch.nn.Linear) for m in model))
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"])
    for epoch in range(2):
        for batch in torch.randperm(1200).split(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X_T[batch]), Y_T[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            loss = float(torch.nn.functional.cross_entropy(model(X_T[1200:]), Y_T[1200:]))
        model.train()
        trial.report(loss, epoch)
    return loss


@pytest.mark.parametrize("sampler", ["random", "tpe", "gp", "nsga2"])
def test_every_sampler_trains_networks_of_a_varying_depth(sampler: str,
                                                          tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'depth.db'}"
    torch.set_num_threads(1)
    study = hl.create_study("depth", storage=storage, space=SPACE, sampler=sampler, seed=1)
    study.optimize(objective, n_trials=12, show_progress=False)
    trials = hl.load_study("depth", storage=storage).trials
    assert all(t.state is hl.TrialState.COMPLETE for t in trials)
    depths = set()
    for t in trials:
        count = t.params["layers.count"]
        depths.add(count)
        assert t.user_attrs["n_linear"] == count + 1
        assert all((f"layers.{i}.width" in t.params) == (i < count) for i in range(3))
        assert len(hl.nest(t.params)["layers"]) == count
    assert len(depths) > 1  # the depth itself is searched
    assert isinstance(study.best_params["layers"], list)


def test_the_dashboard_shows_repeated_parameters_by_their_flat_names(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from hyperlaw.dashboard.app import create_app
    from hyperlaw.store import open_store

    url = f"sqlite:///{tmp_path / 'dash.db'}"
    study = hl.create_study("depth", storage=url, space=SPACE, seed=0)

    def objective(trial: hl.Trial) -> float:
        for step in range(3):
            trial.report(trial.params["lr"] * len(trial.params["layers"]) / (step + 1), step)
        return trial.params["lr"] * len(trial.params["layers"])

    study.optimize(objective, n_trials=12, show_progress=False)
    store = open_store(url)
    with TestClient(create_app(store, refresh_interval=0.0),
                    base_url="http://127.0.0.1:8080") as http:
        summary = http.get("/api/study", params={"study": "depth"}).json()
        assert summary["params"] == list(SPACE)
        for panel in summary["panels"]:
            response = http.get(f"/api/study/panel/{panel['id']}", params={"study": "depth"})
            assert response.status_code == 200, (panel["id"], response.text)
        rows = http.get("/api/study/trials", params={"study": "depth"}).json()["rows"]
        assert len(rows) == 12
        one = http.get("/api/study/trial/0", params={"study": "depth"}).json()
        assert one["params"] == dict(study.trials[0].params)
    store.close()
