"""One writer per run: an advisory file lock (flock) that the kernel releases when its process dies.

The lock file ``<results>/.locks/<run id>.lock`` is never deleted (deleting a lock file races with a
process that is opening it); it holds who has the lock (pid, host, since), for the message a second
writer gets.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError

LOCK_DIR = ".locks"


def lock_path(results_dir: Path, run_id: str) -> Path:
    """``<results>/.locks/<run id>.lock``, for a run id that is one safe path component (a name petbench
    made, never one a record could plant: ``../x`` or ``/etc/x`` is refused)."""
    from .schema import is_safe_name

    if not is_safe_name(run_id):
        raise UserError(f"{str(run_id)[:80]!r} is not a run id (a run id is one folder name: no /, no leading dot, no .."
                        f"); rename or remove that run folder")
    return Path(results_dir) / LOCK_DIR / f"{run_id}.lock"


class RunBusy(UserError):
    """Another live process holds the run's lock."""

    def __init__(self, run_id: str, holder: dict) -> None:
        self.run_id, self.holder = run_id, holder
        who = f"process {holder.get('pid', '?')} on host {holder.get('host', '?')}"
        since = f" since {holder['since']}" if holder.get("since") else ""
        super().__init__(f"run {run_id} is in progress in {who}{since}; wait for it (petbench run --wait) "
                         f"or stop that process")


class RunLock:
    """``with RunLock(results, run_id): ...``; ``wait=True`` blocks until the holder is gone."""

    def __init__(self, results_dir: Path, run_id: str, *, wait: bool = False, poll_s: float = 2.0,
                 on_wait=None) -> None:
        self.path = lock_path(results_dir, run_id)
        self.run_id, self.wait, self.poll_s, self.on_wait = run_id, wait, poll_s, on_wait
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        folder = self.path.parent
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise UserError(f"{folder} is not a folder (petbench keeps its run locks there); remove it and run again")
        folder.mkdir(parents=True, exist_ok=True)
        try:  # never through a link: a planted .locks/<id>.lock -> elsewhere would be truncated
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError:
            if self.path.is_symlink() or self.path.is_dir():
                raise UserError(f"{self.path} is not a lock file petbench made (a link or a folder); remove it "
                                f"and run again") from None
            raise
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_holder(fd)
                if not self.wait:
                    os.close(fd)
                    raise RunBusy(self.run_id, holder) from None
                if self.on_wait and not told:
                    self.on_wait(RunBusy(self.run_id, holder))
                    told = True
                time.sleep(self.poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def is_locked(results_dir: Path, run_id: str) -> dict | None:
    """The holder of ``run_id``'s lock when a live process has it, else None (takes and drops it)."""
    path = lock_path(results_dir, run_id)
    if not path.exists() or path.is_symlink():
        return None
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(fd)
        os.close(fd)
        return holder
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return None
