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


#: ``--amp`` names of the low-precision dtypes
LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_flags() -> set[str]:
    """This CPU's feature flags (``/proc/cpuinfo`` on Linux; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_precision(amp: str, device: torch.device | str) -> tuple[bool, str]:
    """Whether ``device`` runs ``amp`` (``"bf16"`` / ``"fp16"``) matmuls natively, and why (one phrase).

    Native means: a CUDA GPU with tensor cores for the dtype (fp16: compute capability >= 7.0; bf16: >= 8.0),
    a CPU with AVX512-BF16 or AMX-BF16 (bf16) / AVX512-FP16 or AMX-FP16 (fp16), or Apple MPS for fp16.
    Anywhere else the dtype is emulated, which can be hundreds of times slower than float32.
    """
    if amp not in LOW_PRECISION:
        raise ValueError(f"amp={amp!r}; allowed values: {sorted(LOW_PRECISION)}")
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        need = (8, 0) if amp == "bf16" else (7, 0)
        cc = f"compute capability {major}.{minor}"
        if (major, minor) >= need:
            return True, f"CUDA {cc} has {amp} tensor cores"
        return False, f"CUDA {cc} has no {amp} tensor cores (needs {need[0]}.{need[1]})"
    if device.type == "cpu":
        flags = cpu_flags()
        want = ("avx512_bf16", "amx_bf16") if amp == "bf16" else ("avx512_fp16", "amx_fp16")
        have = [f for f in want if f in flags]
        if have:
            return True, f"this CPU has {' and '.join(have)}"
        return False, f"this CPU has neither {' nor '.join(want)} ({amp} matmuls would be emulated)"
    if device.type == "mps":
        if amp == "fp16":
            return True, "Apple MPS runs fp16 natively"
        return False, "bf16 is not native on Apple MPS"
    return False, f"no known native {amp} support on device type {device.type!r}"


def choose_precision(
    amp: str | None,
    device: torch.device | str,
    *,
    force: bool = False,
    request: str | None = None,
    force_flag: str = "--force",
) -> str | None:
    """The low precision to use for ``amp`` on ``device``: ``amp`` itself where the hardware runs it natively
    (:func:`native_precision`), else ``None`` (float32) with one printed line saying why. With ``force`` a
    request that cannot run natively is a ``ValueError`` instead (the user insisted on ``amp``). ``request``
    names the request in those messages (default ``--amp <amp>``), ``force_flag`` the insisting flag."""
    if amp is None or amp in ("none", "fp32", "float32", "32"):
        return None
    request = request or f"--amp {amp}"
    native, why = native_precision(amp, device)
    if native:
        return amp
    if force:
        raise ValueError(f"{request} {force_flag}: {why}; drop {force_flag} to run in float32")
    print(f"{request}: {why}, so float32 is used instead ({force_flag} to fail instead)")
    return None
