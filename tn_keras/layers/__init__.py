"""Polynomial coarse-graining layers."""
