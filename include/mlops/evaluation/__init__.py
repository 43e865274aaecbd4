"""Held-out evaluation, plots, model cards, promotion gates and drift baselines."""
