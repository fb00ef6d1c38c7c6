"""DINOv2 without local weights fails at once, not after a minute of hub retries (issue 18, case 8):
``huggingface_hub`` reads ``HF_HUB_OFFLINE`` when it is imported, so the encoder looks the weights up in the
local cache itself. Run in a fresh process with an empty ``HF_HOME`` and no ``HF_HUB_OFFLINE``."""

from __future__ import annotations

import subprocess
import sys
import time

from reliability_testing import cli_env

CODE = """
import time
from worldmodels.encoders import build_encoder
import worldmodels.encoders.dinov2  # timm and huggingface_hub imported: only the lookup is timed
t1 = time.perf_counter()
try:
    build_encoder("dinov2", img_size=28)
except FileNotFoundError as err:
    print(f"{time.perf_counter() - t1:.2f}", err)
"""


def test_dinov2_without_local_weights_fails_at_once(tmp_path):
    env = cli_env() | {"HF_HOME": str(tmp_path / "empty-hf-home")}
    env.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout, proc.stderr[-2000:]
    seconds, message = proc.stdout.split(" ", 1)
    assert float(seconds) < 5, (
        f"build_encoder took {seconds} s to fail (hub retries?); total {time.monotonic() - started:.0f} s"
    )
    assert "DINOv2 weights not in the local HF cache" in message and "weights=PATH" in message
