"""Plumbing every torch-based strategy shares: threads, device, and safe model files.

`TorchStrategyMixin` gives a strategy with ``device`` and ``num_threads`` settings their checks,
a context that runs torch with `num_threads` threads (restoring the caller's count) and the
`torch.device` to train on. `save_payload` / `load_payload` write and read a dict of tensors
and plain values atomically, in a form ``torch.load(weights_only=True)`` accepts (no pickled
code runs on load), tagged with the class name and a format version.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import torch

from kabuto.data.panel import Window
from kabuto.errors import ConfigError, DataError
from kabuto.strategies.batched import check_choice, check_int

__all__ = ["DEVICES", "TorchStrategyMixin", "load_payload", "save_payload"]

DEVICES = ("cpu", "cuda", "auto")


class TorchStrategyMixin:
    """`device` ("cpu", "cuda", "auto") and `num_threads` (None or an int >= 1) settings."""

    device: str
    num_threads: int | None

    def _check_torch_settings(self, owner: str) -> None:
        check_choice(owner, "device", self.device, DEVICES)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"{owner}: device='cuda' but no CUDA device; use 'cpu' or 'auto'")
        if self.num_threads is not None:
            check_int(owner, "num_threads", self.num_threads, 1)

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """Run with `num_threads` torch threads, restoring the previous count."""
        before = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def fit(self, history: Window) -> Self:
        """Check the settings and train on `history` (all data up to the fit date).

        Training (the strategy's `_fit`) runs with `num_threads` torch threads.
        """
        self._validate()
        with self._threads():
            return self._fit(history)

    def _torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def save_payload(payload: dict, path: str | os.PathLike) -> None:
    """Write `payload` to `path` atomically (a temporary sibling renamed into place)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_payload(path: str | os.PathLike, owner: str, file_format: int) -> dict:
    """Read a payload `save_payload` wrote for class `owner` in version `file_format`.

    Raises
    ------
    DataError
        If the file cannot be read, was written by another class, or in another format.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: cannot read a saved {owner} ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("class") != owner:
        raise DataError(f"{path}: not a file written by {owner}.save")
    if payload.get("format") != file_format:
        raise DataError(
            f"{path}: file format {payload.get('format')!r}, this version reads {file_format}"
        )
    return payload
