"""The mallopt start-up: glibc's mmap threshold raised on purpose, checked through malloc's own counters."""
import json
import os
import platform
import subprocess
import sys

import pytest

import petbench.cli
import petbench.runner
from petbench.engine import allocator
from petbench.errors import UserError
from petbench.runner import RunConfig, execute

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# In a fresh process: apply the settings, then malloc 4 MiB and count malloc's mmapped blocks
# (mallinfo2().hblks) before and after. Above the mmap threshold the block is mmapped (hblks + 1).
PROBE = """
import ctypes, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("allocator", sys.argv[1])  # the module alone: no torch import
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
tune_allocator = module.tune_allocator
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
applied = tune_allocator()
before = libc.mallinfo2().hblks
block = libc.malloc(4 << 20)
after = libc.mallinfo2().hblks
print(json.dumps({"applied": applied, "mmapped": after - before}))
"""


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "PETBENCH_MALLOPT"}
    out = subprocess.run([sys.executable, "-c", PROBE, allocator.__file__], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_mallopt_keeps_step_sized_blocks_off_mmap():
    default = probe(PETBENCH_MALLOPT="0")
    assert default == {"applied": {}, "mmapped": 1}  # glibc as it starts: 4 MiB is above its 128 KiB threshold
    tuned = probe()
    assert tuned == {"applied": {"mmap_threshold": 32 << 20, "trim_threshold": 1 << 30}, "mmapped": 0}


def test_the_users_own_malloc_variables_win():
    result = probe(MALLOC_MMAP_THRESHOLD_=str(1 << 20))
    assert result["applied"] == {"trim_threshold": 1 << 30}
    assert result["mmapped"] == 1  # the user's 1 MiB threshold is in force, not petbench's


def test_applied_once(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", {"mmap_threshold": 1})
    assert allocator.tune_allocator() == {"mmap_threshold": 1}


def test_cli_main_and_runner_apply_it(monkeypatch):
    calls = []
    monkeypatch.setattr(petbench.cli, "tune_allocator", lambda: calls.append("cli"))
    monkeypatch.setattr(petbench.runner, "tune_allocator", lambda: calls.append("runner"))
    monkeypatch.setattr(sys, "argv", ["petbench", "--help"])
    with pytest.raises(SystemExit):
        petbench.cli.main()
    with pytest.raises(UserError):  # the runner applies it first thing, before checking the device
        execute(None, RunConfig(method="m", dataset="d", device="no-such-device"), progress=False)
    assert calls == ["cli", "runner"]
