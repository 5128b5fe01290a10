"""Device and precision choices."""
from __future__ import annotations

import torch

from ..errors import UserError


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first CUDA GPU if there is one, else the CPU; ``cpu``; ``cuda``/``cuda:N``."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec}: no CUDA GPU is visible to torch here; use --device cpu or auto")
        index = spec.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UserError(f"--device {spec}: valid GPUs are cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
        return torch.device(spec)
    raise UserError(f"--device {spec!r} is not valid: use auto, cpu, cuda or cuda:N")


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: ``auto`` = bf16 on a GPU that supports it (fp16 otherwise), none on CPU."""
    spec = (spec or "auto").lower()
    if spec not in {"auto", "fp32", "bf16", "fp16"}:
        raise UserError(f"--precision {spec!r} is not valid: use auto, fp32, bf16 or fp16")
    if device.type != "cuda" or spec == "fp32":
        return None
    if spec == "fp16":
        return torch.float16
    if spec == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
