"""Fixtures for the S3PET tests."""
import pytest
from s3pet_tiny import structured_batch


@pytest.fixture
def batch():
    return structured_batch()
