"""The ``phantom`` dataset: simulated FDG PET, generated on first use and cached (docs/datasets.md)."""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from petbench import Dataset, Subject, UserError, hookimpl
from petbench.options import between, greater_than, one_of, seed
from petbench.datasets.phantom import (ANATOMIES, CALIBRATED_COUNTS, GENERATOR_VERSION, PhantomConfig, Physics,
                                       SubjectStore, default_cache_root, generate_subjects, materialize, subject_id,
                                       subject_index, subject_labels)


class Phantom(Dataset):
    name = "phantom"
    description = ("Simulated FDG PET (brain head block or torso): standard dose and binomially thinned "
                   "low doses at DRF 2-100, generated on first use and cached.")
    defaults = {
        "anatomy": "brain",  # or "torso"
        "size": 128,  # voxels per side; smaller sizes keep the field of view with bigger voxels
        "n_subjects": 170,  # the paper's protocol: 30 paired train + 20 test + 120 unpaired
        "seed": 0,
        "counts": None,  # standard-dose trues per 128-block slice; None = calibrated for the anatomy
        "iterations": 4,  # OSEM, with 8 subsets
        "post_filter_mm": 4.0,
    }
    #: a size beyond 512 would not fit in memory; a blur beyond 50 mm is wider than the head
    option_constraints = {
        "anatomy": one_of(*ANATOMIES), "size": between(16, 512), "n_subjects": between(1, 100_000), "seed": seed(),
        "counts": greater_than(0, optional=True, kind=float), "iterations": between(1, 100),
        "post_filter_mm": between(0, 50),
    }
    test_options = {"size": 32}  # what `petbench check phantom` and plugin tests use: fast
    drfs = (2, 4, 10, 20, 50, 100)
    default_drf = 10
    units = "SUV"

    def __init__(self, **options):
        super().__init__(**options)
        self.config = config_from_options(self.options)
        self.store = SubjectStore(default_cache_root() / "phantom" / self.config.cache_key())

    def fingerprint(self) -> dict:
        """Options plus the generator version: data from an older generator is other data."""
        return {**super().fingerprint(), "generator_version": GENERATOR_VERSION}

    def subject_ids(self) -> list[str]:
        return [subject_id(i) for i in range(self.options["n_subjects"])]

    def load(self, subject_id_: str, drfs: tuple[int, ...] = ()) -> Subject:
        index = self.index_of(subject_id_)
        spet, lpet = materialize(self.config, self.store, index, self.checked_drfs(drfs))
        meta = {"anatomy": self.config.anatomy, "index": index, "seed": self.config.seed,
                "counts": self.config.physics.counts, "generator_version": GENERATOR_VERSION}
        labels = LabelsOnDemand(partial(subject_labels, self.config, self.store, index))
        return Subject(id=subject_id_, spet=spet, lpet=lpet, affine=self.config.affine, units=self.units, meta=meta,
                       labels=labels)

    def prepare(self, subject_ids: list[str], drfs: tuple[int, ...]) -> None:
        generate_subjects(self.config, self.store, [self.index_of(s) for s in subject_ids], self.checked_drfs(drfs))

    # -- checks ------------------------------------------------------------------------------
    def index_of(self, subject_id_: str) -> int:
        try:
            index = subject_index(subject_id_)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if index >= self.options["n_subjects"]:
            raise UserError(f"{subject_id_} is beyond this phantom's n_subjects={self.options['n_subjects']}")
        return index

    def checked_drfs(self, drfs) -> tuple[int, ...]:
        unknown = [d for d in drfs if d not in self.drfs]
        if unknown:
            raise UserError(f"the phantom has no DRF {', '.join(map(str, unknown))}; "
                            f"choose among {', '.join(map(str, self.drfs))}")
        return tuple(int(d) for d in drfs)


class LabelsOnDemand(Mapping):
    """A subject's label maps, read (or drawn again) the first time anything looks at them: a run loads
    150 training subjects for their slices alone, and only evaluation and figures use label maps."""

    def __init__(self, read):
        self._read, self._maps = read, None

    def _loaded(self) -> dict:
        if self._maps is None:
            self._maps = self._read()
        return self._maps

    def __getitem__(self, role: str):
        return self._loaded()[role]

    def __iter__(self):
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"LabelsOnDemand({'not read yet' if self._maps is None else sorted(self._maps)})"


def config_from_options(options: dict) -> PhantomConfig:
    """Check the options and turn them into a :class:`PhantomConfig`."""
    anatomy, size = options["anatomy"], options["size"]
    if anatomy not in ANATOMIES:
        raise UserError(f"phantom option anatomy={anatomy!r} is unknown; choose one of {', '.join(ANATOMIES)}")
    subsets = Physics.subsets
    if size < 16 or size % subsets:
        raise UserError(f"phantom option size={size} must be at least 16 and a multiple of {subsets} "
                        "(e.g. 32, 64, 128)")
    if options["n_subjects"] < 1:
        raise UserError("phantom option n_subjects must be at least 1")
    if options["seed"] < 0:
        raise UserError("phantom option seed must be 0 or more")
    counts = options["counts"]
    if counts is None:
        counts = CALIBRATED_COUNTS[anatomy]
    if isinstance(counts, bool) or not isinstance(counts, (int, float)) or counts <= 0:
        raise UserError(f"phantom option counts={counts!r} must be a positive number (e.g. 1.4e5)")
    if options["iterations"] < 1:
        raise UserError("phantom option iterations must be at least 1")
    physics = Physics(counts=float(counts), iterations=int(options["iterations"]),
                      post_filter_fwhm_mm=float(options["post_filter_mm"]))
    return PhantomConfig(anatomy=anatomy, size=int(size), seed=int(options["seed"]), physics=physics)


@hookimpl
def register_datasets(register):
    register(Phantom)
