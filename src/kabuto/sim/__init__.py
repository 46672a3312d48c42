"""Synthetic markets that come out as the same `Panel` as real data."""

from kabuto.sim.processes import correlated_gbm, garch_panel

__all__ = ["correlated_gbm", "garch_panel"]
