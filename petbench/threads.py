"""One torch thread for a block of work (a module of its own: datasets and the testing helpers both use it,
and neither should import the engine for it)."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def one_thread():
    """torch's intra-op threads set to 1 inside, restored after: a result that does not depend on how
    threads split a float sum (the phantom's volumes), and tiny tensors that gain nothing from a pool
    whose threads wait for each other on a busy machine (the conformance checks)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
