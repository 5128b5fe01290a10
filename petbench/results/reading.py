"""Reading a file that someone else may have written: a regular file only, bounded in size, never
through a link that leaves its folder, JSON bounded in nesting.

A FIFO would hang a reader, a link to ``/dev/zero`` would exhaust its memory and 100,000 nested
brackets would exhaust its stack; each is refused here with a :class:`Damaged` reason instead.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

#: The largest file of each kind petbench reads back (a run.json is a few kB; a metrics file of 10,000
#: subjects times 20 metrics is ~1 MB).
MAX_BYTES = {"json": 8 * 2**20, "csv": 64 * 2**20, "jsonl": 64 * 2**20}
#: The deepest nesting of JSON arrays and objects accepted (a record is 4 deep).
MAX_DEPTH = 64


class Damaged(Exception):
    """A file that cannot be used as what it should be; ``str()`` is the reason (one line)."""


def read_bytes(path: Path, *, within: Path | None = None, limit: int = MAX_BYTES["json"]) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes. A symbolic link is followed
    only when it ends inside ``within`` (default: the file's folder). ``FileNotFoundError`` when it
    does not exist; :class:`Damaged` for anything else that is wrong."""
    path = Path(path)
    within = Path(within if within is not None else path.parent)
    info = os.lstat(path)  # FileNotFoundError propagates: a missing file is not damage
    if stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
            inside = target.is_relative_to(within.resolve(strict=True))
        except (OSError, RuntimeError):
            raise Damaged("a link that leads nowhere") from None
        if not inside:
            raise Damaged(f"a link to {target}, outside {within}; petbench does not follow it")
        info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise Damaged("a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise Damaged("not a regular file (a pipe, socket or device)")
    if info.st_size > limit:
        raise Damaged(f"{info.st_size:,} bytes, more than the {limit:,} such a file can have")
    flags = os.O_RDONLY | os.O_NONBLOCK  # a FIFO swapped in after the checks must not block the open
    if path.resolve() == path.absolute():
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(str(path)) from None
        raise Damaged(f"cannot be opened ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the checks
            raise Damaged("not a regular file")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise Damaged(f"more than the {limit:,} bytes such a file can have")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise Damaged(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(path: Path, *, within: Path | None = None, limit: int = MAX_BYTES["json"]) -> str:
    try:
        return read_bytes(path, within=within, limit=limit).decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged("not UTF-8 text") from None


def parse_json(text: str) -> Any:
    """JSON with at most :data:`MAX_DEPTH` levels of nesting; :class:`Damaged` otherwise."""
    if not text.strip():
        raise Damaged("empty")
    try:
        value = json.loads(text)
    except RecursionError:
        raise Damaged(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise Damaged(f"not valid JSON, truncated? ({str(exc).splitlines()[0][:120]})") from None
    if depth_of(value) > MAX_DEPTH:
        raise Damaged(f"nested more than {MAX_DEPTH} levels deep")
    return value


def depth_of(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (walked with a stack, never recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: Path, *, within: Path | None = None, limit: int = MAX_BYTES["json"]) -> Any:
    return parse_json(read_text(path, within=within, limit=limit))
