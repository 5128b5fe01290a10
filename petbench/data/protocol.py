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
    paired-train LPET.

    ``n_train_pool`` (default: ``n_train``) is how many paired subjects are set aside for training;
    the paired-train set is the first ``n_train`` of them and the unpaired set is drawn from the
    subjects outside the pool. A grid over ``n_train`` gives every cell its largest ``n_train`` as
    the pool, so that the unpaired set does not change with ``n_train``.

    ``n_val`` paired validation subjects (default 0, the paper's protocol: no validation, every
    method is scored at its last epoch) are drawn after all the other splits, so the other splits
    are the same with and without them. With ``n_val > 0`` the host scores them with ``val_metric``
    every ``val_every`` epochs of the final stage and tests the best epoch's weights."""

    n_train: int = 30
    n_test: int = 20
    n_unpaired: int = 120
    split_seed: int = 0
    drf: int = 10
    n_train_pool: int | None = None
    n_val: int = 0
    val_every: int = 1
    val_metric: str = "psnr"

    @property
    def pool(self) -> int:
        return self.n_train if self.n_train_pool is None else self.n_train_pool

    def as_dict(self) -> dict:
        """The protocol as recorded (and hashed into run ids): ``n_train_pool`` only when it differs
        from ``n_train``, since only then does it change the split (so existing run ids stay)."""
        data = asdict(self)
        pool = data.pop("n_train_pool")
        if pool is not None and pool != self.n_train:
            data["n_train_pool"] = pool
        if not self.n_val:  # the validation settings matter only with validation subjects (ids stay)
            for key in ("n_val", "val_every", "val_metric"):
                data.pop(key)
        return data


@dataclass(frozen=True)
class Splits:
    train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        if not self.validation:  # as before validation existed (it is part of stage-cache keys)
            data.pop("validation")
        return data


def split_subjects(dataset_name: str, subject_ids: list[str], protocol: Protocol,
                   has_drf: Callable[[str], bool] = lambda _id: True) -> Splits:
    """Shuffle the ids with the split seed. Among the subjects with the protocol's DRF, in that
    order, the first ``n_test`` are the test set and the next ``pool`` the paired-train pool, whose
    first ``n_train`` are the paired-train set; unpaired subjects are the first ``n_unpaired`` of the
    others. No subject is in two splits.

    So, for one split seed: the test set depends on ``n_test`` only; a smaller ``n_train`` gives a
    subset of a larger one's paired-train set; the unpaired set depends on ``n_test``, the pool and
    ``n_unpaired`` (not on ``n_train``), and a smaller ``n_unpaired`` gives a subset of a larger one's.
    With the default pool (``n_train``) this is the split of earlier versions, subject for subject.
    The ``n_val`` validation subjects are the first with the DRF among those left after the unpaired
    set, so they change none of the other splits."""
    for name in ("n_train", "n_test", "n_unpaired", "n_val"):
        if getattr(protocol, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be 0 or more, not {getattr(protocol, name)}")
    if protocol.n_val and (isinstance(protocol.val_every, bool) or not isinstance(protocol.val_every, int)
                           or protocol.val_every < 1):
        raise UserError(f"--val-every must be an integer >= 1 (epochs between validations), not {protocol.val_every!r}")
    if protocol.n_test < 1:
        raise UserError("--n-test must be at least 1: the host evaluates on test subjects")
    if protocol.pool < protocol.n_train:
        raise UserError(f"the paired-train pool ({protocol.pool} subjects) is smaller than --n-train "
                        f"{protocol.n_train}; it must hold at least the paired training subjects")
    ids = sorted(set(subject_ids))
    order = np.random.default_rng(protocol.split_seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    with_drf = [s for s in shuffled if has_drf(s)]
    n_paired = protocol.n_test + protocol.pool
    train_text = f"{protocol.n_train} paired train" if protocol.pool == protocol.n_train else \
        f"a pool of {protocol.pool} paired train"
    if len(with_drf) < n_paired:
        raise UserError(
            f"dataset {dataset_name!r} has {len(with_drf)} usable subjects with DRF {protocol.drf}; the protocol "
            f"needs {n_paired} ({protocol.n_test} test + {train_text}). "
            f"Lower --n-test/--n-train or add data")
    test, pool = with_drf[:protocol.n_test], with_drf[protocol.n_test:n_paired]
    taken = set(test) | set(pool)
    rest = [s for s in shuffled if s not in taken]
    if len(rest) < protocol.n_unpaired:
        raise UserError(
            f"dataset {dataset_name!r} has {len(ids)} usable subjects; the protocol needs {n_paired + protocol.n_unpaired}"
            f" ({protocol.n_test} test + {train_text} + {protocol.n_unpaired} unpaired SPET). "
            f"Lower --n-unpaired (or the other sizes) or add data")
    left = [s for s in rest[protocol.n_unpaired:] if has_drf(s)]
    if len(left) < protocol.n_val:
        raise UserError(
            f"dataset {dataset_name!r} has {len(left)} subjects with DRF {protocol.drf} left for --n-val "
            f"{protocol.n_val} after {protocol.n_test} test + {train_text} + {protocol.n_unpaired} unpaired; "
            f"lower --n-val (or the other sizes) or add data")
    return Splits(train=pool[:protocol.n_train], test=test, unpaired=rest[:protocol.n_unpaired],
                  validation=left[:protocol.n_val])
