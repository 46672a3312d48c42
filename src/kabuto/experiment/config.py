"""The TOML config of a backtest run, validated strictly.

An unknown key, a value of the wrong type (``costs_bps = "10"``, ``long_only = "yes"``) or out
of range is a `ConfigError` naming the key (as a dotted path) and what is allowed; every number
must be finite. A data key of another source (``n_assets`` with ``source = "file"``) is an
error too, not ignored. Strategy parameters are checked by the strategy registry, which knows
each strategy's settings.

Example::

    [data]
    source = "sp500"            # "sp500", "file", "gbm" or "garch"

    [backtest]
    start = "2000-01-03"
    rebalance = "monthly"       # or a number of trading days
    costs_bps = 10.0

    [[strategies]]
    name = "min_variance"
    covariance = "ledoit_wolf"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from kabuto.backtest.schedule import CALENDARS
from kabuto.errors import ConfigError
from kabuto.evaluation.statistics import MAX_BOOT
from kabuto.strict_config import Seed, StrictValues, read_toml, validate

#: The keys of the data table each source takes besides ``source``; a key of another source is
#: an error, not silently ignored (``n_assets = 3`` would otherwise still load every asset).
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "sp500": (),
    "file": ("path", "format", "max_ffill"),
    "gbm": ("n_assets", "n_days", "seed"),
    "garch": ("n_assets", "n_days", "seed"),
}


class DataConfig(StrictValues):
    """Where prices come from. Each source takes its own keys (`SOURCE_KEYS`)."""

    source: Literal["sp500", "file", "gbm", "garch"] = "sp500"
    path: str | None = None
    format: Literal["csv", "parquet"] | None = None
    max_ffill: int = Field(5, ge=0)
    n_assets: int = Field(20, ge=1)
    n_days: int = Field(2520, ge=3)
    seed: Seed = 0

    @model_serializer(mode="wrap")
    def _own_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The resolved config (config.toml) must load again, so other sources' defaults stay out.
        own = ("source", *SOURCE_KEYS[self.source])
        return {key: value for key, value in handler(self).items() if key in own}

    def check_keys(self) -> None:
        """Raise `ValueError` for a key the user wrote that the source does not take."""
        own = SOURCE_KEYS[self.source]
        for key in DataConfig.model_fields:
            if key == "source" or key in own or key not in self.model_fields_set:
                continue
            takers = " or ".join(repr(s) for s, keys in SOURCE_KEYS.items() if key in keys)
            takes = f"takes {', '.join(own)}" if own else "takes no other keys"
            default = "" if "source" in self.model_fields_set else " (the default)"
            raise ValueError(
                f"data.{key} is a setting of source = {takers}, not of source = "
                f"{self.source!r}{default}; remove it (source = {self.source!r} {takes})"
            )
        if self.source == "file" and self.path is None:
            raise ValueError("data.path is required when data.source = 'file' (the price file)")


class BacktestConfig(StrictValues):
    """Walk-forward settings (see `kabuto.backtest.WalkForward`)."""

    start: str | None = None
    end: str | None = None
    rebalance: int | str = "monthly"
    retrain: int | str = "yearly"
    costs_bps: float | dict[str, float] = 10.0
    long_only: bool = True
    max_leverage: float = Field(1.0, gt=0)

    @field_validator("rebalance", "retrain", mode="before")
    @classmethod
    def _schedule(cls, value: object, info) -> object:
        allowed = list(CALENDARS) + (["never"] if info.field_name == "retrain" else [])
        ok_number = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if not ok_number and value not in allowed:
            raise ValueError(
                "expected a positive number of trading days or one of "
                + ", ".join(repr(a) for a in allowed)
            )
        return value

    @field_validator("costs_bps")
    @classmethod
    def _costs(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        # Here, not when the panel is known: a bad global rate is not any one asset's fault.
        rates = value.items() if isinstance(value, dict) else [(None, value)]
        for asset, rate in rates:
            if rate < 0:
                where = "" if asset is None else f"{asset!r}: "
                raise ValueError(f"{where}costs cannot be negative (basis points; 0 for none)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        import pandas as pd

        if value is not None:
            try:
                pd.Timestamp(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{value!r} is not a date; use YYYY-MM-DD") from exc
        return value


class ReportConfig(StrictValues):
    """Statistics and report options."""

    title: str = "kabuto backtest"
    benchmark_strategy: str | None = None
    n_boot: int = Field(2000, ge=100, le=MAX_BOOT)
    seed: Seed = 0


class RunConfig(StrictValues):
    """A whole run: data, backtest, strategies and report."""

    data: DataConfig = DataConfig()
    backtest: BacktestConfig = BacktestConfig()
    report: ReportConfig = ReportConfig()
    strategies: list[dict[str, Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _data_keys(self) -> RunConfig:
        # Here, not on DataConfig: an error of the whole run names its keys as data.<key>.
        self.data.check_keys()
        return self

    @model_validator(mode="after")
    def _named(self) -> RunConfig:
        # After the fields, so the message names the entry, not the whole list of strategies.
        for i, entry in enumerate(self.strategies):
            if "name" not in entry:
                raise ValueError(f"strategies[{i}] has no 'name' (the strategy's registry name)")
            for key in ("name", "label"):  # they name the strategy in every output
                value = entry.get(key)
                if key in entry and not (isinstance(value, str) and value.strip()):
                    raise ValueError(
                        f"strategies[{i}].{key} = {value!r}: expected a non-empty string"
                    )
        return self


C = TypeVar("C", bound=RunConfig)


def parse_config(raw: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Validate a config mapping; errors name the key and the allowed values."""
    return validate(RunConfig, raw, source=source)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    raw = read_toml(path)
    if "sweep" in raw:  # not "unknown key": say which command runs it
        raise ConfigError(f"{path}: has a [sweep] table; run it with `kabuto sweep {path}`")
    return resolve_data_path(parse_config(raw, source=str(path)), path)


def resolve_data_path(config: C, path: Path) -> C:
    """`config` with a relative data path taken as relative to its file at `path`."""
    data_path = config.data.path
    if data_path is not None and not Path(data_path).is_absolute():
        # a data file named in a config is found beside the config, wherever kabuto runs from
        config.data.path = str((path.parent / data_path).resolve())
    return config
