"""kabuto's artificial market: limit order books and agents, compiled with numba.

In the line of PAMS (Hirano, Takata, Izumi 2023): `SimulationConfig` describes markets, agent
groups (FCN agents, market makers, Python policies) and sessions (TOML, or PAMS's JSON via
`read_pams_config`); `simulate` runs it, one or many seeded runs, and returns per-step prices,
fundamentals, volumes and book depth, and a `Panel` of bar-sampled prices for backtests and
hedging. `garch_agents` holds the noise / fundamental / AI trader market of Nakagawa et al.
(2024) and its GARCH mapping; `facts` the stylized-facts statistics.
"""

from kabuto.sim.artificial.config import (
    FCNGroup,
    MarketSpec,
    SessionSpec,
    SimulationConfig,
    load_simulation,
    parse_simulation,
)
from kabuto.sim.artificial.garch_agents import GarchMarket, analytic_garch, simulate_garch_market
from kabuto.sim.artificial.pams import read_pams_config
from kabuto.sim.artificial.policy import Observation, Order, predictor_policy
from kabuto.sim.artificial.runner import SimulationResult, simulate

__all__ = [
    "FCNGroup",
    "GarchMarket",
    "MarketSpec",
    "Observation",
    "Order",
    "SessionSpec",
    "SimulationConfig",
    "SimulationResult",
    "analytic_garch",
    "load_simulation",
    "parse_simulation",
    "predictor_policy",
    "read_pams_config",
    "simulate",
    "simulate_garch_market",
]
