"""Top-down offscreen rendering of MuJoCo scenes at the observation size.

:class:`TopDownRenderer` renders straight at ``S x S`` with ``mujoco.Renderer`` (no 480 px render +
resize) from a free camera looking down at ``lookat``. With ``fast=True`` it switches off what adds
nothing to a top-down observation: shadows, reflections, skybox, fog and haze (``mjtRndFlag``) and
multi-sample anti-aliasing (``model.vis.quality.offsamples = 0``). ``benchmarks/envs_speed.py``
measures both settings side by side.
"""

from __future__ import annotations

import importlib.util

import mujoco
import numpy as np

#: render flags switched off by ``fast=True``
FAST_OFF_FLAGS: tuple[mujoco.mjtRndFlag, ...] = (
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
    mujoco.mjtRndFlag.mjRND_FOG,
    mujoco.mjtRndFlag.mjRND_HAZE,
)


def _load_triton_before_egl() -> None:
    """Import triton (when installed) before the first GL context exists.

    Triton's native library carries its own LLVM; loaded *after* Mesa's EGL driver (which loads the
    system libLLVM) the symbols clash and the process segfaults, e.g. at the first ``torch.optim`` optimizer
    built after an env rendered a frame (torch imports triton lazily there). Loaded first, both coexist.
    """
    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


class TopDownRenderer:
    """Renders ``data`` of one ``model`` from straight above into uint8 ``(S, S, 3)`` images."""

    def __init__(
        self,
        model: mujoco.MjModel,
        img_size: int,
        lookat: tuple[float, float, float],
        distance: float,
        azimuth: float = 90.0,
        fast: bool = True,
    ) -> None:
        """
        Args:
            model: the MuJoCo model (its ``vis.quality.offsamples`` is set to 0 when ``fast``).
            img_size: side ``S`` of the rendered image in pixels.
            lookat: world point at the image centre.
            distance: camera distance from ``lookat`` (sets the visible extent, ``fovy`` of the model).
            azimuth: camera azimuth in degrees (90: world +x to the right, +y up in the image).
            fast: switch off shadows, reflections, skybox, fog, haze and multisampling.
        """
        _load_triton_before_egl()
        if fast:
            model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, img_size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, img_size)
        self.renderer = mujoco.Renderer(model, img_size, img_size)
        if fast:
            for flag in FAST_OFF_FLAGS:
                self.renderer.scene.flags[flag] = False
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.lookat[:] = lookat
        self.camera.distance = distance
        self.camera.elevation = -90.0
        self.camera.azimuth = azimuth
        self._out = np.empty((img_size, img_size, 3), np.uint8)

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """Image of ``data``'s current state, a fresh uint8 ``(S, S, 3)`` array."""
        self.renderer.update_scene(data, self.camera)
        return self.renderer.render(out=self._out).copy()

    def close(self) -> None:
        """Free the GL context."""
        self.renderer.close()
