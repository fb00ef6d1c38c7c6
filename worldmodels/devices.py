"""Device choice for the command-line tools: never hard-coded, ``auto`` takes the accelerator when there is one."""

from __future__ import annotations

import torch


def resolve_device(name: str, *, flag: str = "--device") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``mps`` when available, else ``cpu``; any other name is
    checked against what this machine has, so a typo or a missing GPU is a one-line error naming ``flag``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"{flag} {name!r}: not a torch device ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {name!r}: CUDA is not available on this machine (use cpu or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{flag} {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag} {name!r}: MPS is not available on this machine (use cpu or auto)")
    return device
