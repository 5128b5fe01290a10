"""petbench's conformance checks on every method this plugin registers (quick preset + test_options)."""
from petbench.testing import conformance_tests

import petbench_s3pet.plugin

test_conformance = conformance_tests(petbench_s3pet.plugin)
