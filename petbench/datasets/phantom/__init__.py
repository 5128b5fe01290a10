"""The built-in ``phantom`` dataset: simulated FDG PET at standard and reduced dose.

See docs/datasets.md for what it simulates and how it was calibrated. The modules, one idea each:
``shapes`` (pose, solids), ``brain`` and ``torso`` (anatomies), ``projector`` (sparse
parallel-beam system matrix), ``recon`` (OSEM), ``simulate`` (the physics chain), ``cache`` (the
on-disk store), ``generate`` (read or simulate subjects), ``labels`` (label maps for region and
lesion metrics), ``calibration`` (the docs' figures).
"""
from ...data.cache import default_cache_root
from .anatomy import ANATOMIES, Anatomy, make_anatomy, spacing_for
from .cache import SubjectStore
from .generate import (GENERATOR_VERSION, PhantomConfig, generate_subjects, materialize, subject_id,
                       subject_index, subject_labels)
from .simulate import CALIBRATED_COUNTS, Physics, SimulatedSubject, simulate_subject

__all__ = [
    "ANATOMIES", "Anatomy", "CALIBRATED_COUNTS", "GENERATOR_VERSION", "PhantomConfig", "Physics",
    "SimulatedSubject", "SubjectStore", "default_cache_root", "generate_subjects", "make_anatomy", "materialize",
    "simulate_subject", "spacing_for", "subject_id", "subject_index", "subject_labels",
]
