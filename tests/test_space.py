"""Tests for hyperlaw.space."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import numpy as np
import pytest

from hyperlaw.errors import ConditionError, HyperlawError, SpaceError, SpaceMismatchError
from hyperlaw.space import (
    Choice,
    Const,
    Float,
    Int,
    Param,
    Space,
    param_context,
    param_from_dict,
    param_matches,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def mixed_space() -> Space:
    return Space(
        {
            "optimizer": Choice(["adam", "sgd", "rmsprop"]),
            "momentum": Float(0.0, 0.9, step=0.1, when={"optimizer": ["sgd", "rmsprop"]}),
            "nesterov": Choice([True, False], when={"optimizer": "sgd"}),
            "lr": Float(1e-5, 1e-1, log=True),
            "dropout": Float(0.0, 0.5),
            "layers": Int(1, 8),
            "width": Int(16, 1024, log=True),
            "batch": Int(32, 256, step=32),
            "seed": Const(7),
            "warmup": Int(0, 100, step=10, when={"nesterov": True}),
        }
    )


def named_error(name: str, desc: dict[str, Any]) -> SpaceError:
    """Build a space from a description and return the error it raises."""
    with pytest.raises(SpaceError) as info:
        Space.from_dict({"params": {name: desc}})
    return info.value


# --- parameter validation ---------------------------------------------------------------

PARAM_ERRORS = [
    ({"type": "float", "low": 1.0, "high": 0.5}, "swap the bounds"),
    ({"type": "float", "low": 1.0, "high": 1.0}, "Const"),
    ({"type": "float", "low": 0.0, "high": math.inf}, "finite"),
    ({"type": "float", "low": math.nan, "high": 1.0}, "finite"),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "low > 0"),
    ({"type": "float", "low": 1e-3, "high": 1.0, "log": True, "step": 0.1}, "drop one"),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.0}, "step > 0"),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": -0.1}, "step > 0"),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}, "high=0.9"),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": 2.0}, "smaller step"),
    ({"type": "float", "low": "a", "high": 1.0}, "pass a float"),
    ({"type": "int", "low": 5, "high": 1}, "swap the bounds"),
    ({"type": "int", "low": 1, "high": 100, "log": True, "step": 2}, "requires step=1"),
    ({"type": "int", "low": 0, "high": 100, "log": True}, "raise low to 1"),
    ({"type": "int", "low": 0, "high": 10, "step": 0}, "step >= 1"),
    ({"type": "int", "low": 0, "high": 10, "step": 3}, "set high=9"),
    ({"type": "int", "low": 0.5, "high": 10}, "use Float"),
    ({"type": "int", "low": 0, "high": math.inf}, "finite"),
    ({"type": "choice", "values": []}, "at least one"),
    ({"type": "choice", "values": ["a", "b", "a"]}, "list each value once"),
    ({"type": "choice", "values": "abc"}, "Choice(['adam', 'sgd'])"),
    ({"type": "choice", "values": [[1, 2], 3]}, "map them to objects inside the objective"),
    ({"type": "choice", "values": [math.inf]}, "map them to objects inside the objective"),
    ({"type": "const", "value": {"a": 1}}, "map them to objects inside the objective"),
    ({"type": "float", "low": 0, "high": 1, "when": "opt"}, "when={'optimizer': 'sgd'}"),
    ({"type": "float", "low": 0, "high": 1, "when": {3: "a"}}, "non-empty str"),
    ({"type": "float", "low": 0, "high": 1, "when": {"a": {1, 2}}}, "list of values"),
    ({"type": "float", "low": 0, "high": 1, "when": {"a": []}}, "at least one value"),
    ({"type": "float", "low": 0, "high": 1, "when": {"a": [object()]}}, "map them"),
    ({"type": "float", "low": 0}, "missing ['high']"),
    ({"type": "float", "low": 0, "high": 1, "lo": 3}, "unknown keys ['lo']"),
    ({"type": "real", "low": 0, "high": 1}, "'float'"),
]


@pytest.mark.parametrize(("desc", "fix"), PARAM_ERRORS)
def test_param_errors_name_parameter_and_fix(desc: dict[str, Any], fix: str) -> None:
    err = named_error("lr", desc)
    assert isinstance(err, SpaceError) and isinstance(err, ValueError)
    assert isinstance(err, HyperlawError)
    message = str(err)
    assert message.startswith("parameter 'lr': ")
    assert fix in message


def test_direct_construction_message_describes_param_and_fix() -> None:
    with pytest.raises(SpaceError, match=r"Float\(low=1.0, high=0.5\): low must be below high"):
        Float(1.0, 0.5)
    with pytest.raises(SpaceError, match="swap the bounds"):
        Int(3, 2)
    with pytest.raises(SpaceError) as info:
        Choice(["a", object()])
    assert "object object" in str(info.value) and "use strings or numbers" in str(info.value)
    with pytest.raises(SpaceError, match="constant value"):
        Const([1, 2])


def test_param_context_prefixes_name_and_keeps_type() -> None:
    with pytest.raises(SpaceError, match=r"^parameter 'units': Int\(low=4, high=2\)"), \
            param_context("units"):
        Int(4, 2)

    def mismatch() -> None:
        raise SpaceMismatchError("boom")

    with pytest.raises(SpaceMismatchError, match=r"^parameter 'x': boom$"), param_context("x"):
        mismatch()


def test_valid_edge_cases() -> None:
    assert Int(3, 3).n_values == 1
    assert Int(3, 3).grid() == [3]
    assert Float(0.0, 1.0, step=0.1).n_values == 11
    assert Float(0, 1).low == 0.0 and isinstance(Float(0, 1).low, float)
    assert Int(1.0, 4.0).high == 4 and isinstance(Int(1.0, 4.0).high, int)
    assert Int(np.int64(1), np.int64(4)) == Int(1, 4)
    assert Choice(np.array(["a", "b"])).values == ("a", "b")
    assert Choice([1, True, None, 1.5, "x"]).n_values == 5  # bool is not the int 1
    assert Const(None).value is None


def test_params_are_frozen_hashable_and_picklable() -> None:
    p = Float(1e-3, 1.0, log=True, when={"opt": ["sgd", "adam"]})
    with pytest.raises(AttributeError):
        p.low = 0.5  # type: ignore[misc]
    assert p == Float(1e-3, 1.0, log=True, when={"opt": ["adam", "sgd"]})
    assert hash(p) == hash(Float(1e-3, 1.0, log=True, when={"opt": ("adam", "sgd")}))
    assert p != Float(1e-3, 1.0, log=True)
    assert Choice([1, 2]) != Choice([True, 2])
    assert Choice(["a", "b"]) != Choice(["b", "a"])
    for q in (p, Int(1, 9, step=2), Choice([True, 1, "a"]), Const("x", when={"a": 1})):
        assert pickle.loads(pickle.dumps(q)) == q
        assert param_from_dict(json.loads(json.dumps(q.to_dict()))) == q
    assert dict(p.when) == {"opt": ("sgd", "adam")}  # type: ignore[arg-type]


def test_repr_is_readable() -> None:
    assert repr(Float(1e-5, 0.1, log=True)) == "Float(1e-05, 0.1, log=True)"
    assert repr(Int(0, 10, step=2, when={"a": "x"})) == "Int(0, 10, step=2, when={'a': 'x'})"
    assert repr(Choice(["a", "b"])) == "Choice(['a', 'b'])"
    assert "Const(3)" in repr(Space({"c": Const(3)}))


def test_param_matches_ignores_when() -> None:
    declared = Float(0.0, 1.0, when={"opt": "sgd"})
    assert param_matches(declared, Float(0, 1))
    assert not param_matches(declared, Float(0, 2))
    assert not param_matches(declared, Int(0, 1))
    assert param_matches(Choice(["a", "b"], when={"x": 1}), Choice(["a", "b"]))
    assert not param_matches(Choice(["a", "b"]), Choice(["b", "a"]))


# --- domains, sampling, unit mapping -----------------------------------------------------


def test_contains() -> None:
    f = Float(0.0, 1.0, step=0.1)
    assert f.contains(0.3) and f.contains(0.1 * 3) and f.contains(1) and f.contains(np.float32(0.5))
    assert not f.contains(0.35) and not f.contains(1.1) and not f.contains(True)
    assert not f.contains("0.3") and not f.contains(math.nan) and not f.contains(math.inf)
    assert Float(0, 1).contains(0.123) and not Float(0, 1).contains(-0.1)
    i = Int(0, 10, step=2)
    assert i.contains(4) and i.contains(np.int64(4))
    assert not i.contains(3) and not i.contains(4.0) and not i.contains(True) and not i.contains(12)
    c = Choice([1, "a", None])
    assert c.contains(1) and c.contains(None) and c.contains("a")
    assert not c.contains(True) and not c.contains([1]) and not c.contains("b")
    assert Choice([True]).contains(True) and not Choice([True]).contains(1)
    assert Const(0).contains(0) and not Const(0).contains(False) and not Const(0).contains(1)


def test_sample_types_and_domain(rng: np.random.Generator) -> None:
    params: list[tuple[Param, type]] = [
        (Float(-2.0, 3.0), float),
        (Float(1e-4, 1.0, log=True), float),
        (Float(0.0, 1.0, step=0.25), float),
        (Int(-5, 5), int),
        (Int(1, 1000, log=True), int),
        (Int(10, 50, step=10), int),
        (Choice(["a", 1, None, False]), object),
        (Const("k"), str),
    ]
    for param, kind in params:
        seen = set()
        for _ in range(500):
            v = param.sample(rng)
            assert param.contains(v), (param, v)
            if kind is not object:
                assert type(v) is kind, (param, v)
            seen.add(repr(v))
        if param.is_finite and param.n_values <= 20:  # type: ignore[operator]
            assert len(seen) == param.n_values, param  # every value is reachable
    assert {repr(Float(0.0, 1.0, step=0.25).sample(rng)) for _ in range(200)} == {
        "0.0", "0.25", "0.5", "0.75", "1.0"
    }


def test_log_sampling_is_log_uniform(rng: np.random.Generator) -> None:
    f = Float(1e-4, 1.0, log=True)
    draws = np.array([f.sample(rng) for _ in range(4000)])
    assert draws.min() >= 1e-4 and draws.max() <= 1.0
    assert 10 ** np.median(np.log10(draws)) == pytest.approx(1e-2, rel=0.3)  # geometric mean
    quartiles = np.quantile(np.log10(draws), [0.25, 0.75])
    np.testing.assert_allclose(quartiles, [-3.0, -1.0], atol=0.15)
    linear = np.array([Float(1e-4, 1.0).sample(rng) for _ in range(4000)])
    assert np.median(linear) == pytest.approx(0.5, abs=0.05)
    ints = np.array([Int(1, 10_000, log=True).sample(rng) for _ in range(4000)])
    assert 30 < np.median(ints) < 300  # geometric mean 100; linear median would be ~5000


def test_step_grid_values_are_clean() -> None:
    f = Float(0.0, 1.0, step=0.1)
    assert f.grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert Float(1e-3, 5e-3, step=1e-3).grid() == [0.001, 0.002, 0.003, 0.004, 0.005]


def test_unit_mapping_cells() -> None:
    i = Int(0, 3)
    assert [i.to_unit(v) for v in range(4)] == [0.125, 0.375, 0.625, 0.875]
    assert [i.from_unit(u) for u in (0.0, 0.2499, 0.25, 0.99, 1.0, 7.0, -3.0)] == [
        0, 0, 1, 3, 3, 3, 0
    ]
    c = Choice(["a", "b"])
    assert c.to_unit("a") == 0.25 and c.from_unit(0.5) == "b" and c.from_unit(1.0) == "b"
    with pytest.raises(SpaceError, match="not one of"):
        c.to_unit("z")
    f = Float(2.0, 4.0)
    assert f.to_unit(3.0) == 0.5 and f.from_unit(0.25) == 2.5 and f.from_unit(2.0) == 4.0
    g = Float(1e-3, 1e1, log=True)
    assert g.to_unit(0.1) == pytest.approx(0.5) and g.from_unit(0.5) == pytest.approx(0.1)
    assert g.from_unit(0.0) == 1e-3 and g.from_unit(1.0) == 1e1
    with pytest.raises(SpaceError, match="NaN"):
        f.from_unit(math.nan)


def test_int_log_round_trips_every_integer() -> None:
    for p in (Int(1, 300, log=True), Int(7, 40, log=True), Int(1000, 1200, log=True)):
        units = [p.to_unit(v) for v in range(p.low, p.high + 1)]
        assert all(0.0 < u < 1.0 for u in units)
        assert units == sorted(units)
        assert [p.from_unit(u) for u in units] == list(range(p.low, p.high + 1))
    p = Int(1, 100, log=True)
    assert p.from_unit(0.0) == 1 and p.from_unit(1.0) == 100


def test_linear_int_and_step_float_round_trip() -> None:
    for p in (Int(-7, 20, step=3), Int(0, 50)):
        values = p.grid()
        assert [p.from_unit(p.to_unit(v)) for v in values] == values
    f = Float(-1.0, 2.0, step=0.25)
    assert [f.from_unit(f.to_unit(v)) for v in f.grid()] == f.grid()


def test_param_grid() -> None:
    assert Choice(["a", "b"]).grid(1) == ["a", "b"]
    assert Const(3).grid() == [3]
    assert Int(0, 4).grid() == [0, 1, 2, 3, 4]
    assert Int(0, 100).grid(5) == [0, 25, 50, 75, 100]
    log_grid = Int(1, 20, log=True).grid(10)
    assert len(log_grid) == 10 == len(set(log_grid)) and log_grid[0] == 1 and log_grid[-1] == 20
    assert log_grid == sorted(log_grid)
    assert Int(1, 1000, log=True).grid(4) == [1, 10, 100, 1000]
    assert Float(0.0, 1.0).grid(3) == [0.0, 0.5, 1.0]
    assert Float(1e-3, 1e1, log=True).grid(5) == pytest.approx([1e-3, 1e-2, 1e-1, 1.0, 10.0])
    assert Float(0.0, 1.0, step=0.1).grid(3) == [0.0, 0.5, 1.0]
    with pytest.raises(SpaceError, match="continuous; pass resolution=k"):
        Float(0.0, 1.0).grid()
    with pytest.raises(SpaceError, match="positive int"):
        Int(0, 3).grid(0)


# --- space structure ---------------------------------------------------------------------


def test_space_is_a_mapping_with_topological_order() -> None:
    space = Space(
        {
            "child": Int(0, 3, when={"parent": "b"}),
            "x": Float(0, 1),
            "parent": Choice(["a", "b"]),
            "c": Const(1),
        }
    )
    assert space.order == ("x", "parent", "child", "c")
    assert list(space) == list(space.order) and len(space) == 4
    assert space.dims == ("x", "parent", "child") and space.dim == 3
    assert space["x"] == Float(0, 1) and space.get("nope") is None and "c" in space
    assert Space.empty().dim == 0 and Space() == Space.empty() and len(Space({})) == 0
    assert Space(a=Float(0, 1)) == Space({"a": Float(0, 1)})


def test_space_unknown_parent() -> None:
    with pytest.raises(SpaceError) as info:
        Space({"lr": Float(0, 1), "momentum": Float(0, 1, when={"optimizr": "sgd"})})
    message = str(info.value)
    assert "'momentum'" in message and "'optimizr'" in message and "['lr', 'momentum']" in message


def test_space_self_parent_and_cycles() -> None:
    with pytest.raises(SpaceError, match=r"'a'.*itself"):
        Space({"a": Choice([1, 2], when={"a": 1})})
    with pytest.raises(SpaceError) as info:
        Space(
            {
                "z": Float(0, 1),
                "a": Choice([1, 2], when={"c": "x"}),
                "b": Choice(["x", "y"], when={"a": 1}),
                "c": Choice(["x", "y"], when={"b": "x"}),
            }
        )
    message = str(info.value)
    assert "cycle" in message and "remove one" in message
    assert all(f"'{n}'" in message for n in "abc") and "'z'" not in message


def test_space_when_value_outside_parent_domain() -> None:
    with pytest.raises(SpaceError) as info:
        Space({"opt": Choice(["adam", "sgd"]), "m": Float(0, 1, when={"opt": "sdg"})})
    message = str(info.value)
    assert "'m'" in message and "'opt'" in message and "'sdg'" in message
    assert "['adam', 'sgd']" in message
    with pytest.raises(SpaceError, match="'flag'"):
        Space({"flag": Choice([True, False]), "m": Float(0, 1, when={"flag": 1})})


def test_space_rejects_bad_names_and_values() -> None:
    with pytest.raises(SpaceError, match="non-empty"):
        Space({"": Float(0, 1)})
    with pytest.raises(SpaceError, match=r"parameter 'lr'.*from_dict"):
        Space({"lr": {"type": "float", "low": 0, "high": 1}})  # type: ignore[dict-item]
    with pytest.raises(SpaceError, match="listed twice"):
        Space.from_dict({"params": [{"name": "a", "type": "const", "value": 1}] * 2})


# --- space sampling and encoding ----------------------------------------------------------


def test_space_sample_respects_conditions(rng: np.random.Generator) -> None:
    space = mixed_space()
    seen_optimizers = set()
    for _ in range(400):
        p = space.sample(rng)
        assert list(p) == [n for n in space.order if n in p]
        assert p["seed"] == 7
        opt = p["optimizer"]
        seen_optimizers.add(opt)
        assert ("momentum" in p) == (opt in ("sgd", "rmsprop"))
        assert ("nesterov" in p) == (opt == "sgd")
        assert ("warmup" in p) == (p.get("nesterov") is True)
        assert space.validate_params(p) == p
        assert set(space.active_names(p)) == set(p)
    assert seen_optimizers == {"adam", "sgd", "rmsprop"}


def test_encode_decode_round_trip(rng: np.random.Generator) -> None:
    space = mixed_space()
    configs = [space.sample(rng) for _ in range(300)]
    matrix = space.encode_many(configs)
    assert matrix.shape == (300, space.dim) and matrix.dtype == np.float64
    finite = matrix[~np.isnan(matrix)]
    assert finite.min() > 0.0 and finite.max() <= 1.0
    for config, row in zip(configs, matrix, strict=True):
        np.testing.assert_array_equal(space.encode(config), row)
        decoded = space.decode(row)
        assert list(decoded) == list(config)
        for name, value in config.items():
            param = space[name]
            if isinstance(param, Float) and param.step is None:
                assert decoded[name] == pytest.approx(value, rel=1e-12, abs=1e-15)
            else:
                assert decoded[name] == value and type(decoded[name]) is type(value)
    assert space.decode_many(matrix)[:5] == [space.decode(r) for r in matrix[:5]]
    assert space.encode_many([]).shape == (0, space.dim)


def test_random_unit_vectors_decode_into_valid_configs(rng: np.random.Generator) -> None:
    space = mixed_space()
    for config in space.decode_many(rng.random((200, space.dim))):
        assert space.validate_params(config) == config


def test_nan_marks_inactive_dims() -> None:
    space = mixed_space()
    config = {"optimizer": "adam", "lr": 1e-3, "dropout": 0.1, "layers": 2, "width": 64,
              "batch": 64, "seed": 7}
    vec = space.encode(config)
    inactive = {"momentum", "nesterov", "warmup"}
    for j, name in enumerate(space.dims):
        assert math.isnan(vec[j]) == (name in inactive)
    vec2 = vec.copy()
    vec2[space.dims.index("momentum")] = 0.3  # ignored: inactive
    decoded = space.decode(vec)
    assert space.decode(vec2) == decoded == pytest.approx(config)
    assert list(decoded) == list(config)
    vec[space.dims.index("lr")] = math.nan
    with pytest.raises(SpaceError, match=r"'lr'.*NaN"):
        space.decode(vec)
    with pytest.raises(SpaceError, match="expected 9 coordinates"):
        space.decode(np.zeros(3))
    with pytest.raises(SpaceError, match="'layers' is active but missing"):
        space.encode({k: v for k, v in config.items() if k != "layers"})


def test_encode_without_constants_and_with_numpy_values() -> None:
    space = Space({"c": Const("on"), "x": Float(0, 1, when={"c": "on"}), "k": Choice([True, 2])})
    assert space.dims == ("x", "k")
    vec = space.encode({"x": np.float64(0.25), "k": np.True_})
    np.testing.assert_allclose(vec, [0.25, 0.25])
    assert space.decode(vec) == {"c": "on", "x": 0.25, "k": True}


# --- validation and completion ---------------------------------------------------------------


def test_validate_params() -> None:
    space = mixed_space()
    good = {"lr": np.float64(1e-3), "optimizer": "sgd", "momentum": 0.30000000000000004,
            "nesterov": False, "dropout": 0, "layers": np.int64(2), "width": 64, "batch": 64}
    out = space.validate_params(good)
    assert list(out) == [n for n in space.order if n in out]
    assert out["seed"] == 7 and out["momentum"] == 0.3 and type(out["layers"]) is int
    assert type(out["lr"]) is float and type(out["dropout"]) is float

    with pytest.raises(SpaceError) as info:
        space.validate_params({**good, "lrr": 0.1})
    assert "'lrr'" in str(info.value) and "'lr'" in str(info.value) and "known" in str(info.value)
    with pytest.raises(SpaceError) as info:
        space.validate_params({**good, "layers": 9})
    message = str(info.value)
    assert "'layers'" in message and "9" in message and "[1, 8]" in message
    with pytest.raises(SpaceError, match=r"'layers'.*pass an int"):
        space.validate_params({**good, "layers": 2.5})
    with pytest.raises(SpaceError, match="'warmup' was given but is inactive"):
        space.validate_params({**good, "warmup": 10})
    with pytest.raises(SpaceError, match=r"'dropout' is active but missing.*partial=True"):
        space.validate_params({k: v for k, v in good.items() if k != "dropout"})
    with pytest.raises(SpaceError, match=r"'momentum'.*without its parent"):
        space.validate_params({"momentum": 0.5}, partial=True)
    with pytest.raises(SpaceError, match="'seed'"):
        space.validate_params({**good, "seed": 8})
    assert space.validate_params({"optimizer": "adam"}, partial=True) == {
        "optimizer": "adam", "seed": 7
    }


def test_complete_fills_missing_active_params(rng: np.random.Generator) -> None:
    space = mixed_space()
    for _ in range(50):
        out = space.complete({"optimizer": "sgd", "nesterov": True, "lr": 0.01}, rng)
        assert out["optimizer"] == "sgd" and out["lr"] == 0.01 and out["nesterov"] is True
        assert "warmup" in out and "momentum" in out
        assert space.validate_params(out) == out
    out = space.complete({}, rng)
    assert space.validate_params(out) == out


def test_is_active() -> None:
    space = mixed_space()
    assert space.is_active("lr", {})
    assert not space.is_active("momentum", {})
    assert space.is_active("momentum", {"optimizer": "sgd"})
    assert not space.is_active("warmup", {"optimizer": "adam", "nesterov": True})
    assert space.is_active("warmup", {"optimizer": "sgd", "nesterov": True})
    assert not space.is_active("warmup", {"optimizer": "sgd", "nesterov": 1})
    with pytest.raises(SpaceError, match="unknown parameter 'nope'"):
        space.is_active("nope", {})


# --- grid ------------------------------------------------------------------------------------


def test_grid_enumerates_conditionals_without_duplicates() -> None:
    space = Space(
        {
            "optimizer": Choice(["adam", "sgd"]),
            "momentum": Choice([0.0, 0.5, 0.9], when={"optimizer": "sgd"}),
            "layers": Int(1, 3),
            "tag": Const("t"),
        }
    )
    grid = space.grid()
    assert len(grid) == (1 + 3) * 3
    assert len({json.dumps(g, sort_keys=True) for g in grid}) == len(grid)
    assert all(space.validate_params(g) == g for g in grid)
    assert grid[0] == {"optimizer": "adam", "layers": 1, "tag": "t"}
    assert sum("momentum" in g for g in grid) == 9
    assert space.grid() == grid  # deterministic


def test_grid_of_continuous_space_needs_resolution() -> None:
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 1000)})
    with pytest.raises(SpaceError, match=r"parameter 'lr'.*resolution=k"):
        space.grid()
    grid = space.grid(resolution=4)
    assert len(grid) == 16
    assert sorted({g["n"] for g in grid}) == [1, 334, 667, 1000]
    assert Space.empty().grid() == [{}]


# --- serialization, equality, hash ---------------------------------------------------------


def test_json_round_trip_and_hash() -> None:
    space = mixed_space()
    text = space.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    again = Space.from_json(text)
    assert again == space and again.hash == space.hash and hash(again) == hash(space)
    assert again.order == space.order  # insertion order survives
    assert Space.from_dict(space.to_dict()) == space
    assert len(space.hash) == 64 and int(space.hash, 16) >= 0
    assert pickle.loads(pickle.dumps(space)) == space

    changed = Space({**space, "dropout": Float(0.0, 0.6)})
    assert changed != space and changed.hash != space.hash
    moved = Space({**space, "momentum": Float(0.0, 0.9, step=0.1, when={"optimizer": "sgd"})})
    assert moved != space and moved.hash != space.hash


def test_hash_is_independent_of_insertion_order() -> None:
    a = Space({"x": Float(0, 1), "y": Choice(["a", "b"]), "z": Int(0, 3, when={"y": "a"})})
    b = Space({"z": Int(0, 3, when={"y": ["a"]}), "y": Choice(["a", "b"]), "x": Float(0.0, 1.0)})
    assert a == b and a.hash == b.hash and hash(a) == hash(b)
    assert a.to_json() != b.to_json()  # the stored description keeps each one's order


def test_from_dict_accepts_name_mapping_and_rejects_garbage() -> None:
    space = Space.from_dict({"params": {"lr": {"type": "float", "low": 0.1, "high": 1.0}}})
    assert space == Space({"lr": Float(0.1, 1.0)})
    with pytest.raises(SpaceError, match="'params'"):
        Space.from_dict({"lr": {}})
    with pytest.raises(SpaceError, match="malformed"):
        Space.from_json("{not json")


def test_repr_shows_params() -> None:
    assert repr(Space({"a": Int(0, 2)})) == "Space({'a': Int(0, 2)})"


# --- define-by-run support -------------------------------------------------------------------


def test_with_param() -> None:
    space = Space({"opt": Choice(["adam", "sgd"]), "m": Float(0, 1, when={"opt": "sgd"})})
    assert space.with_param("m", Float(0.0, 1.0)) is space  # requests carry no `when`
    assert space.with_param("opt", Choice(["adam", "sgd"])) is space
    bigger = space.with_param("lr", Float(1e-3, 1.0, log=True))
    assert bigger is not space and bigger.dims == ("opt", "m", "lr") and "lr" not in space
    with pytest.raises(SpaceMismatchError) as info:
        space.with_param("m", Float(0.0, 2.0))
    message = str(info.value)
    assert isinstance(info.value, SpaceError)
    assert "'m'" in message and "Float(0.0, 1.0" in message and "Float(0.0, 2.0)" in message
    assert "keep the suggest call's arguments identical" in message
    with pytest.raises(SpaceMismatchError):
        space.with_param("m", Float(0.0, 1.0, when={"opt": "adam"}))


def test_space_is_immutable() -> None:
    space = mixed_space()
    with pytest.raises((AttributeError, TypeError)):
        space["lr"] = Float(0, 1)  # type: ignore[index]
    with pytest.raises(AttributeError):
        space.order = ()  # type: ignore[misc]


def test_a_condition_on_a_continuous_parent_is_refused() -> None:
    """`when` means "equals one of these values". Written as a range on a continuous Float it
    left the child inactive in every sample; it is refused, naming the child, the parent and
    the way to express it."""
    with pytest.raises(ConditionError, match=r"'momentum'.*parent 'lr'.*Choice.*step") as info:
        Space({"lr": Float(1e-5, 0.1, log=True),
               "momentum": Float(0.0, 0.9, when={"lr": [1e-3, 0.1]})})
    assert isinstance(info.value, SpaceError)
    exact = Space({"lr": Float(0.0, 1.0, step=0.5), "momentum": Float(0.0, 0.9, when={"lr": 0.5})})
    rng = np.random.default_rng(0)
    active = sum("momentum" in exact.sample(rng) for _ in range(300))
    assert 0 < active < 300  # a parent with a step takes exact values: the condition holds
