"""torch helpers every torch-using layer shares (a leaf: importing it does not import torch)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from archcast.errors import InvalidInputError


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (None: keep the current setting), then restore.

    Small graph models run fastest on one thread, and two oversubscribed processes on a 2-core
    machine slow down 10-20x with the default thread count."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidInputError(f"threads={n!r} must be None or an integer >= 1")
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(old)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG inside, leaving the caller's RNG state as it was afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
