"""kabuto's artificial market: limit order books, FCN agents and sessions, compiled with numba.

In the line of PAMS (Hirano, Takata, Izumi 2023): `SimulationConfig` describes markets, agent
groups and sessions (TOML, or PAMS's JSON via `read_pams_config`); `simulate` runs it, one or
many seeded runs, and returns per-step prices, fundamentals, volumes and book depth, and a
`Panel` of bar-sampled prices for backtests and hedging.
"""

from kabuto.sim.artificial.config import (
    FCNGroup,
    MarketSpec,
    SessionSpec,
    SimulationConfig,
    load_simulation,
    parse_simulation,
)
from kabuto.sim.artificial.pams import read_pams_config
from kabuto.sim.artificial.simulate import SimulationResult, simulate

__all__ = [
    "FCNGroup",
    "MarketSpec",
    "SessionSpec",
    "SimulationConfig",
    "SimulationResult",
    "load_simulation",
    "parse_simulation",
    "read_pams_config",
    "simulate",
]
