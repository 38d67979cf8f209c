"""The archcast version (a leaf module: checkpoints and data sets record it)."""

__version__ = "0.1.0"
