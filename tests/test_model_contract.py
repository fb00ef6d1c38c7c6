"""The shared contract: every built-in saved type round-trips through `worldmodels.load_pretrained` exactly and
does what its roles (worldmodels/api.py) promise, with the shapes the docstrings state.

A new family adds its type to `worldmodels.pretrained.BUILTIN_TYPES` and a `Case` here (a tiny instance and
the roles it claims); `test_every_builtin_type_has_a_case` fails until it does.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import pytest
import torch

from worldmodels import load_pretrained
from worldmodels.api import SteppableModel, StochasticWorldModel, TransitionGenerator, WorldModel
from worldmodels.pretrained import BUILTIN_TYPES


@dataclass
class Case:
    """``build()`` a tiny instance; ``roles`` it must satisfy; ``obs()`` an observation history
    ``(1, T, ...)`` for world models."""

    build: Callable[[], Any]
    roles: set[str]
    obs: Callable[[], dict[str, torch.Tensor]] | None = None
    horizon: int = 3
    extra: dict[str, Any] = field(default_factory=dict)


def _latent():
    from worldmodels.encoders.conv_ae import ConvAEEncoder
    from worldmodels.models.latent_world_model import LatentWorldModel

    torch.manual_seed(0)
    enc = ConvAEEncoder(embed_dim=8, width=8, num_down=3)
    predictor = {"num_patches": 16, "visual_dim": 8, "proprio_dim": 2, "action_dim": 4, "max_frames": 4,
                 "width": 16, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 16}  # fmt: skip
    stats = {"proprio_mean": torch.full((2,), 3.0), "proprio_std": torch.full((2,), 2.0),
             "action_mean": torch.zeros(4), "action_std": torch.full((4,), 0.5)}  # fmt: skip
    return LatentWorldModel(enc, {"name": "conv_ae", "config": enc.config}, predictor, stats, frameskip=2,
                            num_hist=2, img_size=32, env_id="worldmodels/Wall-v0")  # fmt: skip


def _pixels_obs(size: int, proprio: int, t: int = 2) -> Callable[[], dict[str, torch.Tensor]]:
    def obs():
        g = torch.Generator().manual_seed(1)
        return {"pixels": torch.randint(0, 256, (1, t, 3, size, size), dtype=torch.uint8, generator=g),
                "proprio": torch.randn(1, t, proprio, generator=g)}  # fmt: skip

    return obs


def _conv_ae():
    from worldmodels.encoders.conv_ae import ConvAEEncoder

    torch.manual_seed(0)
    return ConvAEEncoder(embed_dim=8, width=8, num_down=2)


def _state_ae():
    from worldmodels.encoders.state_ae import StateAEEncoder

    torch.manual_seed(0)
    return StateAEEncoder(code_dim=2, embed_dim=16, width=8, num_down=2, img_size=16)


def _mlp_policy():
    from worldmodels.data.policies import MLPPolicy

    torch.manual_seed(0)
    return MLPPolicy(obs_dim=3, action_dim=2, hidden=(8,))


def _actor():
    from worldmodels.rl.networks import TanhGaussianActor

    torch.manual_seed(0)
    return TanhGaussianActor(
        obs_dim=3, action_dim=2, hidden=(8,), action_low=[-2.0, 0.0], action_high=[2.0, 1.0]
    )


def _critic():
    from worldmodels.rl.networks import VectorizedCritic

    torch.manual_seed(0)
    return VectorizedCritic(obs_dim=3, action_dim=2, num_critics=4, hidden=(8,))


def _video():
    from worldmodels.models.video_diffusion import VideoWorldModel

    torch.manual_seed(0)
    stats = {"proprio_mean": torch.full((2,), 3.0), "proprio_std": torch.full((2,), 2.0),
             "action_mean": torch.zeros(4), "action_std": torch.full((4,), 0.5)}  # fmt: skip
    return VideoWorldModel(img_size=16, num_hist=2, action_dim=4, proprio_dim=2, frameskip=2,
                           denoiser={"channels": [8, 16], "cond_dim": 16, "norm_groups": 4, "patch": 2},
                           sampler={"steps": 2, "sigma_max": 5.0}, stats=stats, env_id="worldmodels/Wall-v0")  # fmt: skip


def _ensemble_dynamics():
    from worldmodels.models.ensemble_dynamics import EnsembleDynamics

    torch.manual_seed(0)
    return EnsembleDynamics(obs_dim=4, action_dim=2, num_members=3, num_elites=2, hidden=(8, 8),
                            env_id="HalfCheetah-v5", action_low=[-1.0, -0.5], action_high=[1.0, 0.5])  # fmt: skip


def _proprio_obs(dim: int) -> Callable[[], dict[str, torch.Tensor]]:
    return lambda: {"proprio": torch.randn(1, 2, dim, generator=torch.Generator().manual_seed(1))}


def _synther():
    import numpy as np

    from synth.model import SynthER, fit_normalization

    torch.manual_seed(0)
    model = SynthER(obs_dim=3, action_dim=2, denoiser={"width": 16, "blocks": 1, "dim_t": 8},
                    sampler={"steps": 2, "solver": "heun"})  # fmt: skip
    flat = np.random.default_rng(0).normal(size=(20, 10))
    flat[:, -1] = np.arange(20) % 2
    model.set_normalization(fit_normalization(flat, 3, 2))
    return model


CASES: dict[str, Case] = {
    "EnsembleDynamics": Case(_ensemble_dynamics, {"world_model", "steppable"}, obs=_proprio_obs(4)),
    "LatentWorldModel": Case(_latent, {"world_model"}, obs=_pixels_obs(32, 2)),
    "conv_ae": Case(_conv_ae, {"encoder"}),
    "state_ae": Case(_state_ae, {"encoder"}),
    "MLPPolicy": Case(_mlp_policy, {"policy"}),
    "TanhGaussianActor": Case(_actor, {"actor"}),
    "VectorizedCritic": Case(_critic, {"critic"}),
    "VideoWorldModel": Case(_video, {"world_model"}, obs=_pixels_obs(16, 2)),
    "synther": Case(_synther, {"generator"}),
}


def _tensors(x: Any) -> list[torch.Tensor]:
    """Every tensor inside a state (tensor, dataclass or dict), in a fixed order."""
    if isinstance(x, torch.Tensor):
        return [x]
    if is_dataclass(x):
        return [t for f in fields(x) for t in _tensors(getattr(x, f.name))]
    if isinstance(x, dict):
        return [t for k in sorted(x) for t in _tensors(x[k])]
    return []


def _satisfies(model: Any, proto: type) -> bool:
    """``isinstance`` against a runtime-checkable Protocol looks at member names only; also require each
    protocol method's parameter names (``sample(n, *, generator)`` is not an actor's ``sample(obs, generator)``)."""
    if not isinstance(model, proto):
        return False
    for name, member in vars(proto).items():
        if callable(member) and not name.startswith("_"):
            want = [p for p in inspect.signature(member).parameters if p != "self"]
            have = list(inspect.signature(getattr(model, name)).parameters)
            if have[: len(want)] != want and not set(want) <= set(have):
                return False
    return True


def test_every_builtin_type_has_a_case():
    assert set(CASES) == set(BUILTIN_TYPES), "add a Case for each new built-in type"


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_save_load_round_trip_is_exact(type_name, tmp_path):
    model = CASES[type_name].build()
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["type"] == type_name
    loaded = load_pretrained(tmp_path / "m")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.get_config() == model.get_config()
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert torch.equal(ours[k], theirs[k]), k


def _check_world_model(model: Any, case: Case) -> None:
    assert isinstance(model, WorldModel)
    state = model.encode(case.obs())
    low, high = model.action_bounds()
    assert low.shape == high.shape == (model.action_dim,) and (low < high).all()
    b, h = 4, case.horizon
    actions = low + (high - low) * torch.rand(
        b, h, model.action_dim, generator=torch.Generator().manual_seed(0)
    )
    kwargs = {}
    if "generator" in inspect.signature(model.rollout).parameters:
        kwargs["generator"] = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pred = model.rollout(state, actions, **kwargs)
    assert pred.visual.shape[:2] == (b, h), "rollout returns (B, horizon, ...) predicted frames"
    assert all(torch.isfinite(t).all() for t in _tensors(pred))
    env = model.to_env_actions(actions[0])
    frameskip = int(getattr(model, "frameskip", 1))
    assert env.shape == (h * frameskip, model.action_dim // frameskip)
    if isinstance(model, StochasticWorldModel) and kwargs:
        with torch.no_grad():
            again = model.rollout(state, actions, generator=torch.Generator().manual_seed(0))
        assert all(torch.equal(a, b) for a, b in zip(_tensors(pred), _tensors(again), strict=True))


def _check_steppable(model: Any) -> None:
    assert isinstance(model, SteppableModel)
    g = torch.Generator().manual_seed(0)
    state, action = (
        torch.randn(5, model.state_dim, generator=g),
        torch.rand(5, model.action_dim, generator=g) * 2 - 1,
    )
    out = model.step(state, action, generator=torch.Generator().manual_seed(1))
    again = model.step(state, action, generator=torch.Generator().manual_seed(1))
    assert out.next_state.shape == (5, model.state_dim) and out.reward.shape == (5,)
    assert out.terminated.shape == (5,) and out.terminated.dtype == torch.bool
    assert out.uncertainty is None or out.uncertainty.shape == (5,)
    assert torch.equal(out.next_state, again.next_state) and torch.equal(out.reward, again.reward)


def _check_generator(model: Any) -> None:
    assert isinstance(model, TransitionGenerator)
    a = model.sample(7, generator=torch.Generator().manual_seed(0))
    b = model.sample(7, generator=torch.Generator().manual_seed(0))
    for key in ("observations", "actions", "rewards", "next_observations", "terminals"):
        assert key in a and len(a[key]) == 7, key
        assert (a[key] == b[key]).all(), key
    assert set(a["terminals"].tolist()) <= {0.0, 1.0}
    assert a["observations"].shape == a["next_observations"].shape


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_roles(type_name):
    case = CASES[type_name]
    model = case.build().eval()
    if "world_model" in case.roles:
        _check_world_model(model, case)
    if "steppable" in case.roles:
        _check_steppable(model)
    if "generator" in case.roles:
        _check_generator(model)
    if "encoder" in case.roles:
        x = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
        tokens = model(x)
        assert tokens.shape == (2, 3, model.num_patches(16, 16), model.embed_dim)
    if "policy" in case.roles:
        a = model(torch.randn(4, model.config["obs_dim"]))
        assert a.shape == (4, model.config["action_dim"]) and (a.abs() <= 1).all()
    if "actor" in case.roles:
        obs = torch.randn(4, model.config["obs_dim"])
        for a in (
            model.act(obs),
            model.act(obs, deterministic=False, generator=torch.Generator().manual_seed(0)),
        ):
            assert a.shape == (4, model.config["action_dim"])
            assert (a >= torch.tensor(model.config["action_low"])).all()
            assert (a <= torch.tensor(model.config["action_high"])).all()
    if "critic" in case.roles:
        q = model(torch.randn(5, model.config["obs_dim"]), torch.randn(5, model.config["action_dim"]))
        assert q.shape == (model.config["num_critics"], 5)
    claimed = {"world_model": WorldModel, "steppable": SteppableModel, "generator": TransitionGenerator}
    for role, proto in claimed.items():  # a role a model satisfies must be claimed, so it is tested
        if role not in case.roles and _satisfies(model, proto):
            pytest.fail(f"{type_name} satisfies {proto.__name__}: add {role!r} to its Case.roles")
