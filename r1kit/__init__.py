"""r1kit: the front door (CLI, recipe schema, models, data, run directory, metrics)."""

__version__ = "0.1.0"
