"""The TOML config of `kabuto hedge`, validated strictly.

An unknown key, a value of the wrong type (``cost = "0.1"``, ``steps = 2.5``) or out of range
is a `ConfigError` naming the file and the key (as a dotted path) and what is allowed. Every
number must be finite. Defaults are pfhedge's standard setting (Buehler et al. 2019; Imaki et al.
2021): S0 = K = 1, volatility 0.2, 20 rebalancing dates to T = 20/250, a short European call,
entropic risk with aversion 1, and 200 Adam steps of 10,000 fresh paths each. Example::

    [market]
    model = "gbm"          # "gbm", "heston" or "merton"
    spot = 1.0
    volatility = 0.2       # gbm and merton (the diffusion volatility)
    steps = 20             # rebalancing dates
    maturity = 0.08        # years

    [claim]
    kind = "call"          # or "put"
    strike = 1.0

    [hedger]
    policy = "band"        # "mlp", "recurrent" or "band"
    risk = "entropic"      # "entropic", "cvar" or "oce"
    cost = 1e-4
    train_steps = 200      # Adam steps, each on batch_paths fresh paths
    batch_paths = 10000
    trainings = 3          # independent trainings (seeds derived from seed), each reported

    [evaluation]
    paths = 100000
    seed = 1               # not the hedger's seed: the paths are fresh
    baselines = ["delta", "whalley_wilmott", "no_hedge"]
    risk_levels = [0.5, 0.9, 0.99]

Model parameters (all zero drift and rate: prices are discounted martingales):

* ``gbm``: ``volatility`` (default 0.2);
* ``heston``: ``v0`` (0.04), ``kappa`` (1.0), ``theta`` (0.04), ``xi`` (0.2), ``rho`` (-0.7),
  pfhedge's `HestonStock` defaults;
* ``merton``: ``volatility`` (0.2, of the diffusion part), ``jump_intensity`` (68 a year),
  ``jump_mean`` (0.0) and ``jump_std`` (0.01) of the log jump size, pfhedge's
  `MertonJumpStock` defaults.

A parameter of another model (``kappa`` with ``model = "gbm"``) is an error, not ignored.

Upper bounds turn values no run can use into errors naming the key, rather than overflows,
NaN results or a torch allocation failure: ``cost < 1`` (a fraction of the traded notional),
``aversion <= 1e6``, seeds in [0, 2**63 - 1], ``num_threads <= 1024``, ``train_steps <= 1e7``,
``trainings <= 100``, and an estimate of the run's memory (`estimated_memory`) of at most 1 TiB.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kabuto.hedging.hedger import MAX_LEARNING_RATE
from kabuto.settings import derived_seed
from kabuto.strict_config import Seed, StrictValues, read_toml, validate

__all__ = [
    "BASELINES",
    "MEMORY_LIMIT",
    "MODEL_PARAMETERS",
    "ClaimConfig",
    "EvaluationConfig",
    "HedgeConfig",
    "HedgerConfig",
    "MarketConfig",
    "estimated_memory",
    "load_hedge_config",
    "parse_hedge_config",
]

BASELINES = ("delta", "whalley_wilmott", "no_hedge")

#: Each model's parameters and their defaults.
MODEL_PARAMETERS: dict[str, dict[str, float]] = {
    "gbm": {"volatility": 0.2},
    "heston": {"v0": 0.04, "kappa": 1.0, "theta": 0.04, "xi": 0.2, "rho": -0.7},
    "merton": {"volatility": 0.2, "jump_intensity": 68.0, "jump_mean": 0.0, "jump_std": 0.01},
}

# Levels within 1e-6 of 0 or 1 have no tail paths on any realistic evaluation (and 1 - q
# rounds to 1 for q = 1e-300); the table names a level by its 6 significant digits.
Level = Annotated[float, Field(ge=1e-6, le=1 - 1e-6)]
# Spots and strikes the float32 training arithmetic holds with room to spare (squares, costs):
# 1e300 became inf there and was reported as a diverged training.
PRICE_RANGE = (1e-12, 1e12)
MAX_MONEYNESS = 1e6

# Beyond this aversion the entropic risk is the worst loss of the paths to within log(N) / a
# (2e-5 for 1e8 paths), so a larger one changes nothing but the rounding; and -a * P&L stays far
# inside float32 (3.4e38, the training dtype) for any P&L below 1e32 in magnitude. 1e308 gave NaN.
MAX_AVERSION = 1e6
# More torch threads than any machine has cores: 100,000 made torch run out of memory.
MAX_THREADS = 1024
# Each Adam step is a Python iteration of at least a millisecond: 1e7 of them are days of work.
MAX_TRAIN_STEPS = 10_000_000
# Enough trainings to see the spread a seed makes; each is a whole training's time.
MAX_TRAININGS = 100

#: The most memory `estimated_memory` may give a run: far more than a realistic run needs (the
#: defaults need about 2.5 GB), so that only absurd sizes fail, and with the sizes named rather
#: than with torch's "can't allocate memory".
MEMORY_LIMIT = 2**40
# Bytes per path and date (steps + 1) a run holds at once, measured (peak RSS of `run_hedge` on
# a million paths of 20 steps, rounded up): the training paths with their features and the
# band's delta and gamma (about 45), and the evaluation paths with every hedger's holdings,
# trades and costs (about 150 for four hedgers).
_TRAIN_BYTES = 64
_EVALUATION_BYTES_PER_HEDGER = 48
# Bytes per hidden unit of a training batch row and date: the float32 activation kept for the
# backward pass (measured: about 3.8 on a batch of a million paths of 20 steps).
_ACTIVATION_BYTES = 4
# Bytes per network parameter: float32 weight, gradient and Adam's two moments.
_PARAMETER_BYTES = 16


class MarketConfig(StrictValues):
    """The simulated underlying (see the module docstring for each model's parameters)."""

    model: Literal["gbm", "heston", "merton"] = "gbm"
    spot: float = Field(1.0, ge=PRICE_RANGE[0], le=PRICE_RANGE[1])
    steps: int = Field(20, ge=1)  # bounded by the memory estimate (`estimated_memory`)
    maturity: float = Field(20 / 250, gt=0)
    volatility: float | None = Field(None, gt=0)
    v0: float | None = Field(None, ge=0)
    kappa: float | None = Field(None, gt=0)
    theta: float | None = Field(None, gt=0)
    xi: float | None = Field(None, gt=0)
    rho: float | None = Field(None, ge=-1, le=1)
    jump_intensity: float | None = Field(None, ge=0)
    jump_mean: float | None = None
    jump_std: float | None = Field(None, ge=0)

    def parameters(self) -> dict[str, float]:
        """The model's parameters (defaults filled in by `HedgeConfig`)."""
        return {name: getattr(self, name) for name in MODEL_PARAMETERS[self.model]}


class ClaimConfig(StrictValues):
    """The European option the hedger is short."""

    kind: Literal["call", "put"] = "call"
    strike: float = Field(1.0, ge=PRICE_RANGE[0], le=PRICE_RANGE[1])


class HedgerConfig(StrictValues):
    """`kabuto.hedging.DeepHedger`'s settings and the training protocol.

    Training takes `train_steps` Adam steps, each on `batch_paths` paths never seen before:
    ``DeepHedger.fit`` on ``train_steps * batch_paths`` paths with ``batch_size=batch_paths,
    epochs=1`` (see DeepHedger's Notes). All of them are simulated at once, so memory grows
    with their product: about 1.2 GB per million paths of 20 steps (2.5 GB at the defaults).
    It is done `trainings` times, one after another, with the seeds of `training_seeds`, and
    every trained hedger is evaluated: the spread of their prices is the part of a deep
    hedger's price that the seed decides, which one training cannot show.
    The other keys are DeepHedger's settings of the same names; ``num_threads`` also bounds
    the torch threads of the path simulation and the baselines, and ``device`` ("cpu", "cuda"
    or "auto") is where the network trains and hedges (paths are simulated on the CPU).
    ``cost`` defaults to 1e-4, not to DeepHedger's 0: a config that leaves it out still pays
    for its trades (write ``cost = 0.0`` for a frictionless run).
    """

    policy: Literal["mlp", "recurrent", "band"] = "band"
    hidden_sizes: list[Annotated[int, Field(ge=1)]] = Field([32, 32, 32, 32], min_length=1)
    previous_input: bool = False
    risk: Literal["entropic", "cvar", "oce"] = "entropic"
    aversion: float = Field(1.0, gt=0, le=MAX_AVERSION)
    risk_level: Level = 0.9
    # Never zero unless asked for (pfhedge's example's cost); below 1, i.e. below 100% of the
    # traded notional: 1e10 gave P&L of -1e10 rather than an error.
    cost: float = Field(1e-4, ge=0, lt=1)
    unwind: bool = True
    learning_rate: float = Field(1e-3, gt=0, le=MAX_LEARNING_RATE)
    seed: Seed = 0
    num_threads: int | None = Field(None, ge=1, le=MAX_THREADS)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    train_steps: int = Field(200, ge=1, le=MAX_TRAIN_STEPS)
    batch_paths: int = Field(10_000, ge=1)
    trainings: int = Field(3, ge=1, le=MAX_TRAININGS)

    def training_seeds(self) -> list[int]:
        """The seed of each training (its paths and initial weights): `seed` for the first,
        derived from (`seed`, k) for training k (`kabuto.settings.derived_seed`)."""
        return [derived_seed(self.seed, k) for k in range(self.trainings)]


class EvaluationConfig(StrictValues):
    """Fresh paths the hedgers are compared on, and what the risk table reports."""

    paths: int = Field(100_000, ge=10)
    seed: Seed = 1
    baselines: list[Literal["delta", "whalley_wilmott", "no_hedge"]] = Field(list(BASELINES))
    risk_levels: list[Level] = Field([0.5, 0.9, 0.99], min_length=1)

    @field_validator("baselines", "risk_levels")
    @classmethod
    def _unique(cls, value: list) -> list:
        repeated = sorted({v for v in value if value.count(v) > 1}, key=str)
        if repeated:
            raise ValueError(
                f"lists {', '.join(map(repr, repeated))} more than once; list each once"
            )
        # a level's columns are named by its 6 significant digits (var_0.9): two that print
        # alike would share one column
        names = [f"{v:g}" for v in value if isinstance(v, float)]
        alike = sorted({n for n in names if names.count(n) > 1})
        if alike:
            levels = [v for v in value if f"{v:g}" == alike[0]]
            raise ValueError(
                f"levels {', '.join(map(repr, levels))} are all named {alike[0]} in the risk "
                "table; give levels that differ in their first 6 significant digits"
            )
        return value


class HedgeConfig(StrictValues):
    """A whole `kabuto hedge` run."""

    market: MarketConfig = MarketConfig()
    claim: ClaimConfig = ClaimConfig()
    hedger: HedgerConfig = HedgerConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _resolve(self) -> HedgeConfig:
        market = self.market
        own = MODEL_PARAMETERS[market.model]
        for model, names in MODEL_PARAMETERS.items():
            for name in names:
                if name not in own and getattr(market, name) is not None:
                    raise ValueError(
                        f"market.{name} is a parameter of model = {model!r}, not of model = "
                        f"{market.model!r}; remove it (or set market.model = {model!r})"
                    )
        for name, default in own.items():
            if getattr(market, name) is None:
                setattr(market, name, default)
        ratio = self.claim.strike / market.spot
        if not 1 / MAX_MONEYNESS <= ratio <= MAX_MONEYNESS:
            raise ValueError(
                f"claim.strike = {self.claim.strike:g} is {ratio:.3g} times market.spot = "
                f"{market.spot:g}; keep their ratio within {1 / MAX_MONEYNESS:g} to "
                f"{MAX_MONEYNESS:g} (a claim that far from the money is worth nothing, or "
                "the underlying itself)"
            )
        if self.evaluation.seed in self.hedger.training_seeds():
            raise ValueError(
                f"evaluation.seed = {self.evaluation.seed} is the seed of a training (hedger.seed "
                "or one derived from it), which draws training paths; use another seed so that "
                "the evaluation paths are fresh"
            )
        _check_memory(self)
        return self


def estimated_memory(config: HedgeConfig) -> dict[str, tuple[int, list[str]]]:
    """Rough peak memory in bytes of each part of a run, with the keys that set it.

    ``training``: the ``train_steps * batch_paths`` training paths of one training, simulated
    at once, and the activations of one batch; ``evaluation``: the ``evaluation.paths`` paths
    and the holdings of every hedger (each training's and the baselines) on them;
    ``network``: the weights with their gradients and Adam's moments. Each part is a measured
    bytes-per-element factor times its tensors' elements, rounded up: good to a factor of about
    two, enough to reject sizes no machine holds, not to plan a run.
    """
    h, dates = config.hedger, config.market.steps + 1
    sizes = [4, *h.hidden_sizes, 2]  # 3 market inputs and the previous holding; two band widths
    parameters = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    activations = h.batch_paths * dates * sum(h.hidden_sizes) * _ACTIVATION_BYTES
    hedgers = max(h.trainings + len(config.evaluation.baselines), 4)  # measured with four
    return {
        "training": (
            h.train_steps * h.batch_paths * dates * _TRAIN_BYTES + activations,
            ["hedger.train_steps", "hedger.batch_paths", "market.steps", "hedger.hidden_sizes"],
        ),
        "evaluation": (
            config.evaluation.paths * dates * _EVALUATION_BYTES_PER_HEDGER * hedgers,
            ["evaluation.paths", "market.steps", "hedger.trainings"],
        ),
        "network": (parameters * _PARAMETER_BYTES, ["hedger.hidden_sizes"]),
    }


def _check_memory(config: HedgeConfig) -> None:
    for part, (size, keys) in estimated_memory(config).items():
        if size > MEMORY_LIMIT:
            values = ", ".join(f"{key} = {_value(config, key)!r}" for key in keys)
            raise ValueError(
                f"the {part} would need about {_bytes(size)} of memory ({values}), more than "
                f"the {_bytes(MEMORY_LIMIT)} allowed; lower them"
            )


def _value(config: HedgeConfig, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def _bytes(size: int) -> str:
    """`size` bytes in binary units: 2.5 GiB, 1.2e+06 TiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = min(int(math.log(max(size, 1), 1024)), len(units) - 1)
    return f"{size / 1024**power:.3g} {units[power]}"


def parse_hedge_config(raw: dict[str, Any], *, source: str = "config") -> HedgeConfig:
    """Validate a config mapping; errors name `source`, the key and the allowed values."""
    return validate(HedgeConfig, raw, source=source)


def load_hedge_config(path: str | Path) -> HedgeConfig:
    """Read and validate a `kabuto hedge` TOML file.

    Raises
    ------
    ConfigError
        For a missing, unreadable or malformed file, or a bad key or value (the message starts
        with the file's path).
    """
    return parse_hedge_config(read_toml(path), source=str(path))
