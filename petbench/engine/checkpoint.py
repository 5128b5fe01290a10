"""Checkpoints and stage-cache files: written atomically, read as plain data only, survived when damaged.

Every file the engine reads back is loaded with ``torch.load(..., weights_only=True)``: tensors,
numbers, strings and containers, never an arbitrary pickle, so a planted file in a results folder
cannot run code. RNG states are stored in that form too (see :func:`rng_state`).
"""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..atomic import atomic_path

Warn = Callable[[str], None]


class UnreadableFile(Exception):
    """A checkpoint or stage file that cannot be used: damaged, not plain data, or not ours."""


def atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path, ".pt") as tmp:
        torch.save(obj, tmp)


def load_plain(path: Path, device: torch.device | str = "cpu") -> Any:
    """Load ``path`` as plain data (weights_only); any problem is an :class:`UnreadableFile` saying which."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise UnreadableFile("it holds objects that would run code when loaded (refused)") from None
        raise UnreadableFile(f"it is damaged ({first_line(exc)})") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, AttributeError,
            TypeError, IndexError) as exc:
        raise UnreadableFile(f"it is damaged ({first_line(exc)})") from None


def move_aside(path: Path, reason: str, warn: Warn, then: str) -> None:
    """Rename an unusable file to ``<name>.unreadable`` (kept for inspection) and say so in one line."""
    target = path.with_name(path.name + ".unreadable")
    try:
        os.replace(path, target)
        where = f"moved to {target.name}"
    except OSError:
        where = "left in place"
    reason = " ".join(reason.split())  # one line, whatever the file's content put in the reason
    warn(f"warning: {path} is unusable: {reason}; {where}; {then}")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def rng_state() -> dict:
    """Every RNG the engine relies on, as tensors and plain data (loadable with weights_only)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].cpu().numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*parts: int) -> int:
    """A stable seed from several integers (run seed, stage index, epoch)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
