"""The semi-supervised protocol: paired-train, test and unpaired-SPET subjects, disjoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class Protocol:
    """Split sizes as in the S3PET paper (30 paired train, 20 test, 120 unpaired SPET), a split
    seed, and the dose reduction factor of the low-dose input. The Stage-I LPET set is the
    paired-train LPET."""

    n_train: int = 30
    n_test: int = 20
    n_unpaired: int = 120
    split_seed: int = 0
    drf: int = 10

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Splits:
    train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def split_subjects(dataset_name: str, subject_ids: list[str], protocol: Protocol,
                   has_drf: Callable[[str], bool] = lambda _id: True) -> Splits:
    """Shuffle the ids with the split seed; test and paired-train subjects are drawn among those
    with the protocol's DRF, unpaired subjects from the rest. No subject is in two splits."""
    for name in ("n_train", "n_test", "n_unpaired"):
        if getattr(protocol, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be 0 or more, not {getattr(protocol, name)}")
    if protocol.n_test < 1:
        raise UserError("--n-test must be at least 1: the host evaluates on test subjects")
    ids = sorted(set(subject_ids))
    order = np.random.default_rng(protocol.split_seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    with_drf = [s for s in shuffled if has_drf(s)]
    n_paired = protocol.n_test + protocol.n_train
    if len(with_drf) < n_paired:
        raise UserError(
            f"dataset {dataset_name!r} has {len(with_drf)} usable subjects with DRF {protocol.drf}; the protocol "
            f"needs {n_paired} ({protocol.n_test} test + {protocol.n_train} paired train). "
            f"Lower --n-test/--n-train or add data")
    test, train = with_drf[:protocol.n_test], with_drf[protocol.n_test:n_paired]
    taken = set(test) | set(train)
    rest = [s for s in shuffled if s not in taken]
    if len(rest) < protocol.n_unpaired:
        raise UserError(
            f"dataset {dataset_name!r} has {len(ids)} usable subjects; the protocol needs {n_paired + protocol.n_unpaired}"
            f" ({protocol.n_test} test + {protocol.n_train} paired train + {protocol.n_unpaired} unpaired SPET). "
            f"Lower --n-unpaired (or the other sizes) or add data")
    return Splits(train=train, test=test, unpaired=rest[:protocol.n_unpaired])
