"""Strict validation of config mappings (TOML files) with one-line errors.

Every config kabuto reads (backtests, simulations) is a tree of pydantic models that forbid
unknown keys. `validate` turns pydantic's error list into one `ConfigError` naming the key as a
dotted path (``markets.0.tick_size``) and what is allowed, rather than a page of traceback.
"""

from __future__ import annotations

import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kabuto.errors import ConfigError

__all__ = ["Strict", "read_toml", "validate"]

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or the item of a list, tuple or optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _model_in(arg)
            if model is not None:
                return model
    return None


def _walk(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """The part of an error location that names config keys, and the model it ends in."""
    kept: list = []
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        if current is None or part not in current.model_fields:
            if current is None and kept and isinstance(kept[-1], int):
                kept.append(part)  # a key of a free-form table in a list
            break  # otherwise a union member's tag
        kept.append(part)
        current = _model_in(current.model_fields[part].annotation)
    return tuple(kept), current


def validate(model: type[M], raw: dict[str, Any], *, source: str = "config") -> M:
    """Validate a config mapping; errors name the key and the allowed values."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        if first["type"] == "extra_forbidden":
            key = ".".join(str(p) for p in first["loc"])
            _, parent = _walk(model, first["loc"][:-1])
            allowed = ", ".join(parent.model_fields) if parent is not None else ""
            raise ConfigError(f"{source}: unknown key {key!r}; allowed keys: {allowed}") from None
        loc, _ = _walk(model, first["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if first["type"] == "missing":
            raise ConfigError(f"{source}: {key} is required") from None
        # A value may fail every member of a union (a number or a table): say all of them.
        messages = [e["msg"].removeprefix("Value error, ") for e in errors]
        messages = [m for i, m in enumerate(messages) if _walk(model, errors[i]["loc"])[0] == loc]
        message = "; or ".join(dict.fromkeys(messages))
        if not loc:  # a rule across keys (a model validator): the message names them
            raise ConfigError(f"{source}: {message}") from None
        raise ConfigError(f"{source}: {key} = {first.get('input')!r}: {message}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The mapping in a TOML file; a missing or malformed file is a `ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
