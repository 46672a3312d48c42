"""The TOML config of a backtest run, validated strictly.

An unknown key or a bad value is a `ConfigError` naming the key (as a dotted path) and what is
allowed. Strategy parameters are checked by the strategy registry, which knows each strategy's
settings.

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

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kabuto.backtest.schedule import CALENDARS
from kabuto.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where prices come from."""

    source: Literal["sp500", "file", "gbm", "garch"] = "sp500"
    path: str | None = None
    format: Literal["csv", "parquet"] | None = None
    max_ffill: int = Field(5, ge=0)
    n_assets: int = Field(20, ge=1)
    n_days: int = Field(2520, ge=3)
    seed: int = 0


class BacktestConfig(_Strict):
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


class ReportConfig(_Strict):
    """Statistics and report options."""

    title: str = "kabuto backtest"
    benchmark_strategy: str | None = None
    n_boot: int = Field(2000, ge=100)
    seed: int = 0


class RunConfig(_Strict):
    """A whole run: data, backtest, strategies and report."""

    data: DataConfig = DataConfig()
    backtest: BacktestConfig = BacktestConfig()
    report: ReportConfig = ReportConfig()
    strategies: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("strategies")
    @classmethod
    def _named(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, entry in enumerate(value):
            if "name" not in entry:
                raise ValueError(f"entry {i} has no 'name' (the strategy's registry name)")
        return value

    def to_toml(self) -> str:
        """The resolved config (defaults filled in) as TOML."""
        data = self.model_dump(exclude_none=True)
        return tomli_w.dumps(data)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the sub-model at `loc` (for 'unknown key' messages)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return list(model.model_fields)


def parse_config(raw: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Validate a config mapping; errors name the key and the allowed values."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        if first["type"] == "extra_forbidden":
            key = ".".join(str(p) for p in first["loc"])
            allowed = ", ".join(_allowed_keys(RunConfig, first["loc"]))
            raise ConfigError(f"{source}: unknown key {key!r}; allowed keys: {allowed}") from None
        loc = _field_loc(first["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if first["type"] == "missing":
            raise ConfigError(f"{source}: {key} is required") from None
        # A value may fail every member of a union (a number or a table): say all of them.
        messages = [e["msg"].removeprefix("Value error, ") for e in errors]
        messages = [m for i, m in enumerate(messages) if _field_loc(errors[i]["loc"]) == loc]
        message = "; or ".join(dict.fromkeys(messages))
        raise ConfigError(f"{source}: {key} = {first.get('input')!r}: {message}") from None


def _field_loc(loc: tuple) -> tuple:
    """The part of an error location that names config keys (drops pydantic's union tags)."""
    model: type[BaseModel] | None = RunConfig
    kept = []
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        if model is None or part not in model.model_fields:
            # a list entry's free-form key, or a union member's tag
            if model is None and kept and isinstance(kept[-1], int):
                kept.append(part)
            break
        kept.append(part)
        annotation = model.model_fields[part].annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    return tuple(kept)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    config = parse_config(raw, source=str(path))
    data_path = config.data.path
    if data_path is not None and not Path(data_path).is_absolute():
        # a data file named in a config is found beside the config, wherever kabuto runs from
        config.data.path = str((path.parent / data_path).resolve())
    return config
