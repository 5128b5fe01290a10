"""Where every dataset keeps what it generates or converts: one root, one folder per dataset."""
from __future__ import annotations

import os
from pathlib import Path

from ..paths import writable_dir


def default_cache_root() -> Path:
    """``$PETBENCH_CACHE``, else ``$XDG_CACHE_HOME/petbench``, else ``~/.cache/petbench``; one that
    cannot be written is a :class:`~petbench.errors.UserError` here, when a dataset is made, so that
    it stops a run before its record exists."""
    if os.environ.get("PETBENCH_CACHE"):
        root, what = Path(os.environ["PETBENCH_CACHE"]).expanduser(), "the cache (PETBENCH_CACHE)"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root, what = Path(base).expanduser() / "petbench", "the cache"
    return writable_dir(root, what, fix="set PETBENCH_CACHE to a folder petbench can write in")
