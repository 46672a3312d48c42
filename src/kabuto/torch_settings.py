"""The `device` and `num_threads` settings of every torch-based estimator, and seeded weights.

`TorchSettingsMixin` checks them, runs torch with `num_threads` threads (restoring the caller's
count) and gives the `torch.device` to train on. `seeded_cpu_rng` seeds the initial weights
without touching the caller's random state. It lives outside `kabuto.strategies` so that the
hedgers use it without loading the strategies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from kabuto.errors import ConfigError
from kabuto.settings import check_choice, check_int

__all__ = ["DEVICES", "TorchSettingsMixin", "seeded_cpu_rng", "torch_threads"]

DEVICES = ("cpu", "cuda", "auto")


@contextlib.contextmanager
def seeded_cpu_rng(seed: int) -> Iterator[None]:
    """Run with torch's CPU generator seeded with `seed`, then restore the caller's state.

    For building networks from a seed (on CPU, before moving them to a device) without changing
    the caller's random state. Only the CPU generator is seeded: ``torch.manual_seed`` would also
    reseed every CUDA generator, outside the fork, for good.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` torch threads (None: as they are), then restore the caller's count."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchSettingsMixin:
    """`device` ("cpu", "cuda", "auto") and `num_threads` (None or an int >= 1) settings."""

    device: str
    num_threads: int | None

    def _check_torch_settings(self, owner: str) -> None:
        check_choice(owner, "device", self.device, DEVICES)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"{owner}: device='cuda' but no CUDA device; use 'cpu' or 'auto'")
        if self.num_threads is not None:
            check_int(owner, "num_threads", self.num_threads, 1)

    def _threads(self) -> contextlib.AbstractContextManager[None]:
        """Run with `num_threads` torch threads, restoring the previous count."""
        return torch_threads(self.num_threads)

    def _torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
