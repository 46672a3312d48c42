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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from kabuto.data.panel import Window
from kabuto.errors import DataError
from kabuto.strategies.base import check_unchanged
from kabuto.torch_settings import DEVICES, TorchSettingsMixin

__all__ = ["DEVICES", "TorchStrategyMixin", "load_payload", "save_payload"]


class TorchStrategyMixin(TorchSettingsMixin):
    """A strategy's torch settings (`TorchSettingsMixin`) and a `fit` that trains with them."""

    # Settings that change how long or how fast a fit runs, or the name, but not the model or
    # what it trains on: changing them keeps the model (every other setting rebuilds it).
    _run_settings: ClassVar[frozenset[str]] = frozenset({"num_threads", "label"})

    def _model_settings(self) -> dict[str, Any]:
        """The settings a model is built and trained with: a change means a new model."""
        settings = self.get_params(deep=False)  # type: ignore[attr-defined]
        return {k: _snapshot(v) for k, v in settings.items() if k not in self._run_settings}

    def _check_unchanged(self) -> None:
        """ConfigError when a model setting changed since the fit (`model_settings_`): the
        fitted model would decide, or be saved, under settings it was not built with."""
        check_unchanged(self.name, self.model_settings_, self._model_settings())  # type: ignore[attr-defined]

    def fit(self, history: Window) -> Self:
        """Check the settings and train on `history` (all data up to the fit date).

        Training (the strategy's `_fit`) runs with `num_threads` torch threads.
        """
        self._validate()
        with self._threads():
            return self._fit(history)


def _snapshot(value: Any) -> Any:
    """`value` with its containers copied, to compare with ``==`` later.

    Copying the dicts and lists catches a mapping changed in place after a fit
    (``algorithm_kwargs``, ``costs_bps``); other objects (an SB3 action noise, a schedule)
    are kept as they are, so the same object compares equal to itself. Lists and tuples
    compare alike (``net_arch``), and arrays by value.
    """
    if isinstance(value, Mapping):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return tuple(_snapshot(v) for v in value)
    if isinstance(value, np.ndarray):
        return tuple(value.ravel().tolist()), value.shape
    return value


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
