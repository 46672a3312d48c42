"""Plumbing every torch-based strategy shares: threads, device, and safe model files.

`TorchStrategyMixin` gives a strategy the ``device`` and ``num_threads`` settings of
`kabuto.torch_settings` and a `fit` that trains under them. `save_payload` / `load_payload`
write and read a dict of tensors and plain values atomically, in a form
``torch.load(weights_only=True)`` accepts (no pickled code runs on load), tagged with the class
name and a format version.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Self

import torch

from kabuto.data.panel import Window
from kabuto.errors import DataError
from kabuto.torch_settings import DEVICES, TorchSettingsMixin

__all__ = ["DEVICES", "TorchStrategyMixin", "load_payload", "save_payload"]


class TorchStrategyMixin(TorchSettingsMixin):
    """A strategy's torch settings (`TorchSettingsMixin`) and a `fit` that trains with them."""

    def fit(self, history: Window) -> Self:
        """Check the settings and train on `history` (all data up to the fit date).

        Training (the strategy's `_fit`) runs with `num_threads` torch threads.
        """
        self._validate()
        with self._threads():
            return self._fit(history)


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
