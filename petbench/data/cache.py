"""Where every dataset keeps what it generates or converts: one root, one folder per dataset."""
from __future__ import annotations

import os
from pathlib import Path


def default_cache_root() -> Path:
    """``$PETBENCH_CACHE``, else ``$XDG_CACHE_HOME/petbench``, else ``~/.cache/petbench``."""
    if os.environ.get("PETBENCH_CACHE"):
        return Path(os.environ["PETBENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "petbench"
