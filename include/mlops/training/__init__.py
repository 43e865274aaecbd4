"""Algorithms, their search spaces, and fitting one candidate model."""
