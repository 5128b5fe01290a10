"""Split sizes, disjointness, determinism, DRF availability, clear errors."""
import pytest

from petbench.data.protocol import Protocol, split_subjects
from petbench.errors import UserError

IDS = [f"s{i:03d}" for i in range(200)]


def test_paper_sizes_and_disjoint():
    splits = split_subjects("d", IDS, Protocol())
    assert (len(splits.train), len(splits.test), len(splits.unpaired)) == (30, 20, 120)
    assert not (set(splits.train) & set(splits.test))
    assert not (set(splits.train) & set(splits.unpaired))
    assert not (set(splits.test) & set(splits.unpaired))


def test_split_is_deterministic_per_seed_and_changes_with_it():
    a = split_subjects("d", IDS, Protocol(split_seed=1))
    b = split_subjects("d", list(reversed(IDS)), Protocol(split_seed=1))  # listing order does not matter
    c = split_subjects("d", IDS, Protocol(split_seed=2))
    assert a == b
    assert a.test != c.test


def test_test_and_train_subjects_have_the_drf():
    has = {s for s in IDS if int(s[1:]) % 2 == 0}  # only even subjects have the low dose
    splits = split_subjects("d", IDS, Protocol(drf=10), has_drf=lambda s: s in has)
    assert set(splits.test) | set(splits.train) <= has
    assert len(splits.unpaired) == 120


def test_too_few_subjects_names_the_counts():
    with pytest.raises(UserError, match="has 100 usable subjects; the protocol needs 170"):
        split_subjects("d", IDS[:100], Protocol())
    with pytest.raises(UserError, match="needs 50"):
        split_subjects("d", IDS[:40], Protocol(n_unpaired=0), has_drf=lambda s: False)


def test_negative_or_zero_test_size_is_refused():
    with pytest.raises(UserError, match="--n-test"):
        split_subjects("d", IDS, Protocol(n_test=0))
    with pytest.raises(UserError, match="--n-train"):
        split_subjects("d", IDS, Protocol(n_train=-1))
