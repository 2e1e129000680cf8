"""Shipped checkpoints: one folder per zoo model with ``<name>.keras`` and ``manifest.json``."""
