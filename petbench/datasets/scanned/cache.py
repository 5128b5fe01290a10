"""The conversion cache: each source is read once; header facts kept as JSON, volumes as NIfTI.

Location: :func:`petbench.data.cache.default_cache_root`, one folder per dataset. Entries are keyed
by a hash of what they were made from (the source's file names, sizes and modification times,
and the preprocessing options), so a changed download or option makes a new entry. Every write
is atomic (temporary file + rename); a volume's JSON sidecar is written last and records the
NIfTI file's SHA-256, so a half-written, truncated or altered entry is detected and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ...atomic import atomic_write_json
from ...data.cache import default_cache_root
from ...data.nifti import load_volume, save_volume
from ...errors import UserError
from ...results.reading import Damaged, read_json
from ...results.schema import cache_sidecar_problem
from .problems import logger

CACHE_VERSION = 1


def source_signature(path: Path, files: tuple[str, ...] = ()) -> str:
    """What identifies a source's content cheaply: its path and each file's name, size and mtime."""
    entries = [(name, (path / name).stat()) for name in sorted(files)] if files else [("", path.stat())]
    text = json.dumps([str(path.resolve()), [(name, st.st_size, st.st_mtime_ns) for name, st in entries]])
    return hashlib.sha256(text.encode()).hexdigest()


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps({"version": CACHE_VERSION, **key}, sort_keys=True).encode()).hexdigest()[:40]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ConversionCache:
    """Cache entries of one dataset (``namespace``) under :func:`~petbench.data.cache.default_cache_root`."""

    def __init__(self, namespace: str, root: Path | None = None) -> None:
        self.root = (root or default_cache_root()) / namespace

    # -- header facts --------------------------------------------------------------------------
    def get_json(self, kind: str, key: dict) -> dict | None:
        path = self.path(kind, key, ".json")
        entry = self.read_json(path)
        if entry is None:
            return None
        if entry.get("key") != key:
            self.discard(path, reason="its key does not match")
            return None
        return entry.get("data")

    def put_json(self, kind: str, key: dict, data: dict) -> None:
        self.write(lambda: atomic_write_json(self.path(kind, key, ".json"), {"key": key, "data": data}))

    # -- volumes -------------------------------------------------------------------------------
    def get_volume(self, key: dict) -> tuple[np.ndarray, np.ndarray, dict] | None:
        """``(volume [z, y, x], affine, meta)`` or None when absent or broken (a broken entry is removed)."""
        volume_path, sidecar_path = self.path("volumes", key, ".nii.gz"), self.path("volumes", key, ".json")
        sidecar = self.read_json(sidecar_path)
        if sidecar is None:
            return None
        problem = cache_sidecar_problem(sidecar)
        if problem is not None:
            self.discard(sidecar_path, volume_path, reason=problem)
            return None
        if sidecar.get("key") != key:
            self.discard(sidecar_path, volume_path, reason="its key does not match")
            return None
        if volume_path.is_symlink() or not volume_path.is_file() or file_sha256(volume_path) != sidecar.get("sha256"):
            self.discard(sidecar_path, volume_path, reason="the NIfTI file is missing or its checksum differs")
            return None
        try:
            volume, affine = load_volume(volume_path)
        except UserError as exc:
            self.discard(sidecar_path, volume_path, reason=str(exc))
            return None
        if list(volume.shape) != sidecar.get("shape"):
            self.discard(sidecar_path, volume_path, reason="its shape differs from the record")
            return None
        return volume, affine, sidecar.get("meta", {})

    def put_volume(self, key: dict, volume: np.ndarray, affine: np.ndarray, meta: dict) -> None:
        volume_path, sidecar_path = self.path("volumes", key, ".nii.gz"), self.path("volumes", key, ".json")

        def write():
            save_volume(volume_path, volume, affine)
            atomic_write_json(sidecar_path, {"key": key, "sha256": file_sha256(volume_path),
                                             "shape": list(volume.shape), "meta": meta})

        self.write(write)

    # -- plumbing ------------------------------------------------------------------------------
    def path(self, kind: str, key: dict, suffix: str) -> Path:
        digest = key_hash(key)
        return self.root / kind / digest[:2] / (digest + suffix)

    def read_json(self, path: Path) -> dict | None:
        if not path.is_file():
            return None
        try:  # bounded, regular files only (a FIFO or a link to /dev/zero planted in the cache must not hang it)
            entry = read_json(path, within=self.root)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
            return entry
        except (OSError, ValueError, Damaged) as exc:
            self.discard(path, path.with_suffix("").with_suffix(".nii.gz"), reason=f"unreadable JSON ({exc})")
            return None

    def discard(self, *paths: Path, reason: str) -> None:
        """Delete a damaged entry, in one warning line naming its file. Never an error: an entry's key holds
        its source's signature (names, sizes, mtimes), so a changed source file is a new key, never a
        mismatch; a mismatch is the cache's own damage, and the user's files, unchanged, are read again."""
        line = " ".join(str(reason).split())
        logger.warning("conversion cache entry %s is damaged (%s); it is deleted and converted again from the "
                       "source files", paths[0], line if len(line) <= 160 else line[:159] + "…")
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def write(self, action) -> None:
        try:
            action()
        except OSError as exc:
            raise UserError(f"cannot write the petbench cache under {self.root} ({exc.strerror or exc}); "
                            "set PETBENCH_CACHE to a writable folder") from None
