"""Atomic writes: a reader (or a crashed run) sees the old file or the new one, never half of it.

The temporary file sits beside the target and is named ``.tmp-<pid>@<host>-<random>``: a process
killed mid-write leaves it behind, and the next writer in that folder removes it once that process
is gone (same host, pid no longer alive). The written file gets the mode an ordinary ``open()``
would give (0666 less the umask), not ``mkstemp``'s 0600, so shared results folders stay shared.
"""
from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
TEMPORARY = re.compile(r"^\.tmp-(\d+)@([A-Za-z0-9._]+)-")
_cleaned: set[Path] = set()  # folders whose stale temporaries this process removed already


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``,
    otherwise it is removed. ``suffix`` matters to writers that pick a format by name (nibabel)."""
    path = Path(path)
    tmp = temporary_beside(path, suffix)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def temporary_beside(path: Path, suffix: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}@{HOST}-", suffix=suffix)
    os.close(fd)
    return tmp


def remove_stale_temporaries(folder: Path, *, again: bool = False) -> list[Path]:
    """Remove the temporary files in ``folder`` left by killed writers of this host (their pid is no
    longer alive); a live writer's file, another host's and any other file are kept. Done once per
    folder per process unless ``again``; returns what was removed."""
    folder = Path(folder)
    if folder in _cleaned and not again:
        return []
    _cleaned.add(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY.match(entry.name)
        if match is None or match.group(2) != HOST or pid_alive(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove
            pass
    return removed


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OverflowError:
        return False
    return True


def current_umask() -> int:
    """The process umask, read without changing it (Linux), else by setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
