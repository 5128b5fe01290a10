"""Count the operations of a block that reach a device kernel: a load-independent proxy for launches.

``KernelOps`` is a ``TorchDispatchMode``: it sees every ATen operation after autograd, as it goes to
the device's kernels (the forward ops, the backward ops the autograd engine runs, gradient
accumulation, the optimiser's ops). View and allocation ops issue no kernel and are left out; every
other op counts once. On a GPU almost each counted op is one kernel launch (cuDNN may run two kernels
for one convolution; a foreach or fused optimiser op is one launch per chunk of tensors), so counting
on the CPU says how many launches a step makes without a GPU::

    with KernelOps() as ops:
        step()
    print(sum(ops.ops.values()), ops.ops.most_common(5))
"""
from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode

#: ops that issue no kernel: allocations, metadata and profiler labels (view ops are known by their schema)
NO_KERNEL = {"empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "detach", "lift_fresh",
             "set_", "resize_", "_unsafe_view", "is_same_size", "_has_compatible_shallow_copy_type",
             "_record_function_enter_new", "_record_function_exit"}


class KernelOps(TorchDispatchMode):
    """Counts, by name, the ATen ops that reach a device kernel while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not func.is_view and name not in NO_KERNEL:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())
