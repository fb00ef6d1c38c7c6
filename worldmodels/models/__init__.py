"""worldmodels.models: the world models, each in its own module (``latent_world_model``,
``video_diffusion``, ``oracle``), and the config checks they share."""

from __future__ import annotations


def check_action_sizes(
    action_dim: int,
    frameskip: int,
    low: list[float] | None,
    high: list[float] | None,
    name: str = "action_dim",
) -> None:
    """A model's action is ``frameskip`` env actions concatenated: ``ValueError`` naming the fields when
    ``action_dim`` is not ``len(env_action_low) * frameskip`` (a saved config edited or mixed up)."""
    if frameskip < 1 or action_dim % frameskip:
        raise ValueError(f"{name}={action_dim} is not a multiple of frameskip={frameskip}")
    for bound, values in (("env_action_low", low), ("env_action_high", high)):
        if values is not None and len(values) * frameskip != action_dim:
            raise ValueError(
                f"{bound} has {len(values)} values, {name}={action_dim} / frameskip={frameskip} needs "
                f"{action_dim // frameskip}"
            )
