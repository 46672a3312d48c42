"""The config of an artificial market simulation, validated strictly.

A TOML file (or a mapping) with three lists and optional correlations::

    [[markets]]
    name = "Market"
    tick_size = 0.00001
    price = 300.0              # the price before the first trade
    fundamental = 300.0        # the initial fundamental price (default: price)
    drift = 0.0                # per-step drift of the log fundamental
    volatility = 0.0           # per-step volatility of the log fundamental

    [[agents]]
    name = "FCNAgents"
    type = "fcn"
    count = 100
    markets = ["Market"]       # agents are spread over these markets in turn
    cash = 10000
    assets = 50
    fundamental_weight = { expon = 1.0 }
    chart_weight = { expon = 0.0 }
    noise_weight = { expon = 1.0 }
    noise_scale = 0.001
    time_window = [100, 200]   # a uniform draw, truncated to whole steps
    reversion_time = { uniform = [50, 100] }
    margin = [0.0, 0.1]

    [[sessions]]
    name = "pre-open"
    steps = 100
    execute = false            # orders rest, nothing trades

    [[sessions]]
    name = "continuous"
    steps = 500

    correlations = [["A", "B", 0.5]]   # of the markets' fundamental shocks

    [[events]]                 # optional: fundamental_shock, price_limit, trading_halt,
    type = "trading_halt"      # mistaken_order (see their classes)
    markets = ["Market"]
    rate = 0.05
    steps = 20

Agent groups have a ``type``: ``fcn`` (the default), ``market_maker``, ``arbitrage`` (between an
index market, one with ``components``, and its basket) or ``policy`` (orders from a Python
callable or torch model passed to `simulate`).

Parameter distributions use PAMS's JSON notation: a number (a constant), ``[a, b]`` or
``{ uniform = [a, b] }`` (uniform on [a, b)), ``{ expon = m }`` (exponential with mean m),
``{ normal = [mean, sd] }`` and ``{ const = x }``. Unknown keys and bad values are a
`ConfigError` naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from kabuto.errors import ConfigError
from kabuto.sim.artificial.garch_agents import GarchMarket, analytic_garch
from kabuto.strict_config import Spelling, StrictValues, read_toml, validate

__all__ = [
    "ArbitrageGroup",
    "FCNGroup",
    "FundamentalShock",
    "MarketMakerGroup",
    "MarketSpec",
    "MistakenOrder",
    "PolicyGroup",
    "PriceLimit",
    "SessionSpec",
    "SimulationConfig",
    "TradingHalt",
    "draw",
    "first_executing_step",
    "load_simulation",
]

Distribution = float | list[float] | dict[str, float | list[float]]
DISTRIBUTIONS = ("const", "uniform", "expon", "normal")


def _check_distribution(value: Distribution) -> Distribution:
    """Accept the notations of the module docstring; raise a message naming what is allowed."""
    if isinstance(value, bool):
        raise ValueError("expected a number or a distribution, not true/false")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        if len(value) != 2 or not value[0] <= value[1]:
            raise ValueError("a list is a uniform range [low, high] with low <= high")
        return [float(v) for v in value]
    if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise ValueError(f"a table must have one key out of {', '.join(DISTRIBUTIONS)}")
    kind, args = next(iter(value.items()))
    args = [args] if isinstance(args, int | float) else list(args)
    need = {"const": 1, "uniform": 2, "expon": 1, "normal": 2}[kind]
    if len(args) != need:
        raise ValueError(f"{kind} takes {need} number(s), got {args}")
    if kind == "uniform" and not args[0] <= args[1]:
        raise ValueError("uniform takes [low, high] with low <= high")
    if kind in ("expon", "normal") and args[-1] < 0:
        raise ValueError(f"{kind} takes a non-negative {'mean' if kind == 'expon' else 'sd'}")
    return {kind: [float(a) for a in args]}


def draw(value: Distribution, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` draws of a (checked) distribution."""
    if isinstance(value, float | int):
        return np.full(size, float(value))
    if isinstance(value, list):
        return rng.uniform(value[0], value[1], size)
    kind, args = next(iter(value.items()))
    if kind == "const":
        return np.full(size, args[0])
    if kind == "uniform":
        return rng.uniform(args[0], args[1], size)
    if kind == "expon":
        return rng.exponential(args[0], size) if args[0] > 0 else np.zeros(size)
    return rng.normal(args[0], args[1], size)


def _lowest(value: Distribution) -> float:
    """The smallest value a distribution can take (-inf for a normal with sd > 0)."""
    if isinstance(value, float | int):
        return float(value)
    if isinstance(value, list):
        return value[0]
    kind, args = next(iter(value.items()))
    if kind == "normal":
        return args[0] if args[1] == 0 else -np.inf
    return 0.0 if kind == "expon" else args[0]


def _highest(value: Distribution) -> float:
    """The largest value a distribution can take (inf for an exponential or a normal that
    varies)."""
    if isinstance(value, float | int):
        return float(value)
    if isinstance(value, list):
        return value[1]
    kind, args = next(iter(value.items()))
    if kind in ("expon", "normal"):
        return args[0] if args[-1] == 0 else np.inf
    return args[-1]


class MarketSpec(StrictValues):
    """One market: its tick, the price before the first trade and its fundamental process.

    An index market lists its `components`; its fundamental price is then their mean weighted
    by each component's `shares` outstanding (it has no process of its own), as PAMS's index
    market.
    """

    name: str
    tick_size: float = Field(gt=0)
    price: float = Field(gt=0)
    fundamental: float | None = Field(None, gt=0)
    drift: float = 0.0
    volatility: float = Field(0.0, ge=0)
    shares: float = Field(1.0, gt=0)
    components: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _in_ticks(self) -> MarketSpec:
        # Prices live on the book as whole ticks (int64, exact in float64 up to 2**53): a price
        # below one tick cannot be quoted, so nothing would ever trade.
        for key in ("price", "fundamental"):
            value = getattr(self, key)
            if value is not None and not 1 <= value / self.tick_size <= 2**53:
                raise ValueError(
                    f"market {self.name!r}: {key} = {value:g} is {value / self.tick_size:.3g} "
                    f"ticks of tick_size = {self.tick_size:g}; it must be 1 to 2**53 ticks "
                    "(choose a tick_size well below the price)"
                )
        return self

    @property
    def initial_fundamental(self) -> float:
        return self.price if self.fundamental is None else self.fundamental


#: The most units an account may start with (exact in a float64 draw).
MAX_UNITS = 2.0**53
#: The largest whole-number setting (volumes, lifetimes, steps): the engine keeps them in
#: float64 tables and int64 counters, which hold it exactly (larger values wrapped around).
MAX_WHOLE = 2**53


class _AgentGroup(StrictValues):
    """What every agent group has: a name, a size, markets and accounts with optional limits.

    Agents are spread over `markets` in turn. ``cash_floor`` (the lowest cash an agent may
    reach) and ``max_short`` (the largest short position) are enforced when given.
    """

    name: str
    count: int = Field(1, ge=1)
    markets: list[str] = Field(min_length=1)
    cash: Distribution = 0.0
    assets: Distribution = 0.0
    cash_floor: float | None = None
    max_short: int | None = Field(None, ge=0, le=MAX_WHOLE)

    @field_validator("cash", "assets")
    @classmethod
    def _account(cls, value: Distribution) -> Distribution:
        return _check_distribution(value)

    @field_validator("assets")
    @classmethod
    def _units(cls, value: Distribution) -> Distribution:
        # held as whole units (int64): a fixed number must be one, and no draw may be so large
        # that it is not exact; random draws are truncated toward 0
        fixed = value["const"][0] if isinstance(value, dict) and "const" in value else value
        if isinstance(fixed, float) and fixed != int(fixed):
            raise ValueError("a fixed number of units must be whole (e.g. 50)")
        numbers = next(iter(value.values())) if isinstance(value, dict) else value
        if np.max(np.abs(numbers)) > MAX_UNITS:
            raise ValueError(f"units must be within +-2**53 ({MAX_UNITS:.3g})")
        return value


class FCNGroup(_AgentGroup):
    """A group of FCN agents (`kabuto.sim.artificial.engine`); parameters drawn per agent."""

    type: Literal["fcn"] = "fcn"
    count: int = Field(ge=1)
    fundamental_weight: Distribution
    chart_weight: Distribution = 0.0
    noise_weight: Distribution
    noise_scale: Distribution
    time_window: Distribution
    reversion_time: Distribution | None = None
    margin: Distribution

    @field_validator(
        "fundamental_weight",
        "chart_weight",
        "noise_weight",
        "noise_scale",
        "time_window",
        "reversion_time",
        "margin",
    )
    @classmethod
    def _distribution(cls, value: Distribution | None) -> Distribution | None:
        return None if value is None else _check_distribution(value)

    @model_validator(mode="after")
    def _ranges(self) -> FCNGroup:
        for key in ("fundamental_weight", "noise_weight", "noise_scale", "margin"):
            if _lowest(getattr(self, key)) < 0:
                raise ValueError(f"{key} must not be negative")
        if _highest(self.margin) >= 1:  # a buy at P (1 - margin) <= 0 could never be placed
            raise ValueError("margin must be below 1 (every draw of it), as in PAMS")
        for key in ("time_window", "reversion_time"):
            value = getattr(self, key)
            if value is not None and _lowest(value) < 1:
                raise ValueError(f"{key} must be at least 1 step")
        weights = (self.fundamental_weight, self.chart_weight, self.noise_weight)
        if all(_lowest(w) == 0 and _highest(w) == 0 for w in weights):
            raise ValueError(
                "fundamental_weight, chart_weight and noise_weight are all 0, so an agent "
                "would have nothing to trade on; give one of them a positive value"
            )
        return self


class MarketMakerGroup(_AgentGroup):
    """Market makers: after the other agents of each step, each quotes a bid and an ask.

    The quotes sit at ``base -+ F * spread / 2`` (F: the market's fundamental price; base: the
    mid of the best quotes, or the market price when a side is empty), PAMS's market maker;
    bids are rounded down and asks up to the tick. With ``levels`` > 1 it also quotes
    ``levels - 1`` more prices outward on each side, `volume` at each, one tick apart or
    ``level_spacing`` times the price apart: a ladder of depth that gives market orders a
    linear price impact (one step of the ladder per `volume` units).
    """

    type: Literal["market_maker"]
    spread: float = Field(gt=0)
    volume: int = Field(1, ge=1, le=MAX_WHOLE)
    lifetime: int = Field(2, ge=1, le=MAX_WHOLE)
    levels: int = Field(1, ge=1, le=MAX_WHOLE)
    level_spacing: float | None = Field(None, gt=0, lt=1)


class OrderFlowGroup(_AgentGroup):
    """Nakagawa et al.'s (2024) fundamental, AI and noise traders as one order-flow crowd.

    Each agent of the group is a crowd in one market that sends, at the end of every step,
    the net market order of its three kinds of traders (`kabuto.sim.artificial.engine`;
    `kabuto.sim.artificial.garch_agents` has the model without a book). The shares of
    fundamental and AI traders are `fundamental_share` and `ai_share` (the rest are noise
    traders); `impact` is the return (in `unit`) per unit of order imbalance that the traders
    assume, which the book's depth should match (a market maker with ``levels``). Defaults are
    the paper's parameters.
    """

    type: Literal["order_flow"]
    fundamental_share: float = 0.2
    ai_share: float = 0.4
    impact: float = 4.0
    noise_scale: float = 0.4
    fundamental_aversion: float = 1.2
    ai_aversion: float = 1.2
    ai_forecast: float = 0.1
    volume: int = Field(ge=1, le=MAX_WHOLE)
    unit: float = Field(0.01, gt=0)

    @model_validator(mode="after")
    def _model(self) -> OrderFlowGroup:
        try:
            _, alpha, beta = analytic_garch(self.model())
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if alpha + beta >= 1:
            raise ValueError(
                f"the crowd's volatility feeds on itself: alpha + beta of the GARCH mapping is "
                f"{alpha + beta:.2f} (need < 1); lower the shares, aversions, impact or "
                "noise_scale"
            )
        return self

    def model(self) -> GarchMarket:
        """The crowd's parameters as the book-free market (`garch_agents.GarchMarket`)."""
        return GarchMarket(
            fundamental_share=self.fundamental_share,
            ai_share=self.ai_share,
            impact=self.impact,
            noise_scale=self.noise_scale,
            fundamental_aversion=self.fundamental_aversion,
            ai_aversion=self.ai_aversion,
            ai_forecast=self.ai_forecast,
        )


class PolicyGroup(_AgentGroup):
    """Agents whose orders come from a Python policy given to `simulate` (`policy` module).

    Each agent decides every `every` steps from `start` on; its limit orders live `lifetime`
    steps.
    """

    type: Literal["policy"]
    every: int = Field(1, ge=1, le=MAX_WHOLE)
    start: int = Field(0, ge=0, le=MAX_WHOLE)
    lifetime: int = Field(1, ge=1, le=MAX_WHOLE)


class ArbitrageGroup(_AgentGroup):
    """Arbitrageurs between index markets (`markets`) and their baskets (PAMS's agent).

    After the other agents of each step: if an index's price and its basket's value (the
    share-weighted mean of its components' prices) part by `threshold` or more, buy the cheap
    side and sell the dear one, `volume` units of each component against ``n * volume`` of the
    index, with limit orders at the market prices living `lifetime` steps.
    """

    type: Literal["arbitrage"]
    threshold: float = Field(gt=0)
    volume: int = Field(1, ge=1, le=MAX_WHOLE)
    lifetime: int = Field(1, ge=1, le=MAX_WHOLE)


def _agent_type(value: Any) -> str:
    return value.get("type", "fcn") if isinstance(value, dict) else value.type


AgentGroup = Annotated[
    Annotated[FCNGroup, Tag("fcn")]
    | Annotated[MarketMakerGroup, Tag("market_maker")]
    | Annotated[PolicyGroup, Tag("policy")]
    | Annotated[ArbitrageGroup, Tag("arbitrage")]
    | Annotated[OrderFlowGroup, Tag("order_flow")],
    Discriminator(_agent_type),
]


class FundamentalShock(StrictValues):
    """The fundamental price of `market` jumps by ``change`` (e.g. -0.1) at `step`, for good.

    With ``duration`` > 1 it jumps at each of that many steps (compounding), as in PAMS. An
    index market's fundamental is its components' (`MarketSpec`): shock those instead.
    """

    type: Literal["fundamental_shock"]
    market: str
    step: int = Field(ge=0, le=MAX_WHOLE)
    change: float = Field(gt=-1)
    duration: int = Field(1, ge=1, le=MAX_WHOLE)


class PriceLimit(StrictValues):
    """Limit prices in `markets` are clipped to the market's initial price times 1 -+ `rate`."""

    type: Literal["price_limit"]
    markets: list[str] = Field(min_length=1)
    rate: float = Field(gt=0, lt=1)


class TradingHalt(StrictValues):
    """`markets` stop executing for `steps` steps when the price moves `rate` from its start.

    The n-th halt needs a move of ``n * rate`` (PAMS's rule); orders rest during a halt and
    trading resumes with a call auction.
    """

    type: Literal["trading_halt"]
    markets: list[str] = Field(min_length=1)
    rate: float = Field(gt=0)
    steps: int = Field(ge=1, le=MAX_WHOLE)


class MistakenOrder(StrictValues):
    """At `step`, `volume` units are sent to `market` at ``P (1 + change)`` (PAMS's fat finger).

    P is the market price at the start of the step. A buy if ``change > 0``, else a sell,
    living `lifetime` steps. It is always placed, before the agents of that step act, from an
    account of its own (`kabuto.sim.artificial.engine`), not in place of an agent's order.
    """

    type: Literal["mistaken_order"]
    market: str
    step: int = Field(ge=0, le=MAX_WHOLE)
    # a price change past 1e6 (a million-fold price) is beyond any fat finger, and its tick
    # would overflow the book's integers
    change: float = Field(gt=-1, le=1e6)
    volume: int = Field(ge=1, le=MAX_WHOLE)
    lifetime: int = Field(1, ge=1, le=MAX_WHOLE)


Event = Annotated[
    FundamentalShock | PriceLimit | TradingHalt | MistakenOrder, Field(discriminator="type")
]


class SessionSpec(StrictValues):
    """A run of steps with the same rules (a pre-open session has ``execute = false``).

    With ``orders = false`` (PAMS's ``withOrderPlacement: false``) no agent of any kind places
    an order in the session: FCN agents, market makers, arbitrageurs, order-flow crowds and
    policies all wait; a mistaken order there is refused.
    """

    name: str
    steps: int = Field(ge=1)
    orders: bool = True
    execute: bool = True
    orders_per_step: int = Field(1, ge=0)


class SimulationConfig(StrictValues):
    """Markets, agent groups, sessions and the correlations of the fundamental shocks."""

    markets: list[MarketSpec] = Field(min_length=1)
    agents: list[AgentGroup] = Field(min_length=1)
    sessions: list[SessionSpec] = Field(min_length=1)
    correlations: list[tuple[str, str, float]] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    # How the file spells a key's location, for configs read from PAMS's JSON (`spelled`).
    _spell: Spelling | None = PrivateAttr(default=None)

    def spelled(self, *loc: str | int) -> str:
        """The key at `loc` (e.g. ``"markets", 0, "volatility"``) as the config file writes it.

        kabuto's own configs: the key's name (``volatility``); a PAMS JSON config: its block and
        PAMS's key (``Market.fundamentalVolatility``).
        """
        return str(loc[-1]) if self._spell is None else self._spell(loc)

    @field_validator("correlations", mode="before")
    @classmethod
    def _triples(cls, value: Any) -> Any:
        # TOML and JSON write a triple as a list; strict validation wants a tuple.
        if isinstance(value, list):
            return [tuple(v) if isinstance(v, list) else v for v in value]
        return value

    @model_validator(mode="after")
    def _names(self) -> SimulationConfig:
        markets = {m.name: m for m in self.markets}
        if len(markets) != len(self.markets):
            raise ValueError("market names must be unique")
        groups = [g.name for g in self.agents]
        if len(set(groups)) != len(groups):  # policies and outputs name groups
            twice = sorted({g for g in groups if groups.count(g) > 1})
            raise ValueError(f"agent group names must be unique; {twice} appear more than once")
        for group in self.agents:
            unknown = [m for m in group.markets if m not in markets]
            if unknown:
                raise ValueError(
                    f"agent group {group.name!r} trades unknown market(s) {unknown}; markets: "
                    f"{', '.join(markets)}"
                )
        for market in self.markets:
            if not market.components:
                continue
            bad = [c for c in market.components if c not in markets or markets[c].components]
            if bad or market.name in market.components:
                raise ValueError(
                    f"index market {market.name!r}: components {bad or [market.name]} must be "
                    "other, non-index markets of the config"
                )
            if market.volatility or market.drift or market.fundamental is not None:
                raise ValueError(
                    f"index market {market.name!r} follows its components: give it no "
                    "fundamental, drift or volatility of its own"
                )
        for group in self.agents:
            if isinstance(group, ArbitrageGroup):
                plain = [m for m in group.markets if not markets[m].components]
                if plain:
                    raise ValueError(
                        f"arbitrage group {group.name!r} trades {plain}, which are not index "
                        "markets (give them components)"
                    )
        n_fcn = sum(g.count for g in self.agents if isinstance(g, FCNGroup))
        for i, session in enumerate(self.sessions):
            if session.orders and session.orders_per_step > n_fcn:
                raise ValueError(
                    f"sessions.{i}.orders_per_step = {session.orders_per_step} but there are "
                    f"only {n_fcn} FCN agents, and each acts at most once a step: lower it"
                )
        if not any(isinstance(g, FCNGroup | OrderFlowGroup) for g in self.agents):
            raise ValueError(
                "agents: at least one group of FCN agents (or an order-flow crowd) is needed"
            )
        for i, event in enumerate(self.events):
            names = event.markets if hasattr(event, "markets") else [event.market]
            unknown = [m for m in names if m not in markets]
            if unknown:
                raise ValueError(f"events[{i}] ({event.type}) names unknown market(s) {unknown}")
            if hasattr(event, "step") and event.step >= self.n_steps:
                raise ValueError(
                    f"events[{i}] ({event.type}) is at step {event.step}, after the last step "
                    f"{self.n_steps - 1}"
                )
            if isinstance(event, MistakenOrder) and not self._session_at(event.step).orders:
                raise ValueError(
                    f"events[{i}] (mistaken_order) is at step {event.step}, in a session that "
                    "places no orders (orders = false); move it to one that does"
                )
            if isinstance(event, FundamentalShock) and markets[event.market].components:
                # the index's fundamental is recomputed from its components after the shocks
                raise ValueError(
                    f"events[{i}] (fundamental_shock) targets index market {event.market!r}, "
                    "whose fundamental is the share-weighted mean of its components; shock "
                    f"its components {markets[event.market].components} instead"
                )
        for a, b, rho in self.correlations:
            for name in (a, b):
                if name not in markets:
                    raise ValueError(f"correlation names unknown market {name!r}")
            for name in (a, b):
                if markets[name].volatility <= 0:
                    raise ValueError(
                        f"correlation of {a!r} and {b!r}: market {name!r} has no volatility"
                    )
            if a == b or not -1 < rho < 1:
                raise ValueError(f"correlation {a!r}-{b!r} = {rho}: need two markets, -1 < rho < 1")
        return self

    @property
    def n_steps(self) -> int:
        return sum(s.steps for s in self.sessions)

    def _session_at(self, step: int) -> SessionSpec:
        """The session that step `step` (< `n_steps`) belongs to."""
        for session in self.sessions:
            if step < session.steps:
                return session
            step -= session.steps
        raise ValueError(f"step {step} is after the last session")

    @property
    def n_agents(self) -> int:
        return sum(g.count for g in self.agents)

    def correlation_matrix(self) -> np.ndarray:
        """Correlation of the markets' per-step fundamental shocks, shape (M, M)."""
        index = {m.name: i for i, m in enumerate(self.markets)}
        corr = np.eye(len(self.markets))
        for a, b, rho in self.correlations:
            corr[index[a], index[b]] = corr[index[b], index[a]] = rho
        if np.linalg.eigvalsh(corr).min() <= 0:
            raise ConfigError(
                "correlations: the matrix they make is not positive definite; lower them"
            )
        return corr


def parse_simulation(
    raw: dict[str, Any], *, source: str = "config", spell: Spelling | None = None
) -> SimulationConfig:
    """Validate a simulation config mapping (errors name the key, as `spell` writes it)."""
    config = validate(SimulationConfig, raw, source=source, spell=spell)
    config._spell = spell
    return config


def load_simulation(path: str | Path) -> SimulationConfig:
    """Read a simulation config: TOML (kabuto's) or JSON (PAMS's, `read_pams_config`)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        from kabuto.sim.artificial.pams import read_pams_config

        return read_pams_config(path)
    return parse_simulation(read_toml(path), source=str(path))


def first_executing_step(config: SimulationConfig) -> int:
    """The first step of the first session that executes orders.

    The steps of the leading sessions with ``execute = false`` (a pre-open) only rest orders,
    so the price does not move there; bar closes start after them.

    Raises
    ------
    ConfigError
        If no session executes orders (no trade, no price to take returns of).
    """
    step = 0
    for session in config.sessions:
        if session.execute:
            return step
        step += session.steps
    execute = config.spelled("sessions", 0, "execute").rsplit(".", 1)[-1]  # as the file has it
    raise ConfigError(
        f"sessions: none executes orders ({execute} = false in all), so nothing trades and "
        "there are no returns to report"
    )
