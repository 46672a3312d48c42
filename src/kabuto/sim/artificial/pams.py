"""Read PAMS's JSON configs (Hirano, Takata, Izumi 2023) into a `SimulationConfig`.

Covers what the FCN samples use (PAMS's ``samples/CI2002/config.json`` and its variants):
``simulation.markets`` / ``agents`` / ``sessions`` / ``fundamentalCorrelations``, ``Market`` groups
(``tickSize``, ``marketPrice``, ``fundamentalPrice``, ``fundamentalDrift``,
``fundamentalVolatility``, ``numMarkets``, ``prefix``, ``outstandingShares``), ``FCNAgent`` groups
(``numAgents``, ``markets``, ``cashAmount``, ``assetVolume``, the FCN weights,
``meanReversionTime``, ``noiseScale``, ``timeWindowSize``, ``orderMargin``, ``marginType`` "fixed")
and sessions (``iterationSteps``, ``withOrderPlacement``, ``withOrderExecution``,
``maxNormalOrders``, ``events``: ``FundamentalPriceShock``, ``PriceLimitRule``, ``TradingHaltRule``,
``OrderMistakeShock``), with ``extends`` inheritance. Keys with no effect in PAMS (``withPrint``,
the high-frequency settings without high-frequency agents, an ``OrderMistakeShock``'s obsolete
``agent``, the rules' obsolete ``referenceMarket``, ``MEMO`` comments) are accepted. Anything
else is a `ConfigError` naming the key, so nothing is silently dropped.

Where kabuto's engine differs from PAMS (documented in `kabuto.sim.artificial.engine`): fills are
at each resting order's price (PAMS fills a multi-level sweep at the last level's price), the
open after a pre-open session is a volume-maximising call auction (PAMS crosses the book at the
marginal pair's price), an order with time to live L trades for L steps (PAMS: L + 1), an FCN
agent whose expected price equals the market price passes its turn (PAMS asks another agent),
a ``TradingHaltRule`` with several ``targetMarkets`` halts each of them on its own price move
alone (PAMS halts all its target markets together), and an ``FCNAgent`` group trading several
markets is dealt out one market per agent (a PAMS agent holds and orders in all of them; the
reader warns).

Values of the wrong JSON type (a string where a list of names or a whole number belongs) are a
`ConfigError` naming the field and the value.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from kabuto.errors import ConfigError, KabutoWarning
from kabuto.sim.artificial.config import SimulationConfig, parse_simulation
from kabuto.strict_config import Spelling, read_config_text

__all__ = ["read_pams_config"]

_MARKET_KEYS = {
    "class",
    "tickSize",
    "marketPrice",
    "fundamentalPrice",
    "fundamentalDrift",
    "fundamentalVolatility",
    "numMarkets",
    "prefix",
    "outstandingShares",
    "extends",
}
_FCN_KEYS = {
    "class": None,
    "numAgents": None,
    "prefix": None,
    "extends": None,
    "markets": "markets",
    "cashAmount": "cash",
    "assetVolume": "assets",
    "fundamentalWeight": "fundamental_weight",
    "chartWeight": "chart_weight",
    "noiseWeight": "noise_weight",
    "noiseScale": "noise_scale",
    "timeWindowSize": "time_window",
    "meanReversionTime": "reversion_time",
    "orderMargin": "margin",
    "marginType": None,
}
_SESSION_KEYS = {
    "sessionName",
    "iterationSteps",
    "withOrderPlacement",
    "withOrderExecution",
    "withPrint",
    "maxNormalOrders",
    "maxHighFrequencyOrders",
    "highFrequencySubmitRate",
    "hifreqSubmitRate",
    "maxHifreqOrders",
}
_SIMULATION_KEYS = {"markets", "agents", "sessions", "fundamentalCorrelations"}

# kabuto's keys as PAMS spells them, for errors and notes that name a key of the file.
_MARKET_SPELLING = {
    "tick_size": "tickSize",
    "price": "marketPrice",
    "fundamental": "fundamentalPrice",
    "drift": "fundamentalDrift",
    "volatility": "fundamentalVolatility",
}
_FCN_SPELLING = {"count": "numAgents"} | {k: p for p, k in _FCN_KEYS.items() if k is not None}
_SESSION_SPELLING = {
    "steps": "iterationSteps",
    "orders": "withOrderPlacement",
    "execute": "withOrderExecution",
    "orders_per_step": "maxNormalOrders",
}


# Single-word keys a message names only as keys (others, such as price or steps, are words).
_WORDS_TO_SPELL = {"volatility", "margin", "execute"}


class _Spelling(Spelling):
    """kabuto's key locations written as the PAMS file's.

    ``("markets", 0, "volatility")`` -> ``Market.fundamentalVolatility``: each item of kabuto's
    lists comes from one PAMS block (a market group, an agent group, a session, an event),
    recorded as the reader translates it.
    """

    def __init__(self) -> None:
        self.blocks: dict[str, list[tuple[str, dict[str, str]]]] = {
            "markets": [],
            "agents": [],
            "sessions": [],
            "events": [],
        }

    def __eq__(self, other: object) -> bool:  # configs read from one file compare equal
        return isinstance(other, _Spelling) and other.blocks == self.blocks

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, loc: tuple) -> str:
        items = self.blocks.get(loc[0], []) if loc else []
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[1] < len(items):
            block, keys = items[loc[1]]
            rest = [keys.get(loc[2], loc[2]), *loc[3:]] if len(loc) > 2 else []
            return ".".join(str(p) for p in (block, *rest))
        if loc[:1] == ("correlations",):
            return ".".join(
                str(p) for p in ("simulation.fundamentalCorrelations.pairwise", *loc[1:])
            )
        if len(loc) == 1 and loc[0] in self.blocks:  # a whole list: simulation.sessions
            return f"simulation.{loc[0]}"
        return ".".join(str(p) for p in loc)

    def reword(self, message: str, loc: tuple) -> str:
        """kabuto's locations (``sessions.1.orders_per_step``) and key names in a message, as
        the PAMS file writes them: the names of `loc`'s block, or of every block for a rule
        across the config. Only names that cannot be ordinary words are replaced (snake_case
        keys, and volatility, margin and execute)."""
        message = re.sub(
            r"\b(markets|agents|sessions|events)\.(\d+)\.(\w+)",
            lambda m: self((m[1], int(m[2]), m[3])),
            message,
        )
        items = self.blocks.get(loc[0], []) if loc else []
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[1] < len(items):
            spellings = [items[loc[1]][1]]
        else:
            spellings = [_MARKET_SPELLING, _FCN_SPELLING, _SESSION_SPELLING]
        for keys in spellings:
            for key, pams in keys.items():
                if "_" in key or key in _WORDS_TO_SPELL:
                    message = re.sub(rf"\b{key}\b", pams, message)
        return message


def _block(raw: dict[str, Any], name: str, source: str, seen: tuple[str, ...] = ()) -> dict:
    """A top-level block with its ``extends`` chain resolved (child keys win)."""
    if name not in raw or not isinstance(raw[name], dict):
        raise ConfigError(f"{source}: the config names block {name!r} but has no such object")
    block = dict(raw[name])
    parent = block.pop("extends", None)
    if parent is not None:
        _name(parent, f"{name}.extends", source)
        if parent in seen:
            raise ConfigError(f"{source}: {name}.extends makes a cycle through {parent!r}")
        base = _block(raw, parent, source, (*seen, name))
        base.pop("from", None)
        base.pop("to", None)
        block = base | block
    return block


def _name(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {where} = {value!r}: expected a name (a JSON string)")
    return value


def _names(value: Any, where: str, source: str) -> list[str]:
    """A JSON array of names; a bare string would otherwise be read letter by letter."""
    if not isinstance(value, list):
        raise ConfigError(
            f'{source}: {where} = {value!r}: expected a list of names, e.g. ["Market"]'
        )
    return [_name(v, f"{where}[{i}]", source) for i, v in enumerate(value)]


def _whole(value: Any, where: str, source: str, low: int) -> int:
    """A JSON whole number of at least `low` (not a string, a fraction or true/false)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{source}: {where} = {value!r}: expected a whole number >= {low}")
    return value


def _object(value: Any, where: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where} = {value!r}: expected a JSON object ({{...}})")
    return value


def _check_keys(block: dict, allowed, where: str, source: str) -> None:
    # "MEMO" is how PAMS's samples write comments; PAMS reads past it
    unknown = sorted(set(block) - set(allowed) - {"MEMO"})
    if unknown:
        raise ConfigError(
            f"{source}: {where} has key(s) {unknown} that kabuto's PAMS reader does not support; "
            f"supported: {', '.join(sorted(allowed))}"
        )


def _markets(
    raw: dict, names: list[str], source: str, spelling: _Spelling
) -> tuple[list[dict], dict[str, list]]:
    markets, groups = [], {}
    for group in names:
        block = _block(raw, group, source)
        _check_keys(block, _MARKET_KEYS, group, source)
        if block.get("class", "Market") != "Market":
            raise ConfigError(
                f"{source}: {group}.class = {block['class']!r}; the reader supports 'Market'"
            )
        if "tickSize" not in block:
            raise ConfigError(f"{source}: {group}.tickSize is required")
        price = block.get("marketPrice", block.get("fundamentalPrice"))
        if price is None:
            raise ConfigError(f"{source}: {group} needs marketPrice or fundamentalPrice")
        count = _whole(block.get("numMarkets", 1), f"{group}.numMarkets", source, 1)
        prefix = block.get("prefix", f"{group}-" if count > 1 else group)
        members = [prefix if count == 1 else f"{prefix}{i}" for i in range(count)]
        groups[group] = members
        for member in members:
            spelling.blocks["markets"].append((group, _MARKET_SPELLING))
            markets.append(
                {
                    "name": member,
                    "tick_size": block["tickSize"],
                    "price": price,
                    "fundamental": block.get("fundamentalPrice", price),
                    "drift": block.get("fundamentalDrift", 0.0),
                    "volatility": block.get("fundamentalVolatility", 0.0),
                }
            )
    return markets, groups


def _agents(
    raw: dict, names: list[str], groups: dict[str, list], source: str, spelling: _Spelling
) -> list[dict]:
    agents = []
    for group in names:
        block = _block(raw, group, source)
        _check_keys(block, _FCN_KEYS, group, source)
        if block.get("class") != "FCNAgent":
            raise ConfigError(
                f"{source}: {group}.class = {block.get('class')!r}; the reader supports "
                "'FCNAgent' (kabuto's own configs have more agent types)"
            )
        if block.get("marginType", "fixed") != "fixed":
            raise ConfigError(f"{source}: {group}.marginType: only 'fixed' is supported")
        spec: dict[str, Any] = {"name": group, "type": "fcn", "count": block.get("numAgents", 1)}
        for key, target in _FCN_KEYS.items():
            if target is not None and key in block:
                spec[target] = block[key]
        traded = _names(block.get("markets", []), f"{group}.markets", source)
        unknown = [m for m in traded if m not in groups]
        if unknown:
            raise ConfigError(f"{source}: {group}.markets names unknown market group(s) {unknown}")
        spec["markets"] = [m for g in traded for m in groups[g]]
        if len(spec["markets"]) > 1:
            warnings.warn(
                f"{source}: {group} trades {len(spec['markets'])} markets; a PAMS FCN agent "
                "holds assetVolume in each and orders in each on its turn, kabuto deals the "
                "group's agents out one market each (holdings there only), so each market gets "
                "its share of the orders; give each market its own FCNAgent group to keep "
                "PAMS's order flow per market",
                KabutoWarning,
                stacklevel=2,
            )
        spelling.blocks["agents"].append((group, _FCN_SPELLING))
        agents.append(spec)
    return agents


# PAMS event class -> (kabuto event type, {PAMS key: kabuto key}); triggerTime is relative to
# the start of the session that lists the event.
_EVENTS: dict[str, tuple[str, dict[str, str]]] = {
    "FundamentalPriceShock": (
        "fundamental_shock",
        {"target": "market", "priceChangeRate": "change", "shockTimeLength": "duration"},
    ),
    "PriceLimitRule": ("price_limit", {"targetMarkets": "markets", "triggerChangeRate": "rate"}),
    "TradingHaltRule": (
        "trading_halt",
        {"targetMarkets": "markets", "triggerChangeRate": "rate", "haltingTimeLength": "steps"},
    ),
    "OrderMistakeShock": (
        "mistaken_order",
        {
            "target": "market",
            "priceChangeRate": "change",
            "orderVolume": "volume",
            "orderTimeLength": "lifetime",
        },
    ),
}

# Event keys PAMS accepts and ignores, warning that they are obsolete: an OrderMistakeShock's
# "agent", the rules' "referenceMarket" (PAMS's own trading_halt sample has one).
_NO_EFFECT_EVENT_KEYS = {
    "OrderMistakeShock": {"agent"},
    "PriceLimitRule": {"referenceMarket"},
    "TradingHaltRule": {"referenceMarket"},
}


def _event(
    raw: dict, name: str, start: int, groups: dict, source: str, spelling: _Spelling
) -> dict | None:
    """A kabuto event from a PAMS event block (None if it is disabled)."""
    block = _block(raw, name, source)
    kind = block.get("class")
    if kind not in _EVENTS:
        raise ConfigError(
            f"{source}: {name}.class = {kind!r}; the reader supports {', '.join(_EVENTS)}"
        )
    target, keys = _EVENTS[kind]
    allowed = {"class", "enabled", "triggerTime", *keys, *_NO_EFFECT_EVENT_KEYS.get(kind, ())}
    _check_keys(block, allowed, name, source)
    enabled = block.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{source}: {name}.enabled = {enabled!r}: expected true or false")
    if not enabled:
        return None
    event: dict[str, Any] = {"type": target}
    for key, value in block.items():
        if key in keys:
            event[keys[key]] = value
    if "triggerTime" in block:
        event["step"] = start + _whole(block["triggerTime"], f"{name}.triggerTime", source, 0)
    # market group names -> market names
    if "market" in event:
        target = _name(event["market"], f"{name}.target", source)
        members = groups.get(target, [target])
        if len(members) > 1:  # PAMS itself finds no market of that name
            raise ConfigError(
                f"{source}: {name}.target = {target!r} is a group of {len(members)} markets; "
                f"name one of them ({', '.join(members)})"
            )
        event["market"] = members[0]
    if "markets" in event:
        targets = _names(event["markets"], f"{name}.targetMarkets", source)
        event["markets"] = [m for g in targets for m in groups.get(g, [g])]
    spelling.blocks["events"].append(
        (name, {k: p for p, k in keys.items()} | {"step": "triggerTime"})
    )
    return event


def read_pams_config(path: str | Path | dict[str, Any]) -> SimulationConfig:
    """A `SimulationConfig` from a PAMS JSON config file (or its parsed mapping)."""
    if isinstance(path, dict):
        raw, source = path, "PAMS config"
    else:
        source = str(path)
        try:
            raw = json.loads(read_config_text(path, "JSON"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            kind = "an array" if isinstance(raw, list) else "a single value"
            raise ConfigError(f"{source}: holds {kind}; a PAMS config is a JSON object ({{...}})")
    simulation = raw.get("simulation")
    if not isinstance(simulation, dict):
        raise ConfigError(f"{source}: a PAMS config needs a 'simulation' object")
    _check_keys(simulation, _SIMULATION_KEYS, "simulation", source)
    spelling = _Spelling()
    markets, groups = _markets(
        raw, _names(simulation.get("markets", []), "simulation.markets", source), source, spelling
    )
    agents = _agents(
        raw,
        _names(simulation.get("agents", []), "simulation.agents", source),
        groups,
        source,
        spelling,
    )
    sessions, events = _sessions(raw, simulation, groups, source, spelling)
    config = {
        "markets": markets,
        "agents": agents,
        "sessions": sessions,
        "correlations": _correlations(simulation, source),
        "events": events,
    }
    return parse_simulation(config, source=source, spell=spelling)


def _sessions(
    raw: dict, simulation: dict, groups: dict, source: str, spelling: _Spelling
) -> tuple[list[dict], list[dict]]:
    """kabuto's sessions and events from ``simulation.sessions`` (event times made absolute)."""
    listed = simulation.get("sessions", [])
    if not isinstance(listed, list):
        raise ConfigError(
            f"{source}: simulation.sessions = {listed!r}: expected a list of session objects"
        )
    sessions, events, start = [], [], 0
    for i, session in enumerate(listed):
        where = f"simulation.sessions[{i}]"
        _check_keys(_object(session, where, source), _SESSION_KEYS | {"events"}, where, source)
        for name in _names(session.get("events", []), f"{where}.events", source):
            event = _event(raw, name, start, groups, source, spelling)
            if event is not None:
                events.append(event)
        steps = _whole(session.get("iterationSteps"), f"{where}.iterationSteps", source, 1)
        start += steps
        spelling.blocks["sessions"].append((where, _SESSION_SPELLING))
        sessions.append(
            {
                "name": str(session.get("sessionName", i)),
                "steps": steps,
                "orders": session.get("withOrderPlacement", True),
                "execute": session.get("withOrderExecution", True),
                "orders_per_step": session.get("maxNormalOrders", 1),
            }
        )
    return sessions, events


def _correlations(simulation: dict, source: str) -> list[tuple]:
    """``fundamentalCorrelations.pairwise`` as kabuto's (market, market, rho) triples."""
    where = "simulation.fundamentalCorrelations"
    correlations = _object(simulation.get("fundamentalCorrelations", {}), where, source)
    _check_keys(correlations, {"pairwise"}, where, source)
    pairs = correlations.get("pairwise", [])
    if not isinstance(pairs, list) or not all(isinstance(c, list) and len(c) == 3 for c in pairs):
        raise ConfigError(
            f"{source}: {where}.pairwise = {pairs!r}: expected a list of [market, market, rho] "
            'triples, e.g. [["A", "B", 0.5]]'
        )
    return [tuple(c) for c in pairs]
