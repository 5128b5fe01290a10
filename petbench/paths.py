"""Folders petbench writes to (results, figures, the data cache), checked before any work, and names
made safe to become one path component."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from .errors import UserError


def safe_name(name: str, fallback: str = "grid") -> str:
    """``name`` as one path component: no separators, no leading dots (``../../x`` -> ``x``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).lstrip("._") or fallback


def writable_dir(path: str | os.PathLike, what: str,
                 fix: str = "give a folder petbench can write in") -> Path:
    """``path`` as a folder petbench can write in; anything else (a file, a folder without write
    permission, a special file system such as /proc) is a :class:`UserError` naming ``what`` (e.g.
    ``--results``) and saying ``fix``. Creating a probe file is the one test that answers for every
    file system (ACLs, read-only mounts, root). Nothing is left behind: folders made for the probe
    are removed again (whoever writes there makes them)."""
    path = Path(path).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is not a folder; {fix}")
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot write there ({exc.strerror or type(exc).__name__}); {fix}") \
            from None
    finally:
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                pass
    return path


def writable_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a file petbench can write: its folder is :func:`writable_dir`, and it is not a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    writable_dir(path.parent, f"{what} {path}: its folder")
    return path


def shown_path(path: str | os.PathLike) -> str:
    """``path`` for a one-line message: as it is when printable, else quoted with its control characters
    escaped (a file name may hold a newline)."""
    text = str(path)
    return text if text.isprintable() else repr(text)
