"""glibc malloc settings for CPU training, set once at start-up on purpose.

A CPU training step allocates and frees activation and gradient buffers of a few MiB each, every
step. glibc serves a request above its mmap threshold (128 KiB at start, raised dynamically when
such a block is freed) with a fresh ``mmap`` and returns it with ``munmap`` on free, and it gives
the top of the heap back to the kernel when more than the trim threshold is free there. Either way
the next step touches new pages and pays the kernel's page faults and zeroing again. Before this
module, ``petbench run`` got the fast behaviour only by accident: freeing its data-loading buffers
happened to raise the dynamic threshold.

:func:`tune_allocator` makes it deliberate: ``mallopt(M_MMAP_THRESHOLD, 32 MiB)`` (glibc's upper
limit on 64-bit systems) keeps such buffers in the heap, where freed blocks are reused, and
``mallopt(M_TRIM_THRESHOLD, 1 GiB)`` keeps freed heap memory for the next step. The cost is memory
held by the process between steps (it is released at exit), not extra memory per step.

Settings the user gives through glibc's own variables (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``) win; ``PETBENCH_MALLOPT=0`` leaves malloc alone. The measurement is in
docs/reproducing.md ("What it costs") and benchmarks/test_engine_vs_bare_loop.py.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: larger values are refused
TRIM_THRESHOLD = 1024 * 1024 * 1024
USER_VARIABLES = {M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_", M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_"}

_applied: dict[str, int] | None = None


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> dict[str, int]:
    """Apply the settings once per process; returns what was set (empty where nothing was: not glibc,
    ``PETBENCH_MALLOPT=0``, or the user's own variables)."""
    global _applied
    if _applied is not None:
        return dict(_applied)
    _applied = {}
    if os.environ.get("PETBENCH_MALLOPT", "1").strip() == "0" or platform.libc_ver()[0] != "glibc":
        return {}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for param, value, name in ((M_MMAP_THRESHOLD, mmap_threshold, "mmap_threshold"),
                               (M_TRIM_THRESHOLD, trim_threshold, "trim_threshold")):
        if USER_VARIABLES[param] in os.environ:
            continue
        if mallopt(param, int(value)) == 1:  # mallopt returns 1 on success
            _applied[name] = int(value)
    return dict(_applied)
