"""What a run ran on: versions and device, recorded with every result."""
from __future__ import annotations

import importlib.metadata
import platform
import socket

import torch

from ..engine.device import device_name


def environment(device: torch.device, plugin_dists: list[str]) -> dict:
    from .. import __version__

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": device_name(device),
        "petbench": __version__,
        "plugins": sorted(set(d for d in plugin_dists if d)),
        "numpy": importlib.metadata.version("numpy"),
    }
