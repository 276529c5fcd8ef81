"""The library version: the one place it is written (packaging reads it)."""

__all__ = ["__version__"]

__version__ = "0.2.0"
