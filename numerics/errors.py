"""Errors the numerics raise; the CLI prints them on one line."""

__all__ = ["ConfigError", "SimulationError"]


class ConfigError(ValueError):
    """A configuration that the model does not admit (bad K, N, p, eta, steps, precision...)."""


class SimulationError(ArithmeticError):
    """A run met NaN or overflow; the message names the step."""

    def __init__(self, step: int, what: str):
        super().__init__(f"step {step}: {what}")
        self.step = step
