"""Shared code of the Designer BFF ML service (one package, copied into every image)."""

__version__ = "0.1.0"
