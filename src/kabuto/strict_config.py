"""Strict validation of config mappings (TOML files) with one-line errors.

Every config kabuto reads (backtests, hedging runs, simulations) is a tree of pydantic models
that forbid unknown keys. `validate` turns pydantic's error list into one `ConfigError` naming
the key as a dotted path (``markets.0.tick_size``) and what is allowed, rather than a page of
traceback.
"""

from __future__ import annotations

import datetime
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kabuto.errors import ConfigError

__all__ = ["Seed", "StrictValues", "read_config_text", "read_toml", "validate"]

#: A seed setting: torch and the simulator seed with a signed 64-bit integer, so a larger one
#: would overflow there (numpy takes it, but one range serves every config).
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]

M = TypeVar("M", bound=BaseModel)


class StrictValues(BaseModel):
    """A config section: unknown keys are errors, and values must be written with their type.

    A value pydantic would convert (``"10"`` for a number, ``"yes"`` for true, ``2.0`` for an
    integer) and inf or nan are errors, not silently accepted. An integer is still a number
    (``cost = 0`` for a float). TOML and JSON have no tuples: a tuple field needs a
    ``mode="before"`` validator turning lists into tuples.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    def to_toml(self) -> str:
        """The resolved config (defaults filled in) as TOML; loading it gives this config."""
        return tomli_w.dumps(self.model_dump(exclude_none=True))


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The models an annotation holds: itself, or those in a list, tuple, union or Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _tag(model: type[BaseModel]) -> str | None:
    """The value of a model's ``type`` literal (its tag in a discriminated union), if any."""
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def _walk(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """The part of an error location that names config keys, and the model it ends in."""
    kept: list = []
    candidates = [model]
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        owner = next((m for m in candidates if part in m.model_fields), None)
        if owner is not None:
            kept.append(part)
            candidates = _models_in(owner.model_fields[part].annotation)
            continue
        tagged = [m for m in candidates if _tag(m) == part]
        if tagged:  # a discriminated union's tag: not a key of the file
            candidates = tagged
            continue
        if not candidates and kept and isinstance(kept[-1], int):
            kept.append(part)  # a key of a free-form table in a list
        break
    return tuple(kept), (candidates[0] if len(candidates) == 1 else None)


class Spelling:
    """How the user's file writes kabuto's config keys: kabuto's own files as dotted locations
    (``markets.0.volatility``). A mapping translated from another format (PAMS's JSON) has a
    subclass that writes them as that file does."""

    def __call__(self, loc: tuple) -> str:
        """A key's location (e.g. ``("markets", 0, "volatility")``) as the file writes it."""
        return ".".join(str(p) for p in loc)

    def reword(self, message: str, loc: tuple) -> str:
        """A validation message about `loc`, with the keys it names as the file writes them."""
        return message


def validate(
    model: type[M],
    raw: dict[str, Any],
    *,
    source: str = "config",
    spell: Spelling | None = None,
) -> M:
    """Validate a config mapping; errors name the key and the allowed values, as `spell`
    writes them (by default, dotted locations)."""
    spell = spell or Spelling()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # An unknown key first: it often explains a missing one (a misspelling, another
        # command's config), and it is what to fix.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        if first["type"] == "extra_forbidden":
            parent_loc, parent = _walk(model, first["loc"][:-1])
            key = ".".join(str(p) for p in (*parent_loc, first["loc"][-1]))
            allowed = ", ".join(parent.model_fields) if parent is not None else ""
            raise ConfigError(f"{source}: unknown key {key!r}; allowed keys: {allowed}") from None
        loc, _ = _walk(model, first["loc"])
        key = spell(loc) or "(top level)"
        if first["type"] == "missing":
            raise ConfigError(f"{source}: {key} is required") from None
        # A value may fail every member of a union (a number or a table): say all of them.
        messages = [e["msg"].removeprefix("Value error, ") for e in errors]
        messages = [m for i, m in enumerate(messages) if _walk(model, errors[i]["loc"])[0] == loc]
        message = spell.reword("; or ".join(dict.fromkeys(messages)), loc)
        value = first.get("input")
        here = [e["type"] for e in errors if _walk(model, e["loc"])[0] == loc]
        if isinstance(value, datetime.date | datetime.time) and "string_type" in here:
            raise ConfigError(f"{source}: {_unquoted_date(loc, value)}") from None
        if not loc:  # a rule across keys (a model validator): the message names them
            raise ConfigError(f"{source}: {message}") from None
        if first["type"] == "union_tag_invalid":  # a table of an unknown type (kind)
            context = first.get("ctx", {})
            raise ConfigError(
                f"{source}: {key}: {context.get('tag')!r} is not a known type; use one of "
                f"{context.get('expected_tags')}"
            ) from None
        if isinstance(value, dict):
            # a rule across a table's keys: the message names them; the table is noise
            raise ConfigError(f"{source}: {key}: {message}") from None
        raise ConfigError(f"{source}: {key} = {first.get('input')!r}: {message}") from None


def _unquoted_date(loc: tuple, value: datetime.date | datetime.time) -> str:
    """The message for a TOML date or time literal where text was wanted: quote it.

    TOML reads ``start = 2001-01-02`` as a date, not the text the field wants, and pydantic's
    "Input should be a valid string" does not say why the value is not text.
    """
    written = value.isoformat()
    kind = {datetime.date: "date", datetime.datetime: "date-time"}.get(type(value), "time")
    key = ".".join(str(p) for p in loc)
    name = f"{loc[-1]} = " if loc and isinstance(loc[-1], str) else ""
    return f'{key} = {written} is a TOML {kind}, not text; quote it: {name}"{written}"'


def read_config_text(path: str | Path, language: str) -> str:
    """The text of a config file in `language` (named in errors, e.g. "TOML").

    A leading byte order mark (some Windows editors write one) is dropped: TOML and JSON
    parsers reject it as a stray character on line 1.

    Raises
    ------
    ConfigError
        If the file is missing, a directory, unreadable or not UTF-8 text.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid {language} ({exc})") from None
    except OSError as exc:  # e.g. no permission
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The mapping in a TOML file; a missing, unreadable or malformed file is a `ConfigError`."""
    text = read_config_text(path, "TOML")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
