"""A directory of backtest runs, each filed under a key computed from what produced it.

A sweep (`kabuto.experiment.sweep`) files every trial here as soon as it finishes, so a sweep
that stops part way (an error, Ctrl-C, a lost machine) keeps the trials it finished, and a
sweep run again, or one with more values in its grid, runs only the trials the store lacks.

The key of a run is a hash of everything its numbers depend on: the resolved config (defaults
filled in, the strategies' too, so writing a default out or leaving it implicit gives the same
key), the contents of
the data file it reads, if any, the number of threads it ran on (torch's float sums depend on
it), kabuto's own code (every file of the installed package, so an edit or a new version is a
new key) and the versions of the libraries the numbers come from (numpy, pandas, scipy,
scikit-learn, skfolio, torch, ...). Layout::

    <root>/<key>/config.toml       the run's resolved config
                 run.json          key, name, kabuto version, data source, threads, pid, time
                 returns.parquet   tidy: date, strategy, gross, net, cost
                 weights.parquet   tidy: date, strategy, asset, weight
                 explanations.json what its fitted strategies learned, by strategy (`explanations`)
                 result.pickle     the whole `BacktestResult`, read back by `load`

A run is written into a hidden directory beside its place and renamed into place whole, and a
run already filed is never replaced: two writers of one key (two sweeps sharing a store) both
succeed, the second's copy is dropped, and a reader never sees a run half there. To run
something again, delete its directory (or the store). ``result.pickle`` is read only by the
code that wrote it (the key says so); the parquet files are for any reader.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.metadata
import json
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

import kabuto
from kabuto.backtest import BacktestResult
from kabuto.backtest.engine import strategy_params
from kabuto.errors import DataError, StoreError
from kabuto.evaluation.metrics import sharpe
from kabuto.experiment.config import RunConfig
from kabuto.experiment.run import build_strategies, returns_table, weights_table

__all__ = ["RunStore", "resolved_config", "run_key"]

_RESULT = "result.pickle"
_EXPLANATIONS = "explanations.json"
_INFO = "run.json"
#: The fields of run.json a listing shows, and their types.
_INFO_TYPES = {
    "key": str,
    "name": str,
    "data_source": str,
    "threads": int,
    "seconds": int | float,
    "created": str,
}
#: The libraries whose versions are part of a key: a run's numbers come from them.
_LIBRARIES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "skfolio",
    "torch",
    "numba",
    "gymnasium",
    "stable-baselines3",
)


def run_key(config: RunConfig, threads: int) -> str:
    """The key a run of `config` on `threads` threads is filed under: 16 hex digits of a
    SHA-256 (module docstring).

    Raises
    ------
    DataError
        If the config names a data file that cannot be read.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([resolved_config(config), threads], sort_keys=True).encode())
    digest.update(_code_fingerprint())
    if config.data.source == "file" and config.data.path is not None:
        digest.update(_file_digest(Path(config.data.path)))
    return digest.hexdigest()[:16]


def resolved_config(config: RunConfig) -> dict:
    """What a run's numbers depend on in its config: the data and backtest settings with their
    defaults, and each strategy as built (its class and every setting, defaults included), not
    as written; numbers as floats. Raises `ConfigError` for a strategy that cannot be built."""
    resolved = config.model_dump(mode="json", exclude={"report", "strategies"})
    resolved["strategies"] = [strategy_params(s) for s in build_strategies(config)]
    return _numbers_as_floats(resolved)


def _numbers_as_floats(value: object) -> object:
    """`value` with every int (not bool) as a float, at any depth: 1 and 1.0 compute alike."""
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@functools.cache
def _code_fingerprint() -> bytes:
    """A hash of kabuto's installed files and the versions of `_LIBRARIES` (once a process)."""
    digest = hashlib.sha256(kabuto.__version__.encode())
    package = Path(kabuto.__file__).parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    for library in _LIBRARIES:
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}".encode())
    import torch  # a learned strategy's device="auto" trains on a GPU where there is one

    digest.update(f"cuda={torch.cuda.is_available()}".encode())
    return digest.digest()


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as data:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the data file ({exc.strerror or exc})") from None
    return digest.digest()


class RunStore:
    """The runs filed under `root` (created when first needed).

    Parameters
    ----------
    root : str or Path
        The store's directory.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The directory of the run filed under `key`."""
        return self.root / key

    def has(self, key: str) -> bool:
        """Whether a whole run is filed under `key`."""
        return (self.path(key) / _RESULT).is_file()

    def check_writable(self) -> None:
        """Raise `StoreError` unless runs can be filed here (creating the directory if
        missing); call it before the work whose results it is to keep."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.rmdir(tempfile.mkdtemp(prefix=".kabuto-probe.", dir=self.root))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(
                f"{self.root}: cannot file runs in this run store ({reason}); choose another "
                "store (--store)"
            ) from None

    def save(
        self,
        key: str,
        config: RunConfig,
        result: BacktestResult,
        *,
        name: str,
        threads: int,
        seconds: float,
        explanations: dict[str, str] | None = None,
    ) -> Path:
        """File `result`, produced by `config` on `threads` threads in `seconds`, under `key`
        (unless a run is filed there already: it is kept); returns the run's directory.

        `name` is what the run is called where it is listed (e.g. a sweep's trial name);
        `explanations` what its fitted strategies learned (`run.explain_strategies`).
        """
        info = {
            "key": key,
            "name": name,
            "kabuto_version": kabuto.__version__,
            "data_source": result.data_source,
            "threads": threads,
            "pid": os.getpid(),
            "seconds": round(seconds, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        target = self.path(key)
        self.check_writable()
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            (staging / "config.toml").write_text(config.to_toml(), encoding="utf-8")
            (staging / _INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
            returns_table(result).to_parquet(staging / "returns.parquet", index=False)
            weights_table(result).to_parquet(staging / "weights.parquet", index=False)
            text = json.dumps(explanations or {}, indent=2)
            (staging / _EXPLANATIONS).write_text(text, encoding="utf-8")
            with open(staging / _RESULT, "wb") as out:
                pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
            staging.chmod(0o755)  # mkdtemp's 0o700 would hide the run from other users
            if target.exists() and not self.has(key):  # a damaged run: made again
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(staging, target)  # fails if the target exists: never replaced
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        except OSError as exc:
            raise StoreError(
                f"{target}: cannot file this run ({exc.strerror or exc}); choose another "
                "store (--store)"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # only left if not renamed
        return target

    def load(self, key: str) -> BacktestResult:
        """The result filed under `key`.

        Raises
        ------
        StoreError
            If no run is filed under `key`, or its result cannot be read (then it names the
            directory to delete so that the run is made again).
        """
        path = self.path(key) / _RESULT
        if not path.is_file():
            raise StoreError(f"{self.path(key)}: no run is filed under {key!r} in this store")
        try:
            with open(path, "rb") as stored:
                result = pickle.load(stored)
        except Exception as exc:  # a truncated or foreign file: say which, and how to recover
            raise StoreError(
                f"{path}: cannot read this stored run ({type(exc).__name__}: {exc}); delete "
                f"{self.path(key)} and the run is made again"
            ) from None
        if not isinstance(result, BacktestResult):
            raise StoreError(
                f"{path}: holds a {type(result).__name__}, not a backtest result; delete "
                f"{self.path(key)} and the run is made again"
            )
        return result

    def explanations(self, key: str) -> dict[str, str]:
        """What the fitted strategies of the run filed under `key` learned, by strategy ({}
        when none explains itself)."""
        path = self.path(key) / _EXPLANATIONS
        if not path.exists():  # filed by a kabuto that did not keep them
            return {}
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{path}: cannot read this stored run ({exc}); delete {self.path(key)} and the "
                "run is made again"
            ) from None
        if not isinstance(found, dict):
            raise StoreError(f"{path}: holds no explanations; delete {self.path(key)}")
        return found

    def runs(self) -> pd.DataFrame:
        """One row per strategy of each filed run: key, name, strategy, net Sharpe ratio
        (annualized, `kabuto.evaluation.metrics`), data source, threads, seconds and when it
        was filed, newest first."""
        rows = []
        for info_path in sorted(self.root.glob(f"*/{_INFO}")):
            # a hidden directory is a run being written (or left by a killed writer)
            if info_path.parent.name.startswith(".") or not self.has(info_path.parent.name):
                continue
            try:
                info = json.loads(info_path.read_text(encoding="utf-8"))
                returns = pd.read_parquet(info_path.parent / "returns.parquet")
                fields = {k: info[k] for k in _INFO_TYPES}
                for key, kinds in _INFO_TYPES.items():
                    if not isinstance(fields[key], kinds) or isinstance(fields[key], bool):
                        raise TypeError(f"{key} = {fields[key]!r} in {_INFO}")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise StoreError(
                    f"{info_path.parent}: cannot read this stored run ({type(exc).__name__}: "
                    f"{exc}); delete the directory and the run is made again"
                ) from None
            for strategy, net in returns.groupby("strategy", sort=False)["net"]:
                rows.append(fields | {"strategy": strategy, "sharpe": sharpe(net.to_numpy())})
        columns = [
            "key",
            "name",
            "strategy",
            "sharpe",
            "data_source",
            "threads",
            "seconds",
            "created",
        ]
        table = pd.DataFrame(rows, columns=columns)
        return table.sort_values("created", ascending=False, kind="stable", ignore_index=True)
