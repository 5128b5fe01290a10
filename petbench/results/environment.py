"""What a run ran on: versions and device, recorded with every result."""
from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
from pathlib import Path

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
        **git_state(),
    }


def git_state() -> dict:
    """The git commit of petbench's source when it runs from a git work tree (an editable install),
    and whether that tree had uncommitted changes; nothing for an installed release."""
    source = Path(__file__).resolve().parent.parent
    try:  # tracked: a release installed into a venv inside some repository is not that repository's code
        tracked = subprocess.run(["git", "-C", str(source), "ls-files", "--error-unmatch", "__init__.py"],
                                 capture_output=True, text=True, timeout=5)
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5)
        if tracked.returncode != 0 or commit.returncode != 0:
            return {}
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
